//! Captures through the sensor's own pipeline (capture → decode → flows + reassembly → parsers →
//! events: `psexec_sensor::pipeline::Engine`), for the SMB tests. Either the file as the product
//! reads it, or its TCP segments reshaped first (cut into small pieces, bytes flipped) and written
//! back as Ethernet / IPv4 frames, so every test exercises what the product runs.
#![allow(dead_code)]

use super::reshape::{frames, read_segments, split, Net};
use psexec_sensor::capture::Packet;
use psexec_sensor::event::Event;
use psexec_sensor::pipeline::{run_file, Collect, Engine, EngineConfig};
use psexec_sensor::sink::Counters;
use std::path::Path;
use std::sync::Arc;

pub use super::reshape::Seg;

/// The events and the engine's counters of one capture. `piece` > 0 cuts every TCP data segment
/// into segments of `piece` bytes first (Ethernet / IPv4 captures only); 0 reads the file as is
/// (any link type, pcap or pcapng).
pub fn run(path: &Path, piece: usize) -> (Vec<Event>, Counters) {
    if piece > 0 {
        return run_segments(&segments(path), piece);
    }
    let mut engine = Engine::new(EngineConfig::default());
    let mut out = Collect::default();
    let done = run_file(
        &mut engine,
        path,
        &mut 0,
        Arc::default(),
        &mut out,
        &mut |_| {},
    );
    assert!(done.error.is_none(), "{}: {:?}", path.display(), done.error);
    (
        out.events.into_iter().map(|(_, e)| e).collect(),
        engine.counters(),
    )
}

/// The TCP segments of an Ethernet / IPv4 capture, in capture order (for tests that alter them).
pub fn segments(path: &Path) -> Vec<Seg> {
    read_segments(path)
}

/// [`run`] over segments already read (and perhaps altered), each data segment cut into `piece`
/// bytes (0 = as they are).
pub fn run_segments(segs: &[Seg], piece: usize) -> (Vec<Event>, Counters) {
    let segs = if piece > 0 {
        split(segs, piece)
    } else {
        segs.to_vec()
    };
    run_packets(&frames(&segs, Net::V4))
}

fn run_packets(packets: &[Packet]) -> (Vec<Event>, Counters) {
    let mut engine = Engine::new(EngineConfig::default());
    let mut out = Collect::default();
    for (i, p) in packets.iter().enumerate() {
        engine.process(i as u64, p, &mut out);
    }
    engine.finish(&mut out);
    (
        out.events.into_iter().map(|(_, e)| e).collect(),
        engine.counters(),
    )
}
