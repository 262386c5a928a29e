//! Matcher behaviour on hand-made event sequences: ordering, window edges, folding, benign work,
//! stub encryption, handle chains, visibility, sweeps, summaries.

use crate::detect_util::*;
use psexec_sensor::detect::{Detector, Rules};
use psexec_sensor::event::alert::{Alert, Basis, Severity, Technique};
use psexec_sensor::event::*;

#[test]
fn impacket_psexec_lab_sequence_is_one_attributed_alert() {
    let mut s = Seq::new(ATT, VIC);
    impacket_psexec(&mut s, 0.0);
    let alerts = run(&s.done());
    let t = one(&alerts);
    assert_eq!(t.technique, Technique::ServiceCreate);
    assert_eq!(t.src_ip, ip(ATT));
    assert_eq!(t.dst_ip, ip(VIC));
    assert_eq!(t.service_name.as_deref(), Some("nUwj"));
    assert_eq!(t.binary_path.as_deref(), Some("%systemroot%\\zeCGSXch.exe"));
    assert_eq!(t.tool, "impacket-psexec");
    assert_eq!(t.user.as_deref(), Some("admin"));
    assert_eq!(t.share.as_deref(), Some("ADMIN$"));
    assert_eq!(t.uploads.len(), 1);
    assert_eq!(t.uploads[0].name, "zeCGSXch.exe");
    assert_eq!(t.uploads[0].size, 56320);
    assert_eq!(t.uploads[0].sha256.as_deref(), Some(SHA));
    assert!(t.uploads[0].referenced);
    assert!(t.failed, "Samba faults CreateServiceW; still an attack");
    assert_eq!(t.count, 1);
    assert!(
        t.severity >= Severity::High,
        "{:?} {}",
        t.severity,
        t.confidence
    );
    assert!(
        t.attack.contains(&"T1570")
            && t.attack.contains(&"T1569.002")
            && t.attack.contains(&"T1021.002")
    );
    assert!(t.pipes.iter().any(|p| p == "svcctl"));
    assert!(
        t.reason.contains("uploaded ADMIN$\\zeCGSXch.exe"),
        "{}",
        t.reason
    );
    assert!(
        t.evidence.iter().any(|e| e.log == "smb_files")
            && t.evidence.iter().any(|e| e.log == "dce_rpc")
    );
    assert!(
        t.ts < t.ts_end,
        "ts is the first evidence (tree connect), ts_end the create"
    );
    // the upload was claimed by the attack: no separate T1570 signal
    assert!(signals(&alerts).is_empty(), "{:?}", signals(&alerts));
    // one host summary for the source
    let hs: Vec<_> = alerts
        .iter()
        .filter(|a| matches!(a, Alert::HostSummary(_)))
        .collect();
    assert_eq!(hs.len(), 1);
    let json = serde_json::to_value(&alerts[0]).unwrap();
    assert_eq!(json["kind"], "technique");
    assert_eq!(json["technique"], "service-create");
    assert_eq!(json["src_ip"], ATT);
    let human = alerts[0].human();
    assert!(
        human.contains("impacket-psexec")
            && human.contains(SHA)
            && human.contains("nUwj")
            && human.contains("%systemroot%\\zeCGSXch.exe"),
        "{human}"
    );
}

#[test]
fn upload_then_create_beats_create_then_upload() {
    let mut a = Seq::new(ATT, VIC);
    a.tree(0.0, "ADMIN$")
        .write(1.0, "ADMIN$", "payload.exe", 1000, true, None)
        .create(2.0, "Updater", "%SystemRoot%\\payload.exe", None, "ok");
    let mut b = Seq::new(ATT, VIC);
    b.tree(0.0, "ADMIN$")
        .create(1.0, "Updater", "%SystemRoot%\\payload.exe", None, "ok")
        .write(2.0, "ADMIN$", "payload.exe", 1000, true, None);
    let ra = run(&a.done());
    let rb = run(&b.done());
    let (ta, tb) = (one(&ra), one(&rb));
    assert!(ta.uploads[0].referenced && tb.uploads[0].referenced);
    assert!(
        ta.confidence > tb.confidence,
        "ordered {} vs reversed {}",
        ta.confidence,
        tb.confidence
    );
    assert!(ta.reason.contains("uploaded"));
    assert!(tb.reason.contains("right after"), "{}", tb.reason);
}

