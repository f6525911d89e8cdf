//! Parameter sweeps end to end: `vegard validate` prints the expanded plan
//! with each step's sweep values, and a short run on the virtual bench
//! writes them into run.toml `[[steps]]`, `aligned.parquet`,
//! `data/eis.parquet` and `data/esm.parquet` (missing outside the sweeps).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::path::{Path, PathBuf};

use common::{tmpdir, vegard};
use vegard_store::schema::{SweepLabels, aligned_col, eis_data_col, esm_data_col};

/// 0.5 s at open circuit; dc_V 0.35 and 0.45 V, at each an EIS (1 kHz and
/// 100 Hz) and an ESM point at 2 Hz with 10 and 20 mV; CVs at 0.1 and
/// 0.2 V/s. About 11 s of experiment, 9 planned steps.
const RECIPE: &str = r#"[run]
name = "sweeps"

[limits]
current_max_A = 0.01
potential_window_V = [-0.2, 1.0]

[[step]]
kind = "ocp"
duration_s = 0.5
sample_interval_s = 0.01

[[step]]
kind = "sweep"
parameter = "dc_V"
values = [0.35, 0.45]

  [[step.step]]
  kind = "eis"
  amplitude_V = 0.01
  freq_Hz = [1000.0, 100.0]
  points_per_decade = 1

  [[step.step]]
  kind = "sweep"
  parameter = "amplitude_V"
  values = [0.01, 0.02]

    [[step.step.step]]
    kind = "esm_sweep"
    freq_Hz = [2.0]
    periods = 1

[[step]]
kind = "sweep"
parameter = "scan_rate_V_per_s"
values = [0.1, 0.2]

  [[step.step]]
  kind = "cv"
  begin_V = 0.4
  vertex_V = [0.5, 0.3]
  step_V = 0.002
  cycles = 1
"#;

/// Per plan step: (dc_V, amplitude_V, scan_rate_V_per_s) set by a sweep.
const LABELS: [(Option<f64>, Option<f64>, Option<f64>); 9] = [
    (None, None, None),
    (Some(0.35), None, None),
    (Some(0.35), Some(0.01), None),
    (Some(0.35), Some(0.02), None),
    (Some(0.45), None, None),
    (Some(0.45), Some(0.01), None),
    (Some(0.45), Some(0.02), None),
    (None, None, Some(0.1)),
    (None, None, Some(0.2)),
];

fn write_recipe(dir: &Path) -> PathBuf {
    let p = dir.join("sweeps.toml");
    std::fs::write(&p, RECIPE).unwrap();
    p
}

/// `value` is the label `want` (NaN for none).
fn is_label(value: f64, want: Option<f64>) -> bool {
    match want {
        Some(w) => value == w,
        None => value.is_nan(),
    }
}

