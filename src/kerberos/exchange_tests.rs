//! KDC exchanges from hand-built RFC 4120 messages (the shared captures' real ones are checked in
//! tests/it/kerberos.rs): UDP datagrams through the decoder, TCP records cut anywhere.

use super::*;
use crate::capture::{Packet, LINKTYPE_ETHERNET};
use crate::decode::build::{ether, ipv4, udp_checksummed};
use crate::decode::{Decoded, Decoder};
use crate::kerberos::gss::tests::el;

fn int(n: u8) -> Vec<u8> {
    el(0x02, &[n])
}

fn string(s: &str) -> Vec<u8> {
    el(0x1b, s.as_bytes())
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    el(0x30, &parts.concat())
}

/// PrincipalName ::= SEQUENCE { name-type [0] Int32, name-string [1] SEQUENCE OF KerberosString }
fn principal(kind: u8, names: &[&str]) -> Vec<u8> {
    let names: Vec<Vec<u8>> = names.iter().map(|n| string(n)).collect();
    seq(&[el(0xa0, &int(kind)), el(0xa1, &seq(&names))])
}

fn time(s: &str) -> Vec<u8> {
    el(0x18, s.as_bytes())
}

/// AS-REQ (RFC 4120 §5.4.1) for `user@REALM`, krbtgt/REALM, forwardable and renewable.
fn as_req() -> Vec<u8> {
    let body = seq(&[
        // kdc-options: forwardable (1), renewable (8), canonicalize (15)
        el(0xa0, &el(0x03, &[0x00, 0x40, 0x81, 0x00, 0x10])),
        el(0xa1, &principal(1, &["user"])),
        el(0xa2, &string("EXAMPLE.ORG")),
        el(0xa3, &principal(2, &["krbtgt", "EXAMPLE.ORG"])),
        el(0xa5, &time("20370913024805Z")),
        el(0xa7, &int(7)),
        el(0xa8, &seq(&[int(18), int(23)])),
    ]);
    el(
        0x6a,
        &seq(&[el(0xa1, &int(5)), el(0xa2, &int(10)), el(0xa4, &body)]),
    )
}

/// KRB-ERROR (RFC 4120 §5.9.1) KDC_ERR_PREAUTH_REQUIRED (25).
fn krb_error() -> Vec<u8> {
    el(
        0x7e,
        &seq(&[
            el(0xa0, &int(5)),
            el(0xa1, &int(30)),
            el(0xa4, &time("20240102030405Z")),
            el(0xa5, &int(0)),
            el(0xa6, &int(25)),
            el(0xa9, &string("EXAMPLE.ORG")),
            el(0xaa, &principal(2, &["krbtgt", "EXAMPLE.ORG"])),
        ]),
    )
}

const CLIENT: [u8; 4] = [192, 0, 2, 10];
const KDC: [u8; 4] = [192, 0, 2, 88];

fn datagram(from_client: bool, payload: &[u8], corrupt: bool) -> Packet {
    let (src, dst, sp, dp) = if from_client {
        (CLIENT, KDC, 50000, 88)
    } else {
        (KDC, CLIENT, 88, 50000)
    };
    let u = udp_checksummed(src.into(), dst.into(), sp, dp, payload);
    let mut data = ether(0x0800, &ipv4(src, dst, 17, &u));
    if corrupt {
        let last = data.len() - 1;
        data[last] ^= 0xff;
    }
    Packet {
        ts: Ts::from_secs(10),
        linktype: LINKTYPE_ETHERNET,
        orig_len: data.len() as u32,
        data,
    }
}

fn kerberos_events(sink: &mut Sink) -> Vec<Kerberos> {
    sink.events
        .drain(..)
        .filter_map(|e| match e {
            Event::Kerberos(k) => Some(*k),
            _ => None,
        })
        .collect()
}

fn run_udp(pkts: &[Packet]) -> (Vec<Kerberos>, Sink) {
    let (mut d, mut kdc, mut sink) = (Decoder::new(), KdcUdp::default(), Sink::new());
    for p in pkts {
        match d.decode_any(p.frame(), &mut sink) {
            Some(Decoded::Udp(dg)) => kdc.datagram(p.ts, &dg, &mut sink),
            other => panic!("not a UDP datagram: {other:?}"),
        }
    }
    kdc.finish(&mut sink);
    (kerberos_events(&mut sink), sink)
}

