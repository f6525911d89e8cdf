//! Runs committed fuzz corpus files through the `vegard` binary the way a
//! user would hand them over, and checks that every exit status is one the
//! README documents (0, 1, 2, 3, 4, 5, 130): never 101 (a panic), never a
//! death by signal, never a panic message on stderr, never a hang.
//!
//! | corpus | command |
//! |---|---|
//! | recipe | `vegard validate FILE` |
//! | bench | `vegard validate recipes/demo-cv.toml --bench FILE` |
//! | report_spec | `vegard report RUN --format json --out OUT --spec FILE` |
//! | circuit | `vegard fit-eis examples/eis-series/T20.csv --circuit=TEXT --starts 0` |
//! | formats, formats_binary | `vegard fit-eis FILE`, `vegard import --potentiostat FILE --deflection <trace>`, `vegard import --potentiostat <CV> --deflection FILE` |
//! | run_toml, events, raw_csv, parquet | the file put into a copy of `tests/golden/demo-run` (run.toml, events.jsonl, a raw stream, a Parquet table), then `vegard analyze --json`, `vegard report --format json`, `vegard export` or `vegard recover` |
//!
//! The corpora are sampled (every k-th file, sorted by name) to keep the
//! run time modest: `VEGARD_CORPUS_SAMPLE` files per corpus (default 6),
//! `all` for every file. `fuzz/regressions/<target>/` files are always run.
//! The MethodSCRIPT and SCPI corpora are instrument replies: no command
//! reads them without an instrument, so they are replayed only by
//! `tests/fuzz_corpus.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{tmpdir, vegard};

/// README "Commands": exit status.
const DOCUMENTED: &[i32] = &[0, 1, 2, 3, 4, 5, 130];
/// Longest any one command may take (debug build, loaded 2-core machine).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn sorted_files(dir: &Path) -> Vec<PathBuf> {
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

/// Every k-th corpus file (or all of them), then every regression input.
fn inputs(target: &str) -> Vec<PathBuf> {
    let corpus = sorted_files(&root().join("fuzz/corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ is empty or missing"
    );
    let n = match std::env::var("VEGARD_CORPUS_SAMPLE").as_deref() {
        Ok("all") => corpus.len(),
        Ok(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => panic!("VEGARD_CORPUS_SAMPLE must be a positive count or `all`, got {v:?}"),
        },
        Err(_) => 6,
    };
    let stride = corpus.len().div_ceil(n).max(1);
    let mut picked: Vec<PathBuf> = corpus.into_iter().step_by(stride).collect();
    picked.extend(sorted_files(&root().join("fuzz/regressions").join(target)));
    picked
}

/// Run `cmd` to completion (killed after [`COMMAND_TIMEOUT`]) and check its
/// exit status and stderr; `what` names the input in failures.
fn check(mut cmd: Command, what: &str, failures: &mut Vec<String>) {
    let shown = format!("{cmd:?}");
    let mut child = match cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("cannot start {shown}: {e}"),
    };
    // Drain stderr on a thread so a chatty child cannot block on a full pipe.
    let stderr = child.stderr.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = std::io::Read::read_to_end(&mut s, &mut buf);
            buf
        })
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() > COMMAND_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for {shown}: {e}"),
        }
    };
    let stderr = stderr
        .and_then(|h| h.join().ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let Some(status) = status else {
        failures.push(format!(
            "{what}: {shown} still running after {COMMAND_TIMEOUT:?}"
        ));
        return;
    };
    match status.code() {
        None => failures.push(format!("{what}: {shown} died by a signal ({status})")),
        Some(code) if !DOCUMENTED.contains(&code) => failures.push(format!(
            "{what}: {shown} exited {code}, not a documented status; stderr:\n{stderr}"
        )),
        Some(_) if stderr.contains("panicked at") => failures.push(format!(
            "{what}: {shown} panicked (exit {status}); stderr:\n{stderr}"
        )),
        Some(_) => {}
    }
}

fn report(target: &str, n_inputs: usize, failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{target}: {} of the commands failed the exit-status check:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{target}: {n_inputs} inputs through the binary, every exit status documented");
}

fn copy_dir(src: &Path, dst: &Path) {
    if let Err(e) = std::fs::create_dir_all(dst) {
        panic!("{}: {e}", dst.display());
    }
    let entries = match std::fs::read_dir(src) {
        Ok(e) => e,
        Err(e) => panic!("{}: {e}", src.display()),
    };
    for e in entries.filter_map(Result::ok) {
        let to = dst.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &to);
        } else if let Err(err) = std::fs::copy(e.path(), &to) {
            panic!("{} -> {}: {err}", e.path().display(), to.display());
        }
    }
}

