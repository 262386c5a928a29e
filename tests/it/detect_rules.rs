//! Rule files: every error names file, line and problem; exceptions of each kind suppress (and
//! still report); attribution for each tool pattern of rules/tools.toml.

use crate::detect_util::*;
use psexec_sensor::detect::{RuleError, Rules};
use psexec_sensor::event::DceArgs;

fn load(text: &str) -> Result<Rules, RuleError> {
    Rules::from_sources([("bad.toml".to_string(), text.to_string())])
}

fn err(text: &str) -> RuleError {
    match load(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => {
            // the message a user sees names the file and the line
            assert!(
                e.to_string().starts_with(&format!("bad.toml:{}: ", e.line)),
                "{e}"
            );
            assert!(e.line > 0, "{e}");
            eprintln!("{e}");
            e
        }
    }
}

#[test]
fn syntax_error_names_file_and_line() {
    let e = err("[settings]\nwindow_secs = 600\n\n[[exception]\nname = \"x\"\n");
    assert_eq!(e.file, "bad.toml");
    assert_eq!(e.line, 4, "{e}");
    assert!(e.to_string().starts_with("bad.toml:4:"), "{e}");
}

#[test]
fn unknown_key_is_rejected_with_its_line() {
    let e = err("[settings]\nwindow_secs = 600\nwindow_minutes = 10\n");
    assert_eq!(e.line, 3, "{e}");
    assert!(e.message.contains("window_minutes"), "{e}");
    let e = err("[[exception]]\nname = \"a\"\nsource = [\"10.0.0.0/8\"]\nsrc = [\"x\"]\n");
    assert_eq!(e.line, 4, "{e}");
    assert!(e.message.contains("src"), "{e}");
    let e = err("[[tool]]\nname = \"t\"\n[[tool.signature]]\nservice = 'x'\n");
    assert_eq!(e.line, 4, "{e}");
}

#[test]
fn wrong_type_is_rejected_with_its_line() {
    let e = err("[settings]\n\nwindow_secs = \"ten minutes\"\n");
    assert_eq!(e.line, 3, "{e}");
    assert!(
        e.message.to_lowercase().contains("invalid type") || e.message.contains("integer"),
        "{e}"
    );
    let e = err("[[exception]]\nname = \"a\"\nsource = \"10.0.0.0/8\"\n");
    assert_eq!(e.line, 3, "{e}");
}

#[test]
fn bad_cidr_is_rejected_with_its_line() {
    let e =
        err("# c\n[[exception]]\nname = \"a\"\nsource = [\"10.0.0.0/8\",\n  \"10.1.2.300/24\"]\n");
    assert_eq!(e.line, 5, "{e}");
    assert!(
        e.message.contains("CIDR") && e.message.contains("10.1.2.300"),
        "{e}"
    );
    let e = err("[[exception]]\nname = \"a\"\ntarget = [\"10.0.0.0/40\"]\n");
    assert_eq!(e.line, 3, "{e}");
}

#[test]
fn bad_regex_and_bad_glob_are_rejected_with_their_line() {
    let e =
        err("[[tool]]\nname = \"t\"\n[[tool.signature]]\nwhy = \"w\"\nservice_name = '^(abc$'\n");
    assert_eq!(e.line, 5, "{e}");
    assert!(
        e.message.contains("bad regex") && e.message.contains("service_name"),
        "{e}"
    );
    let e = err("[[exception]]\nname = \"a\"\n\nservice_name = [\"PSEXE[SVC\"]\n");
    assert_eq!(e.line, 4, "{e}");
    assert!(e.message.contains("glob"), "{e}");
}

#[test]
fn semantic_errors() {
    assert!(err("[[exception]]\nname = \"a\"\n")
        .message
        .contains("no condition"));
    assert!(err("[[tool]]\nname = \"t\"\n")
        .message
        .contains("no [[tool.signature]]"));
    assert!(
        err("[[tool]]\nname = \"t\"\n[[tool.signature]]\nwhy = \"x\"\n")
            .message
            .contains("no condition")
    );
    let e = err("[[tool]]\nname = \"t\"\n[[tool.signature]]\ntechnique = \"service-delete\"\n");
    assert_eq!(e.line, 4);
    assert!(err("[settings]\nwindow_secs = 0\n")
        .message
        .contains("window_secs"));
    let two = Rules::from_sources([
        (
            "a.toml".to_string(),
            "[settings]\nwindow_secs = 60\n".to_string(),
        ),
        (
            "b.toml".to_string(),
            "\n[settings]\nwindow_secs = 70\n".to_string(),
        ),
    ])
    .unwrap_err();
    assert_eq!((two.file.as_str(), two.line), ("b.toml", 2));
}

