//! Where protocol layers put what they learn: events, named counters, and anomalies.
//!
//! Every cap in the sensor is a named constant; reaching it calls [`Sink::cap_reached`] with that
//! constant's name, which bumps the counter `cap.<NAME>` and emits a typed `anomaly` event (the first
//! [`MAX_ANOMALY_EVENTS_PER_KIND`] of each kind, then only the counter, so an attacker cannot flood
//! the output). The pipeline drains `events` after every packet, so the sink never grows with input.

use crate::event::{Anomaly, AnomalyKind, ConnFields, Event};
use crate::time::Ts;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// After this many anomaly events of one kind (or one cap), further ones are only counted.
pub const MAX_ANOMALY_EVENTS_PER_KIND: u64 = 1000;

/// Named counters (packets, bytes, flows, `cap.*`, `anomaly.*` …), summed across workers at the end.
///
/// Counting is on the per-packet path (about sixty call sites, several per packet), so a count
/// lands in a slot found by the name's address: a `&'static str` does not move, and hashing its
/// address and length costs a few instructions where an ordered map keyed by the text paid a
/// string compare per tree level (3% of the non-hashing instructions of `read`, docs/PERF.md).
/// The keys are the sensor's own, never the wire's, so the unkeyed FxHash fits `wire::maps`'
/// rule. Two literals of the same text need not share an address: every read folds the slots by
/// name ([`Counters::by_name`]).
#[derive(Clone, Debug, Default)]
pub struct Counters {
    slots: FxHashMap<(usize, usize), (&'static str, u64)>,
}

impl Counters {
    pub fn add(&mut self, name: &'static str, n: u64) {
        let slot = (name.as_ptr() as usize, name.len());
        self.slots.entry(slot).or_insert((name, 0)).1 += n;
    }
    pub fn get(&self, name: &str) -> u64 {
        self.slots
            .values()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v)
            .sum()
    }
    pub fn merge(&mut self, other: &Counters) {
        for (k, v) in other.slots.values() {
            self.add(k, *v);
        }
    }
    /// Every counter once, in name order.
    pub fn by_name(&self) -> BTreeMap<&'static str, u64> {
        let mut m = BTreeMap::new();
        for (k, v) in self.slots.values() {
            *m.entry(*k).or_insert(0) += v;
        }
        m
    }
    pub fn clear(&mut self) {
        self.slots.clear();
    }
}

impl PartialEq for Counters {
    fn eq(&self, other: &Counters) -> bool {
        self.by_name() == other.by_name()
    }
}

impl Eq for Counters {}

#[derive(Debug, Default)]
pub struct Sink {
    pub events: Vec<Event>,
    pub counters: Counters,
    /// Endpoints the endpoint mapper announced (server, TCP port): the next connection there
    /// speaks DCE-RPC. Filled where `ept_map` is decoded, taken by the engine for the flow layer.
    pub learned_endpoints: Vec<crate::dcerpc::EpmExpectation>,
    anomaly_events: BTreeMap<(AnomalyKind, Option<&'static str>), u64>,
}

impl Sink {
    pub fn new() -> Sink {
        Sink::default()
    }

    pub fn emit(&mut self, e: Event) {
        self.events.push(e);
    }

    pub fn count(&mut self, name: &'static str, n: u64) {
        self.counters.add(name, n);
    }

    /// A named cap was reached. `cap` is the constant's name, e.g. "MAX_FLOWS".
    pub fn cap_reached(
        &mut self,
        cap: &'static str,
        ts: Ts,
        conn: Option<ConnFields>,
        layer: &'static str,
        detail: impl Into<String>,
    ) {
        self.counters.add(cap_counter_name(cap), 1);
        self.push_anomaly(
            ts,
            conn,
            AnomalyKind::CapReached,
            layer,
            Some(cap),
            detail.into(),
        );
    }

    /// Any other typed anomaly.
    pub fn anomaly(
        &mut self,
        ts: Ts,
        conn: Option<ConnFields>,
        kind: AnomalyKind,
        layer: &'static str,
        detail: impl Into<String>,
    ) {
        self.counters.add(anomaly_counter_name(kind), 1);
        self.push_anomaly(ts, conn, kind, layer, None, detail.into());
    }

    fn push_anomaly(
        &mut self,
        ts: Ts,
        conn: Option<ConnFields>,
        kind: AnomalyKind,
        layer: &'static str,
        cap: Option<&'static str>,
        detail: String,
    ) {
        let n = self.anomaly_events.entry((kind, cap)).or_insert(0);
        *n += 1;
        if *n <= MAX_ANOMALY_EVENTS_PER_KIND {
            self.events.push(Event::Anomaly(Anomaly {
                ts,
                conn,
                kind,
                layer,
                cap,
                detail,
            }));
        } else {
            self.counters.add("anomaly_events_suppressed", 1);
        }
    }
}

/// Counter names must be `&'static str`; cap names are constants, so leak-free interning by table.
fn cap_counter_name(cap: &'static str) -> &'static str {
    // The counter is keyed by the cap's own static name; the "cap." prefix is added when printed.
    cap
}

fn anomaly_counter_name(kind: AnomalyKind) -> &'static str {
    match kind {
        AnomalyKind::OverlapDifferentData => "anomaly.overlap_different_data",
        AnomalyKind::Gap => "anomaly.gap",
        AnomalyKind::CapReached => "anomaly.cap_reached",
        AnomalyKind::Malformed => "anomaly.malformed",
        AnomalyKind::FragmentOverlap => "anomaly.fragment_overlap",
        AnomalyKind::BadChecksum => "anomaly.bad_checksum",
        AnomalyKind::AckInvalid => "anomaly.ack_invalid",
        AnomalyKind::OutOfWindow => "anomaly.out_of_window",
        AnomalyKind::RstIgnored => "anomaly.rst_ignored",
        AnomalyKind::DataAfterFin => "anomaly.data_after_fin",
        AnomalyKind::OverlapAmbiguous => "anomaly.overlap_ambiguous",
        AnomalyKind::AndxLoop => "anomaly.andx_loop",
        AnomalyKind::WrongDirection => "anomaly.wrong_direction",
        AnomalyKind::Capture => "anomaly.capture",
        AnomalyKind::Decrypt => "anomaly.decrypt",
        AnomalyKind::Other => "anomaly.other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn cap_counts_always_but_events_are_bounded() {
        let mut s = Sink::new();
        for _ in 0..(MAX_ANOMALY_EVENTS_PER_KIND + 5) {
            s.cap_reached("MAX_TEST", Ts(1), None, "tcp", "x");
        }
        assert_eq!(s.counters.get("MAX_TEST"), MAX_ANOMALY_EVENTS_PER_KIND + 5);
        assert_eq!(s.events.len() as u64, MAX_ANOMALY_EVENTS_PER_KIND);
        assert_eq!(s.counters.get("anomaly_events_suppressed"), 5);
    }
}
