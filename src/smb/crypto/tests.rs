//! ConnDecryptor end to end: Microsoft's published transform messages, hand-built handshakes, and
//! the lab captures j1 (impacket psexec, SMB 3.1.1 AES-128-CCM) and j3 (smbclient upload, SMB
//! 3.1.1 AES-128-GCM), both decryptable with the lab password.

use super::testutil::*;
use super::*;

fn store(text: &str) -> Option<Arc<KeyStore>> {
    Some(Arc::new(KeyStore::parse(text, "test-keys").unwrap()))
}

#[test]
fn smb300_published_messages_decrypt_with_session_key_line() {
    // The 3.0 example's session key, midstream (no NEGOTIATE seen): the 3.0 derivation applies.
    let mut d = ConnDecryptor::new(store(
        "session:0x0008E40014000011:B4546771B515F766A86735532DD6C4F0\n",
    ));
    let resp = d
        .decrypt(Direction::ToClient, &hex(MS_SMB300_TRANSFORM))
        .unwrap();
    assert_eq!(resp, hex(MS_SMB300_PLAINTEXT));
    let req = d
        .decrypt(Direction::ToServer, &hex(MS_SMB300_TRANSFORM_REQUEST))
        .unwrap();
    assert_eq!(req, hex(MS_SMB300_PLAINTEXT_REQUEST));
    assert!(d.has_keys(0x0008E40014000011));
    let notes = d.take_notes();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].kind, NoteKind::KeysDerived);
    assert!(notes[0].text.contains("0x0008e40014000011") && notes[0].text.contains("AES-128-CCM"));
    assert!(!notes[0].text.to_lowercase().contains("b4546771"));
    // Wrong direction = wrong key: no plaintext.
    assert!(d
        .decrypt(Direction::ToServer, &hex(MS_SMB300_TRANSFORM))
        .is_none());
    assert_eq!(d.take_notes()[0].kind, NoteKind::DecryptFailed);
}

#[test]
fn smb311_published_messages_decrypt_with_cipher_key_line() {
    // The 3.1.1 example gives the keys (its handshake is not published); GCM is found by trial.
    let mut d = ConnDecryptor::new(store(
        "session:100000000025:419FDDF34C1E001909D362AE7FB6AF79:748C50868C90F302962A5C35F5F9A8BF:A2F5E80E5D59103034F32E52F698E5EC\n",
    ));
    let req = d
        .decrypt(Direction::ToServer, &hex(MS_SMB311_TRANSFORM_REQUEST))
        .unwrap();
    assert_eq!(req, hex(MS_SMB311_PLAINTEXT_REQUEST));
    let resp = d
        .decrypt(Direction::ToClient, &hex(MS_SMB311_TRANSFORM_RESPONSE))
        .unwrap();
    assert_eq!(resp, hex(MS_SMB311_PLAINTEXT_RESPONSE));
}

#[test]
fn tampered_transform_and_unknown_sessions_give_nothing() {
    let mut d = ConnDecryptor::new(store(
        "session:0x0008E40014000011:B4546771B515F766A86735532DD6C4F0\n",
    ));
    let good = hex(MS_SMB300_TRANSFORM);
    for at in [4, 20, 36, 44 + 8 - 1, 60] {
        let mut bad = good.clone();
        bad[at] ^= 1;
        assert!(d.decrypt(Direction::ToClient, &bad).is_none(), "byte {at}");
    }
    let mut short = good.clone();
    short.pop();
    assert!(d.decrypt(Direction::ToClient, &short).is_none());
    assert!(d.decrypt(Direction::ToClient, &good[..51]).is_none());
    // No key file: nothing at all, not even notes.
    let mut none = ConnDecryptor::new(None);
    assert!(none.decrypt(Direction::ToClient, &good).is_none());
    none.observe(Direction::ToServer, &hex(MS_NEGOTIATE_REQUEST));
    assert!(none.take_notes().is_empty());
}

