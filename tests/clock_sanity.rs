//! A bench whose clock runs at another speed than the run assumes is
//! caught, not analysed: the virtual bench runs here, in the test process,
//! at 10x, and `vegard run` talks to its emulators through their resource
//! strings as to real instruments (so at 1x). The fitted drift (about
//! -900000 ppm) is beyond ±1000 ppm: the segment is marked, the run warns,
//! and kappa is reported as withheld with the drift named, in `vegard run
//! --json`, `vegard analyze` (text and `--json`) and run.toml. The same
//! recipe on a bench at the run's own speed is not flagged.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{tmpdir, vegard};
use serde_json::Value;
use vegard_sim::VirtualBench;

/// `vegard run RECIPE --bench BENCH --json [extra]`: the JSON summary and
/// the run folder.
/// `vegard run --json`, checked to exit with `code` (5: recorded, analysis
/// withheld).
fn run_json(
    recipe: &str,
    bench: Option<&Path>,
    out: &Path,
    extra: &[&str],
    code: i32,
) -> (Value, PathBuf) {
    let mut cmd = vegard();
    cmd.args(["run", recipe, "--json", "--out"]).arg(out);
    if let Some(b) = bench {
        cmd.arg("--bench").arg(b);
    }
    let o = cmd.args(extra).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(code),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let dir = PathBuf::from(v["run_dir"].as_str().unwrap());
    (v, dir)
}

fn clock_issues(list: &Value) -> Vec<&Value> {
    list.as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "clock")
        .collect()
}

/// The drift named in a clock message, ppm (`... drift -897792 ppm beyond`).
fn drift_in(message: &str) -> f64 {
    let (_, rest) = message.split_once(" drift ").unwrap();
    let (num, _) = rest.split_once(" ppm beyond").unwrap();
    num.parse().unwrap()
}

#[test]
fn a_bench_at_another_speed_is_flagged_and_kappa_withheld() {
    let dir = tmpdir("clock-sanity");
    // The standalone bench at 10x, as `vegard sim --speed 10` would serve.
    let sim_text = std::fs::read_to_string("configs/sim.toml").unwrap();
    let bench_cfg = vegard_recipe::parse_bench(&sim_text, "configs/sim.toml").unwrap();
    let mut params = bench_cfg.sim.clone().unwrap();
    params.time_acceleration = 10.0;
    let vb = VirtualBench::start(&params).unwrap();
    // The lab's bench config: the emulators' resource strings, so the run
    // treats them as real instruments running in real time (speed 1).
    let mut text = sim_text.clone();
    for r in [
        vb.potentiostat_resource(),
        vb.deflection_resource(),
        vb.lockin_resource(),
        vb.temperature_resource(),
    ] {
        // The keys, not the file's comments that mention them.
        text = text.replacen("\nresource = \"sim\"", &format!("\nresource = \"{r}\""), 1);
    }
    assert!(!text.contains("\nresource = \"sim\""), "{text}");
    let bench = dir.join("bench-at-1x.toml");
    std::fs::write(&bench, text).unwrap();

    let (v, run) = run_json("recipes/demo-cv.toml", Some(&bench), &dir, &[], 5);
    drop(vb);
    assert_eq!(v["status"], "complete", "{v}");
    // `vegard run --json`: no kappa, the clock issue in its place.
    assert!(v["deformation_vs_charge"].is_null(), "{v}");
    let issues = clock_issues(&v["analysis_errors"]);
    assert_eq!(issues.len(), 1, "{v}");
    let msg = issues[0]["message"].as_str().unwrap();
    assert_eq!(issues[0]["step"], 1, "{msg}");
    assert!(
        msg.starts_with("step 1 (cv): clock: deflection drift -"),
        "{msg}"
    );
    assert!(
        msg.contains("ppm beyond ±1000 ppm — time alignment not trustworthy"),
        "{msg}"
    );
    assert!(msg.contains("bench and run speeds differ?"), "{msg}");
    assert!(msg.ends_with("not reported"), "{msg}");
    // The bench ran 10x the run's timeline: drift 1/10 - 1 = -900000 ppm
    // (as fitted: a drift this far out is not shrunk by the quartz prior).
    let ppm = drift_in(msg);
    assert!((ppm + 900_000.0).abs() < 45_000.0, "{ppm} in {msg}");

    // run.toml: the segment marked, the issue recorded, kappa withheld.
    let meta: toml::Table =
        toml::from_str(&std::fs::read_to_string(run.join("run.toml")).unwrap()).unwrap();
    assert_eq!(meta["status"].as_str(), Some("complete"));
    let summary = meta["analysis_summary"].as_table().unwrap();
    assert!(!summary.contains_key("slope_nm_per_mC"), "{summary:?}");
    assert_eq!(summary["withheld"].as_str(), Some(msg));
    let data_issues = meta["data_issues"].as_array().unwrap();
    assert!(
        data_issues
            .iter()
            .any(|i| i["kind"].as_str() == Some("clock") && i["message"].as_str() == Some(msg)),
        "{data_issues:?}"
    );
    let segments = meta["alignment"]["segments"].as_array().unwrap();
    let cv_segment = segments
        .iter()
        .find(|s| s["step"].as_integer() == Some(1))
        .unwrap();
    let note = cv_segment["note"].as_str().unwrap();
    assert!(note.starts_with("clock: deflection drift -"), "{note}");
    let recorded_ppm = cv_segment["deflection_drift_ppm"].as_float().unwrap();
    assert_eq!(recorded_ppm.round(), ppm, "{note}");

    // `vegard analyze --json`: the same, and no number at the top level.
    let o = vegard()
        .args(["analyze", "--json"])
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let a: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(a["deformation_vs_charge"].is_null(), "{a}");
    assert!(a["charge"].is_null(), "{a}");
    assert_eq!(a["deformation_vs_charge_withheld"].as_str(), Some(msg));
    assert_eq!(a["cv_steps"].as_array().unwrap().len(), 0, "{a}");
    let issues = clock_issues(&a["analysis_errors"]);
    assert_eq!(issues.len(), 1, "{a}");
    assert_eq!(issues[0]["message"].as_str(), Some(msg));

    // `vegard analyze` text: the error names the drift; no kappa line.
    let o = vegard().arg("analyze").arg(&run).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(&format!("error: {msg}")), "{text}");
    assert!(!text.contains("nm/mC"), "kappa printed: {text}");
}