#[test]
fn load_dir_reads_every_toml_and_reports_the_file() {
    let dir = std::env::temp_dir().join(format!("psx-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.toml"), "[settings]\nwindow_secs = 120\n").unwrap();
    std::fs::write(
        dir.join("b.toml"),
        "[[exception]]\nname = \"lab\"\nsource = [\"192.0.2.0/24\"]\n",
    )
    .unwrap();
    std::fs::write(dir.join("README.md"), "not a rule file").unwrap();
    let r = Rules::load_dir(&dir).unwrap();
    assert_eq!(r.settings.window_secs, 120);
    assert_eq!(r.exceptions.len(), 1);
    assert!(r.tools.is_empty(), "--rules DIR replaces the defaults");
    std::fs::write(
        dir.join("c.toml"),
        "[[exception]]\nname = \"x\"\nuser = [\"[\"]\n",
    )
    .unwrap();
    let e = Rules::load_dir(&dir).unwrap_err();
    assert!(e.file.ends_with("c.toml") && e.line == 3, "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(Rules::load_dir(std::path::Path::new("/nonexistent/rules")).is_err());
}

#[test]
fn the_shipped_rule_files_load_from_the_directory_too() {
    let r = Rules::load_dir(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/rules"
    )))
    .unwrap();
    assert_eq!(r.tools.len(), Rules::embedded().tools.len());
}

// ---- exceptions ----

fn with_exception(ex: &str) -> Rules {
    let mut r = Rules::embedded();
    r.exceptions = load(ex).unwrap().exceptions;
    r
}

fn psexec_alert(rules: Rules) -> Option<String> {
    let mut s = Seq::new(ATT, VIC);
    impacket_psexec(&mut s, 0.0);
    let alerts = run_with(rules, &s.done());
    one(&alerts).suppressed_by.clone()
}

#[test]
fn exception_by_source_subnet() {
    assert_eq!(
        psexec_alert(with_exception(
            "[[exception]]\nname = \"jump\"\nsource = [\"192.0.2.0/28\"]\n"
        ))
        .as_deref(),
        Some("jump")
    );
    assert_eq!(
        psexec_alert(with_exception(
            "[[exception]]\nname = \"jump\"\nsource = [\"192.0.2.16/28\"]\n"
        )),
        None
    );
    assert_eq!(
        psexec_alert(with_exception(
            "[[exception]]\nname = \"one\"\nsource = [\"192.0.2.10\"]\n"
        ))
        .as_deref(),
        Some("one")
    );
}

#[test]
fn exception_by_target() {
    assert_eq!(
        psexec_alert(with_exception(
            "[[exception]]\nname = \"t\"\ntarget = [\"192.0.2.20/32\"]\n"
        ))
        .as_deref(),
        Some("t")
    );
    assert_eq!(
        psexec_alert(with_exception(
            "[[exception]]\nname = \"t\"\ntarget = [\"192.0.2.21\"]\n"
        )),
        None
    );
}

#[test]
fn exception_by_user_glob_plain_or_domain_qualified() {
    assert_eq!(
        psexec_alert(with_exception(
            "[[exception]]\nname = \"u\"\nuser = [\"ADM*\"]\n"
        ))
        .as_deref(),
        Some("u")
    );
    assert_eq!(
        psexec_alert(with_exception(
            "[[exception]]\nname = \"u\"\nuser = [\"workgroup\\\\admin\"]\n"
        ))
        .as_deref(),
        Some("u")
    );
    assert_eq!(
        psexec_alert(with_exception(
            "[[exception]]\nname = \"u\"\nuser = [\"svc_*\"]\n"
        )),
        None
    );
}

#[test]
fn exception_by_service_name_exact_and_glob() {
    assert_eq!(
        psexec_alert(with_exception(
            "[[exception]]\nname = \"s\"\nservice_name = [\"NUWJ\"]\n"
        ))
        .as_deref(),
        Some("s")
    );
    assert_eq!(
        psexec_alert(with_exception(
            "[[exception]]\nname = \"s\"\nservice_name = [\"nU??\"]\n"
        ))
        .as_deref(),
        Some("s")
    );
    assert_eq!(
        psexec_alert(with_exception(
            "[[exception]]\nname = \"s\"\nservice_name = [\"PSEXESVC\"]\n"
        )),
        None
    );
}

