//! The reading loops of `live`: AF_PACKET workers (each its own rings and engine) and the libpcap
//! capture thread (one handle feeding the stream pipeline).

use super::{wall_now, Limits, SocketStatus, FLUSH_EVERY, TICK_EVERY};
use crate::capture::live::afpacket::{wait_any, RingSocket, BLOCK_RETIRE_MS};
use crate::capture::live::{LiveCapture, LiveError, Read, StopFlag, READ_TIMEOUT_MS};
use crate::capture::Packet;
use crate::pipeline::shards::Shard;
use crate::pipeline::stream::Feeder;
use crate::time::Ts;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Frames one worker takes from its rings before it looks at the clock, the stop flag and the
/// merger again.
pub const MAX_FRAMES_PER_ROUND: usize = 4096;

/// With several interfaces (the two halves of a tap) a worker merges its rings by capture time. A
/// frame is held while another ring shows nothing yet, until this long after its capture time: by
/// then the kernel has handed over any block holding an earlier frame (it retires a block after
/// [`BLOCK_RETIRE_MS`]). So a request and its reply, seen on two interfaces, reach the engine in
/// the order they were on the wire.
pub const MERGE_HOLD: Duration = Duration::from_millis(BLOCK_RETIRE_MS as u64 * 2 + 100);

/// One worker's sockets (one per interface) and their slots in the shared counters.
pub(super) struct WorkerRings {
    pub sockets: Vec<RingSocket>,
    /// Index into the shared [`SocketStatus`] list of each socket.
    pub slots: Vec<usize>,
}

