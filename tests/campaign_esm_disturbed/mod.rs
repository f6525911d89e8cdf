//! A campaign whose lock-in switches late (the virtual bench's
//! `faults.lockin_switch_delay_s`, as a busy host would): the disturbed ESM
//! points are found at finalisation, left out of the fit and listed, every
//! warning `vegard run` printed is in `analysis_warnings`, and Ea(ESM) still
//! covers the bench's truth.
//!
//! A module of the `report` test binary rather than a binary of its own:
//! the run mostly waits on the bench's clock, and beside the report's
//! tests it costs the suite no wall time of its own.

use std::path::{Path, PathBuf};

use crate::common::{tmpdir, vegard};

/// Four temperatures (2 degrees of freedom for the Arrhenius line); per
/// temperature an EIS (for the ESM drive correction) and an 8-frequency ESM
/// sweep whose settling period (1/f) is 2-20 s, so a switch 7 s late falls inside the analysed window at
/// 0.15-0.5 Hz and into the settling before it at 0.1 Hz and below.
const RECIPE: &str = r#"[run]
name = "disturbed-esm"
deflection_sample_interval_s = 0.05
[limits]
current_max_A = 0.01
potential_window_V = [-0.2, 1.0]
[[step]]
kind = "sweep"
temperature_C = [35.0, 45.0, 55.0, 65.0]
tolerance_K = 0.3
hold_s = 5.0
timeout_s = 900.0
  [[step.step]]
  kind = "eis"
  dc_V = 0.4
  amplitude_V = 0.01
  freq_Hz = [1000.0, 0.02]
  points_per_decade = 3
  equilibrate_s = 5.0
  [[step.step]]
  kind = "esm_sweep"
  dc_V = 0.4
  amplitude_V = 0.03
  freq_Hz = [0.5, 0.4, 0.3, 0.2, 0.15, 0.1, 0.07, 0.05]
  periods = 3
  settle_periods = 1
"#;

/// Late switch, sim seconds, and which FREQ commands are late.
const DELAY_S: f64 = 7.0;
const EVERY: u32 = 3;