#[test]
fn window_edges_evidence_just_inside_and_just_outside() {
    // Upload exactly `window` before the create: inside.
    let mut a = Seq::new(ATT, VIC);
    a.write(0.0, "ADMIN$", "svc.exe", 10, true, None).create(
        600.0,
        "abcd",
        "%windir%\\svc.exe",
        None,
        "ok",
    );
    let ra = run(&a.done());
    assert!(one(&ra).uploads.first().is_some_and(|u| u.referenced));
    assert!(signals(&ra).is_empty());
    // One millisecond more: outside. The upload becomes a T1570 signal on its own.
    let mut b = Seq::new(ATT, VIC);
    b.write(0.0, "ADMIN$", "svc.exe", 10, true, None).create(
        600.001,
        "abcd",
        "%windir%\\svc.exe",
        None,
        "ok",
    );
    let rb = run(&b.done());
    assert!(one(&rb).uploads.is_empty());
    let sig = signals(&rb);
    assert_eq!(sig.len(), 1);
    assert_eq!(sig[0].signal, "admin-share-executable");
    // A start exactly `window` after the create still belongs to it; later it does not.
    let mut c = Seq::new(ATT, VIC);
    c.create(0.0, "abcd", "%windir%\\svc.exe", Some("h1"), "ok")
        .start(600.0, "h1");
    assert!(one(&run(&c.done())).started);
    let mut d = Seq::new(ATT, VIC);
    d.create(0.0, "abcd", "%windir%\\svc.exe", Some("h1"), "ok")
        .pipe(600.001, "x")
        .start(600.002, "h1");
    let rd = run(&d.done());
    assert!(
        !one(&rd).started,
        "the instance closed one window after its last activity"
    );
    assert!(
        signals(&rd).is_empty(),
        "a late start of the attack's own service is not an 'existing service' signal"
    );
}

#[test]
fn sliding_not_tumbling() {
    // Upload at 590 s and create at 610 s straddle any 600 s bucket boundary; still linked.
    let mut a = Seq::new(ATT, VIC);
    a.write(590.0, "C$", "Windows\\x1.exe", 10, true, None)
        .create(610.0, "qwer", "C:\\Windows\\x1.exe", None, "ok");
    assert!(one(&run(&a.done())).uploads[0].referenced);
}

fn smbexec_create(s: &mut Seq, t: f64, cmd: &str) {
    let path = format!(
        "%COMSPEC% /Q /c echo {cmd} ^> \\\\%COMPUTERNAME%\\C$\\__output_AbCdEfGh 2^>^&1 > %SYSTEMROOT%\\QwErTyUi.bat & %COMSPEC% /Q /c %SYSTEMROOT%\\QwErTyUi.bat & del %SYSTEMROOT%\\QwErTyUi.bat"
    );
    s.create(t, "BqWfXzLk", &path, Some(&format!("h{t}")), "ok")
        .start(t + 0.1, &format!("h{t}"))
        .delete(t + 0.2, &format!("h{t}"));
}

#[test]
fn smbexec_repeats_fold_into_one_alert_with_count() {
    let mut s = Seq::new(ATT, VIC);
    s.auth(0.0, "admin", "LAB")
        .tree(0.0, "IPC$")
        .pipe(0.1, "svcctl")
        .open_scm(0.2, "DUMMY");
    for (i, cmd) in ["whoami", "ipconfig", "dir"].iter().enumerate() {
        smbexec_create(&mut s, 1.0 + 30.0 * i as f64, cmd);
    }
    let alerts = run(&s.done());
    let t = one(&alerts);
    assert_eq!(t.count, 3);
    assert_eq!(t.calls.len(), 3);
    assert!(t.calls[2]
        .binary_path
        .as_deref()
        .unwrap()
        .contains("echo dir"));
    assert_eq!(t.tool, "impacket-smbexec");
    assert!(t.started && t.deleted);
    assert!(t.uploads.is_empty());
    assert!(t.reason.contains("command interpreter"), "{}", t.reason);
    assert!(t.reason.contains("3 times"));
    assert!(
        signals(&alerts).is_empty(),
        "starts of the created service are not 'existing service' signals"
    );
}

#[test]
fn repeats_beyond_the_window_are_separate_instances() {
    let mut s = Seq::new(ATT, VIC);
    smbexec_create(&mut s, 0.0, "whoami");
    smbexec_create(&mut s, 700.0, "dir");
    assert_eq!(techniques(&run(&s.done())).len(), 2);
}

#[test]
fn different_targets_are_different_instances() {
    let mut a = Seq::new(ATT, VIC);
    smbexec_create(&mut a, 0.0, "whoami");
    let mut b = Seq::new(ATT, "192.0.2.21");
    smbexec_create(&mut b, 1.0, "whoami");
    let mut ev = a.done();
    ev.extend(b.done());
    let alerts = run(&ev);
    let t = techniques(&alerts);
    assert_eq!(t.len(), 2);
    let Alert::HostSummary(h) = alerts.last().unwrap() else {
        panic!("summary last")
    };
    assert_eq!(h.attacks, 2);
    assert_eq!(h.targets.len(), 2);
    assert!(h.is_final);
}

