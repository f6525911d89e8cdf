//! Absurd durations are bad input, not a panic or an instant abort: a
//! `timeout_s` of 1e19 (past `Instant`'s range) or 1e10 in a bench config or
//! a recipe makes `vegard validate` and `vegard run` exit 2 with a
//! `FILE:LINE:COL: field: message` error, before anything is started.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{tmpdir, vegard};

/// `text` with the first `from` replaced by `to`, written to `dir/name`;
/// returns the path and the 1-based line of the replacement.
fn write_with(dir: &Path, name: &str, text: &str, from: &str, to: &str) -> (PathBuf, usize) {
    let at = text
        .find(from)
        .unwrap_or_else(|| panic!("{from:?} not found"));
    let line = text[..at].matches('\n').count() + 1;
    let path = dir.join(name);
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    (path, line)
}

/// Run `vegard args...`; expect exit 2, no panic, and stderr starting with
/// `FILE:LINE:1: timeout_s must be <= ... (got VALUE s)`.
fn expect_bad_input(args: &[&str], file: &Path, line: usize, value: &str, bound: &str) {
    let out = vegard().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    let want = format!(
        "{}:{line}:1: timeout_s must be <= {bound} (",
        file.display()
    );
    assert!(
        err.starts_with(&want),
        "{args:?}: want {want:?}\ngot: {err}"
    );
    // As the message prints numbers: shortest round trip (1e10 -> 10000000000.0).
    let got = format!("(got {:?} s)", value.parse::<f64>().unwrap());
    assert!(
        err.lines().next().unwrap().ends_with(&got),
        "{args:?}: {err}"
    );
}

#[test]
fn huge_bench_timeouts_are_exit_2_at_their_key() {
    let dir = tmpdir("durations-bench");
    let sim = std::fs::read_to_string("configs/sim.toml").unwrap();
    for value in ["1e19", "1e10"] {
        // The potentiostat's reply timeout (the first timeout_s in the file).
        let (bench, line) = write_with(
            &dir,
            &format!("bench-{value}.toml"),
            &sim,
            "timeout_s = 2.0",
            &format!("timeout_s = {value}"),
        );
        let b = bench.to_str().unwrap();
        let out = dir.join("runs");
        let o = out.to_str().unwrap();
        expect_bad_input(
            &["validate", "recipes/demo-cv.toml", "--bench", b],
            &bench,
            line,
            value,
            "3600.0 s (1 h)",
        );
        expect_bad_input(
            &[
                "run",
                "recipes/demo-cv.toml",
                "--bench",
                b,
                "--out",
                o,
                "--json",
            ],
            &bench,
            line,
            value,
            "3600.0 s (1 h)",
        );
        // Nothing was started: no run folder.
        assert!(
            !out.exists() || std::fs::read_dir(&out).unwrap().count() == 0,
            "a run folder for a bad bench"
        );
    }
}

#[test]
fn huge_recipe_timeouts_are_exit_2_at_their_key() {
    let dir = tmpdir("durations-recipe");
    let recipe = std::fs::read_to_string("recipes/arrhenius-campaign.toml").unwrap();
    assert!(
        recipe.contains("timeout_s = "),
        "the campaign has a stage timeout"
    );
    let from = recipe
        .lines()
        .find(|l| l.trim_start().starts_with("timeout_s = "))
        .unwrap()
        .trim_start()
        .to_owned();
    for value in ["1e19", "1e10"] {
        let (path, line) = write_with(
            &dir,
            &format!("campaign-{value}.toml"),
            &recipe,
            &from,
            &format!("timeout_s = {value}"),
        );
        // The key is indented as in the file: find its column.
        let text = std::fs::read_to_string(&path).unwrap();
        let col = text
            .lines()
            .nth(line - 1)
            .unwrap()
            .find("timeout_s")
            .unwrap()
            + 1;
        assert_eq!(col, 1, "the campaign's stage timeout starts its line");
        let p = path.to_str().unwrap();
        let out = dir.join("runs");
        let o = out.to_str().unwrap();
        expect_bad_input(&["validate", p], &path, line, value, "86400.0 s (1 day)");
        expect_bad_input(
            &["run", p, "--out", o, "--json"],
            &path,
            line,
            value,
            "86400.0 s (1 day)",
        );
    }
}