/// A session over Microsoft's published 3.1.1 handshake, with a synthetic final response. Its
/// password is unknown, so the session key comes from a `session:` line; what this checks is the
/// preauth bookkeeping: the connection and session chain match the published final hash.
#[test]
fn preauth_chain_through_the_state_machine_matches_published_hash() {
    let sid = 0x0000_1000_0000_0019u64;
    let mut d = ConnDecryptor::new(store(&format!(
        "session:{sid:x}:270E1BA896585EEB7AF3472D3B4C75A7\n"
    )));
    d.observe(Direction::ToServer, &hex(MS_NEGOTIATE_REQUEST));
    d.observe(Direction::ToClient, &hex(MS_NEGOTIATE_RESPONSE));
    assert_eq!(d.negotiated(), (Some(0x0311), Some(Cipher::Aes128Gcm)));
    d.observe(Direction::ToServer, &hex(MS_SESSION_SETUP_REQUEST_1));
    d.observe(Direction::ToClient, &hex(MS_SESSION_SETUP_RESPONSE_1));
    d.observe(Direction::ToServer, &hex(MS_SESSION_SETUP_REQUEST_2));
    let h = d.sessions.get(&sid).and_then(|s| s.hash.clone()).unwrap();
    assert_eq!(h.0.to_vec(), hex(MS_PREAUTH_FINAL));
    // Final response: STATUS_SUCCESS, same session, MessageId 3.
    let mut fin = hex(MS_SESSION_SETUP_RESPONSE_1)[..64 + 8].to_vec();
    fin[8..12].copy_from_slice(&0u32.to_le_bytes());
    fin[24..32].copy_from_slice(&3u64.to_le_bytes());
    fin[64..72].copy_from_slice(&[9, 0, 0, 0, 0x48, 0, 0, 0]);
    d.observe(Direction::ToClient, &fin);
    assert!(d.has_keys(sid));
    let keys = d.sessions.get(&sid).unwrap().keys.clone().unwrap();
    let want = derive_311(
        &hex("270E1BA896585EEB7AF3472D3B4C75A7"),
        &PreauthHash(h.0),
        Some(Cipher::Aes128Gcm),
    );
    assert_eq!((keys.c2s, keys.s2c), (want.c2s, want.s2c));
    assert_eq!(d.take_notes()[0].kind, NoteKind::KeysDerived);
}

#[test]
fn aes256_uses_the_full_session_key_and_l256() {
    let h = PreauthHash([3u8; 64]);
    let full: Vec<u8> = (0..32).collect();
    let k256 = derive_311(&full, &h, Some(Cipher::Aes256Gcm));
    let k128 = derive_311(&full, &h, Some(Cipher::Aes128Gcm));
    assert_eq!((k256.c2s.len(), k128.c2s.len()), (32, 16));
    let mut want = [0u8; 32];
    kdf::sp800_108_hmac_sha256(&full, b"SMBC2SCipherKey\0", &h.0, &mut want);
    assert_eq!(k256.c2s, want.to_vec());
    let mut want = [0u8; 16];
    kdf::sp800_108_hmac_sha256(&full[..16], b"SMBC2SCipherKey\0", &h.0, &mut want);
    assert_eq!(k128.c2s, want.to_vec());
}

// ---- lab captures -------------------------------------------------------------------------

/// Test-only pcap walker: plain Ethernet/IPv4/TCP, port 445, in order and without loss (the lab
/// captures are). Concatenates each direction's payload, cuts NetBIOS messages, and feeds them.
struct LabRun {
    plaintexts: Vec<(Direction, Vec<u8>)>,
    transforms: usize,
    notes: Vec<DecryptNote>,
    /// Notes queued before the first transform message.
    notes_before_transform: usize,
    /// Every NetBIOS message, in order, for the robustness test.
    messages: Vec<(Direction, Vec<u8>)>,
}