#[test]
fn benign_admin_share_copy_is_a_signal_not_a_technique() {
    // smbclient //victim/ADMIN$ put tool.exe, put notes.txt, ls (lab f)
    let mut s = Seq::new("192.0.2.11", VIC);
    s.auth(0.0, "admin", "LAB")
        .tree(0.1, "ADMIN$")
        .write(0.2, "ADMIN$", "tool.exe", 56320, true, Some(SHA))
        .write(0.3, "ADMIN$", "notes.txt", 120, false, None);
    let alerts = run(&s.done());
    assert!(techniques(&alerts).is_empty());
    let sig = signals(&alerts);
    assert_eq!(sig.len(), 1, "{sig:?}");
    assert_eq!(sig[0].signal, "admin-share-executable");
    assert_eq!(sig[0].upload.as_ref().unwrap().name, "tool.exe");
    assert!(sig[0].attack.contains(&"T1570"));
    assert_eq!(sig[0].user.as_deref(), Some("admin"));
}

#[test]
fn services_py_list_query_start_existing_is_not_a_technique() {
    // services.py list ; status -name RemoteRegistry ; config -name Spooler ; start -name Spooler
    let mut s = Seq::new("192.0.2.11", VIC);
    s.tree(0.0, "IPC$")
        .pipe(0.1, "svcctl")
        .open_scm(0.2, "DUMMY")
        .svc(
            0.3,
            14,
            "EnumServicesStatusW",
            DceArgs {
                return_code: Some(0xea),
                ..Default::default()
            },
            "ok",
        )
        .svc(
            0.4,
            14,
            "EnumServicesStatusW",
            DceArgs {
                return_code: Some(0),
                ..Default::default()
            },
            "ok",
        )
        .open_service(1.0, "RemoteRegistry", "h-rr", 0)
        .svc(
            1.1,
            6,
            "QueryServiceStatus",
            DceArgs {
                handle: Some("h-rr".into()),
                ..Default::default()
            },
            "ok",
        )
        .open_service(2.0, "Spooler", "h-sp", 0)
        .svc(
            2.1,
            17,
            "QueryServiceConfigW",
            DceArgs {
                handle: Some("h-sp".into()),
                return_code: Some(0x7a),
                ..Default::default()
            },
            "ok",
        )
        .svc(
            2.2,
            17,
            "QueryServiceConfigW",
            DceArgs {
                handle: Some("h-sp".into()),
                return_code: Some(0),
                ..Default::default()
            },
            "ok",
        );
    let quiet = run(&s.done());
    assert!(
        quiet.is_empty(),
        "read-only svcctl work raises nothing: {quiet:?}"
    );
    s.start(3.0, "h-sp");
    let alerts = run(&{
        let mut v = Seq::new("192.0.2.11", VIC);
        v.tree(0.0, "IPC$")
            .open_scm(0.2, "DUMMY")
            .open_service(2.0, "Spooler", "h-sp", 0)
            .start(3.0, "h-sp");
        v.done()
    });
    assert!(techniques(&alerts).is_empty());
    let sig = signals(&alerts);
    assert_eq!(sig.len(), 1);
    assert_eq!(sig[0].signal, "service-control");
    assert_eq!(sig[0].service_name.as_deref(), Some("Spooler"));
}

#[test]
fn atexec_against_samba_without_task_scheduler_is_quiet() {
    let mut s = Seq::new(ATT, VIC);
    s.tree(0.0, "IPC$");
    s.events.push(Event::SmbFiles(SmbFiles {
        conn: conn(0.1, ATT, VIC, 445),
        action: Some(FileAction::PipeOpen),
        share: "IPC$".into(),
        name: "atsvc".into(),
        status: "STATUS_OBJECT_NAME_NOT_FOUND".into(),
        ..Default::default()
    }));
    assert!(techniques(&run(&s.done())).is_empty());
}

