//! Pure helpers over names: admin shares, binary paths normalised to share-relative paths, and the
//! shape of service names.

/// `X$` shares other than IPC$ (ADMIN$, C$, D$ …, also PRINT$ … by design: any hidden admin share).
pub fn is_admin_share(share: &str) -> bool {
    share.len() >= 2 && share.ends_with('$') && !share.eq_ignore_ascii_case("IPC$")
}

/// Last path component, lowercase.
pub fn basename_lower(path: &str) -> String {
    let p = path.trim_end_matches(['\\', '/']);
    p.rsplit(['\\', '/'])
        .next()
        .unwrap_or(p)
        .to_ascii_lowercase()
}

/// The executable part of a service binary path: unquoted, up to the first `.exe`/`.bat`/`.com`/
/// `.cmd`/`.dll` (arguments dropped), otherwise up to the first space.
pub fn executable_part(binary_path: &str) -> &str {
    let s = binary_path.trim();
    if let Some(rest) = s.strip_prefix('"') {
        return rest.split('"').next().unwrap_or(rest);
    }
    let lower = s.to_ascii_lowercase();
    let mut end: Option<usize> = None;
    for ext in [".exe", ".bat", ".com", ".cmd", ".dll"] {
        if let Some(i) = lower.find(ext) {
            let e = i + ext.len();
            let ok = lower
                .as_bytes()
                .get(e)
                .is_none_or(|c| *c == b' ' || *c == b'"');
            if ok && end.is_none_or(|x| e < x) {
                end = Some(e);
            }
        }
    }
    match end {
        Some(e) => s.get(..e).unwrap_or(s),
        None => s.split(' ').next().unwrap_or(s),
    }
}

/// Normalise a Windows path (from a binary path or a share + file name) to a lowercase,
/// share-relative form: `admin$\x.exe`, `c$\temp\x.exe`, `d$\…`. `%SystemRoot%`, `%windir%`,
/// `C:\Windows` and `\\host\C$\Windows` all become `admin$`. Returns None when the path does not
/// name a location on a share (e.g. `%COMSPEC%`, a bare file name).
pub fn share_relative(path: &str) -> Option<String> {
    let p = executable_part(path)
        .replace('/', "\\")
        .to_ascii_lowercase();
    let p = p.trim();
    let rel = if let Some(rest) = p.strip_prefix("\\\\") {
        // \\host\share\rest  (any host: the target's name, its address, 127.0.0.1, localhost)
        let mut it = rest.splitn(3, '\\');
        let _host = it.next()?;
        let share = it.next()?;
        let tail = it.next().unwrap_or("");
        format!("{share}\\{tail}")
    } else if let Some(rest) = p
        .strip_prefix("%systemroot%\\")
        .or_else(|| p.strip_prefix("%windir%\\"))
    {
        format!("admin$\\{rest}")
    } else if let Some(rest) = p.strip_prefix("\\systemroot\\") {
        format!("admin$\\{rest}")
    } else if let Some(rest) = p.strip_prefix("%systemdrive%\\") {
        format!("c$\\{rest}")
    } else if let Some(&[d, b':', b'\\']) = p.as_bytes().get(..3) {
        if !d.is_ascii_alphabetic() {
            return None;
        }
        format!("{}$\\{}", d as char, p.get(3..).unwrap_or(""))
    } else {
        return None;
    };
    Some(canonical(&rel))
}

/// Share + name (as SMB gives them) in the same form as `share_relative`.
pub fn upload_relative(share: &str, name: &str) -> String {
    let name = name.replace('/', "\\");
    let name = name.trim_start_matches('\\');
    canonical(&format!(
        "{}\\{}",
        share.to_ascii_lowercase(),
        name.to_ascii_lowercase()
    ))
}

fn canonical(rel: &str) -> String {
    // C$\Windows\… is ADMIN$\…
    if let Some(rest) = rel.strip_prefix("c$\\windows\\") {
        return format!("admin$\\{rest}");
    }
    if rel == "c$\\windows" {
        return "admin$\\".into();
    }
    rel.to_string()
}

/// Does the binary path run a command interpreter (cmd, %COMSPEC%, PowerShell, script hosts)?
pub fn runs_interpreter(binary_path: &str) -> bool {
    let l = binary_path.to_ascii_lowercase();
    [
        "%comspec%",
        "cmd.exe",
        "cmd /c",
        "powershell",
        "pwsh",
        "mshta",
        "rundll32",
        "regsvr32",
        "wscript",
        "cscript",
    ]
    .iter()
    .any(|k| l.contains(k))
}

