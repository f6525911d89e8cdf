//! The crate layering of ARCHITECTURE.md, checked: every workspace crate's
//! dependencies on other vegard crates (from `cargo metadata`) must be
//! listed in its row of the crate table's "may depend on" column. A wrong
//! arrow (the report reaching for the engine, the engine for the emulators)
//! fails here, and so does a table that no longer describes the code.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// `crate -> (row index, allowed vegard dependencies)`, read from
/// ARCHITECTURE.md's crate table: rows
/// `| layer | \`crate\` | purpose | \`a\`, \`b\` |`, lowest layer first.
fn allowed_from_architecture() -> BTreeMap<String, (usize, BTreeSet<String>)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/ARCHITECTURE.md"))
        .expect("ARCHITECTURE.md");
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').collect();
        if cells.len() != 4 {
            continue;
        }
        let name = ticked(cells[1]);
        let [name] = name.as_slice() else { continue };
        if !(name.starts_with("vegard")) {
            continue;
        }
        let deps = ticked(cells[3]).into_iter().collect();
        let row = out.len();
        out.insert(name.clone(), (row, deps));
    }
    out
}

/// `crate -> its normal (non-dev) dependencies on workspace crates`.
fn actual_from_metadata() -> BTreeMap<String, BTreeSet<String>> {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let members: BTreeSet<String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null()) // normal deps; dev/build are "dev"/"build"
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .filter(|n| members.contains(n))
                .collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

#[test]
fn every_crate_depends_only_on_what_architecture_md_allows() {
    let allowed = allowed_from_architecture();
    let actual = actual_from_metadata();
    assert!(
        allowed.len() >= 10,
        "ARCHITECTURE.md crate table not found or too short: {allowed:?}"
    );
    let mut problems = Vec::new();
    for (name, deps) in &actual {
        let Some((_, ok)) = allowed.get(name) else {
            problems.push(format!("{name}: no row in ARCHITECTURE.md's crate table"));
            continue;
        };
        for d in deps.difference(ok) {
            problems.push(format!(
                "{name} depends on {d}, which ARCHITECTURE.md does not allow"
            ));
        }
    }
    // The table itself points down only: a crate may list only crates in
    // rows above it (lower layers).
    for (name, (row, ok)) in &allowed {
        for d in ok {
            match allowed.get(d) {
                Some((r, _)) if r < row => {}
                Some(_) => problems.push(format!(
                    "ARCHITECTURE.md: {name} lists {d}, which is not in a lower row"
                )),
                None => problems.push(format!("ARCHITECTURE.md: {name} lists unknown {d}")),
            }
        }
    }
    for name in allowed.keys().filter(|n| !actual.contains_key(*n)) {
        problems.push(format!(
            "ARCHITECTURE.md lists {name}, which is not in the workspace"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The arrows the redesign removed stay removed, whatever the table says.
#[test]
fn the_post_run_half_needs_no_live_engine_and_the_engine_no_emulator() {
    let actual = actual_from_metadata();
    let deps = |c: &str| actual.get(c).cloned().unwrap_or_default();
    for (from, to) in [
        ("vegard-engine", "vegard-sim"),
        ("vegard-report", "vegard-engine"),
        ("vegard-pipeline", "vegard-engine"),
        ("vegard-pipeline", "vegard-instruments"),
        ("vegard-pipeline", "vegard-sim"),
        ("vegard-sim", "vegard-instruments"),
        ("vegard-analysis", "vegard-store"),
    ] {
        assert!(!deps(from).contains(to), "{from} must not depend on {to}");
    }
    assert!(deps("vegard-report").contains("vegard-pipeline"));
}