/// An AF_PACKET worker: frames from its rings into its engine until a stop request, a limit or a
/// consumer failure. Returns the first error of a socket, if any.
pub(super) fn fanout_worker(
    mut rings: WorkerRings,
    shard: &mut Shard,
    counters: &[SocketStatus],
    stop: &StopFlag,
    limits: Limits,
) -> Option<LiveError> {
    let started = Instant::now();
    let fds: Vec<RawFd> = rings.sockets.iter().map(RingSocket::fd).collect();
    let mut next_tick = Instant::now() + TICK_EVERY;
    let mut error = None;
    loop {
        if stop.is_stopped() || shard.cancelled() {
            break;
        }
        let round = drain(&mut rings, shard, counters, true);
        shard.flush();
        if limits
            .count
            .is_some_and(|n| shard.status().packets.load(Ordering::Relaxed) >= n)
        {
            stop.stop();
        }
        let now = Instant::now();
        if now >= next_tick {
            next_tick = now + TICK_EVERY;
            shard.tick(wall_now());
            if let Err(e) = post_kernel_stats(&mut rings, counters) {
                error.get_or_insert(e);
                stop.stop();
            }
            if limits.duration.is_some_and(|d| started.elapsed() >= d) {
                stop.stop();
            }
        }
        match round {
            Round::Busy => {}
            Round::Empty => wait_any(&fds, READ_TIMEOUT_MS),
            // A ring that showed nothing may poll readable for a block we already hold: sleep.
            Round::Holding => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    // What the kernel already handed over is read before the engine closes its flows.
    drain(&mut rings, shard, counters, false);
    shard.flush();
    if let Err(e) = post_kernel_stats(&mut rings, counters) {
        error.get_or_insert(e);
    }
    error
}

enum Round {
    /// It stopped at the frame limit: more may be waiting.
    Busy,
    /// Every ring is empty.
    Empty,
    /// Frames are held for the merge by time (see [`MERGE_HOLD`]).
    Holding,
}

/// Frames into the engine, oldest first across the worker's rings, at most
/// [`MAX_FRAMES_PER_ROUND`]. `hold`: apply [`MERGE_HOLD`] (not at the end).
fn drain(
    rings: &mut WorkerRings,
    shard: &mut Shard,
    counters: &[SocketStatus],
    hold: bool,
) -> Round {
    let mut taken = vec![(0u64, 0u64); rings.sockets.len()];
    let mut round = Round::Empty;
    for _ in 0..MAX_FRAMES_PER_ROUND {
        let mut oldest: Option<(usize, Ts)> = None;
        let mut some_ring_empty = false;
        for (i, s) in rings.sockets.iter_mut().enumerate() {
            match s.peek_ts() {
                Some(t) if oldest.is_none_or(|(_, o)| t < o) => oldest = Some((i, t)),
                Some(_) => {}
                None => some_ring_empty = true,
            }
        }
        let Some((i, ts)) = oldest else {
            round = Round::Empty;
            break;
        };
        if hold && some_ring_empty && rings.sockets.len() > 1 {
            let release_at = ts.0.saturating_add(MERGE_HOLD.as_nanos() as u64);
            if wall_now().0 < release_at {
                round = Round::Holding;
                break;
            }
        }
        let sock = &mut rings.sockets[i];
        if let Some(f) = sock.peek() {
            taken[i].0 += 1;
            taken[i].1 += u64::from(f.orig_len);
            shard.frame(f);
        }
        sock.consume();
        round = Round::Busy;
    }
    for (slot, (frames, bytes)) in rings.slots.iter().zip(taken) {
        if let Some(c) = counters.get(*slot) {
            c.frames.fetch_add(frames, Ordering::Relaxed);
            c.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }
    round
}

fn post_kernel_stats(rings: &mut WorkerRings, counters: &[SocketStatus]) -> Result<(), LiveError> {
    for (s, slot) in rings.sockets.iter_mut().zip(&rings.slots) {
        let k = s.stats()?;
        if let Some(c) = counters.get(*slot) {
            c.received.store(k.received, Ordering::Relaxed);
            c.kernel_dropped.store(k.drops, Ordering::Relaxed);
            c.ring_freezes.store(k.freezes, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// The libpcap capture thread: frames into the stream pipeline until a stop request, a limit or a
/// read error; then the end of input (every flow closes). Returns the error, if any.
pub(super) fn pcap_loop(
    mut cap: LiveCapture,
    feeder: &mut Feeder,
    counters: &SocketStatus,
    limits: Limits,
) -> Option<LiveError> {
    let started = Instant::now();
    let mut pkt = Packet::empty();
    let mut last_flush = Instant::now();
    let mut next_tick = Instant::now() + TICK_EVERY;
    let post = |cap: &mut LiveCapture, feeder: &Feeder| {
        if let Ok(k) = cap.stats() {
            counters.received.store(k.received, Ordering::Relaxed);
            counters.kernel_dropped.store(k.dropped, Ordering::Relaxed);
            counters.if_dropped.store(k.if_dropped, Ordering::Relaxed);
        }
        let st = feeder.status();
        counters
            .frames
            .store(st.packets.load(Ordering::Relaxed), Ordering::Relaxed);
        counters
            .bytes
            .store(st.bytes.load(Ordering::Relaxed), Ordering::Relaxed);
    };
    let error = loop {
        match cap.next_into(&mut pkt) {
            Ok(Read::Packet) => {
                feeder.packet(&mut pkt);
                if limits.count.is_some_and(|n| feeder.packets() >= n) {
                    cap.stop_flag().stop();
                }
            }
            Ok(Read::Idle) => {}
            Ok(Read::Stopped) => break None,
            Err(e) => break Some(e),
        }
        let now = Instant::now();
        if now.duration_since(last_flush) >= FLUSH_EVERY {
            last_flush = now;
            feeder.flush();
        }
        if now >= next_tick {
            next_tick = now + TICK_EVERY;
            feeder.tick(wall_now());
            post(&mut cap, feeder);
            if limits.duration.is_some_and(|d| started.elapsed() >= d) {
                cap.stop_flag().stop();
            }
        }
        if feeder.cancelled() {
            cap.stop_flag().stop();
        }
    };
    feeder.finish_input();
    post(&mut cap, feeder);
    error
}
