//! Issue 16, items 2 and 4, through the binary: input limits are checked
//! before parsing, and memory and time are bounded by the input's size.
//! Every refusal is exit 2 with the file's name (and `FILE:LINE:COL` where
//! a position exists), never a panic, an abort or minutes of work.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{tmpdir, vegard};

fn run(args: &[&str]) -> Output {
    vegard().args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit 2, no panic, and the first line of stderr starting with `want`.
fn expect_exit_2(args: &[&str], want: &str) -> String {
    let out = run(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(err.starts_with(want), "{args:?}: want {want:?}\ngot: {err}");
    err
}

/// `text` with the first `from` replaced by `to`, written to `dir/name`.
fn write_with(dir: &Path, name: &str, text: &str, from: &str, to: &str) -> PathBuf {
    assert!(text.contains(from), "{from:?}");
    let path = dir.join(name);
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// impedance.py's example spectrum (66 rows, f, Z', Z''), from the
/// formats crate's test data (the project's own copy).
fn example_rows() -> Vec<String> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/vegard-formats/tests/data/vendors/exampleData.csv");
    std::fs::read_to_string(&p)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Nothing was started: `dir` has no run folder.
fn no_run_folder(dir: &Path) {
    assert!(
        !dir.exists() || std::fs::read_dir(dir).unwrap().count() == 0,
        "a run folder for bad input in {}",
        dir.display()
    );
}

#[test]
fn a_timeout_of_i64_max_in_the_bench_is_exit_2_not_a_panic() {
    // The value, an integer literal (the earlier test used 1e19).
    let dir = tmpdir("robust-timeout");
    let sim = std::fs::read_to_string("configs/sim.toml").unwrap();
    let bench = write_with(
        &dir,
        "bench.toml",
        &sim,
        "timeout_s = 2.0",
        "timeout_s = 9223372036854775807",
    );
    let want = format!(
        "{}:22:1: timeout_s must be <= 3600.0 s (1 h) (an instrument reply timeout; longer \
         only hangs the run) (got 9.223372036854776e18 s)",
        bench.display()
    );
    expect_exit_2(
        &["validate", "recipes/demo-cv.toml", "--bench", s(&bench)],
        &want,
    );
    let runs = dir.join("runs");
    expect_exit_2(
        &[
            "run",
            "recipes/demo-cv.toml",
            "--bench",
            s(&bench),
            "--out",
            s(&runs),
            "--json",
        ],
        &want,
    );
    no_run_folder(&runs);
}

/// The other numbers of recipe and bench that become allocation sizes:
/// validate passed them and `run` aborted (nodes) or `validate` itself
/// allocated 34 GB and aborted (points_per_decade).
#[test]
fn counts_that_size_allocations_are_exit_2_at_their_key() {
    let dir = tmpdir("robust-counts");
    let sim = std::fs::read_to_string("configs/sim.toml").unwrap();
    let bench = write_with(
        &dir,
        "nodes.toml",
        &sim,
        "nodes = 80",
        "nodes = 1000000000000",
    );
    let want = format!("{}:61:1: nodes must be >= 10 and <= 1000", bench.display());
    expect_exit_2(
        &["validate", "recipes/demo-cv.toml", "--bench", s(&bench)],
        &want,
    );
    let runs = dir.join("runs");
    expect_exit_2(
        &[
            "run",
            "recipes/demo-cv.toml",
            "--bench",
            s(&bench),
            "--out",
            s(&runs),
            "--no-tui",
        ],
        &want,
    );
    no_run_folder(&runs);

    let eis = std::fs::read_to_string("recipes/eis.toml").unwrap();
    let recipe = write_with(
        &dir,
        "eis.toml",
        &eis,
        "points_per_decade = 5",
        "points_per_decade = 4000000000",
    );
    expect_exit_2(
        &["validate", s(&recipe)],
        &format!(
            "{}:34:1: points_per_decade must be such that the sweep has <= 10000 frequencies",
            recipe.display()
        ),
    );

    let bench = write_with(
        &dir,
        "pin.toml",
        &sim,
        "trigger_gpio_pin = 0",
        "trigger_gpio_pin = 200",
    );
    expect_exit_2(
        &["validate", "recipes/demo-cv.toml", "--bench", s(&bench)],
        &format!("{}:20:1: trigger_gpio_pin must be <= 15", bench.display()),
    );
}

#[test]
fn a_corrupt_run_toml_names_the_file() {
    let dir = tmpdir("robust-runtoml");
    let run_dir = dir.join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let meta = run_dir.join("run.toml");
    let want_at = |line: usize, col: usize| format!("{}:{line}:{col}: ", meta.display());

    // Syntax: `FILE:LINE:COL: message`, one line (the parser's snippet is
    // not repeated).
    std::fs::write(&meta, "name = \"x\"\nstatus = [1,\n").unwrap();
    for cmd in ["analyze", "report"] {
        let out = run(&[cmd, s(&run_dir)]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{cmd}: {err}");
        assert!(
            err.contains(&format!("{}unclosed array, expected `]`", want_at(2, 13))),
            "{cmd}: {err}"
        );
        assert!(!err.contains("TOML parse error"), "{cmd}: {err}");
    }

    // Not UTF-8: the line and column of the byte.
    std::fs::write(&meta, b"name = \"x\"\nsample = \"caf\xE9\"\n").unwrap();
    let err = stderr(&run(&["analyze", s(&run_dir)]));
    assert!(
        err.contains(&format!("{}not UTF-8: byte 0xE9", want_at(2, 14))),
        "{err}"
    );

    // Nesting past the limit: refused before the parser sees it.
    std::fs::write(&meta, format!("x = {}", "[".repeat(40))).unwrap();
    let err = stderr(&run(&["analyze", s(&run_dir)]));
    assert!(
        err.contains(&format!("{}nested 33 levels deep", want_at(1, 37))),
        "{err}"
    );
}

#[test]
fn non_utf8_recipe_reports_line_and_column() {
    let dir = tmpdir("robust-utf8");
    let recipe = dir.join("r.toml");
    std::fs::write(&recipe, b"[run]\nname = \"caf\xE9\"\n").unwrap();
    expect_exit_2(
        &["validate", s(&recipe)],
        &format!(
            "{}:2:12: not UTF-8: byte 0xE9 is not valid here",
            recipe.display()
        ),
    );
    let bench = dir.join("b.toml");
    std::fs::write(&bench, b"# 5 \xB5m\n").unwrap();
    expect_exit_2(
        &["validate", "recipes/demo-cv.toml", "--bench", s(&bench)],
        &format!("{}:1:5: not UTF-8: byte 0xB5", bench.display()),
    );
    // A report spec is checked before the run folder is looked at.
    let spec = dir.join("spec.toml");
    std::fs::write(&spec, b"title = \"\xE9\"\n").unwrap();
    expect_exit_2(
        &["report", s(&dir.join("no-run")), "--spec", s(&spec)],
        &format!("{}:1:10: not UTF-8: byte 0xE9", spec.display()),
    );
    // fit-eis's temperature table too.
    let table = dir.join("t.csv");
    std::fs::write(&table, b"file,T_C\na.csv,25\xB0\n").unwrap();
    expect_exit_2(
        &["fit-eis", "--temperatures", s(&table)],
        &format!("{}:2:9: not UTF-8: byte 0xB0", table.display()),
    );
}

#[test]
fn deeply_nested_recipe_is_refused_before_parsing() {
    let dir = tmpdir("robust-deep");
    // The 20 MB recipe (1 GB of parser memory before): refused by
    // its size before it is read.
    let big = dir.join("deep20.toml");
    let mut text = b"[run]\nname = \"x\"\nd = ".to_vec();
    text.extend(std::iter::repeat_n(b'[', 20 << 20));
    std::fs::write(&big, &text).unwrap();
    expect_exit_2(
        &["validate", s(&big)],
        &format!(
            "{}: {} bytes is larger than a configuration file may be (1048576 bytes, 1 MiB; \
             real ones are a few kB)",
            big.display(),
            text.len()
        ),
    );
    std::fs::remove_file(&big).unwrap();

    // Under the size limit: the nesting scan stops at level 33
    // (`[run]` is level 1), one pass, before the parser.
    let deep = dir.join("deep.toml");
    let mut text = b"[run]\nname = \"x\"\nd = ".to_vec();
    text.extend(std::iter::repeat_n(b"[".as_slice(), 500).flatten());
    std::fs::write(&deep, &text).unwrap();
    expect_exit_2(
        &["validate", s(&deep)],
        &format!(
            "{}:3:36: nested 33 levels deep: at most 32 levels of arrays, inline tables and \
             dotted keys",
            deep.display()
        ),
    );
    // A bench and a report spec the same way.
    std::fs::write(&deep, format!("x = {}", "{a = ".repeat(100))).unwrap();
    expect_exit_2(
        &["validate", "recipes/demo-cv.toml", "--bench", s(&deep)],
        &format!("{}:1:165: nested 33 levels deep", deep.display()),
    );
    expect_exit_2(
        &["report", s(&dir.join("no-run")), "--spec", s(&deep)],
        &format!("{}:1:165: nested 33 levels deep", deep.display()),
    );
}

#[test]
fn nested_circuit_is_refused_at_the_depth_limit() {
    let dir = tmpdir("robust-circuit");
    let csv = dir.join("example.csv");
    std::fs::write(&csv, example_rows().join("\n")).unwrap();
    // 5000 single-branch levels: the old parser accepted it and the fit
    // ran for minutes (quadratic in the depth); now column 65 is block 33.
    let circuit = format!("{}R0{}", "p(".repeat(5000), ")".repeat(5000));
    let err = expect_exit_2(
        &["fit-eis", s(&csv), "--circuit", &circuit],
        &format!(
            "--circuit \"{}...\": circuit string, column 65: ",
            "p(".repeat(30)
        ),
    );
    assert!(
        err.contains(
            "expected at most 32 nested p(...) blocks (real circuits nest 1-3), found block 33"
        ),
        "{err}"
    );
    assert!(err.len() < 400, "the argument is not echoed: {err}");
}

#[test]
fn fit_eis_on_a_huge_file_is_bounded() {
    let dir = tmpdir("robust-fit-eis");
    let rows = example_rows();
    let write_rows = |name: &str, n: usize| {
        let mut text = String::with_capacity(n * 80);
        for k in 0..n {
            text.push_str(&rows[k % rows.len()]);
            text.push('\n');
        }
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    // The 930 000 lines (minutes of fitting before): the reader
    // stops at the row past its limit.
    let huge = write_rows("huge.csv", 930_000);
    expect_exit_2(
        &["fit-eis", s(&huge)],
        &format!(
            "{}:100001: more than 100000 data rows: an impedance spectrum (a measured one \
             has 10-1000) has at most 100000 points here; decimate it or split it",
            huge.display()
        ),
    );
    std::fs::remove_file(&huge).unwrap();
    // Within the reader's limit but past the fit's: refused before
    // fitting, with how to decimate.
    let big = write_rows("big.csv", 50_000);
    expect_exit_2(
        &["fit-eis", s(&big), "--json"],
        "too much data: 50000 impedance points, at most 10000 can be fitted (a measured \
         spectrum has 10-1000 frequencies): decimate the spectrum, e.g. keep one point in 5",
    );
    std::fs::remove_file(&big).unwrap();
}
