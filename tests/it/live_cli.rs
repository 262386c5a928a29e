//! `live` refuses bad setups before opening anything (exit 2, a message that says what to do):
//! an unknown `--user`, a config file with an unknown key or a bad value, no interface at all.
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