#[test]
fn stub_encrypted_sequence_alerts_at_lower_confidence_and_says_so() {
    let enc = |s: &mut Seq, t: f64, op: u16, name: &str| {
        s.call_on(t, "tcp", "svcctl", op, name, DceArgs::default(), "ok", true);
    };
    let mut s = Seq::new("172.16.66.1", "172.16.66.36");
    enc(&mut s, 0.0, 64, "ROpenSCManager2");
    enc(&mut s, 0.1, 16, "OpenServiceW");
    enc(&mut s, 0.2, 45, "CreateServiceWOW64W");
    enc(&mut s, 0.3, 19, "StartServiceW");
    let alerts = run(&s.done());
    let t = one(&alerts);
    assert_eq!(t.basis, Basis::StubEncrypted);
    assert_eq!(t.technique, Technique::ServiceCreate);
    assert!(
        t.started,
        "stub-encrypted start after create belongs to the open instance"
    );
    assert!(t.reason.contains("stub encrypted"), "{}", t.reason);
    assert!(t.service_name.is_none());
    let mut c = Seq::new("172.16.66.1", "172.16.66.36");
    c.create(0.2, "Abc", "C:\\x\\y.exe", Some("h"), "ok")
        .start(0.3, "h");
    let clear = run(&c.done());
    assert!(one(&clear).confidence > t.confidence);
    assert!(t.severity >= Severity::Medium);
}

#[test]
fn stub_encrypted_psexec_with_visible_pipes_is_attributed() {
    let mut s = Seq::new("172.16.66.1", "172.16.66.36");
    s.tree(0.0, "ADMIN$")
        .write(0.1, "ADMIN$", "PSEXESVC.exe", 380000, true, None);
    s.call_on(
        0.2,
        "tcp",
        "svcctl",
        45,
        "CreateServiceWOW64W",
        DceArgs::default(),
        "ok",
        true,
    );
    s.call_on(
        0.3,
        "tcp",
        "svcctl",
        19,
        "StartServiceW",
        DceArgs::default(),
        "ok",
        true,
    );
    s.tree(0.4, "IPC$")
        .pipe(0.5, "PSEXESVC")
        .pipe(0.6, "PSEXESVC-02694W-WIN10-13272-stdin");
    let alerts = run(&s.done());
    let t = one(&alerts);
    assert_eq!(t.tool, "sysinternals-psexec");
    assert_eq!(t.basis, Basis::StubEncrypted);
    assert_eq!(t.uploads[0].name, "PSEXESVC.exe");
    assert!(t
        .pipes
        .iter()
        .any(|p| p == "PSEXESVC-02694W-WIN10-13272-stdin"));
}

#[test]
fn handle_chain_links_start_and_delete_to_the_created_service() {
    let mut s = Seq::new(ATT, VIC);
    s.open_scm(0.0, "VICTIM")
        .create(
            1.0,
            "PSEXESVC",
            "%SystemRoot%\\PSEXESVC.exe",
            Some("hc"),
            "ok",
        )
        .start(2.0, "hc")
        .open_service(50.0, "PSEXESVC", "ho", 0)
        .delete(50.1, "ho");
    let alerts = run(&s.done());
    let t = one(&alerts);
    assert!(t.started && t.deleted);
    assert!(signals(&alerts).is_empty());
}

#[test]
fn modify_existing_service_is_service_modify() {
    let mut s = Seq::new(ATT, VIC);
    s.tree(0.0, "IPC$")
        .open_scm(0.1, "X")
        .open_service(0.2, "XblAuthManager", "hx", 0)
        .svc(
            0.3,
            11,
            "ChangeServiceConfigW",
            DceArgs {
                handle: Some("hx".into()),
                binary_path: Some("cmd.exe /c calc".into()),
                return_code: Some(0),
                ..Default::default()
            },
            "ok",
        )
        .start(0.4, "hx")
        .svc(
            0.5,
            11,
            "ChangeServiceConfigW",
            DceArgs {
                handle: Some("hx".into()),
                binary_path: Some("C:\\Windows\\system32\\svchost.exe -k netsvcs".into()),
                return_code: Some(0),
                ..Default::default()
            },
            "ok",
        );
    let alerts = run(&s.done());
    let t = one(&alerts);
    assert_eq!(t.technique, Technique::ServiceModify);
    assert_eq!(
        t.service_name.as_deref(),
        Some("XblAuthManager"),
        "name through the OpenService handle"
    );
    assert_eq!(t.count, 2);
    assert!(t.started);
    assert_eq!(t.tool, "scshell");
}

