//! The second reading of a flow whose receiver's overlap rule is unknown (`unknown` in
//! `rules/hosts.toml`): where two undelivered copies of the same bytes differ, the endpoint took
//! one of them and the sensor cannot know which, so it does not bet: the flow's parser reads the
//! first copy ([`Chunk::Split`]'s `first`) and a second parser of the same kind, fed the same
//! bytes from the flow's start, reads the last copy. Before the readings diverge the shadow's
//! output is the main parser's and is dropped; after, its events go out where they differ from
//! what the main parser emitted in the same step (a decoy's service next to the real one). Its
//! counters are never added: they would count every message twice.
//!
//! A second parser from the start rather than a copy of the first at the divergence: parsers
//! hold no clonable state (sessions, handles, hashers of whole uploads), and the cost, a second
//! parse of each flow to such hosts, is paid only for hosts the operator marked unknown.

use super::reassembly::Chunk;
use super::{Direction, StreamParser};
use crate::event::Event;
use crate::sink::Sink;
use crate::time::Ts;

pub struct Shadow {
    parser: Box<dyn StreamParser>,
    sink: Sink,
    diverged: bool,
}

impl Shadow {
    pub fn new(parser: Box<dyn StreamParser>) -> Box<Shadow> {
        Box::new(Shadow {
            parser,
            sink: Sink::new(),
            diverged: false,
        })
    }

    /// The chunk the main parser just read; its events are `sink.events[main_from..]`.
    pub fn feed(
        &mut self,
        ts: Ts,
        dir: Direction,
        chunk: Chunk<'_>,
        main_from: usize,
        sink: &mut Sink,
    ) {
        match chunk {
            Chunk::Data(b) if !b.is_empty() => self.parser.data(ts, dir, b, &mut self.sink),
            Chunk::Data(_) => {}
            Chunk::Gap(n) => self.parser.gap(ts, dir, n, &mut self.sink),
            Chunk::Split { last, .. } => {
                if !self.diverged {
                    self.diverged = true;
                    sink.count("tcp.ambiguous_flows", 1);
                }
                self.parser.data(ts, dir, last, &mut self.sink);
            }
        }
        self.settle(main_from, sink);
    }

    pub fn close(&mut self, ts: Ts, main_from: usize, sink: &mut Sink) {
        self.parser.close(ts, &mut self.sink);
        self.settle(main_from, sink);
    }

    /// Hand on the events only this reading produced in this step; forget the rest.
    fn settle(&mut self, main_from: usize, sink: &mut Sink) {
        let mine = std::mem::take(&mut self.sink.events);
        self.sink.counters.clear();
        self.sink.learned_endpoints.clear();
        if !self.diverged || mine.is_empty() {
            return;
        }
        // Events have no equality of their own; their output form is what must not repeat.
        let key = |e: &Event| serde_json::to_string(e).unwrap_or_default();
        let mut main: Vec<String> = sink
            .events
            .get(main_from..)
            .unwrap_or(&[])
            .iter()
            .map(key)
            .collect();
        for e in mine {
            let k = key(&e);
            match main.iter().position(|m| *m == k) {
                Some(i) => {
                    main.swap_remove(i);
                }
                None => {
                    sink.count("tcp.ambiguous_events", 1);
                    sink.emit(e);
                }
            }
        }
    }
}
