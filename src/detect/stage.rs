//! The detection stage as the commands run it: the event matcher ([`Detector`]) and the inference
//! from encrypted SMB3 message sizes ([`Inference`]) side by side, fed the same events in packet
//! order. `read`, `eval` and `live` all use this, so they cannot disagree.

use super::inferred::{Inference, InferenceConfig, InferredConfidence, InferredTechnique};
use super::responses::ResponseInference;
use super::{Detector, InferredCall, Rules};
use crate::event::alert::{Alert, Basis, Technique};
use crate::event::{ConnFields, Event};
use crate::flow::ConnId;
use crate::kerberos::join::TicketJoin;
use crate::sink::Sink;
use crate::time::Ts;

pub struct Detection {
    detector: Detector,
    inference: Inference,
    inferred: Vec<InferredTechnique>,
    /// Server→client-only captures: techniques from the answers alone.
    responses: ResponseInference,
    answered: Vec<InferredCall>,
    /// Kerberos tickets → clients, applied to every event before it is written or matched.
    tickets: TicketJoin,
}

impl Detection {
    pub fn new(rules: Rules) -> Detection {
        Detection {
            responses: ResponseInference::new(rules.settings.window_secs),
            answered: Vec::new(),
            detector: Detector::new(rules),
            inference: Inference::new(InferenceConfig::default()),
            inferred: Vec::new(),
            tickets: TicketJoin::new(),
        }
    }

    /// Before an event is written or matched: a Kerberos session setup or bind gets the client
    /// its ticket was issued to ([`TicketJoin`]). Every command calls this on every event, in
    /// packet order, where the workers' outputs have merged.
    pub fn join(&mut self, ev: &mut Event) {
        self.tickets.apply(ev);
    }

    pub fn on_event(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        self.inference.on_event(ev, &mut self.inferred);
        self.hand_over_inferred();
        self.detector.on_event(ev, out);
        self.responses.on_event(ev, &mut self.answered);
        for x in self.answered.drain(..) {
            self.detector.on_inferred(x);
        }
    }

    /// Live mode: technique alerts once an attack instance is quiet for `secs` (see
    /// [`Detector::close_when_quiet`]); call [`Self::tick`] to let time pass.
    pub fn close_when_quiet(&mut self, secs: u64) {
        self.detector.close_when_quiet(secs);
    }

    /// Live mode: complete idle inference sessions, close expired attack instances, periodic host
    /// summaries.
    pub fn tick(&mut self, now: Ts, out: &mut Vec<Alert>) {
        self.inference.tick(now, &mut self.inferred);
        self.hand_over_inferred();
        self.detector.tick(now, out);
    }

    /// End of input: everything still open becomes alerts.
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        self.finish_with(out, &mut |_| {});
    }

    /// [`Self::finish`], handing `out` to `flush` (which should drain it) every few alerts.
    pub fn finish_with(&mut self, out: &mut Vec<Alert>, flush: &mut dyn FnMut(&mut Vec<Alert>)) {
        self.inference.finish(&mut self.inferred);
        self.hand_over_inferred();
        self.detector.finish_with(out, flush);
    }

    /// Entries the matcher holds now (see [`super::DetectTables`]).
    pub fn tables(&self) -> super::DetectTables {
        self.detector.tables()
    }

    pub fn report_caps(&mut self, sink: &mut Sink) {
        self.tickets.report_caps(sink);
        self.inference.report_caps(sink);
        self.responses.report_caps(sink);
        self.detector.report_caps(sink);
    }

    fn hand_over_inferred(&mut self) {
        for x in self.inferred.drain(..) {
            self.detector.on_inferred(inferred_call(x));
        }
    }
}

/// An inferred service creation as the matcher's input: the host pair, the connection uid and,
/// when the inference knows them, its ports (else those of SMB with an unknown client port).
fn inferred_call(x: InferredTechnique) -> InferredCall {
    let (orig_p, resp_p) = x.ports.unwrap_or((0, 445));
    let conn = ConnId {
        orig_h: x.src,
        orig_p,
        resp_h: x.dst,
        resp_p,
    };
    let tool_hint = x.tool_hint.map(|h| match (h, x.with_upload) {
        // impacket's tool that uploads a service binary is psexec.py; without an upload the
        // service runs a command line (smbexec.py and friends).
        ("impacket", true) => "impacket-psexec".to_string(),
        ("impacket", false) => "impacket-smbexec".to_string(),
        (other, _) => other.to_string(),
    });
    let evidence = x
        .evidence
        .iter()
        .map(|e| {
            let dir = if e.to_server {
                "client→server"
            } else {
                "server→client"
            };
            let inner = e
                .inner
                .map(|n| format!(", inner {n} B"))
                .unwrap_or_default();
            (
                e.ts,
                format!(
                    "encrypted {} {dir} {} B ({}{inner})",
                    e.what, e.size, e.role
                ),
            )
        })
        .collect();
    InferredCall {
        conn: ConnFields::new(x.ts_end, x.uid, &conn),
        first_ts: x.ts,
        technique: Technique::ServiceCreate,
        interface: "svcctl",
        // The sizes are those of SMB3 messages: the calls went over a named pipe.
        transport: crate::dcerpc::Transport::SmbPipe,
        user: x.user,
        domain: x.domain,
        workstation: x.workstation,
        upload_size: x.upload_size,
        tool_hint,
        medium: x.confidence == InferredConfidence::Medium,
        reason: x.reason,
        evidence,
        basis: Basis::Inferred,
        failed: false,
        pipes: vec![],
        task_path: None,
    }
}
