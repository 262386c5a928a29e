//! `live` refuses bad setups before opening anything (exit 2, a message that says what to do):
//! an unknown `--user`, a config file with an unknown key or a bad value, no interface at all, a
//! log directory the sensor's user cannot write.
#![cfg(feature = "live")]

use std::process::Command;

const SENSOR: &str = env!("CARGO_BIN_EXE_psexec-sensor");

fn live(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(SENSOR)
        .arg("live")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_user_is_an_error() {
    let (code, err) = live(&["-i", "lo", "--user", "no-such-user-psx-xyz"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("no-such-user-psx-xyz") && err.contains("--user ''"),
        "{err}"
    );
}

#[test]
fn bad_config_files_are_errors() {
    let dir = std::env::temp_dir().join(format!("psx-live-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text, needle) in [
        ("typo.toml", "interface = [\"lo\"]\n", "interface"),
        (
            "value.toml",
            "interfaces = [\"lo\"]\nworkers = \"many\"\n",
            "workers",
        ),
        ("empty.toml", "", "no interface"),
        (
            "format.toml",
            "interfaces = [\"lo\"]\nlog_format = \"tsv\"\n",
            "log directory",
        ),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        let (code, err) = live(&["--config", p.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{name}: {err}");
        assert!(err.contains(needle), "{name}: {err}");
    }
    let (code, err) = live(&["--config", dir.join("missing.toml").to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Log files are created after privileges are dropped: a `--log-dir` the sensor's user cannot
/// write is refused at start (exit 2, saying what to do), not discovered at the first record.
#[test]
fn a_log_dir_the_user_cannot_write_is_refused_at_start() {
    let uid = Command::new("id").arg("-u").output().unwrap().stdout;
    assert_eq!(
        String::from_utf8_lossy(&uid).trim(),
        "0",
        "this test runs as root (as CI does): it drops to nobody"
    );
    let dir = std::env::temp_dir().join(format!("psx-live-logdir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (code, err) = live(&[
        "-i",
        "lo",
        "--capture",
        "pcap",
        "--log-dir",
        dir.to_str().unwrap(),
        "--user",
        "nobody",
        "--duration",
        "5",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(dir.to_str().unwrap()) && err.contains("chown"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