#[test]
fn exception_by_tool_and_all_conditions_must_hold() {
    assert_eq!(
        psexec_alert(with_exception(
            "[[exception]]\nname = \"k\"\ntool = [\"impacket-psexec\"]\n"
        ))
        .as_deref(),
        Some("k")
    );
    let both = "[[exception]]\nname = \"k\"\nsource = [\"192.0.2.0/24\"]\nuser = [\"nobody\"]\n";
    assert_eq!(psexec_alert(with_exception(both)), None);
}

#[test]
fn suppressed_alerts_are_reported_not_dropped() {
    let rules = with_exception(
        "[[exception]]\nname = \"helpdesk\"\ncomment = \"IT\"\nsource = [\"192.0.2.0/24\"]\n",
    );
    let mut s = Seq::new(ATT, VIC);
    impacket_psexec(&mut s, 0.0);
    let alerts = run_with(rules, &s.done());
    let t = one(&alerts);
    assert_eq!(t.suppressed_by.as_deref(), Some("helpdesk"));
    assert_eq!(t.service_name.as_deref(), Some("nUwj"));
    let json = serde_json::to_value(&alerts[0]).unwrap();
    assert_eq!(json["suppressed_by"], "helpdesk");
    let psexec_sensor::event::alert::Alert::HostSummary(h) = alerts.last().unwrap() else {
        panic!()
    };
    assert_eq!((h.attacks, h.suppressed), (1, 1));
    // signals too
    let rules = with_exception("[[exception]]\nname = \"deploy\"\nsource = [\"192.0.2.11\"]\n");
    let mut s = Seq::new("192.0.2.11", VIC);
    s.write(0.0, "ADMIN$", "agent.exe", 10, true, None);
    let a = run_with(rules, &s.done());
    assert_eq!(signals(&a)[0].suppressed_by.as_deref(), Some("deploy"));
}

// ---- attribution ----

fn tool_of(s: &mut Seq) -> String {
    let alerts = run(&s.done());
    one(&alerts).tool.clone()
}

#[test]
fn attributes_sysinternals_psexec_and_renamed() {
    let mut s = Seq::new(ATT, VIC);
    s.tree(0.0, "ADMIN$")
        .write(0.1, "ADMIN$", "PSEXESVC.exe", 145568, true, None)
        .pipe(0.2, "svcctl")
        .create(
            0.3,
            "PSEXESVC",
            "%SystemRoot%\\PSEXESVC.exe",
            Some("h"),
            "ok",
        )
        .start(0.4, "h")
        .pipe(0.5, "PSEXESVC")
        .pipe(0.6, "PSEXESVC-VICTIM-PC-2412-stdin");
    assert_eq!(tool_of(&mut s), "sysinternals-psexec");
    // -r renamed: service and exe renamed, pipe shapes stay
    let mut s = Seq::new(ATT, VIC);
    s.write(0.1, "ADMIN$", "Updater.exe", 145568, true, None)
        .create(0.3, "Updater", "%SystemRoot%\\Updater.exe", Some("h"), "ok")
        .start(0.4, "h")
        .pipe(0.5, "Updater")
        .pipe(0.6, "Updater-WS01-4242-stdin");
    assert_eq!(tool_of(&mut s), "sysinternals-psexec");
}

#[test]
fn attributes_paexec() {
    let mut s = Seq::new(ATT, VIC);
    s.write(0.1, "ADMIN$", "PAExec-4242-WS01.exe", 190000, true, None)
        .create(
            0.3,
            "PAExec-4242-WS01",
            "%SYSTEMROOT%\\PAExec-4242-WS01.exe",
            Some("h"),
            "ok",
        )
        .pipe(0.5, "PAExecOutWS014242");
    assert_eq!(tool_of(&mut s), "paexec");
}

#[test]
fn attributes_remcom() {
    let mut s = Seq::new("192.168.1.46", "192.168.1.195");
    s.tree(0.0, "ADMIN$")
        .write(0.1, "ADMIN$", "System32\\RemComSvc.exe", 45056, true, None)
        .svc(
            0.3,
            24,
            "CreateServiceA",
            DceArgs {
                service_name: Some("RemComSvc".into()),
                binary_path: Some("%SystemRoot%\\system32\\RemComSvc.exe".into()),
                ..Default::default()
            },
            "ok",
        )
        .pipe(0.5, "RemCom_communicaton")
        .pipe(0.6, "RemCom_stdinCHIP_DOUGLAS-PC2232");
    let alerts = run(&s.done());
    let t = one(&alerts);
    assert_eq!(t.tool, "remcom");
    assert!(
        t.uploads[0].referenced,
        "System32\\RemComSvc.exe on ADMIN$ is %SystemRoot%\\system32\\RemComSvc.exe"
    );
}