#[test]
fn validate_prints_the_plan_with_the_sweep_values() {
    let dir = tmpdir("sweeps-validate");
    let out = vegard()
        .arg("validate")
        .arg(write_recipe(&dir))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().skip(2).collect();
    assert_eq!(
        lines,
        [
            "    1. ocp               0.5 s",
            "    2. eis               0.1 s  [sweep 1: dc_V = 0.35 V]",
            "    3. esm_sweep         1.0 s  [sweep 1: dc_V = 0.35 V, amplitude_V = 0.01 V]",
            "    4. esm_sweep         1.0 s  [sweep 1: dc_V = 0.35 V, amplitude_V = 0.02 V]",
            "    5. eis               0.1 s  [sweep 2: dc_V = 0.45 V]",
            "    6. esm_sweep         1.0 s  [sweep 2: dc_V = 0.45 V, amplitude_V = 0.01 V]",
            "    7. esm_sweep         1.0 s  [sweep 2: dc_V = 0.45 V, amplitude_V = 0.02 V]",
            "    8. cv                4.0 s  [sweep 1: scan_rate_V_per_s = 0.1 V/s]",
            "    9. cv                2.0 s  [sweep 2: scan_rate_V_per_s = 0.2 V/s]",
        ],
        "{text}"
    );
    assert!(
        text.contains("3 recipe steps -> 9 planned steps, ~11 s of experiment"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_run_writes_the_sweep_labels_into_every_table() {
    let dir = tmpdir("sweeps-run");
    let out = vegard()
        .arg("run")
        .arg(write_recipe(&dir))
        .args(["--no-tui", "--speed", "10", "--out"])
        .arg(dir.join("runs"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    // The progress lines name the values.
    assert!(
        stderr.contains("step 4/9 esm_sweep (dc_V = 0.35 V, amplitude_V = 0.02 V): 1.0 s"),
        "{stderr}"
    );
    assert!(
        stderr.contains("step 9/9 cv (scan_rate_V_per_s = 0.2 V/s): 2.0 s"),
        "{stderr}"
    );
    let runs: Vec<PathBuf> = std::fs::read_dir(dir.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = runs[0].clone();
    let meta = vegard_store::read_meta(&run).unwrap();
    assert_eq!(meta.status, vegard_store::RunStatus::Complete);

    // events.jsonl: the step_start of step 4 (index 3) names both values,
    // outermost first.
    let events = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    let start = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["kind"] == "step_start" && e["step"] == 3)
        .expect("step_start of step 4");
    assert_eq!(
        start["sweep"],
        serde_json::json!([
            {"parameter": "dc_V", "value": 0.35},
            {"parameter": "amplitude_V", "value": 0.02}
        ]),
        "{start}"
    );

    // run.toml [[steps]].
    assert_eq!(meta.steps.len(), 9);
    for (s, want) in meta.steps.iter().zip(LABELS) {
        assert_eq!(
            (s.sweep_dc_V, s.sweep_amplitude_V, s.sweep_scan_rate_V_per_s),
            want,
            "step {}",
            s.step
        );
        assert_eq!(s.sweep_freq_Hz, None);
    }
    // The outermost sweep's iteration: the dc_V index.
    assert_eq!(meta.steps[3].sweep_iteration, Some(0));
    assert_eq!(meta.steps[5].sweep_iteration, Some(1));

    // Every table: the label of each row's step.
    let check = |file: PathBuf, step_col: &str| -> usize {
        let t = vegard_store::read_parquet(&file).unwrap();
        let step = t.i64(step_col).unwrap();
        let labels = SweepLabels::from_table_or_missing(&t).unwrap();
        assert_eq!(
            t.names()[t.names().len() - 4..],
            [
                "sweep_dc_V",
                "sweep_amplitude_V",
                "sweep_scan_rate_V_per_s",
                "sweep_freq_Hz"
            ],
            "{}",
            file.display()
        );
        for (i, &k) in step.iter().enumerate() {
            let (dc, amp, rate) = LABELS[usize::try_from(k).unwrap()];
            assert!(
                is_label(labels.sweep_dc_V[i], dc)
                    && is_label(labels.sweep_amplitude_V[i], amp)
                    && is_label(labels.sweep_scan_rate_V_per_s[i], rate)
                    && labels.sweep_freq_Hz[i].is_nan(),
                "{} row {i} (step {k})",
                file.display()
            );
        }
        step.len()
    };
    let rows = check(run.join("aligned.parquet"), aligned_col::step);
    let eis_rows = check(run.join("data/eis.parquet"), eis_data_col::step);
    let esm_rows = check(run.join("data/esm.parquet"), esm_data_col::step);
    // Two spectra of 2 points, four ESM points.
    assert_eq!((eis_rows, esm_rows), (4, 4));
    // The aligned table covers every recording step, so labels were
    // written outside the sweeps (OCP) and inside each.
    let steps = vegard_store::read_parquet(&run.join("aligned.parquet"))
        .unwrap()
        .i64(aligned_col::step)
        .unwrap();
    for k in [0, 2, 3, 5, 6, 7, 8] {
        assert!(steps.contains(&k), "aligned rows of step {k} ({rows} rows)");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