fn bench(dir: &Path) -> PathBuf {
    let base =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/sim.toml"))
            .unwrap();
    let p = dir.join("bench.toml");
    std::fs::write(
        &p,
        format!(
            "{base}\n[sim.faults]\nlockin_switch_delay_s = {DELAY_S}\nlockin_switch_delay_every = {EVERY}\n"
        ),
    )
    .unwrap();
    p
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

#[test]
fn late_lock_in_switches_are_left_out_listed_and_ea_still_covers_the_truth() {
    let dir = tmpdir("disturbed-esm");
    let recipe = dir.join("campaign.toml");
    std::fs::write(&recipe, RECIPE).unwrap();
    let bench = bench(&dir);
    let truth_Ea_eV = vegard_recipe::load_bench(&bench)
        .unwrap()
        .sim
        .unwrap()
        .film
        .Ea_D_eV;

    // 30x: at 100x a loaded machine's scheduling delays are seconds of
    // experiment, which would add late switches of their own.
    let out = vegard()
        .arg("run")
        .arg(&recipe)
        .arg("--bench")
        .arg(&bench)
        .args(["--json", "--speed", "30", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "exit {:?}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let run = json(&out.stdout);
    assert_eq!(run["status"], "complete");
    let run_dir = PathBuf::from(run["run_dir"].as_str().unwrap());
    let printed: Vec<String> = run["analysis_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect();
    let late: Vec<&String> = printed
        .iter()
        .filter(|m| m.contains("lock-in switched"))
        .collect();
    eprintln!("vegard run printed: {printed:#?}");
    assert!(
        late.len() >= 3,
        "a late switch every {EVERY} FREQ commands lands in >= 3 analysed windows: {printed:#?}"
    );

    let out = vegard()
        .arg("analyze")
        .arg(&run_dir)
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let a = json(&out.stdout);
    let warnings: Vec<&str> = a["analysis_warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["message"].as_str().unwrap())
        .collect();
    // Every warning `vegard run` printed about the data is in the analysis.
    for m in &late {
        assert!(warnings.contains(&m.as_str()), "{m} not in {warnings:#?}");
    }
    // The points left out are listed per sweep, and are exactly the late ones.
    let esm = a["esm_fits"].as_array().unwrap();
    assert_eq!(esm.len(), 4, "every sweep still has >= 4 clean points");
    let mut n_excluded = 0;
    for s in esm {
        let step = s["step"].as_i64().unwrap();
        let excluded: Vec<f64> = s["excluded_f_Hz"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_f64().unwrap())
            .collect();
        let flagged_here = late
            .iter()
            .filter(|m| m.starts_with(&format!("step {step} (esm_sweep)")))
            .count();
        assert_eq!(excluded.len(), flagged_here, "step {step}: {excluded:?}");
        for f in &excluded {
            // A 7 s late switch is inside the window only where 1/f < 7 s.
            assert!(1.0 / f < DELAY_S, "step {step}: {f} Hz excluded");
        }
        if !excluded.is_empty() {
            assert!(
                warnings
                    .iter()
                    .any(|w| w.starts_with(&format!("step {step} (esm_sweep): "))
                        && w.contains("left out of the fit")),
                "step {step}: {warnings:#?}"
            );
        }
        n_excluded += excluded.len();
    }
    assert_eq!(n_excluded, late.len());

    let ea = &a["arrhenius"]["esm"];
    let ci = ea["ea_ci95_eV"].as_array().unwrap();
    let (lo, hi) = (ci[0].as_f64().unwrap(), ci[1].as_f64().unwrap());
    eprintln!(
        "Ea(ESM) = {} +- {} eV, 95 % CI [{lo:.4}, {hi:.4}], truth {truth_Ea_eV}",
        ea["ea_eV"], ea["ea_se_eV"]
    );
    // A calibrated 95 % interval misses the truth in 1 run of 20, and the
    // run is not bit-reproducible (host timing): assert 3 standard errors
    // (misses 1 in 370) so the suite does not fail by design; the 95 %
    // figure is printed above and its coverage is what scripts/coverage.sh
    // measures over many seeds.
    let (ea_eV, se_eV) = (
        ea["ea_eV"].as_f64().unwrap(),
        ea["ea_se_eV"].as_f64().unwrap(),
    );
    assert!(
        (ea_eV - truth_Ea_eV).abs() < 3.0 * se_eV,
        "Ea(ESM) {ea_eV} +- {se_eV} eV is more than 3 SE from the truth {truth_Ea_eV} eV"
    );

    // The report lists them too.
    let out = vegard()
        .arg("report")
        .arg(&run_dir)
        .args(["--format", "json", "--out"])
        .arg(dir.join("report.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let report = std::fs::read_to_string(dir.join("report.json")).unwrap();
    for m in &late {
        assert!(report.contains(m.as_str()), "{m} not in the report");
    }
    // One run sweeping four temperatures is a campaign organised by
    // temperature (issue 18): the overlays have one series per setpoint,
    // and the tables' temperatures are the plan's, measured within the
    // stage's tolerance (tolerance_K = 0.3 in the recipe).
    let r: vegard_report::Report = serde_json::from_str(&report).unwrap();
    let setpoints_C = [35.0, 45.0, 55.0, 65.0];
    for id in [
        "nyquist-by-temperature",
        "bode-by-temperature",
        "esm-by-temperature",
    ] {
        let f = r
            .sections
            .iter()
            .flat_map(|s| &s.figures)
            .find(|f| f.id == id)
            .unwrap_or_else(|| panic!("no overlay {id}"));
        for p in &f.panels {
            let named: Vec<&str> = p
                .series
                .iter()
                .filter(|s| !s.name.is_empty())
                .map(|s| s.name.as_str())
                .collect();
            assert_eq!(named, ["35 °C", "45 °C", "55 °C", "65 °C"], "{id}");
        }
    }
    // Four temperatures: the Arrhenius bands exist, centred on the fits in
    // the lower panel, and the caption says how wide they are drawn.
    let arr = r
        .sections
        .iter()
        .flat_map(|s| &s.figures)
        .find(|f| f.id == "arrhenius")
        .unwrap();
    assert!(arr.panels[0].top_axis.is_some(), "°C axis");
    let bands: Vec<&vegard_report::Series> = arr.panels[1]
        .series
        .iter()
        .filter(|s| s.kind == vegard_report::SeriesKind::Band)
        .collect();
    assert_eq!(bands.len(), 2, "EIS and ESM bands about their fits");
    for b in bands {
        for (lo, hi) in b.y.iter().zip(b.y_upper.as_ref().unwrap()) {
            assert!((lo + hi).abs() < 1e-12 && *hi > 0.0, "centred on the fit");
        }
    }
    let caption = arr.caption.as_deref().unwrap();
    assert!(caption.contains("lower panel shows"), "{caption}");
    for id in ["eis-fits", "esm-fits"] {
        let t = r
            .sections
            .iter()
            .flat_map(|s| &s.tables)
            .find(|t| t.id == id)
            .unwrap();
        assert_eq!(t.columns[0].name, "T setpoint");
        assert_eq!(t.rows.len(), setpoints_C.len(), "{id}");
        for (row, want) in t.rows.iter().zip(setpoints_C) {
            let v = |c: &vegard_report::Cell| match c {
                vegard_report::Cell::Num { value, .. } => *value,
                other => panic!("{id}: {other:?}"),
            };
            assert!((v(&row[0]) - want).abs() < 1e-9, "{id}: {row:?}");
            assert!((v(&row[1]) - want).abs() <= 0.3, "{id}: measured {row:?}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