#[test]
fn attributes_impacket_psexec_by_shape_and_by_machine_name() {
    let mut s = Seq::new(ATT, VIC);
    impacket_psexec(&mut s, 0.0);
    assert_eq!(tool_of(&mut s), "impacket-psexec");
    // -service-name / -remote-binary-name (lab k1): DUMMY machine name + uploaded binary is
    // impacket's library, not psexec.py yet; its share enumeration first (findWritableShare) is.
    let k1 = |enumerate: bool| {
        let mut s = Seq::new(ATT, VIC);
        if enumerate {
            s.call_on(
                0.0,
                "smb_pipe",
                "srvsvc",
                15,
                "NetrShareEnum",
                DceArgs::default(),
                "ok",
                false,
            );
        }
        s.tree(0.0, "ADMIN$")
            .write(0.1, "ADMIN$", "bigsvc.exe", 8444928, true, None)
            .open_scm(0.2, "DUMMY\0")
            .create(
                0.3,
                "BigSvc",
                "%systemroot%\\bigsvc.exe",
                None,
                "nca_s_op_rng_error",
            );
        tool_of(&mut s)
    };
    assert_eq!(k1(false), "impacket-based");
    assert_eq!(k1(true), "impacket-psexec");
}

#[test]
fn dummy_machine_name_alone_is_the_impacket_family_with_its_reason() {
    // A 64-character service over \pipe\ntsvcs: nothing of psexec.py but the library default.
    let mut s = Seq::new(ATT, VIC);
    let name = "A".repeat(64);
    s.tree(0.0, "ADMIN$")
        .write(0.1, "ADMIN$", "x.exe", 4096, true, None)
        .pipe(0.15, "ntsvcs")
        .open_scm(0.2, "DUMMY")
        .create(0.3, &name, "%systemroot%\\x.exe", None, "ok");
    let alerts = run(&s.done());
    let t = one(&alerts);
    assert_eq!(t.tool, "impacket-based");
    assert!(t
        .tool_reason
        .as_deref()
        .unwrap_or("")
        .contains("library default"));
}

#[test]
fn attributes_smbexec_variants() {
    let mut s = Seq::new("192.168.1.161", "192.168.1.195");
    s.create(0.0, "BTOBTO", "%COMSPEC% /Q /c echo cd  ^> \\\\127.0.0.1\\C$\\__output 2^>^&1 > %TEMP%\\execute.bat & %COMSPEC% /Q /c %TEMP%\\execute.bat & del %TEMP%\\execute.bat", None, "ok");
    assert_eq!(tool_of(&mut s), "impacket-smbexec");
    let mut s = Seq::new("192.168.1.109", "192.168.1.46");
    s.create(0.0, "KPZbFwrLmh", "%COMSPEC% /Q /c echo whoami ^> \\Windows\\Temp\\LzwYmIeKMo 2^>^&1 > %TEMP%\\FWOPXLKTng.bat & %COMSPEC% /Q /c %TEMP%\\FWOPXLKTng.bat & del %TEMP%\\FWOPXLKTng.bat", None, "ok");
    assert_eq!(tool_of(&mut s), "crackmapexec-smbexec");
}

#[test]
fn attributes_metasploit_by_decoy_bind_and_by_names() {
    let mut s = Seq::new(ATT, VIC);
    let mut ifs: Vec<(&str, &str)> =
        vec![("unknown-1", "11111111-2222-3333-4444-555555555555"); 10];
    ifs.push(("svcctl", "367abb81-9844-35f1-ad32-98f038001003"));
    s.bind(0.0, "smb_pipe", &ifs)
        .create(0.1, "Hello", "C:\\x.exe", None, "ok");
    assert_eq!(tool_of(&mut s), "metasploit-psexec");
    let mut s = Seq::new(ATT, VIC);
    s.write(0.0, "ADMIN$", "qWeRtYuI.exe", 7000, true, None)
        .create(0.1, "aSdFgHjK", "%SYSTEMROOT%\\qWeRtYuI.exe", None, "ok");
    assert_eq!(tool_of(&mut s), "metasploit-psexec");
}