#[test]
fn encrypted_smb3_session_is_a_visibility_record() {
    let mut s = Seq::new("192.0.2.13", VIC);
    s.auth(0.0, "admin", "WORKGROUP");
    s.events.push(Event::SmbVisibility(SmbVisibility {
        conn: conn(0.1, "192.0.2.13", VIC, 445),
        session_id: 7,
        kind: "encrypted",
        state: "start",
        cipher: Some("AES-128-GCM".into()),
        dialect: Some("SMB 3.1.1".into()),
        user: None,
        domain: None,
        workstation: None,
        messages: 1,
        bytes: 100,
        decrypted: false,
    }));
    let mut end = match &s.events[1] {
        Event::SmbVisibility(v) => v.clone(),
        _ => unreachable!(),
    };
    end.state = "end";
    end.conn.ts = ts(9.0);
    s.events.push(Event::SmbVisibility(end));
    let alerts = run(&s.done());
    assert!(techniques(&alerts).is_empty());
    let v: Vec<_> = alerts
        .iter()
        .filter_map(|a| {
            if let Alert::Visibility(v) = a {
                Some(v)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].user.as_deref(), Some("admin"));
    assert_eq!(v[0].src_ip, ip("192.0.2.13"));
    assert_eq!(v[0].dst_ip, ip(VIC));
    assert_eq!(v[0].cipher.as_deref(), Some("AES-128-GCM"));
    assert_eq!(v[0].visibility, "smb3-encrypted");
    let Alert::HostSummary(h) = alerts.last().unwrap() else {
        panic!("summary")
    };
    assert_eq!((h.attacks, h.unreadable_sessions), (0, 1));
    let json = serde_json::to_value(
        alerts
            .iter()
            .find(|a| matches!(a, Alert::Visibility(_)))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json["kind"], "visibility");
    // decrypted with supplied keys: the sensor sees inside, no visibility record
    let mut d = Seq::new("192.0.2.13", VIC);
    d.events.push(Event::SmbVisibility(SmbVisibility {
        conn: conn(0.1, "192.0.2.13", VIC, 445),
        session_id: 7,
        kind: "encrypted",
        state: "start",
        cipher: None,
        dialect: None,
        user: None,
        domain: None,
        workstation: None,
        messages: 1,
        bytes: 100,
        decrypted: true,
    }));
    assert!(run(&d.done()).is_empty());
}

#[test]
fn many_admin_share_connects_from_one_source_is_a_sweep_signal() {
    let mut ev = vec![];
    for i in 0..6 {
        let mut s = Seq::new(ATT, &format!("10.0.0.{}", i + 1));
        s.tree(i as f64 * 10.0, "C$");
        ev.extend(s.done());
    }
    let alerts = run(&ev);
    let sig = signals(&alerts);
    assert_eq!(
        sig.len(),
        1,
        "one sweep signal, not one per connect: {sig:?}"
    );
    assert_eq!(sig[0].signal, "admin-share-sweep");
    assert_eq!(sig[0].targets.len(), 5);
    // IPC$ does not count
    let mut ev = vec![];
    for i in 0..6 {
        let mut s = Seq::new(ATT, &format!("10.0.0.{}", i + 1));
        s.tree(i as f64, "IPC$");
        ev.extend(s.done());
    }
    assert!(run(&ev).is_empty());
}

#[test]
fn alerts_close_when_packet_time_passes_the_window_and_tick_summarises() {
    let mut s = Seq::new(ATT, VIC);
    impacket_psexec(&mut s, 0.0);
    let mut d = Detector::new(Rules::embedded());
    let mut out = vec![];
    for e in s.done() {
        d.on_event(&e, &mut out);
    }
    assert!(out.is_empty(), "instance still open");
    d.tick(ts(100.0), &mut out);
    assert!(out.is_empty());
    d.tick(ts(601.0), &mut out);
    assert_eq!(techniques(&out).len(), 1, "closed once the window passed");
    d.tick(ts(3602.0), &mut out);
    d.tick(ts(7300.0), &mut out);
    assert!(out
        .iter()
        .any(|a| matches!(a, Alert::HostSummary(h) if !h.is_final)));
    let before = techniques(&out).len();
    d.finish(&mut out);
    assert_eq!(techniques(&out).len(), before, "no duplicate at finish");
}

#[test]
fn live_mode_writes_the_alert_once_the_attack_is_quiet() {
    let mut s = Seq::new(ATT, VIC);
    impacket_psexec(&mut s, 0.0);
    let mut d = Detector::new(Rules::embedded());
    d.close_when_quiet(60);
    let mut out = vec![];
    for e in s.done() {
        d.on_event(&e, &mut out);
    }
    d.tick(ts(30.0), &mut out);
    assert!(
        techniques(&out).is_empty(),
        "still active within the quiet period"
    );
    d.tick(ts(100.0), &mut out);
    assert_eq!(
        techniques(&out).len(),
        1,
        "written 60 s after the last activity, not 600 s"
    );
    d.finish(&mut out);
    assert_eq!(techniques(&out).len(), 1, "no duplicate at finish");
}

#[test]
fn task_registration_is_task_create() {
    let mut s = Seq::new("192.168.1.41", "192.168.1.46");
    s.tree(0.0, "IPC$").pipe(0.1, "atsvc").call_on(
        0.2,
        "smb_pipe",
        "ITaskSchedulerService",
        1,
        "SchRpcRegisterTask",
        DceArgs {
            task_path: Some("\\qWeRtYuI".into()),
            command: Some("cmd.exe".into()),
            command_arguments: Some("/C whoami > %windir%\\Temp\\aBcDeFgH.tmp 2>&1".into()),
            ..Default::default()
        },
        "ok",
        false,
    );
    s.call_on(
        0.3,
        "smb_pipe",
        "ITaskSchedulerService",
        12,
        "SchRpcRun",
        DceArgs::default(),
        "ok",
        false,
    );
    let alerts = run(&s.done());
    let t = one(&alerts);
    assert_eq!(t.technique, Technique::TaskCreate);
    assert!(t.attack.contains(&"T1053.005"));
    assert_eq!(t.task_path.as_deref(), Some("\\qWeRtYuI"));
    assert!(t.started);
    assert_eq!(t.tool, "impacket-atexec");
}

#[test]
fn late_write_summary_is_ordered_by_its_first_write_time() {
    // The FILE_WRITE summary is emitted when the handle closes, possibly after the create call;
    // its first write was before the create, so this is still upload-then-create.
    let mut d = Detector::new(Rules::embedded());
    let mut out = vec![];
    let mut s = Seq::new(ATT, VIC);
    s.create(2.0, "Updater", "%SystemRoot%\\payload.exe", None, "ok");
    for e in s.done() {
        d.on_event(&e, &mut out);
    }
    let mut w = Seq::new(ATT, VIC);
    w.write(1.0, "ADMIN$", "payload.exe", 1000, true, None);
    let Event::SmbFiles(mut f) = w.done().remove(0) else {
        panic!()
    };
    f.conn.ts = ts(3.0);
    d.on_event(&Event::SmbFiles(f), &mut out);
    d.finish(&mut out);
    let t = one(&out);
    assert!(t.uploads[0].referenced);
    assert!(
        t.reason.contains("uploaded ADMIN$\\payload.exe"),
        "{}",
        t.reason
    );
    assert_eq!(t.ts, ts(1.0), "ts is the first evidence");
}

#[test]
fn inferred_instances_have_the_lowest_confidence_and_say_so() {
    let mut d = Detector::new(Rules::embedded());
    let mut out = vec![];
    let mut s = Seq::new("192.0.2.13", VIC);
    s.auth(0.0, "admin", "WORKGROUP");
    for e in s.done() {
        d.on_event(&e, &mut out);
    }
    d.on_inferred(psexec_sensor::detect::InferredCall {
        first_ts: ts(0.5),
        upload_size: Some(56320),
        tool_hint: Some("impacket-psexec".into()),
        medium: true,
        reason: "encrypted 56 KB write then svcctl-sized exchange".into(),
        evidence: vec![(ts(0.5), "write request 56400 bytes (upload)".into())],
        ..inferred_call(conn(1.0, "192.0.2.13", VIC, 445))
    });
    d.finish(&mut out);
    let t = one(&out);
    assert_eq!(t.basis, Basis::Inferred);
    assert!(t.confidence < 0.5, "{}", t.confidence);
    assert_eq!(t.severity, Severity::Medium);
    assert!(
        t.reason.contains("inferred") && t.reason.contains("56320 bytes"),
        "{}",
        t.reason
    );
    assert_eq!(t.user.as_deref(), Some("admin"));
    assert_eq!(
        t.ts,
        ts(0.0),
        "first evidence: the session setup before the inferred upload"
    );
    assert!(t
        .evidence
        .iter()
        .any(|e| e.ts == ts(0.5) && e.summary.contains("upload")));
    assert_eq!(t.tool, "impacket-psexec");
    assert!(t.attack.contains(&"T1570"));
    assert!(t
        .evidence
        .iter()
        .all(|e| e.log == "smb_opaque" || e.log == "smb_auth"));
    // a readable cleartext create folded in outranks the inference
    let mut d = Detector::new(Rules::embedded());
    let mut out = vec![];
    d.on_inferred(psexec_sensor::detect::InferredCall {
        reason: "sizes".into(),
        ..inferred_call(conn(1.0, ATT, VIC, 445))
    });
    let mut s = Seq::new(ATT, VIC);
    s.create(2.0, "nUwj", "%systemroot%\\zeCGSXch.exe", None, "ok");
    for e in s.done() {
        d.on_event(&e, &mut out);
    }
    d.finish(&mut out);
    let t = one(&out);
    assert_eq!(t.basis, Basis::Cleartext);
    assert_eq!(t.count, 2);
}

#[test]
#[ignore = "prints the lab psexec alert for eyeballing: cargo test --test it detect_matcher::show -- --ignored --nocapture"]
fn show_lab_psexec_alert() {
    let mut s = Seq::new(ATT, VIC);
    impacket_psexec(&mut s, 0.0);
    for a in run(&s.done()) {
        println!("{}", serde_json::to_string(&a).unwrap());
        print!("{}", a.human());
    }
}

#[test]
fn detect_all_equals_event_by_event() {
    let mut s = Seq::new(ATT, VIC);
    impacket_psexec(&mut s, 0.0);
    let ev = s.done();
    let a = psexec_sensor::detect::detect_all(Rules::embedded(), ev.iter());
    let b = run(&ev);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    assert_eq!(techniques(&a).len(), 1);
}

#[test]
fn user_of_a_long_session_is_kept_beyond_the_window() {
    let mut s = Seq::new(ATT, VIC);
    s.auth(0.0, "admin", "CORP").tree(1.0, "IPC$");
    s.create(5000.0, "abcd", "%windir%\\x.exe", None, "ok");
    let alerts = run(&s.done());
    let t = one(&alerts);
    assert_eq!(t.user.as_deref(), Some("admin"));
    assert_eq!(t.domain.as_deref(), Some("CORP"));
    assert!(
        t.evidence.iter().all(|e| e.log != "smb_auth"),
        "auth outside the window is not evidence"
    );
}

#[test]
fn stopping_the_attack_service_long_after_is_not_an_existing_service_signal() {
    // PsExec stops and deletes PSEXESVC when the remote command ends, possibly long after creating it.
    let mut s = Seq::new(ATT, VIC);
    s.create(
        0.0,
        "PSEXESVC",
        "%SystemRoot%\\PSEXESVC.exe",
        Some("h1"),
        "ok",
    )
    .start(0.1, "h1");
    s.open_service(1900.0, "PSEXESVC", "h2", 0);
    s.svc(
        1900.1,
        1,
        "ControlService",
        DceArgs {
            handle: Some("h2".into()),
            control: Some(1),
            return_code: Some(0),
            ..Default::default()
        },
        "ok",
    );
    s.delete(1900.2, "h2");
    // a different, existing service is still a signal
    s.open_service(1901.0, "Spooler", "h3", 0)
        .start(1901.1, "h3");
    let alerts = run(&s.done());
    assert_eq!(techniques(&alerts).len(), 1);
    let sig = signals(&alerts);
    assert_eq!(sig.len(), 1, "{sig:?}");
    assert_eq!(sig[0].service_name.as_deref(), Some("Spooler"));
}

#[test]
fn caps_are_counted_and_reported_through_the_sink() {
    // smbexec with many commands: the count keeps counting past MAX_FOLDED_CALLS
    let mut s = Seq::new(ATT, VIC);
    let n = psexec_sensor::detect::matcher::MAX_FOLDED_CALLS + 8;
    for i in 0..n {
        smbexec_create(&mut s, i as f64, "whoami");
    }
    let mut d = Detector::new(Rules::embedded());
    let mut out = vec![];
    for e in s.done() {
        d.on_event(&e, &mut out);
    }
    d.finish(&mut out);
    let t = one(&out);
    assert_eq!(t.count as usize, n);
    assert_eq!(
        t.calls.len(),
        psexec_sensor::detect::matcher::MAX_FOLDED_CALLS
    );
    assert_eq!(d.stats().caps.get("MAX_FOLDED_CALLS"), Some(&8));
    let mut sink = psexec_sensor::sink::Sink::new();
    d.report_caps(&mut sink);
    assert_eq!(sink.counters.get("MAX_FOLDED_CALLS"), 8);
    assert!(sink.events.iter().any(|e| matches!(e, Event::Anomaly(a) if a.cap == Some("MAX_FOLDED_CALLS") && a.layer == "detect")));
    let before = sink.events.len();
    d.report_caps(&mut sink);
    assert_eq!(sink.events.len(), before, "reported once");
}

#[test]
fn detector_and_rules_move_across_threads() {
    fn send<T: Send + 'static>() {}
    send::<Detector>();
    send::<Rules>();
    send::<Alert>();
}

#[test]
fn two_tools_in_one_session_are_two_alerts_each_with_its_own_upload_once() {
    // PsExec then PsKill from one source: different service names and binaries. Each alert names
    // its service and carries only the file its binary path runs; no upload is reported twice.
    let mut s = Seq::new(ATT, VIC);
    s.tree(0.0, "ADMIN$")
        .write(1.0, "ADMIN$", "PSEXESVC.exe", 145_568, true, None)
        .open_scm(2.0, "VICTIM")
        .create(
            3.0,
            "PSEXESVC",
            "%SystemRoot%\\PSEXESVC.exe",
            Some("h1"),
            "ok",
        )
        .write(10.0, "ADMIN$", "PSKLLSVC.exe", 98_000, true, None)
        .create(
            11.0,
            "PSKLLSVC",
            "%SystemRoot%\\PSKLLSVC.exe",
            Some("h2"),
            "ok",
        );
    let alerts = run(&s.done());
    let t = techniques(&alerts);
    assert_eq!(
        t.len(),
        2,
        "{:?}",
        t.iter().map(|a| &a.reason).collect::<Vec<_>>()
    );
    for (svc, file) in [("PSEXESVC", "PSEXESVC.exe"), ("PSKLLSVC", "PSKLLSVC.exe")] {
        let a = t
            .iter()
            .find(|a| a.service_name.as_deref() == Some(svc))
            .expect(svc);
        let names: Vec<&str> = a.uploads.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, vec![file], "{svc}");
        assert!(a.uploads[0].referenced);
        assert!(a.reason.contains(svc) && a.count == 1, "{}", a.reason);
    }
    assert!(signals(&alerts)
        .iter()
        .all(|s| s.signal != "admin-share-executable"));
}

