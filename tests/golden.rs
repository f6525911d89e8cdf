//! Golden test of the post-run pipeline: committed run folders recorded on
//! the virtual bench before the pipeline moved out of the engine
//! (`tests/golden/<name>/`), analysed and reported now, compared with what
//! `vegard analyze --json` and `vegard report --format json` printed for
//! them before the change (`tests/golden/<name>.analyze.json`,
//! `<name>.report.json`).
//!
//! What may differ, and why (README "Golden outputs"):
//! - volatile values: the report's `created_utc`, fit times (`fit_time_s`),
//!   and the folder's path (the test analyses a copy);
//! - documented key changes: `analysis_errors[]` / `analysis_warnings[]`
//!   entries are objects `{step, kind, message}` now (strings before); the
//!   comparison reads their `message`, which is the old string; EIS fits
//!   (`...fit`) carry new keys (`NEW_EIS_FIT_KEYS`: status, quality, arcs).
//!
//! Numbers are compared with a relative tolerance of 1e-6 (linear algebra
//! that changed library may round differently in the last bits; a real
//! change of an analysis moves them far more).
//!
//! Re-record (only when an output changes on purpose, and say why in the
//! commit): `VEGARD_GOLDEN_RECORD=1 cargo test --test golden`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::path::{Path, PathBuf};

use common::{tmpdir, vegard};
use serde_json::Value;

/// JSON as the golden files were first written (one-space indent), so a
/// re-record's diff shows only what changed.
fn pretty(v: &Value) -> String {
    use serde::Serialize;
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b" "),
    );
    v.serialize(&mut ser).unwrap();
    String::from_utf8(out).unwrap()
}

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");
const REL_TOL: f64 = 1e-6;
/// Keys whose values change from one invocation to the next.
const VOLATILE: [&str; 2] = ["created_utc", "fit_time_s"];
/// Keys added to every EIS fit (`eis_fits[].fit`) since the recording
/// (issue 13: fit status, winning start, quality figures, arcs): allowed
/// as new keys; every key and number that was there is still compared.
const NEW_EIS_FIT_KEYS: [&str; 14] = [
    "status",
    "start",
    "n_starts",
    "given_guess_chi2",
    "relabelled",
    "rmse_unweighted_ohm",
    "chi2_weighted",
    "rmse_weighted",
    "chi2_reduced",
    "dof",
    "aic",
    "bic",
    "condition_number",
    "arcs",
];
/// Keys whose entries are typed issues now (`{step, kind, message}`).
const ISSUE_LISTS: [&str; 2] = ["analysis_errors", "analysis_warnings"];

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// A copy of the committed run folder in a fresh temp folder (analyze
/// writes analysis.json into the run folder).
fn copy_of(name: &str) -> (PathBuf, PathBuf) {
    let tmp = tmpdir(&format!("golden-{name}"));
    let run = tmp.join(name);
    copy_dir(&Path::new(GOLDEN).join(name), &run);
    (tmp, run)
}

fn run_ok(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The outputs of both commands for a copy of the folder, with its path
/// replaced by `<RUN>` so they do not depend on where the copy is.
fn outputs(name: &str) -> (Value, Value) {
    let (tmp, run) = copy_of(name);
    let analyze = run_ok(vegard().arg("analyze").arg(&run).arg("--json"));
    let report_path = tmp.join("report.json");
    run_ok(
        vegard()
            .arg("report")
            .arg(&run)
            .args(["--format", "json", "--out"])
            .arg(&report_path),
    );
    let report = std::fs::read_to_string(&report_path).unwrap();
    let placeholder = |text: &str| {
        let escaped = serde_json::to_string(&run.display().to_string()).unwrap();
        let escaped = escaped.trim_matches('"');
        text.replace(escaped, "<RUN>")
    };
    let parse = |text: String| -> Value { serde_json::from_str(&placeholder(&text)).unwrap() };
    let out = (parse(analyze), parse(report));
    let _ = std::fs::remove_dir_all(&tmp);
    out
}

/// Volatile values out, typed issues read as their message.
fn normalise(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for k in VOLATILE {
                if map.contains_key(k) {
                    map.insert(k.to_owned(), Value::String("<volatile>".into()));
                }
            }
            for k in ISSUE_LISTS {
                if let Some(Value::Array(items)) = map.get_mut(k) {
                    for item in items.iter_mut() {
                        if let Some(m) = item.get("message").cloned() {
                            *item = m;
                        }
                    }
                }
            }
            for (_, x) in map.iter_mut() {
                normalise(x);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalise),
        _ => {}
    }
}

