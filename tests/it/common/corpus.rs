//! Where the test data lives. The shared corpus is `../shared/captures` beside the crate (as CI lays
//! it out) or `$PSEXEC_SHARED_CAPTURES`. A test that needs it and does not find it fails with a
//! message saying so: a check that cannot run must never pass by returning early.

use std::path::PathBuf;

/// The repository root (captures/ and rules/ live there).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The captures bundled in the repository.
pub fn repo_captures() -> PathBuf {
    repo().join("captures")
}

/// The shared corpus directory; panics when it is absent.
pub fn shared_captures() -> PathBuf {
    let dir = std::env::var_os("PSEXEC_SHARED_CAPTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/captures"));
    assert!(
        dir.is_dir(),
        "the shared corpus is missing: expected {} (set PSEXEC_SHARED_CAPTURES to its captures/ \
         directory); this test cannot run without it",
        dir.display()
    );
    dir
}

/// One file of the shared corpus, by its path below captures/; panics when it is absent.
pub fn shared_capture(rel: &str) -> PathBuf {
    let path = shared_captures().join(rel);
    assert!(path.is_file(), "shared capture missing: {}", path.display());
    path
}