fn display(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

#[test]
fn recipe_corpus_through_validate() {
    let files = inputs("recipe");
    let mut failures = Vec::new();
    for f in &files {
        let mut c = vegard();
        c.arg("validate").arg(f);
        check(c, &display(f), &mut failures);
    }
    report("recipe", files.len(), failures);
}

#[test]
fn bench_corpus_through_validate() {
    let files = inputs("bench");
    let mut failures = Vec::new();
    for f in &files {
        let mut c = vegard();
        c.args(["validate", "recipes/demo-cv.toml", "--bench"])
            .arg(f);
        check(c, &display(f), &mut failures);
    }
    report("bench", files.len(), failures);
}

#[test]
fn report_spec_corpus_through_report() {
    let files = inputs("report_spec");
    let dir = tmpdir("corpus-spec");
    let run = dir.join("demo-run");
    copy_dir(&root().join("tests/golden/demo-run"), &run);
    let mut failures = Vec::new();
    for f in &files {
        let mut c = vegard();
        c.arg("report")
            .arg(&run)
            .args(["--format", "json", "--out"])
            .arg(dir.join("report.json"))
            .arg("--spec")
            .arg(f);
        check(c, &display(f), &mut failures);
    }
    let _ = std::fs::remove_dir_all(&dir);
    report("report_spec", files.len(), failures);
}

#[test]
fn circuit_corpus_through_fit_eis() {
    let files = inputs("circuit");
    let mut failures = Vec::new();
    let mut n = 0;
    for f in &files {
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) => panic!("{}: {e}", f.display()),
        };
        // An argument cannot hold a NUL byte; the shell could not pass one.
        if bytes.contains(&0) {
            continue;
        }
        n += 1;
        let mut arg = std::ffi::OsString::from("--circuit=");
        arg.push(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&bytes));
        let mut c = vegard();
        c.args(["fit-eis", "examples/eis-series/T20.csv", "--starts", "0"])
            .arg(arg);
        check(c, &display(f), &mut failures);
    }
    report("circuit", n, failures);
}

/// A spectrum file to `fit-eis`, and the file as either side of `import`.
fn formats_through_the_binary(target: &str) {
    let files = inputs(target);
    let dir = tmpdir(&format!("corpus-{target}"));
    let mut failures = Vec::new();
    for f in &files {
        let mut c = vegard();
        c.args(["fit-eis", "--starts", "0"]).arg(f);
        check(c, &display(f), &mut failures);

        let mut c = vegard();
        c.arg("import")
            .arg("--potentiostat")
            .arg(f)
            .args(["--deflection", "examples/import/trace-sync.csv", "--out"])
            .arg(dir.join("as-potentiostat"));
        check(c, &display(f), &mut failures);

        let mut c = vegard();
        c.args([
            "import",
            "--potentiostat",
            "examples/import/Pt_poly_cv_CUT.mpt",
            "--deflection",
        ])
        .arg(f)
        .arg("--out")
        .arg(dir.join("as-deflection"));
        check(c, &display(f), &mut failures);
    }
    let _ = std::fs::remove_dir_all(&dir);
    report(target, files.len(), failures);
}

#[test]
fn formats_corpus_through_fit_eis_and_import() {
    formats_through_the_binary("formats");
}

#[test]
fn formats_binary_corpus_through_fit_eis_and_import() {
    formats_through_the_binary("formats_binary");
}

/// Each input as `file` (relative) in a fresh copy of the golden demo run,
/// then every command in `commands` on that folder (`RUN` stands for it,
/// `OUT` for a file beside it).
fn run_folder_through_the_binary(target: &str, files_in_run: &[&str], commands: &[&[&str]]) {
    let inputs = inputs(target);
    let dir = tmpdir(&format!("corpus-{target}"));
    let mut failures = Vec::new();
    for (k, f) in inputs.iter().enumerate() {
        let run = dir.join(format!("run-{k}"));
        copy_dir(&root().join("tests/golden/demo-run"), &run);
        // Rotate through the places this kind of file takes.
        let place = files_in_run[k % files_in_run.len()];
        if let Err(e) = std::fs::copy(f, run.join(place)) {
            panic!("{} -> {place}: {e}", f.display());
        }
        let what = format!("{} as {place}", display(f));
        for args in commands {
            let mut c = vegard();
            for a in *args {
                match *a {
                    "RUN" => c.arg(&run),
                    "OUT" => c.arg(dir.join(format!("out-{k}"))),
                    other => c.arg(other),
                };
            }
            check(c, &what, &mut failures);
        }
        let _ = std::fs::remove_dir_all(&run);
    }
    let _ = std::fs::remove_dir_all(&dir);
    report(target, inputs.len(), failures);
}

const ANALYZE: &[&str] = &["analyze", "RUN", "--json"];
const REPORT: &[&str] = &["report", "RUN", "--format", "json", "--out", "OUT"];
const EXPORT: &[&str] = &["export", "RUN", "--out", "OUT"];
const RECOVER: &[&str] = &["recover", "RUN"];

#[test]
fn run_toml_corpus_through_analyze_report_export() {
    run_folder_through_the_binary("run_toml", &["run.toml"], &[ANALYZE, REPORT, EXPORT]);
}

#[test]
fn events_corpus_through_report_and_recover() {
    run_folder_through_the_binary("events", &["events.jsonl"], &[REPORT, RECOVER]);
}

#[test]
fn raw_csv_corpus_through_recover() {
    run_folder_through_the_binary(
        "raw_csv",
        &[
            "raw/potentiostat.csv",
            "raw/deflection.csv",
            "raw/temperature.csv",
        ],
        &[RECOVER],
    );
}

#[test]
fn raw_arrows_corpus_through_recover() {
    run_folder_through_the_binary(
        "raw_arrows",
        &["raw/potentiostat.arrows", "raw/deflection.arrows"],
        &[RECOVER],
    );
}

#[test]
fn parquet_corpus_through_analyze_report_export() {
    run_folder_through_the_binary(
        "parquet",
        &[
            "data/potentiostat.parquet",
            "aligned.parquet",
            "data/eis.parquet",
            "data/esm.parquet",
            "data/deflection.parquet",
            "data/temperature.parquet",
        ],
        &[ANALYZE, REPORT, EXPORT],
    );
}