/// Letters-only (or hex-ish) names of a typical tool length that do not read like a word: mixed
/// case without a word shape (`nUwj`, `zeCGSXch`), or all-hex with digits (`768870c`).
pub fn looks_random(name: &str, lengths: &[usize]) -> bool {
    let n = name.chars().count();
    if !lengths.contains(&n) || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return false;
    }
    let upper = name.chars().filter(|c| c.is_ascii_uppercase()).count();
    let lower = name.chars().filter(|c| c.is_ascii_lowercase()).count();
    let digits = name.chars().filter(|c| c.is_ascii_digit()).count();
    if digits > 0 && upper == 0 && name.chars().all(|c| c.is_ascii_hexdigit()) {
        return true;
    }
    if digits > 0 {
        return false;
    }
    if upper > 0 && lower > 0 {
        // CamelCase words (LabEvilSvc, BigSvc) start upper-case and every capital is followed by a
        // lower-case letter; random mixes (nUwj, zeCGSXch, KPZbFwrLmh) break that.
        let cs: Vec<char> = name.chars().collect();
        let camel = cs.first().is_some_and(|c| c.is_ascii_uppercase())
            && cs.iter().enumerate().all(|(i, c)| {
                !c.is_ascii_uppercase() || cs.get(i + 1).is_some_and(|d| d.is_ascii_lowercase())
            });
        return !camel;
    }
    // All one case: random if it lacks vowels in a way words do not (e.g. "btobto" is a word-like
    // string and is attributed by signature instead).
    let vowels = name.chars().filter(|c| "aeiouyAEIOUY".contains(*c)).count();
    vowels * 5 < n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_paths_normalise_to_share_paths() {
        let want = Some("admin$\\zecgsxch.exe".to_string());
        assert_eq!(share_relative("%systemroot%\\zeCGSXch.exe"), want);
        assert_eq!(share_relative("%SystemRoot%\\zeCGSXch.exe"), want);
        assert_eq!(share_relative("%windir%\\zeCGSXch.exe"), want);
        assert_eq!(share_relative("C:\\Windows\\zeCGSXch.exe"), want);
        assert_eq!(share_relative("\"C:\\Windows\\zeCGSXch.exe\" -k x"), want);
        assert_eq!(share_relative("\\\\VICTIM\\ADMIN$\\zeCGSXch.exe"), want);
        assert_eq!(
            share_relative("\\\\127.0.0.1\\C$\\Windows\\zeCGSXch.exe"),
            want
        );
        assert_eq!(
            share_relative("%SystemRoot%\\PSEXESVC.exe -s"),
            Some("admin$\\psexesvc.exe".into())
        );
        assert_eq!(
            share_relative("D:\\tools\\x.exe"),
            Some("d$\\tools\\x.exe".into())
        );
        assert_eq!(share_relative("%COMSPEC% /Q /c echo"), None);
        assert_eq!(
            upload_relative("ADMIN$", "zeCGSXch.exe"),
            "admin$\\zecgsxch.exe"
        );
        assert_eq!(
            upload_relative("C$", "\\Windows\\zeCGSXch.exe"),
            "admin$\\zecgsxch.exe"
        );
        assert_eq!(
            upload_relative("ADMIN$", "System32\\RemComSvc.exe"),
            "admin$\\system32\\remcomsvc.exe"
        );
        assert_eq!(
            share_relative("%SystemRoot%\\system32\\RemComSvc.exe"),
            Some("admin$\\system32\\remcomsvc.exe".into())
        );
    }

    #[test]
    fn shares() {
        assert!(is_admin_share("ADMIN$"));
        assert!(is_admin_share("c$"));
        assert!(is_admin_share("D$"));
        assert!(!is_admin_share("IPC$"));
        assert!(!is_admin_share("ipc$"));
        assert!(!is_admin_share("public"));
        assert!(!is_admin_share("$"));
    }

    #[test]
    fn interpreters() {
        assert!(runs_interpreter("%COMSPEC% /Q /c echo cd"));
        assert!(runs_interpreter("powershell.exe -nop -enc AAA"));
        assert!(!runs_interpreter("%SystemRoot%\\PSEXESVC.exe"));
    }

    #[test]
    fn random_names() {
        let l = [4, 7, 8, 10, 16];
        assert!(looks_random("nUwj", &l));
        assert!(looks_random("zeCGSXch", &l));
        assert!(looks_random("KPZbFwrLmh", &l));
        assert!(looks_random("768870c", &l));
        assert!(!looks_random("Spooler", &l));
        assert!(!looks_random("PSEXESVC", &l));
        assert!(!looks_random("LabEvilSvc", &l));
        assert!(looks_random("qwxzjkpl", &l));
        assert!(!looks_random("RemoteRegistry", &l));
        assert!(!looks_random("Browser", &l));
    }
}
