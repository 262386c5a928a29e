//! A closed, scored instance as its technique alert.

use super::scoring::Scored;
use super::Instance;
use crate::detect::pair::{Auth, PairView};
use crate::event::alert::TechniqueAlert;

/// The alert of `inst` (the evidence in time order); its `id` is set at emission.
pub(super) fn technique_alert(
    inst: Instance,
    pair: &PairView<'_>,
    auth: Auth,
    s: Scored,
) -> TechniqueAlert {
    let mut evidence = inst.evidence;
    evidence.sort_by_key(|e| e.ts);
    TechniqueAlert {
        ts: inst.first_ts,
        ts_end: inst.last_ts,
        // From content, at emission (TechniqueAlert::content_id).
        id: String::new(),
        technique: inst.technique,
        attack: s.attack,
        severity: s.severity,
        confidence: s.confidence,
        basis: inst.basis,
        decrypted: inst.decrypted || inst.rpc_decrypted,
        src_ip: pair.src,
        dst_ip: pair.dst,
        user: auth.user,
        domain: auth.domain,
        workstation: auth.workstation,
        auth: auth.kerberos.map(|_| "kerberos"),
        user_source: auth.kerberos,
        share: if inst.shares.is_empty() {
            None
        } else {
            Some(inst.shares.iter().cloned().collect::<Vec<_>>().join(","))
        },
        uploads: s.uploads,
        service_name: inst.service_name,
        display_name: inst.display_name,
        binary_path: inst.binary_path,
        start_type: inst.start_type,
        task_path: inst.task_path,
        command: inst.command,
        pipes: inst.pipes,
        tool: s.attribution.tool,
        tool_reason: s.attribution.why,
        count: inst.count,
        calls: inst.calls,
        started: inst.started,
        deleted: inst.deleted,
        failed: inst.failed,
        no_response: inst.no_response,
        reason: s.reason,
        evidence,
        suppressed_by: None,
    }
}