#[test]
fn an_unnamed_upload_goes_to_the_nearest_following_create() {
    // Two instances of different services; a payload their paths do not name belongs to the
    // create right after it, not to both.
    let mut s = Seq::new(ATT, VIC);
    s.create(0.0, "svcone", "C:\\tools\\one.exe", None, "ok")
        .write(5.0, "C$", "payload.dll", 4096, true, None)
        .create(6.0, "svctwo", "C:\\tools\\two.exe", None, "ok");
    let alerts = run(&s.done());
    let t = techniques(&alerts);
    assert_eq!(t.len(), 2);
    let of = |svc: &str| {
        t.iter()
            .find(|a| a.service_name.as_deref() == Some(svc))
            .map(|a| a.uploads.iter().map(|u| u.name.clone()).collect::<Vec<_>>())
            .unwrap()
    };
    assert!(of("svcone").is_empty());
    assert_eq!(of("svctwo"), vec!["payload.dll".to_string()]);
}

#[test]
fn a_folded_service_with_the_same_name_keeps_one_instance_and_names_each_service() {
    // smbexec: one service name, a new command each time → one alert, count 2.
    let mut s = Seq::new(ATT, VIC);
    s.create(0.0, "BTOBTO", "%COMSPEC% /Q /c echo dir ^> x", None, "ok")
        .create(
            5.0,
            "BTOBTO",
            "%COMSPEC% /Q /c echo whoami ^> x",
            None,
            "ok",
        );
    let alerts = run(&s.done());
    let t = one(&alerts);
    assert_eq!(t.count, 2);
    // Same binary, another name (a tool renaming its service): folded, and the reason names both.
    let mut s = Seq::new(ATT, VIC);
    s.create(0.0, "alpha", "C:\\x.exe", None, "ok")
        .create(5.0, "beta", "C:\\x.exe", None, "ok");
    let alerts = run(&s.done());
    let t = one(&alerts);
    assert_eq!(t.count, 2);
    assert!(
        t.reason.contains("created services alpha, beta"),
        "{}",
        t.reason
    );
}