#[test]
fn attributes_cobaltstrike_csexec_winexe() {
    let mut s = Seq::new(ATT, VIC);
    s.write(0.0, "ADMIN$", "768870c.exe", 280000, true, None)
        .create(
            0.1,
            "768870c",
            "\\\\10.0.0.5\\ADMIN$\\768870c.exe",
            None,
            "ok",
        );
    let alerts = run(&s.done());
    let t = one(&alerts);
    assert_eq!(t.tool, "cobaltstrike-psexec");
    assert!(
        t.uploads[0].referenced,
        "UNC path into ADMIN$ names the upload"
    );
    let mut s = Seq::new(ATT, VIC);
    s.write(0.0, "ADMIN$", "system32\\csexecsvc.exe", 9000, true, None)
        .create(
            0.1,
            "csexecsvc",
            "%SystemRoot%\\system32\\csexecsvc.exe",
            None,
            "ok",
        )
        .pipe(0.2, "csexecsvc");
    assert_eq!(tool_of(&mut s), "csexec");
    let mut s = Seq::new(ATT, VIC);
    s.write(0.0, "ADMIN$", "winexesvc.exe", 9000, true, None)
        .create(0.1, "winexesvc", "winexesvc.exe", None, "ok")
        .pipe(0.2, "ahexec");
    assert_eq!(tool_of(&mut s), "winexe");
}

#[test]
fn attributes_service_modify_tools() {
    // SharpNoPSExec: svcctl over TCP only, no SMB at all
    let mut s = Seq::new("10.0.0.2", "10.0.0.3");
    s.call_on(
        0.0,
        "tcp",
        "svcctl",
        15,
        "OpenSCManagerW",
        DceArgs::default(),
        "ok",
        true,
    )
    .call_on(
        0.1,
        "tcp",
        "svcctl",
        11,
        "ChangeServiceConfigW",
        DceArgs::default(),
        "ok",
        true,
    )
    .call_on(
        0.2,
        "tcp",
        "svcctl",
        19,
        "StartServiceW",
        DceArgs::default(),
        "ok",
        true,
    )
    .call_on(
        0.3,
        "tcp",
        "svcctl",
        11,
        "ChangeServiceConfigW",
        DceArgs::default(),
        "ok",
        true,
    );
    let alerts = run(&s.done());
    let t = one(&alerts);
    assert_eq!(t.tool, "sharpnopsexec");
    assert_eq!(
        t.technique,
        psexec_sensor::event::alert::Technique::ServiceModify
    );
    assert_eq!(t.count, 2);
}

#[test]
fn attributes_task_tools() {
    let mut s = Seq::new("192.168.10.31", "192.168.10.30");
    s.pipe(0.0, "atsvc").call_on(
        0.1,
        "smb_pipe",
        "atsvc",
        0,
        "NetrJobAdd",
        DceArgs {
            command: Some("net user x /add".into()),
            ..Default::default()
        },
        "ok",
        false,
    );
    let alerts = run(&s.done());
    let t = one(&alerts);
    assert_eq!(t.tool, "windows-at");
    assert!(t.attack.contains(&"T1053.002"));
    let mut s = Seq::new("192.168.1.46", "192.168.1.195");
    s.call_on(
        0.1,
        "tcp",
        "ITaskSchedulerService",
        1,
        "SchRpcRegisterTask",
        DceArgs::default(),
        "ok",
        true,
    )
    .call_on(
        0.2,
        "tcp",
        "ITaskSchedulerService",
        1,
        "SchRpcRegisterTask",
        DceArgs::default(),
        "ok",
        true,
    );
    let alerts = run(&s.done());
    let t = one(&alerts);
    assert_eq!(t.tool, "windows-schtasks");
    assert_eq!(t.count, 2);
}

#[test]
fn attributes_impacket_services_and_unknown() {
    let mut s = Seq::new(ATT, VIC);
    s.open_scm(0.0, "DUMMY").create(
        0.1,
        "LabEvilSvc",
        "C:\\Windows\\Temp\\payload.exe",
        None,
        "nca_s_op_rng_error",
    );
    assert_eq!(tool_of(&mut s), "impacket-based");
    let mut s = Seq::new(ATT, VIC);
    s.open_scm(0.0, "VICTIM").create(
        0.1,
        "LabEvilSvc",
        "C:\\Windows\\Temp\\payload.exe",
        None,
        "ok",
    );
    let alerts = run(&s.done());
    let t = one(&alerts);
    assert_eq!(
        t.tool, "unknown",
        "technique detected whether or not a tool matches"
    );
    assert!(t.tool_reason.is_none());
}

