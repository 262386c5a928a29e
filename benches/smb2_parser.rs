//! SMB2 parser throughput: the reassembled TCP payload of lab captures fed through SmbParser
//! (framing, SMB2 state, SHA-256 of uploads, pipe hand-off), reading and ordering excluded.
//! `cargo bench --bench smb2_parser`

#[path = "support/smb_streams.rs"]
mod smb_streams;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::path::PathBuf;

fn capture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("captures/lab")
        .join(name)
}

fn smb2(c: &mut Criterion) {
    let mut g = c.benchmark_group("smb2_parser");
    for name in [
        "a_psexec_default.pcap",
        "k1_psexec_large_upload.pcap",
        "f_benign_admin_upload.pcap",
    ] {
        let segs = smb_streams::in_order(smb_streams::segments(&capture(name)));
        g.throughput(Throughput::Bytes(smb_streams::payload_bytes(&segs)));
        g.bench_function(name, |b| {
            b.iter(|| black_box(smb_streams::run_segments(&segs, 0).0.len()))
        });
    }
    g.finish();
}

criterion_group!(benches, smb2);
criterion_main!(benches);