/// A service reconfiguration read from server answers alone keeps its carrier: over a TCP
/// connection (no SMB anywhere) it is SharpNoPSExec's signature, over the svcctl pipe SCShell's.
#[test]
fn inferred_calls_keep_their_transport_for_attribution() {
    use psexec_sensor::dcerpc::Transport;
    let tool_for = |transport: Transport, port: u16| {
        let mut d = Detector::new(Rules::embedded());
        let mut out = vec![];
        d.on_inferred(psexec_sensor::detect::InferredCall {
            technique: Technique::ServiceModify,
            transport,
            reason: "answers".into(),
            basis: Basis::Responses,
            ..inferred_call(conn(1.0, ATT, VIC, port))
        });
        d.finish(&mut out);
        one(&out).tool.clone()
    };
    assert_eq!(tool_for(Transport::Tcp, 49667), "sharpnopsexec");
    assert_eq!(tool_for(Transport::SmbPipe, 445), "scshell");
}

/// An inferred create call over an SMB pipe at `c`, with nothing else known; tests override fields.
fn inferred_call(c: ConnFields) -> psexec_sensor::detect::InferredCall {
    psexec_sensor::detect::InferredCall {
        conn: c,
        first_ts: c.ts,
        technique: Technique::ServiceCreate,
        interface: "svcctl",
        transport: psexec_sensor::dcerpc::Transport::SmbPipe,
        user: None,
        domain: None,
        workstation: None,
        upload_size: None,
        tool_hint: None,
        medium: false,
        reason: String::new(),
        evidence: vec![],
        basis: Basis::Inferred,
        failed: false,
        pipes: vec![],
        task_path: None,
    }
}