#[test]
fn udp_request_and_error_make_one_record() {
    let (ks, _) = run_udp(&[
        datagram(true, &as_req(), false),
        datagram(false, &krb_error(), false),
    ]);
    assert_eq!(ks.len(), 1);
    let k = &ks[0];
    assert_eq!(k.request_type, KrbRequestType::As);
    assert_eq!(k.client.as_deref(), Some("user/EXAMPLE.ORG"));
    assert_eq!(k.service.as_deref(), Some("krbtgt/EXAMPLE.ORG"));
    assert_eq!(
        (k.success, k.error_msg),
        (Some(false), Some(KrbErrorCode(25)))
    );
    assert_eq!((k.forwardable, k.renewable), (Some(true), Some(true)));
    assert_eq!(k.till, Some(Ts::from_secs(2_136_422_885)));
    assert_eq!(k.transport, "udp");
    assert_eq!(
        (k.conn.orig_p, k.conn.resp_p),
        (50000, KERBEROS_PORT),
        "oriented client → KDC"
    );
    let v = serde_json::to_value(Event::Kerberos(Box::new(k.clone()))).unwrap();
    assert_eq!(v["error_msg"], "KDC_ERR_PREAUTH_REQUIRED");
    assert_eq!(v["request_type"], "AS");
}

#[test]
fn udp_request_without_reply_is_logged_at_the_end() {
    let (ks, _) = run_udp(&[datagram(true, &as_req(), false)]);
    assert_eq!(ks.len(), 1);
    assert_eq!(ks[0].success, None);
}

#[test]
fn udp_bad_checksum_from_a_validated_sender_is_dropped() {
    // The KDC shows two good checksums, then its error comes with a bad one: dropped, as the
    // client's stack drops it; the request is logged unanswered.
    let (ks, sink) = run_udp(&[
        datagram(false, &krb_error(), false),
        datagram(false, &krb_error(), false),
        datagram(true, &as_req(), false),
        datagram(false, &krb_error(), true),
    ]);
    assert_eq!(sink.counters.get("anomaly.bad_checksum"), 1);
    assert_eq!(ks.last().unwrap().success, None);
}

#[test]
fn tcp_records_cut_anywhere() {
    let ctx = FlowCtx {
        conn: ConnId {
            orig_h: CLIENT.into(),
            orig_p: 50000,
            resp_h: KDC.into(),
            resp_p: 88,
        },
        uid: Uid(1),
    };
    let mark = |m: Vec<u8>| {
        let mut v = (m.len() as u32).to_be_bytes().to_vec();
        v.extend(m);
        v
    };
    let (req, err) = (mark(as_req()), mark(krb_error()));
    for cut in [1, 3, 4, 5, req.len() - 1] {
        let mut p = KdcTcp::new(ctx);
        let mut sink = Sink::new();
        p.data(Ts(1), Direction::ToServer, &req[..cut], &mut sink);
        p.data(Ts(1), Direction::ToServer, &req[cut..], &mut sink);
        p.data(Ts(2), Direction::ToClient, &err, &mut sink);
        p.close(Ts(3), &mut sink);
        let ks = kerberos_events(&mut sink);
        assert_eq!(ks.len(), 1, "cut at {cut}");
        assert_eq!(ks[0].error_msg, Some(KrbErrorCode(25)));
        assert_eq!(ks[0].transport, "tcp");
    }
    // An oversized record is skipped (cap), and the next one still parses.
    let mut p = KdcTcp::new(ctx);
    let mut sink = Sink::new();
    let big = records::MAX_KERBEROS_MESSAGE_BYTES + 1;
    let mut huge = (big as u32).to_be_bytes().to_vec();
    huge.extend(vec![0u8; big]);
    p.data(Ts(1), Direction::ToServer, &huge[..1000], &mut sink);
    p.data(Ts(1), Direction::ToServer, &huge[1000..], &mut sink);
    p.data(Ts(1), Direction::ToServer, &req, &mut sink);
    p.close(Ts(3), &mut sink);
    assert_eq!(sink.counters.get("MAX_KERBEROS_MESSAGE_BYTES"), 1);
    assert_eq!(kerberos_events(&mut sink).len(), 1);
}