#[test]
fn attributes_stub_encrypted_wow64_create_to_psexec_and_ansi_create_to_unknown() {
    // suricata-verify dcerpc-dce-iface-01: PsExec's svcctl over TCP with packet privacy, no SMB seen
    let enc = |s: &mut Seq, t: f64, op: u16, name: &str| {
        s.call_on(t, "tcp", "svcctl", op, name, DceArgs::default(), "ok", true);
    };
    let mut s = Seq::new("192.168.10.31", "192.168.10.30");
    enc(&mut s, 0.0, 15, "OpenSCManagerW");
    enc(&mut s, 0.01, 45, "CreateServiceWOW64W");
    enc(&mut s, 0.02, 0, "CloseServiceHandle");
    enc(&mut s, 0.03, 16, "OpenServiceW");
    enc(&mut s, 0.04, 19, "StartServiceW");
    enc(&mut s, 1.9, 1, "ControlService");
    enc(&mut s, 1.95, 2, "DeleteService");
    let alerts = run(&s.done());
    let t = one(&alerts);
    assert_eq!(t.tool, "sysinternals-psexec");
    assert!(t.started && t.deleted);
    assert!(
        signals(&alerts).is_empty(),
        "stop/delete of the created service are not separate signals"
    );
    // pcap-attack LM_smbexec: ANSI svcctl (27 / 24 / 31), twice, stub encrypted
    let mut s = Seq::new("172.16.66.1", "172.16.66.36");
    for k in 0..2 {
        let t0 = k as f64 * 20.0;
        enc(&mut s, t0, 27, "OpenSCManagerA");
        enc(&mut s, t0 + 0.1, 24, "CreateServiceA");
        enc(&mut s, t0 + 0.2, 31, "StartServiceA");
        enc(&mut s, t0 + 0.3, 2, "DeleteService");
    }
    let alerts = run(&s.done());
    let t = one(&alerts);
    assert_eq!(t.count, 2);
    assert_eq!(t.tool, "unknown");
}

#[test]
fn start_through_a_handle_of_unseen_origin_belongs_to_the_open_instance() {
    // Capture started mid-session: the CreateService response handle was not decoded.
    let mut s = Seq::new(ATT, VIC);
    s.create(0.0, "PSEXESVC", "%SystemRoot%\\PSEXESVC.exe", None, "ok")
        .start(0.1, "never-seen");
    let alerts = run(&s.done());
    assert!(one(&alerts).started);
    assert!(signals(&alerts).is_empty());
}

#[test]
fn interface_and_opnum_keys_are_validated() {
    let e = err("[[tool]]\nname = \"t\"\n[[tool.signature]]\ninterface = \"samr\"\n");
    assert_eq!(e.line, 4);
    assert!(e.message.contains("interface"));
    let e = err("[[tool]]\nname = \"t\"\n[[tool.signature]]\nopnum = 70000\n");
    assert_eq!(e.line, 4, "{e}");
}

#[test]
fn a_directory_can_layer_over_the_defaults_by_file_name() {
    let dir = std::env::temp_dir().join(format!("psx-rules-layer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("exceptions.toml"),
        "[[exception]]\nname = \"jump\"\nsource = [\"192.0.2.0/24\"]\n",
    )
    .unwrap();
    let r = Rules::load_dir_over_defaults(&dir).unwrap();
    assert_eq!(
        r.tools.len(),
        Rules::embedded().tools.len(),
        "tool signatures kept"
    );
    assert_eq!(r.exceptions.len(), 1);
    assert_eq!(r.settings.window_secs, 600);
    let mut s = Seq::new(ATT, VIC);
    impacket_psexec(&mut s, 0.0);
    let alerts = run_with(r, &s.done());
    assert_eq!(one(&alerts).suppressed_by.as_deref(), Some("jump"));
    assert_eq!(one(&alerts).tool, "impacket-psexec");
    // a second [settings] outside settings.toml conflicts with the embedded one, and says where
    std::fs::write(dir.join("zz.toml"), "[settings]\nwindow_secs = 60\n").unwrap();
    let e = Rules::load_dir_over_defaults(&dir).unwrap_err();
    assert!(
        e.file.ends_with("zz.toml") && e.message.contains("settings.toml"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