fn run_capture(name: &str, keys: Option<Arc<KeyStore>>) -> LabRun {
    let path = format!("{}/captures/lab/{name}", env!("CARGO_MANIFEST_DIR"));
    let data = std::fs::read(&path).unwrap();
    let (_, cap) = pcap_parser::pcap::parse_pcap(&data).unwrap();
    let mut d = ConnDecryptor::new(keys);
    let mut run = LabRun {
        plaintexts: vec![],
        transforms: 0,
        notes: vec![],
        notes_before_transform: 0,
        messages: vec![],
    };
    let mut bufs: [Vec<u8>; 2] = [vec![], vec![]];
    let mut next_seq: [Option<u32>; 2] = [None, None];
    for b in &cap.blocks {
        let f = b.data;
        if f.len() < 14 + 20 || f[12..14] != [0x08, 0x00] || f[14 + 9] != 6 {
            continue;
        }
        let ihl = ((f[14] & 0x0f) as usize) * 4;
        let ip_total = u16::from_be_bytes([f[16], f[17]]) as usize;
        let tcp = &f[14 + ihl..14 + ip_total];
        let (sport, dport) = (
            u16::from_be_bytes([tcp[0], tcp[1]]),
            u16::from_be_bytes([tcp[2], tcp[3]]),
        );
        let dir = match (sport, dport) {
            (_, 445) => Direction::ToServer,
            (445, _) => Direction::ToClient,
            _ => continue,
        };
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        let syn = tcp[13] & 0x02 != 0;
        let payload = &tcp[((tcp[12] >> 4) as usize) * 4..];
        let i = dir.index();
        if syn {
            next_seq[i] = Some(seq.wrapping_add(1));
            continue;
        }
        let expect = *next_seq[i].get_or_insert(seq);
        if payload.is_empty() {
            continue;
        }
        if seq != expect {
            // A retransmission of bytes already taken; the lab captures have no loss.
            assert!(
                seq.wrapping_sub(expect) > u32::MAX / 2,
                "{name}: gap in {dir:?}"
            );
            continue;
        }
        next_seq[i] = Some(seq.wrapping_add(payload.len() as u32));
        bufs[i].extend_from_slice(payload);
        while bufs[i].len() >= 4 {
            let len = u32::from_be_bytes([0, bufs[i][1], bufs[i][2], bufs[i][3]]) as usize;
            if bufs[i].len() < 4 + len {
                break;
            }
            let msg: Vec<u8> = bufs[i][4..4 + len].to_vec();
            bufs[i].drain(..4 + len);
            run.messages.push((dir, msg.clone()));
            match msg.get(..4) {
                Some(b"\xfeSMB") => {
                    let cmd = u16::from_le_bytes([msg[12], msg[13]]);
                    if cmd == Command::Negotiate.code() || cmd == Command::SessionSetup.code() {
                        d.observe(dir, &msg);
                    }
                }
                Some(b"\xfdSMB") => {
                    if run.transforms == 0 {
                        run.notes_before_transform = run.notes.len();
                    }
                    run.transforms += 1;
                    let t = parsed(parse_transform_header(&msg)).unwrap();
                    if let Some(p) = d.decrypt(dir, &msg) {
                        assert_eq!(&p[..4], b"\xfeSMB", "{name}: plaintext is SMB2");
                        assert_eq!(
                            p.len(),
                            t.original_size as usize,
                            "{name}: OriginalMessageSize"
                        );
                        run.plaintexts.push((dir, p));
                    }
                }
                _ => {}
            }
            run.notes.extend(d.take_notes());
        }
    }
    run
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

/// (command, is_response) of each decrypted message.
fn commands(run: &LabRun) -> String {
    run.plaintexts
        .iter()
        .map(|(_, p)| {
            let m = parsed(parse_header(p)).unwrap();
            format!("{}/{}", m.command.code(), m.is_response() as u8)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// The command sequence tshark shows when it decrypts the same capture with the lab password
// (`tshark -o ntlmssp.nt_password:… -Y smb2 -T fields -e smb2.cmd -e smb2.flags.response`,
// NEGOTIATE and SESSION_SETUP left out).
const J1_TSHARK_COMMANDS: &str = "3/0 3/1 5/0 5/1 5/0 5/1 9/0 9/1 8/0 8/1 8/1 9/0 9/1 8/0 8/1 3/0 3/1 5/0 5/1 4/0 4/1 3/0 3/1 5/0 5/1 9/0 9/1 6/0 6/1 4/0 4/1 5/0 5/1 9/0 9/1 8/0 8/1 8/1 9/0 9/1 8/0 8/1 9/0 9/1 8/0 8/1 9/0 9/1 8/0 8/1 3/0 3/1 5/0 5/1 6/0 6/1 4/0 4/1";
const J3_TSHARK_COMMANDS: &str = "3/0 3/1 11/0 11/1 4/0 4/1 3/0 3/1 5/0 5/1 9/0 9/1 6/0 6/1 5/0 5/1 9/0 9/1 6/0 6/1 5/0 5/1 14/0 14/1 14/0 14/1 6/0 6/1 5/0 5/1 16/0 16/1 6/0 6/1 4/0 4/1";

#[test]
fn j1_psexec_decrypts_with_the_lab_password() {
    let run = run_capture(
        "j1_psexec_opportunistic_enc.pcap",
        store("admin:Passw0rd!Lab\n"),
    );
    assert!(run.transforms > 0);
    assert_eq!(
        run.plaintexts.len(),
        run.transforms,
        "every transform message decrypts"
    );
    assert_eq!(commands(&run), J1_TSHARK_COMMANDS);
    let admin = utf16("\\\\192.0.2.20\\ADMIN$");
    let tree_connect_admin = run.plaintexts.iter().any(|(dir, p)| {
        let m = parsed(parse_header(p)).unwrap();
        *dir == Direction::ToServer
            && m.command == Command::TreeConnect
            && p.windows(admin.len()).any(|w| w == admin)
    });
    assert!(
        tree_connect_admin,
        "TREE_CONNECT to \\\\192.0.2.20\\ADMIN$ in the plaintext"
    );
    let derived: Vec<_> = run
        .notes
        .iter()
        .filter(|n| n.kind == NoteKind::KeysDerived)
        .collect();
    assert_eq!(derived.len(), 1, "{:?}", run.notes);
    assert_eq!(derived[0].session_id, Some(0xd33abc15));
    assert!(
        derived[0].text.contains("AES-128-CCM") && derived[0].text.contains("password of admin")
    );
    assert!(!run.notes.iter().any(|n| n.text.contains("Passw0rd")));
}

#[test]
fn j3_upload_decrypts_with_the_lab_password_gcm() {
    // Domain-qualified entry: the client sent WORKGROUP.
    let run = run_capture(
        "j3_benign_upload_enc.pcap",
        store("workgroup\\ADMIN:Passw0rd!Lab\n"),
    );
    assert!(run.transforms > 0);
    assert_eq!(run.plaintexts.len(), run.transforms);
    assert_eq!(commands(&run), J3_TSHARK_COMMANDS);
    let derived: Vec<_> = run
        .notes
        .iter()
        .filter(|n| n.kind == NoteKind::KeysDerived)
        .collect();
    assert_eq!(derived.len(), 1, "{:?}", run.notes);
    assert!(derived[0].text.contains("AES-128-GCM"));
}

#[test]
fn nt_hash_entry_works_like_the_password() {
    let h: String = ntlm::nt_hash("Passw0rd!Lab")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let run = run_capture(
        "j1_psexec_opportunistic_enc.pcap",
        store(&format!("nthash:admin:{h}\n")),
    );
    assert_eq!(run.plaintexts.len(), run.transforms);
}

#[test]
fn wrong_password_gives_no_plaintext_and_a_clear_note() {
    for f in [
        "j1_psexec_opportunistic_enc.pcap",
        "j3_benign_upload_enc.pcap",
    ] {
        let run = run_capture(f, store("admin:Passw0rd!Lax\n"));
        assert!(run.transforms > 0);
        assert!(run.plaintexts.is_empty(), "{f}: no garbage");
        let failed: Vec<_> = run
            .notes
            .iter()
            .filter(|n| n.kind == NoteKind::DeriveFailed)
            .collect();
        assert_eq!(failed.len(), 1, "{f}: {:?}", run.notes);
        assert!(
            failed[0]
                .text
                .starts_with("could not derive keys for session 0x")
                && failed[0]
                    .text
                    .contains("NTProofStr mismatch (wrong password?)"),
            "{}",
            failed[0].text
        );
        assert!(!run.notes.iter().any(|n| n.kind == NoteKind::KeysDerived));
    }
}

#[test]
fn failures_are_reported_once_the_session_turns_out_encrypted() {
    // j1: the server does not demand encryption (impacket asks for it after SESSION_SETUP), so
    // the failure waits for the first transform message; j3: SESSION_FLAG_ENCRYPT_DATA is set
    // in the final response, so it is reported at once.
    let j1 = run_capture("j1_psexec_opportunistic_enc.pcap", store("admin:wrong\n"));
    assert_eq!(j1.notes_before_transform, 0, "{:?}", j1.notes);
    assert_eq!(j1.notes.len(), 1);
    let j3 = run_capture("j3_benign_upload_enc.pcap", store("admin:wrong\n"));
    assert_eq!(j3.notes_before_transform, 1, "{:?}", j3.notes);
    assert_eq!(j3.notes.len(), 1);
}

#[test]
fn notes_become_decrypt_anomalies() {
    let mut d = ConnDecryptor::new(store(
        "session:0x0008E40014000011:B4546771B515F766A86735532DD6C4F0\n",
    ));
    assert!(d
        .decrypt(Direction::ToClient, &hex(MS_SMB300_TRANSFORM))
        .is_some());
    let mut sink = crate::sink::Sink::new();
    d.report_notes(&mut sink, crate::time::Ts(1), None);
    assert_eq!(sink.counters.get("anomaly.decrypt"), 1);
    assert!(d.take_notes().is_empty(), "drained");
}

/// Hostile input: every handshake and transform message of j1, truncated and bit-flipped in many
/// ways, must neither panic nor yield plaintext that does not authenticate.
#[test]
fn mangled_lab_messages_do_not_panic() {
    let clean = run_capture("j1_psexec_opportunistic_enc.pcap", None);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..40 {
        let mut d = ConnDecryptor::new(store("admin:Passw0rd!Lab\n"));
        let mut decrypted = 0;
        for (dir, msg) in &clean.messages {
            let mut m = msg.clone();
            match round % 4 {
                0 => m.truncate((next() as usize) % (m.len() + 1)),
                1 => {
                    for _ in 0..4 {
                        let i = (next() as usize) % m.len();
                        m[i] ^= 1 << (next() % 8);
                    }
                }
                2 => {
                    // Large lengths and offsets where the parsers read them.
                    let i = (next() as usize) % m.len().min(200);
                    m[i] = 0xff;
                }
                _ => {}
            }
            if m.starts_with(b"\xfdSMB") {
                if let Some(p) = d.decrypt(*dir, &m) {
                    // Only an untouched message can authenticate.
                    assert!(msg == &m, "round {round}");
                    assert!(p.starts_with(b"\xfeSMB"));
                    decrypted += 1;
                }
            } else {
                d.observe(*dir, &m);
            }
            let _ = d.take_notes();
        }
        if round % 4 == 3 {
            assert_eq!(
                decrypted, clean.transforms,
                "untouched rounds decrypt everything"
            );
        }
    }
}

#[test]
fn other_users_password_is_not_tried_and_says_so() {
    let run = run_capture(
        "j1_psexec_opportunistic_enc.pcap",
        store("bob:Passw0rd!Lab\n"),
    );
    assert!(run.plaintexts.is_empty());
    assert!(run.notes.iter().any(|n| n.kind == NoteKind::DeriveFailed
        && n.text.contains("no password or NT hash for user 'admin'")));
}

#[test]
fn lab_capture_without_keys_is_silent() {
    let run = run_capture("j1_psexec_opportunistic_enc.pcap", None);
    assert!(run.transforms > 0 && run.plaintexts.is_empty() && run.notes.is_empty());
}

fn ms_final_response(sid: u64, message_id: u64, session_flags: u16) -> Vec<u8> {
    let mut fin = hex(MS_SESSION_SETUP_RESPONSE_1)[..64 + 8].to_vec();
    fin[8..12].copy_from_slice(&0u32.to_le_bytes());
    fin[24..32].copy_from_slice(&message_id.to_le_bytes());
    fin[40..48].copy_from_slice(&sid.to_le_bytes());
    fin[64..72].copy_from_slice(&[9, 0, 0, 0, 0x48, 0, 0, 0]);
    fin[66..68].copy_from_slice(&session_flags.to_le_bytes());
    fin
}

#[test]
fn wrong_password_on_published_handshake_is_reported_at_first_transform() {
    let sid = 0x0000_1000_0000_0019u64;
    let mut d = ConnDecryptor::new(store("SUT311\\Administrator:not-the-password\n"));
    for (dir, m) in [
        (Direction::ToServer, MS_NEGOTIATE_REQUEST),
        (Direction::ToClient, MS_NEGOTIATE_RESPONSE),
        (Direction::ToServer, MS_SESSION_SETUP_REQUEST_1),
        (Direction::ToClient, MS_SESSION_SETUP_RESPONSE_1),
        (Direction::ToServer, MS_SESSION_SETUP_REQUEST_2),
    ] {
        d.observe(dir, &hex(m));
    }
    d.observe(Direction::ToClient, &ms_final_response(sid, 3, 0));
    assert!(
        d.take_notes().is_empty(),
        "nothing to say until the session encrypts"
    );
    let mut t = hex(MS_SMB311_TRANSFORM_REQUEST);
    t[44..52].copy_from_slice(&sid.to_le_bytes());
    assert!(d.decrypt(Direction::ToServer, &t).is_none());
    let notes = d.take_notes();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].kind, NoteKind::DeriveFailed);
    assert_eq!(
        notes[0].text,
        "could not derive keys for session 0x0000100000000019: NTProofStr mismatch (wrong password?) for user 'SUT311\\administrator'"
    );
    // Further messages of that session add nothing.
    assert!(d.decrypt(Direction::ToServer, &t).is_none());
    assert!(d.take_notes().is_empty());
}

#[test]
fn session_and_pending_caps_hold() {
    let mut d = ConnDecryptor::new(store("a:b\n"));
    let req = hex(MS_SESSION_SETUP_REQUEST_1);
    for i in 0..(MAX_PENDING_SETUPS as u64 + 3) {
        let mut m = req.clone();
        m[24..32].copy_from_slice(&(100 + i).to_le_bytes());
        d.observe(Direction::ToServer, &m);
    }
    assert_eq!(d.pending.len(), MAX_PENDING_SETUPS);
    let notes = d.take_notes();
    assert_eq!(notes.len(), 3);
    assert!(notes
        .iter()
        .all(|n| n.kind == NoteKind::CapReached("MAX_PENDING_SETUPS")));
    for sid in 1..(MAX_SESSIONS_PER_CONN as u64 + 10) {
        let mut m = req.clone();
        m[40..48].copy_from_slice(&sid.to_le_bytes());
        d.observe(Direction::ToServer, &m);
    }
    assert_eq!(d.sessions.len(), MAX_SESSIONS_PER_CONN);
    assert!(d
        .take_notes()
        .iter()
        .any(|n| n.kind == NoteKind::CapReached("MAX_SESSIONS_PER_CONN")));
    // Notes are bounded too, with a count of what was dropped.
    for sid in 1000..1200u64 {
        let mut m = req.clone();
        m[40..48].copy_from_slice(&sid.to_le_bytes());
        d.observe(Direction::ToServer, &m);
    }
    let notes = d.take_notes();
    assert_eq!(notes.len(), MAX_PENDING_NOTES + 1);
    assert_eq!(
        notes.last().unwrap().kind,
        NoteKind::CapReached("MAX_PENDING_NOTES")
    );
}

// ---- a whole SMB 3.0 exchange built from the MS-NLMP 4.2.4 NTLMv2 example ------------------

fn smb2_header(cmd: u16, status: u32, response: bool, message_id: u64, sid: u64) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\xfeSMB");
    h[4..6].copy_from_slice(&64u16.to_le_bytes());
    h[8..12].copy_from_slice(&status.to_le_bytes());
    h[12..14].copy_from_slice(&cmd.to_le_bytes());
    h[16..20].copy_from_slice(&(response as u32).to_le_bytes());
    h[24..32].copy_from_slice(&message_id.to_le_bytes());
    h[40..48].copy_from_slice(&sid.to_le_bytes());
    h
}

fn setup_request(message_id: u64, sid: u64, token: &[u8]) -> Vec<u8> {
    let mut m = smb2_header(1, 0, false, message_id, sid);
    let mut body = vec![0u8; 24];
    body[..2].copy_from_slice(&25u16.to_le_bytes());
    body[12..14].copy_from_slice(&88u16.to_le_bytes());
    body[14..16].copy_from_slice(&(token.len() as u16).to_le_bytes());
    m.extend_from_slice(&body);
    m.extend_from_slice(token);
    m
}

fn setup_response(status: u32, message_id: u64, sid: u64, token: &[u8]) -> Vec<u8> {
    let mut m = smb2_header(1, status, true, message_id, sid);
    let mut body = vec![0u8; 8];
    body[..2].copy_from_slice(&9u16.to_le_bytes());
    body[4..6].copy_from_slice(&72u16.to_le_bytes());
    body[6..8].copy_from_slice(&(token.len() as u16).to_le_bytes());
    m.extend_from_slice(&body);
    m.extend_from_slice(token);
    m
}

/// The MS-NLMP 4.2.4 AUTHENTICATE message's key fields (user "User", domain "Domain", password
/// "Password", server challenge 0123456789abcdef, random session key 55*16).
fn nlmp_authenticate() -> Vec<u8> {
    let mut blob = vec![1u8, 1, 0, 0, 0, 0, 0, 0];
    blob.extend_from_slice(&[0u8; 8]);
    blob.extend_from_slice(&[0xaa; 8]);
    blob.extend_from_slice(&[0u8; 4]);
    blob.extend_from_slice(&hex("02000c00"));
    blob.extend_from_slice(&utf16("Domain"));
    blob.extend_from_slice(&hex("01000c00"));
    blob.extend_from_slice(&utf16("Server"));
    blob.extend_from_slice(&[0u8; 8]);
    let mut nt = hex("68cd0ab851e51c96aabc927bebef6a1c");
    nt.extend_from_slice(&blob);
    let payload: [(usize, Vec<u8>); 4] = [
        (28, utf16("Domain")),
        (36, utf16("User")),
        (20, nt),
        (52, hex("c5dad2544fc9799094ce1ce90bc9d03e")),
    ];
    let mut tok = b"NTLMSSP\0".to_vec();
    tok.extend_from_slice(&3u32.to_le_bytes());
    tok.resize(64, 0);
    tok[60..64].copy_from_slice(&0xe28a8233u32.to_le_bytes());
    for (at, bytes) in payload {
        let off = tok.len() as u32;
        tok[at..at + 2].copy_from_slice(&(bytes.len() as u16).to_le_bytes());
        tok[at + 2..at + 4].copy_from_slice(&(bytes.len() as u16).to_le_bytes());
        tok[at + 4..at + 8].copy_from_slice(&off.to_le_bytes());
        tok.extend_from_slice(&bytes);
    }
    // Some SPNEGO-ish bytes before it: the extractor scans for the signature.
    let mut wrapped = hex("a182011030820110a2820108048201");
    wrapped.extend_from_slice(&tok);
    wrapped
}

fn nlmp_challenge() -> Vec<u8> {
    let mut tok = b"NTLMSSP\0".to_vec();
    tok.extend_from_slice(&2u32.to_le_bytes());
    tok.extend_from_slice(&[0u8; 8]);
    tok.extend_from_slice(&0xe28a8233u32.to_le_bytes());
    tok.extend_from_slice(&hex("0123456789abcdef"));
    tok.extend_from_slice(&[0u8; 16]);
    tok
}

fn encrypt_transform(c: Cipher, key: &[u8], sid: u64, nonce: [u8; 16], plain: &[u8]) -> Vec<u8> {
    let mut t = b"\xfdSMB".to_vec();
    t.extend_from_slice(&[0u8; 16]);
    t.extend_from_slice(&nonce);
    t.extend_from_slice(&(plain.len() as u32).to_le_bytes());
    t.extend_from_slice(&[0, 0, 1, 0]);
    t.extend_from_slice(&sid.to_le_bytes());
    let mut body = plain.to_vec();
    let tag = cipher::encrypt_in_place(c, key, &nonce, &t[20..52], &mut body);
    t[4..20].copy_from_slice(&tag);
    t.extend_from_slice(&body);
    t
}

#[test]
fn smb300_session_from_the_ms_nlmp_example_password() {
    let sid = 0x4400_0000_0000_0001u64;
    let mut neg = smb2_header(0, 0, true, 0, 0);
    let mut body = vec![0u8; 64];
    body[..2].copy_from_slice(&65u16.to_le_bytes());
    body[4..6].copy_from_slice(&0x0300u16.to_le_bytes());
    body[24..28].copy_from_slice(&0x40u32.to_le_bytes());
    neg.extend_from_slice(&body);

    for (pw, want_keys) in [("Password", true), ("Passw0rd", false)] {
        let mut d = ConnDecryptor::new(store(&format!("DOMAIN\\user:{pw}\n")));
        d.observe(Direction::ToServer, &smb2_header(0, 0, false, 0, 0));
        d.observe(Direction::ToClient, &neg);
        assert_eq!(d.negotiated(), (Some(0x0300), Some(Cipher::Aes128Ccm)));
        d.observe(
            Direction::ToServer,
            &setup_request(1, 0, b"NTLMSSP\0\x01\0\0\0"),
        );
        d.observe(
            Direction::ToClient,
            &setup_response(STATUS_MORE_PROCESSING_REQUIRED, 1, sid, &nlmp_challenge()),
        );
        d.observe(
            Direction::ToServer,
            &setup_request(2, sid, &nlmp_authenticate()),
        );
        d.observe(Direction::ToClient, &setup_response(0, 2, sid, &[]));
        assert_eq!(d.has_keys(sid), want_keys, "{pw}");

        // The exported key is the example's random session key 55*16; SMB 3.0 keys follow.
        let keys = derive_30(&[0x55; 16]);
        let plain = smb2_header(3, 0, false, 3, sid);
        let t = encrypt_transform(
            Cipher::Aes128Ccm,
            &keys.c2s,
            sid,
            *b"abcdefghijk\0\0\0\0\0",
            &plain,
        );
        let got = d.decrypt(Direction::ToServer, &t);
        let notes = d.take_notes();
        if want_keys {
            assert_eq!(got.as_deref(), Some(&plain[..]));
            assert!(
                notes[0].text.contains("from the password of Domain\\User"),
                "{:?}",
                notes
            );
            // The server's key is the other one.
            assert!(d.decrypt(Direction::ToClient, &t).is_none());
        } else {
            assert!(got.is_none());
            assert!(notes[0].text.contains("NTProofStr mismatch"), "{:?}", notes);
        }
    }
}

#[test]
fn smb311_aes256_session_from_the_ms_nlmp_example_password() {
    let sid = 0x4400_0000_0000_0002u64;
    for (cipher_id, cipher) in [
        (3u16, Cipher::Aes256Ccm),
        (4, Cipher::Aes256Gcm),
        (1, Cipher::Aes128Ccm),
    ] {
        let neg_req = smb2_header(0, 0, false, 0, 0);
        let mut neg = smb2_header(0, 0, true, 0, 0);
        let mut body = vec![0u8; 64];
        body[..2].copy_from_slice(&65u16.to_le_bytes());
        body[4..6].copy_from_slice(&0x0311u16.to_le_bytes());
        body[6..8].copy_from_slice(&2u16.to_le_bytes());
        body[60..64].copy_from_slice(&128u32.to_le_bytes());
        neg.extend_from_slice(&body);
        // PREAUTH_INTEGRITY (type 1, 6 bytes, padded to 8) then ENCRYPTION (type 2).
        neg.extend_from_slice(&hex("0100060000000000010000000100"));
        neg.extend_from_slice(&[0, 0]);
        neg.extend_from_slice(&hex("0200040000000000"));
        neg.extend_from_slice(&1u16.to_le_bytes());
        neg.extend_from_slice(&cipher_id.to_le_bytes());
        let req1 = setup_request(1, 0, b"NTLMSSP\0\x01\0\0\0");
        let resp1 = setup_response(STATUS_MORE_PROCESSING_REQUIRED, 1, sid, &nlmp_challenge());
        let req2 = setup_request(2, sid, &nlmp_authenticate());

        let mut d = ConnDecryptor::new(store("user:Password\n"));
        for (dir, m) in [
            (Direction::ToServer, &neg_req),
            (Direction::ToClient, &neg),
            (Direction::ToServer, &req1),
            (Direction::ToClient, &resp1),
            (Direction::ToServer, &req2),
        ] {
            d.observe(dir, m);
        }
        d.observe(Direction::ToClient, &setup_response(0, 2, sid, &[]));
        assert_eq!(d.negotiated(), (Some(0x0311), Some(cipher)));
        assert!(d.has_keys(sid));

        let mut h = PreauthHash::zero();
        for m in [&neg_req, &neg, &req1, &resp1, &req2] {
            h.update(m);
        }
        // NTLM's session key is 16 bytes: for AES-256 the KDF takes all of it with L = 256.
        let keys = derive_311(&[0x55; 16], &h, Some(cipher));
        assert_eq!(keys.s2c.len(), cipher.key_len());
        let plain = smb2_header(3, 0, true, 3, sid);
        let t = encrypt_transform(cipher, &keys.s2c, sid, [7u8; 16], &plain);
        assert_eq!(
            d.decrypt(Direction::ToClient, &t).as_deref(),
            Some(&plain[..]),
            "{}",
            cipher.name()
        );
        assert!(d.take_notes()[0].text.contains(cipher.name()));
    }
}
