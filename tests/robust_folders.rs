//! Run folders as a crash or a hostile user leaves them (issue 16 item 3):
//! recovery must never make a folder worse, one junk line of events.jsonl
//! must not cost a report, and `vegard watch` must say what it cannot read
//! instead of waiting forever. Each test works on a copy of the committed
//! demo run (`tests/golden/demo-run`), damaged the way the issue measured.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{tmpdir, vegard};
use serde_json::Value;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/demo-run");

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

/// A fresh copy of the demo run folder: (temp folder, run folder in it).
fn demo_copy(tag: &str) -> (PathBuf, PathBuf) {
    let tmp = tmpdir(tag);
    let run = tmp.join("demo-run");
    copy_dir(Path::new(DEMO), &run);
    (tmp, run)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn explain(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Every line of events.jsonl, each of which must be a whole JSON object
/// ending in `\n`.
fn event_lines(run: &Path) -> Vec<Value> {
    let raw = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    assert!(raw.ends_with('\n'), "events.jsonl ends mid-line: {raw:?}");
    raw.lines()
        .enumerate()
        .map(|(i, l)| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("events.jsonl:{}: {e}: {l:?}", i + 1));
            assert!(v.is_object(), "events.jsonl:{}: {l:?}", i + 1);
            v
        })
        .collect()
}

