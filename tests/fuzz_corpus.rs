//! Replays the committed fuzz corpus on the stable toolchain: every file of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through
//! the same target body the cargo-fuzz target runs (`fuzz/src/bodies.rs`),
//! one test per target. A panic fails the test naming the file. Fuzzing
//! itself (nightly, libFuzzer) is `scripts/fuzz.sh`; see README "Fuzzing".

#[path = "../fuzz/src/bodies.rs"]
mod bodies;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let Some(&(_, body)) = bodies::TARGETS.iter().find(|(name, _)| *name == target) else {
        panic!("no fuzz target body named {target}");
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let corpus = files_in(&root.join("corpus").join(target));
    // A missing corpus would make this test pass without testing anything.
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ is empty or missing"
    );
    let regressions = files_in(&root.join("regressions").join(target));
    let mut failed = Vec::new();
    for file in corpus.iter().chain(&regressions) {
        let data = match std::fs::read(file) {
            Ok(d) => d,
            Err(e) => panic!("cannot read {}: {e}", file.display()),
        };
        if catch_unwind(AssertUnwindSafe(|| body(&data))).is_err() {
            failed.push(file.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "fuzz target {target} panicked on {} of {} inputs: {failed:#?}",
        failed.len(),
        corpus.len() + regressions.len()
    );
    eprintln!(
        "{target}: {} corpus + {} regression inputs replayed",
        corpus.len(),
        regressions.len()
    );
}

#[test]
fn every_target_has_a_replay_test() {
    let this = include_str!("fuzz_corpus.rs");
    for (name, _) in bodies::TARGETS {
        assert!(
            this.contains(&format!("fn {name}() {{\n    replay(\"{name}\")")),
            "tests/fuzz_corpus.rs has no replay test for target {name}"
        );
    }
}

#[test]
fn recipe() {
    replay("recipe")
}

#[test]
fn bench() {
    replay("bench")
}

#[test]
fn report_spec() {
    replay("report_spec")
}

#[test]
fn circuit() {
    replay("circuit")
}

#[test]
fn formats() {
    replay("formats")
}

#[test]
fn formats_binary() {
    replay("formats_binary")
}

#[test]
fn methodscript() {
    replay("methodscript")
}

#[test]
fn methodscript_driver() {
    replay("methodscript_driver")
}

#[test]
fn scpi() {
    replay("scpi")
}

#[test]
fn run_toml() {
    replay("run_toml")
}

#[test]
fn events() {
    replay("events")
}

#[test]
fn raw_csv() {
    replay("raw_csv")
}

#[test]
fn raw_arrows() {
    replay("raw_arrows")
}

#[test]
fn parquet() {
    replay("parquet")
}