/// Every difference between `got` and `want`, as `path: got vs want`.
fn diff(path: &str, got: &Value, want: &Value, out: &mut Vec<String>) {
    match (got, want) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            if (a - b).abs() > REL_TOL * b.abs().max(a.abs()) && (a - b).abs() > 1e-300 {
                out.push(format!("{path}: {a:e} vs {b:e}"));
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            for (k, vb) in b {
                match a.get(k) {
                    Some(va) => diff(&format!("{path}.{k}"), va, vb, out),
                    None => out.push(format!("{path}.{k}: missing")),
                }
            }
            let new_fit_key = |k: &str| path.ends_with(".fit") && NEW_EIS_FIT_KEYS.contains(&k);
            for k in a.keys().filter(|k| !b.contains_key(*k) && !new_fit_key(k)) {
                out.push(format!("{path}.{k}: new key"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                out.push(format!("{path}: {} items vs {}", a.len(), b.len()));
            }
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                diff(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{path}: {a} vs {b}")),
    }
}

fn check(name: &str) {
    let (mut analyze, mut report) = outputs(name);
    let dir = Path::new(GOLDEN);
    let analyze_file = dir.join(format!("{name}.analyze.json"));
    let report_file = dir.join(format!("{name}.report.json"));
    if std::env::var_os("VEGARD_GOLDEN_RECORD").is_some() {
        std::fs::write(&analyze_file, pretty(&analyze)).unwrap();
        std::fs::write(&report_file, pretty(&report)).unwrap();
        eprintln!(
            "recorded {} and {}",
            analyze_file.display(),
            report_file.display()
        );
        return;
    }
    let read =
        |p: &Path| -> Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let (mut want_analyze, mut want_report) = (read(&analyze_file), read(&report_file));
    for v in [
        &mut analyze,
        &mut report,
        &mut want_analyze,
        &mut want_report,
    ] {
        normalise(v);
    }
    let mut d = Vec::new();
    diff("analyze", &analyze, &want_analyze, &mut d);
    diff("report", &report, &want_report, &mut d);
    assert!(
        d.is_empty(),
        "{name}: {} differences from the golden outputs:\n{}",
        d.len(),
        d.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
    // The comparison must be able to fail: a changed number is caught.
    let mut changed = want_analyze.clone();
    changed["time_acceleration"] = Value::from(
        want_analyze["time_acceleration"].as_f64().unwrap_or(1.0) * (1.0 + 10.0 * REL_TOL),
    );
    let mut d = Vec::new();
    diff("analyze", &changed, &want_analyze, &mut d);
    assert_eq!(d.len(), 1, "{d:?}");
}

/// Two tables equal column by column (names, order, kinds, values; NaN
/// equals NaN), but for the parameter-sweep labels added since.
fn same_table(what: &str, got: &vegard_store::Table, want: &vegard_store::Table) {
    use vegard_store::Column;
    // Documented change: aligned.parquet, data/eis.parquet and
    // data/esm.parquet end with the parameter-sweep labels now (`sweep_*`,
    // issue 19); the recorded folder has no parameter sweep, so they must
    // be all missing, and the rest compares as before.
    let label_names: Vec<&str> = vegard_store::schema::SweepLabels::COLUMNS
        .iter()
        .map(|c| c.name.as_ref())
        .collect();
    let mut got = got.clone();
    if want.column(label_names[0]).is_none() && got.column(label_names[0]).is_some() {
        for name in &label_names {
            let values = got.f64(name).unwrap();
            assert!(
                values.iter().all(|v| v.is_nan()),
                "{what}.{name}: a label outside any parameter sweep"
            );
        }
        got.columns
            .retain(|(name, _)| !label_names.contains(&name.as_str()));
    }
    let got = &got;
    if want.is_empty() {
        // Documented change: an empty data/eis.parquet (a run without EIS)
        // used to list its derived columns in another order than a full
        // one; the schema writes one order for both.
        let sorted = |t: &vegard_store::Table| {
            let mut n: Vec<String> = t.names().into_iter().map(str::to_owned).collect();
            n.sort();
            n
        };
        assert_eq!(sorted(got), sorted(want), "{what}: columns");
        assert!(got.is_empty(), "{what}: rows");
        return;
    }
    assert_eq!(got.names(), want.names(), "{what}: columns");
    for ((name, a), (_, b)) in got.columns.iter().zip(&want.columns) {
        match (a, b) {
            // Documented change: a row outside any sweep had iteration -1;
            // it is missing now (a Parquet null), as every other label is.
            (Column::I64(a), Column::I64(b)) if name == "sweep_iteration" => {
                let old = |&i: &i64| {
                    if i == -1 {
                        vegard_store::MISSING_I64
                    } else {
                        i
                    }
                };
                assert_eq!(a, &b.iter().map(old).collect::<Vec<_>>(), "{what}.{name}");
            }
            (Column::I64(a), Column::I64(b)) => assert_eq!(a, b, "{what}.{name}"),
            (Column::F64(a), Column::F64(b)) => {
                assert_eq!(a.len(), b.len(), "{what}.{name}");
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    assert!(
                        x == y || (x.is_nan() && y.is_nan()),
                        "{what}.{name}[{i}]: {x} vs {y}"
                    );
                }
            }
            _ => panic!("{what}.{name}: column kind changed"),
        }
    }
}

/// Finalisation moved too (engine -> vegard-pipeline): re-finalising the
/// demo run's raw streams (`vegard recover`) must rebuild exactly the
/// Parquet files and run.toml tables the old engine wrote at the end of the
/// run.
#[test]
fn golden_demo_run_refinalises_to_the_same_files() {
    let (tmp, run) = copy_of("demo-run");
    let want_dir = Path::new(GOLDEN).join("demo-run");
    run_ok(vegard().arg("recover").arg(&run));
    let mut files = vec![PathBuf::from("aligned.parquet")];
    for e in std::fs::read_dir(want_dir.join("data")).unwrap() {
        files.push(Path::new("data").join(e.unwrap().file_name()));
    }
    assert_eq!(files.len(), 7, "{files:?}");
    for f in &files {
        let read = |dir: &Path| vegard_store::read_parquet(&dir.join(f)).unwrap();
        same_table(&f.display().to_string(), &read(&run), &read(&want_dir));
    }
    let meta = |dir: &Path| vegard_store::read_meta(dir).unwrap();
    let (got, want) = (meta(&run), meta(&want_dir));
    // NaN-aware: compare the tables as JSON (NaN -> null).
    assert_eq!(json(&got.alignment), json(&want.alignment), "[alignment]");
    assert_eq!(json(&got.steps), json(&want.steps), "[[steps]]");
    // Figures computed from the data agree to REL_TOL (a change of
    // summation order moves the last digits), everything else exactly.
    let mut out = Vec::new();
    diff(
        "analysis_summary",
        &json(&got.analysis_summary),
        &json(&want.analysis_summary),
        &mut out,
    );
    assert!(out.is_empty(), "{}", out.join("\n"));
    assert_eq!(got.status, want.status);
    let _ = std::fs::remove_dir_all(&tmp);
}

fn json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap()
}

#[test]
fn golden_demo_run_analyses_and_reports_as_before() {
    check("demo-run");
}

#[test]
fn golden_campaign_run_analyses_and_reports_as_before() {
    check("campaign-run");
}
