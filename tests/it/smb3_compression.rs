//! SMB 3.1.1 compression (MS-SMB2 2.2.42, MS-XCA): the lab's PsExec capture with every client
//! SMB2 message re-encoded as a compression transform (unchained LZ77, LZNT1 and LZ77+Huffman in
//! turn, and a chained NONE + Pattern_V1 form) must give the same technique alert, with the same
//! facts (service, binary path, upload name / size / SHA-256), and the same svcctl calls as the
//! cleartext: an attacker's client cannot hide the upload or CreateService by compressing them.
//!
//! The encoders here are deliberately simple and independent of the sensor's decoders: LZ77
//! literals plus runs (offset-1 matches, every length form of MS-XCA 2.3), the `lznt1` crate's
//! compressor, and an LZ77+Huffman stream with a flat 9-bit code (MS-XCA 2.1).

use crate::common::reshape::*;
use psexec_sensor::event::Event;
use psexec_sensor::smb::smb2::compression::test_encoders::huffman_flat9;
use std::path::PathBuf;

fn lab(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("captures/lab")
        .join(name)
}

/// Plain LZ77 (MS-XCA 2.3): literals, and runs of the previous byte as offset-1 matches.
fn lz77(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut flag_at = 0usize;
    let mut flags = 0u32;
    let mut nflags = 0u32;
    let mut nibble_at: Option<usize> = None;
    let push_flag =
        |out: &mut Vec<u8>, flag_at: &mut usize, flags: &mut u32, n: &mut u32, bit: bool| {
            if *n == 32 {
                out[*flag_at..*flag_at + 4].copy_from_slice(&flags.to_le_bytes());
                *flag_at = out.len();
                out.extend_from_slice(&[0; 4]);
                *flags = 0;
                *n = 0;
            }
            if bit {
                *flags |= 1 << (31 - *n);
            }
            *n += 1;
        };
    out.extend_from_slice(&[0; 4]);
    let mut i = 0;
    while i < data.len() {
        let mut run = 0;
        if i > 0 {
            while i + run < data.len() && data[i + run] == data[i - 1] && run < 300_000 {
                run += 1;
            }
        }
        if run < 3 {
            push_flag(&mut out, &mut flag_at, &mut flags, &mut nflags, false);
            out.push(data[i]);
            i += 1;
            continue;
        }
        push_flag(&mut out, &mut flag_at, &mut flags, &mut nflags, true);
        let m = run - 3; // offset 1: high 13 bits of the match word are 0
        if m < 7 {
            out.extend_from_slice(&(m as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&7u16.to_le_bytes());
            let m2 = m - 7;
            let nib = m2.min(15) as u8;
            match nibble_at.take() {
                Some(at) => out[at] |= nib << 4,
                None => {
                    nibble_at = Some(out.len());
                    out.push(nib);
                }
            }
            if m2 >= 15 {
                let m3 = m2 - 15;
                if m3 < 255 {
                    out.push(m3 as u8);
                } else {
                    out.push(255);
                    if m < 65536 {
                        out.extend_from_slice(&(m as u16).to_le_bytes());
                    } else {
                        out.extend_from_slice(&0u16.to_le_bytes());
                        out.extend_from_slice(&(m as u32).to_le_bytes());
                    }
                }
            }
        }
        i += run;
    }
    // Unused flag bits are 1 (MS-XCA 2.3: the decoder then meets the end of input).
    while nflags < 32 {
        flags |= 1 << (31 - nflags);
        nflags += 1;
    }
    out[flag_at..flag_at + 4].copy_from_slice(&flags.to_le_bytes());
    out
}

/// LZ77+Huffman, literals only, with the flat 9-bit code (one block: at most 64 KiB).
fn huffman_literals(data: &[u8]) -> Vec<u8> {
    assert!(data.len() <= 65536);
    let symbols: Vec<_> = data.iter().map(|&b| (u16::from(b), None)).collect();
    huffman_flat9(&symbols)
}

fn unchained(algorithm: u16, original: &[u8], compressed: &[u8]) -> Vec<u8> {
    let mut m = b"\xfcSMB".to_vec();
    m.extend_from_slice(&(original.len() as u32).to_le_bytes());
    m.extend_from_slice(&algorithm.to_le_bytes());
    m.extend_from_slice(&0u16.to_le_bytes()); // flags: unchained
    m.extend_from_slice(&0u32.to_le_bytes()); // offset: nothing left uncompressed
    m.extend_from_slice(compressed);
    m
}

/// Chained: the SMB2 header as NONE, then the body with runs of one byte as Pattern_V1.
fn chained_pattern(original: &[u8]) -> Vec<u8> {
    let mut m = b"\xfcSMB".to_vec();
    m.extend_from_slice(&(original.len() as u32).to_le_bytes());
    let payload = |m: &mut Vec<u8>, alg: u16, flags: u16, data: &[u8]| {
        m.extend_from_slice(&alg.to_le_bytes());
        m.extend_from_slice(&flags.to_le_bytes());
        m.extend_from_slice(&(data.len() as u32).to_le_bytes());
        m.extend_from_slice(data);
    };
    payload(&mut m, 0, 1, &original[..64]);
    let body = &original[64..];
    let mut i = 0;
    while i < body.len() {
        let mut run = 1;
        while i + run < body.len() && body[i + run] == body[i] {
            run += 1;
        }
        if run >= 16 {
            let mut p = vec![body[i], 0, 0, 0];
            p.extend_from_slice(&(run as u32).to_le_bytes());
            payload(&mut m, 4, 0, &p);
            i += run;
        } else {
            let mut j = i;
            while j < body.len()
                && !(j + 16 <= body.len() && body[j..j + 16].iter().all(|&b| b == body[j]))
            {
                j += 1;
            }
            payload(&mut m, 0, 0, &body[i..j]);
            i = j;
        }
    }
    m
}

#[test]
fn compressed_upload_and_create_service_give_the_cleartext_alert() {
    let segs = read_segments(&lab("a_psexec_default.pcap"));
    let clear = run(&frames(&segs, Net::V4));
    let want = facts(&clear.alerts);
    assert!(
        want.iter()
            .any(|f| f.service_name.is_some() && !f.uploads.is_empty()),
        "the cleartext alert names a service and an upload: {want:?}"
    );
    let want_calls = service_calls(&clear.events);
    assert!(!want_calls.is_empty());

    let (mut conns, other) = smb_conns(&segs);
    let mut per_form = [0usize; 4];
    let mut i = 0usize;
    for c in &mut conns {
        for m in c
            .msgs
            .iter_mut()
            .filter(|m| m.to_server && is_smb2(&m.body))
        {
            let original = std::mem::take(&mut m.body);
            let mut form = i % 4;
            if form == 2 && original.len() > 65536 {
                form = 3; // the flat-code Huffman encoder writes one 64 KiB block
            }
            m.body = match form {
                0 => unchained(2, &original, &lz77(&original)),
                1 => {
                    let mut z = Vec::new();
                    lznt1::compress(&original, &mut z);
                    unchained(1, &original, &z)
                }
                2 => unchained(3, &original, &huffman_literals(&original)),
                _ => chained_pattern(&original),
            };
            per_form[form] += 1;
            i += 1;
        }
    }
    assert!(
        per_form.iter().all(|&n| n > 0),
        "every form used: {per_form:?}"
    );
    let o = run(&frames(&rebuild(&conns, &other, 1460), Net::V4));
    assert_eq!(facts(&o.alerts), want);
    assert_eq!(service_calls(&o.events), want_calls);
    // The sensor says it read them: compressed, readable.
    assert!(
        o.events
            .iter()
            .any(|e| matches!(e, Event::SmbVisibility(v) if v.kind == "compressed")),
        "a compressed visibility record"
    );
    assert!(
        !o.events
            .iter()
            .any(|e| matches!(e, Event::SmbOpaque(x) if x.kind == "compressed")),
        "no compressed message left unread"
    );
}
