//! Makes `-lpcap` resolvable for the `live` feature on machines that have the libpcap runtime
//! (`libpcap.so.0.8` on Debian) but not libpcap-dev (which ships the `libpcap.so` link name and
//! `libpcap.pc`).
//!
//! Order:
//! 1. `LIBPCAP_LIBDIR` set and holding `libpcap.so` → nothing to do (the pcap crate passes it on).
//! 2. pkg-config knows libpcap and its libdir holds `libpcap.so` → nothing to do.
//! 3. `libpcap.so` in one of the usual library dirs → the linker finds it by itself.
//! 4. Otherwise the newest runtime library found there (`libpcap.so.1*`, `libpcap.so.0.8`) gets a
//!    symlink `OUT_DIR/pcap-link/libpcap.so` and that directory goes on the link search path.
//!
//! The pcap crate's own build script needs nothing: without pkg-config and without a loadable
//! `libpcap.so` it assumes the newest libpcap API it knows (1.9.1), which every runtime this
//! fallback finds (Debian 12 ships 1.10) provides.
//!
//! Knobs, for tests of this script and odd machines:
//! - `PSEXEC_SENSOR_PCAP_DIRS`: colon-separated dirs searched in steps 3 and 4 instead of the usual.
//! - `PSEXEC_SENSOR_PCAP_FORCE_SYMLINK=1`: skip steps 1–3.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for var in [
        "LIBPCAP_LIBDIR",
        "PKG_CONFIG_PATH",
        "PKG_CONFIG_LIBDIR",
        "PSEXEC_SENSOR_PCAP_DIRS",
        "PSEXEC_SENSOR_PCAP_FORCE_SYMLINK",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if env::var_os("CARGO_FEATURE_LIVE").is_none() {
        return;
    }
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        // Other systems install the link name with the library; the pcap crate handles them.
        return;
    }
    let dirs = search_dirs();
    let forced = env::var("PSEXEC_SENSOR_PCAP_FORCE_SYMLINK").as_deref() == Ok("1");
    if !forced {
        if let Some(dir) = env::var_os("LIBPCAP_LIBDIR") {
            if Path::new(&dir).join("libpcap.so").exists() {
                return;
            }
        }
        if let Some(dir) = pkg_config_libdir() {
            if dir.join("libpcap.so").exists() {
                return;
            }
        }
        if dirs.iter().any(|d| d.join("libpcap.so").exists()) {
            return;
        }
    }
    let Some(runtime) = dirs.iter().find_map(|d| newest_runtime(d)) else {
        println!(
            "cargo:warning=libpcap not found (searched {}): install libpcap-dev (scripts/setup.sh) \
             or build without live capture: cargo build --no-default-features",
            dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        );
        return;
    };
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("pcap-link");
    std::fs::create_dir_all(&out).expect("create OUT_DIR/pcap-link");
    let link = out.join("libpcap.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&runtime, &link).expect("symlink libpcap.so in OUT_DIR");
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rerun-if-changed={}", runtime.display());
}

/// The multiarch dirs first (Debian, Ubuntu), then the classic ones.
fn search_dirs() -> Vec<PathBuf> {
    if let Ok(list) = env::var("PSEXEC_SENSOR_PCAP_DIRS") {
        return env::split_paths(&list).collect();
    }
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let mut dirs = Vec::new();
    for root in ["/usr/lib", "/lib"] {
        if let Ok(rd) = std::fs::read_dir(root) {
            let mut multi: Vec<PathBuf> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&format!("{arch}-linux-")))
                })
                .collect();
            multi.sort();
            dirs.extend(multi);
        }
    }
    for d in ["/usr/lib64", "/lib64", "/usr/lib", "/lib", "/usr/local/lib"] {
        dirs.push(PathBuf::from(d));
    }
    dirs
}

fn pkg_config_libdir() -> Option<PathBuf> {
    let out = Command::new("pkg-config")
        .args(["--variable=libdir", "libpcap"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| PathBuf::from(s))
}

/// `libpcap.so.1.x.y` beats `libpcap.so.1` beats `libpcap.so.0.8` (Debian's soname), by version.
fn newest_runtime(dir: &Path) -> Option<PathBuf> {
    let mut best: Option<(Vec<u32>, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(ver) = name.strip_prefix("libpcap.so.") else {
            continue;
        };
        let Some(key) = ver
            .split('.')
            .map(|p| p.parse::<u32>().ok())
            .collect::<Option<Vec<u32>>>()
        else {
            continue;
        };
        let path = entry.path();
        // A dangling symlink is no library.
        if !path.exists() {
            continue;
        }
        // Debian's 0.8 is a symlink to 1.10.x; prefer the soname link over the real file only by
        // version order, which resolves to the same file anyway.
        if best.as_ref().is_none_or(|(k, _)| key > *k) {
            best = Some((key, path));
        }
    }
    best.map(|(_, p)| p)
}