/// Why: `vegard recover` appended its `recovered` event onto a half-written
/// last line, leaving a corrupt line in the folder it was to repair.
#[test]
fn recover_never_appends_onto_a_torn_event_line() {
    let (tmp, run) = demo_copy("torn-recover");
    // The process died mid-run, mid-write of an event.
    let toml_path = run.join("run.toml");
    let meta = std::fs::read_to_string(&toml_path).unwrap();
    assert!(meta.starts_with("status = \"complete\"\n"), "{meta}");
    std::fs::write(&toml_path, meta.replacen("complete", "running", 1)).unwrap();
    let before = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    let n_before = before.lines().count();
    let fragment = r#"{"t_ns":8200000000,"utc":"2026-12-02T17:13:38.1Z","kind":"step_st"#;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(run.join("events.jsonl"))
        .unwrap();
    f.write_all(fragment.as_bytes()).unwrap();
    drop(f);

    let out = vegard()
        .arg("recover")
        .arg(&run)
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", explain(&out));
    let res: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(res["status"], "interrupted", "{res}");
    assert_eq!(res["events_torn_bytes_set_aside"], fragment.len(), "{res}");

    // Nothing glued: the old lines unchanged, then the two new whole events.
    let after = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    assert!(after.starts_with(&before), "an existing line was changed");
    let events = event_lines(&run);
    assert_eq!(events.len(), n_before + 2, "{after}");
    let set_aside = &events[n_before];
    assert_eq!(set_aside["kind"], "torn_line_set_aside");
    assert_eq!(set_aside["bytes"], fragment.len());
    assert_eq!(set_aside["file"], "events.jsonl");
    assert_eq!(set_aside["kept_in"], "events.jsonl.torn");
    assert_eq!(events[n_before + 1]["kind"], "recovered");
    assert_eq!(events[n_before + 1]["status"], "interrupted");
    // The torn bytes are kept in the run folder, not lost.
    assert_eq!(
        std::fs::read_to_string(run.join("events.jsonl.torn")).unwrap(),
        format!("{fragment}\n")
    );
    let meta = vegard_store::read_meta(&run).unwrap();
    assert_eq!(meta.status, vegard_store::RunStatus::Interrupted);

    // Recovering again finds nothing torn and only adds its own event.
    let out = vegard().arg("recover").arg(&run).output().unwrap();
    assert!(out.status.success(), "{}", explain(&out));
    assert!(
        !text(&out.stdout).contains("ended in a torn line"),
        "{}",
        text(&out.stdout)
    );
    let events = event_lines(&run);
    assert_eq!(events.len(), n_before + 3);
    assert_eq!(events[n_before + 2]["kind"], "recovered");
    assert_eq!(
        std::fs::read_to_string(run.join("events.jsonl.torn")).unwrap(),
        format!("{fragment}\n"),
        "the second recovery set nothing aside"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Why: one junk line in events.jsonl made `vegard report` fail (exit 1)
/// while `vegard analyze` passed.
#[test]
fn a_junk_line_in_events_jsonl_is_reported_not_fatal_to_report() {
    let (tmp, run) = demo_copy("junk-report");
    let path = run.join("events.jsonl");
    let events = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = events.lines().collect();
    let n_good = lines.len();
    lines.insert(2, "this line is not an event");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    let out_json = tmp.join("report.json");
    let out = vegard()
        .arg("report")
        .arg(&run)
        .args(["--format", "json", "--out"])
        .arg(&out_json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", explain(&out));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&out_json).unwrap()).unwrap();
    assert_eq!(report["status"], "ok", "a warning, not a failure");
    let warnings = report["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "warnings")
        .expect("warnings section");
    let rows = warnings["tables"][0]["rows"].as_array().unwrap();
    let named: Vec<String> = rows
        .iter()
        .filter(|r| r.to_string().contains("events.jsonl:3: not JSON"))
        .map(Value::to_string)
        .collect();
    assert_eq!(named.len(), 1, "{rows:#?}");
    assert!(named[0].contains("(line skipped)"), "{}", named[0]);
    // Only the junk line is skipped: the events around it are read.
    let read = vegard_store::read_events(&run).unwrap();
    assert_eq!(read.events.len(), n_good);
    assert_eq!(read.skipped.len(), 1);
    assert_eq!(read.skipped[0].line, 3);

    // The Markdown report carries the same named warning.
    let out_md = tmp.join("report.md");
    let out = vegard()
        .arg("report")
        .arg(&run)
        .args(["--format", "md", "--out"])
        .arg(&out_md)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", explain(&out));
    let md = std::fs::read_to_string(&out_md).unwrap();
    assert!(md.contains("events.jsonl:3: not JSON"), "{md}");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Why: `vegard watch` on a run.toml that cannot be parsed waited forever
/// ("waiting for the run to start") instead of saying what is wrong. The
/// check runs before the terminal check, so it answers here too (stdout is
/// not a terminal in a test).
#[test]
fn watch_names_an_unreadable_run_toml() {
    let (tmp, run) = demo_copy("watch-toml");
    let path = run.join("run.toml");
    let meta = std::fs::read_to_string(&path).unwrap();
    let broken = meta.replacen("hostname = \"vm\"", "hostname = vm", 1);
    assert_ne!(broken, meta);
    std::fs::write(&path, broken).unwrap();
    let out = vegard().arg("watch").arg(&run).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", explain(&out));
    let err = text(&out.stderr);
    let want = format!("{}:3:12: ", path.display());
    assert!(err.starts_with(&want), "want {want:?}\n{}", explain(&out));
    assert!(!err.contains("needs a terminal"), "{err}");

    // Data that does not fit the schema is named the same way.
    std::fs::write(&path, meta.replacen("complete", "exploded", 1)).unwrap();
    let out = vegard().arg("watch").arg(&run).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", explain(&out));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!("{}:1:10: ", path.display())),
        "{}",
        explain(&out)
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Why: the same for an events.jsonl that exists but cannot be read (here a
/// folder in its place), and a junk line in it is named, not silent.
#[test]
fn watch_names_an_unreadable_events_jsonl() {
    let (tmp, run) = demo_copy("watch-events");
    let path = run.join("events.jsonl");
    let events = std::fs::read_to_string(&path).unwrap();

    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    let out = vegard().arg("watch").arg(&run).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", explain(&out));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!("{}: ", path.display())),
        "{}",
        explain(&out)
    );
    assert!(!err.contains("needs a terminal"), "{err}");

    // A junk line: a warning naming it; the watch itself would go on (here
    // it stops only because there is no terminal).
    std::fs::remove_dir(&path).unwrap();
    std::fs::write(&path, format!("{{\"kind\":\n{events}")).unwrap();
    let out = vegard().arg("watch").arg(&run).output().unwrap();
    let err = text(&out.stderr);
    assert!(
        err.contains("vegard watch: warning: events.jsonl:1: not JSON"),
        "{}",
        explain(&out)
    );
    assert!(err.contains("needs a terminal"), "{err}");
    let _ = std::fs::remove_dir_all(&tmp);
}
