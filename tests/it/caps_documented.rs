//! Every cap is documented: each `pub const MAX_…` under src/ is named in README.md (its "Caps"
//! section says what reaching it does). A new cap without a README row fails here.

use std::path::Path;

fn consts(dir: &Path, out: &mut Vec<(String, String)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            consts(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            for line in std::fs::read_to_string(&p).unwrap().lines() {
                let l = line.trim_start();
                let Some(rest) = l
                    .strip_prefix("pub const ")
                    .or_else(|| l.strip_prefix("pub(crate) const "))
                else {
                    continue;
                };
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name.starts_with("MAX_") {
                    out.push((name, p.display().to_string()));
                }
            }
        }
    }
}

#[test]
fn every_max_constant_is_in_the_readme() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let caps = &readme[readme.find("## Caps").expect("README has a Caps section")..];
    let mut found = Vec::new();
    consts(&root.join("src"), &mut found);
    assert!(found.len() > 50, "the walk finds the caps: {}", found.len());
    let missing: Vec<_> = found
        .iter()
        .filter(|(n, _)| !caps.contains(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "caps missing from README.md's Caps section: {missing:?}"
    );
}