#[test]
fn a_run_at_the_bench_speed_is_not_flagged() {
    let dir = tmpdir("clock-sanity-ok");
    let (v, run) = run_json("recipes/demo-cv.toml", None, &dir, &["--speed", "10"], 0);
    assert_eq!(v["status"], "complete", "{v}");
    assert!(clock_issues(&v["analysis_errors"]).is_empty(), "{v}");
    let kappa = v["deformation_vs_charge"]["slope_nm_per_mC"]
        .as_f64()
        .unwrap();
    assert!(kappa.is_finite() && kappa != 0.0, "{v}");
    let meta: toml::Table =
        toml::from_str(&std::fs::read_to_string(run.join("run.toml")).unwrap()).unwrap();
    let summary = meta["analysis_summary"].as_table().unwrap();
    // run.toml's TOML float round trip may differ in the last bit.
    let in_toml = summary["slope_nm_per_mC"].as_float().unwrap();
    assert!(
        (in_toml / kappa - 1.0).abs() < 1e-12,
        "{in_toml} vs {kappa}"
    );
    assert!(!summary.contains_key("withheld"), "{summary:?}");
    for s in meta["alignment"]["segments"].as_array().unwrap() {
        let ppm = s["deflection_drift_ppm"].as_float().unwrap();
        assert!(ppm.abs() < 1000.0, "{s:?}");
        assert!(
            !s.get("note")
                .and_then(|n| n.as_str())
                .is_some_and(|n| n.contains("clock:")),
            "{s:?}"
        );
    }
    let o = vegard()
        .args(["analyze", "--json"])
        .arg(&run)
        .output()
        .unwrap();
    let a: Value = serde_json::from_slice(&o.stdout).unwrap();
    // The same kappa (to the last bits: analyze recomputes it).
    let again = a["deformation_vs_charge"]["slope_nm_per_mC"]
        .as_f64()
        .unwrap();
    assert!((again / kappa - 1.0).abs() < 1e-9, "{again} vs {kappa}");
    assert!(a["deformation_vs_charge_withheld"].is_null(), "{a}");
    assert!(clock_issues(&a["analysis_errors"]).is_empty(), "{a}");
}
