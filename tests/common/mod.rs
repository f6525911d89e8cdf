//! Helpers shared by the end-to-end test files.

use std::path::PathBuf;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// The `vegard` binary under test, run from the repository root (so
/// `recipes/` and `configs/` resolve as in the README).
pub fn vegard() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vegard"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// A fresh folder under the system temp dir, unique per test and process.
pub fn tmpdir(tag: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let d = std::env::temp_dir().join(format!("vegard-test-{tag}-{}-{nanos}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&d) {
        panic!("{}: {e}", d.display());
    }
    d
}
