//! The shared clock, measured against ground truth: a CV runs on the virtual
//! bench (drivers over the real pty and TCP), then every digitizer reading's
//! aligned time is compared with the true instant the emulator took it,
//! relative to the potentiostat's own samples. The emulators' clocks have
//! different offsets, drifts (ppm) and jitter, all known to the bench.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use vegard_store::schema::{deflection_data_col, potentiostat_data_col};

use vegard_engine::{Resources, RunRequest, run};
use vegard_recipe::{load_bench, parse_recipe};
use vegard_sim::VirtualBench;

const RECIPE: &str = r#"
[run]
name = "alignment"
[limits]
current_max_A = 0.01
potential_window_V = [-0.2, 1.0]
[[step]]
kind = "cv"
begin_V = 0.4
vertex_V = [0.9, -0.1]
scan_rate_V_per_s = 0.2
step_V = 0.002
cycles = 2
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digitizer_alignment_error_is_below_one_sample_period() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bench = load_bench(&root.join("configs/sim.toml")).unwrap();
    let mut params = bench.sim.clone().unwrap();
    params.time_acceleration = 5.0;
    // Make the clocks' disagreement obvious so an unaligned run would fail.
    params.clocks.potentiostat.drift_ppm = 80.0;
    params.clocks.deflection.drift_ppm = -120.0;
    let vb = Arc::new(VirtualBench::start(&params).unwrap());
    let out_dir = std::env::temp_dir().join(format!("vegard-align-{}", std::process::id()));
    let emulators = Resources {
        potentiostat: vb.potentiostat_resource(),
        deflection: vb.deflection_resource(),
        lockin: Some(vb.lockin_resource()),
        temperature: Some(vb.temperature_resource()),
        time_acceleration: vb.speed(),
        bench_health: Some(vegard_engine::BenchHealth(std::sync::Arc::new(
            vb.overrun_probe(),
        ))),
        release_bench: None,
    };
    let req = RunRequest {
        recipe: parse_recipe(RECIPE, "alignment.toml").unwrap(),
        recipe_path: "alignment.toml".into(),
        resources: Resources::resolve(&bench.instruments, Some(&emulators)).unwrap(),
        bench: bench.clone(),
        bench_path: root.join("configs/sim.toml"),
        out_dir,
        fault: None,
        control: None,
    };
    let (_tx, rx) = tokio::sync::watch::channel(None);
    let outcome = run(req, rx, |_| {}).await.unwrap();
    assert_eq!(outcome.status.to_string(), "complete");
    let est = outcome
        .summary
        .as_ref()
        .and_then(|s| s.alignment_error_estimate_s)
        .unwrap();

    let truth = vb.truth_log();
    let p = vegard_store::read_parquet(&outcome.run_dir.join("data/potentiostat.parquet")).unwrap();
    let d = vegard_store::read_parquet(&outcome.run_dir.join("data/deflection.parquet")).unwrap();
    let (p_idx, p_t) = (
        p.i64(potentiostat_data_col::index).unwrap(),
        p.f64(potentiostat_data_col::t_s).unwrap(),
    );
    let (d_idx, d_t) = (
        d.i64(deflection_data_col::index).unwrap(),
        d.f64(deflection_data_col::t_s).unwrap(),
    );
    let true_p: HashMap<u64, f64> = truth
        .potentiostat
        .iter()
        .filter(|s| s.segment == 0)
        .map(|s| (s.index, s.t_true_s))
        .collect();
    // The digitizer records in blocks, block b started by edge b (the CV's
    // first edge is edge 0): reading j of block b is raw index b * M + j.
    let recipe = parse_recipe(RECIPE, "alignment.toml").unwrap();
    let acq = vegard_recipe::deflection_acquisition(
        &recipe.steps[0],
        bench.instruments.deflection.sample_interval_s,
        bench.instruments.deflection.max_samples,
    )
    .unwrap();
    let m = acq.readings_per_trigger();
    assert!(acq.triggers() > 10, "{acq:?}");
    let true_d: HashMap<u64, f64> = truth
        .deflection
        .iter()
        .map(|s| (s.segment as u64 * m + s.index, s.t_true_s))
        .collect();
    // Reference: the potentiostat's first sample on both timelines.
    let k0 = p_idx.iter().position(|&i| i == 0).unwrap();
    let (ref_shared, ref_true) = (p_t[k0], true_p[&0]);

    let mut worst_s: f64 = 0.0;
    let mut sum2 = 0.0;
    let mut n = 0usize;
    for (i, &idx) in d_idx.iter().enumerate() {
        let Some(&t_true) = true_d.get(&(idx as u64)) else {
            continue;
        };
        let e = (d_t[i] - ref_shared) - (t_true - ref_true);
        worst_s = worst_s.max(e.abs());
        sum2 += e * e;
        n += 1;
    }
    // Potentiostat samples against their truth too (drift over the run).
    let mut worst_p: f64 = 0.0;
    for (i, &idx) in p_idx.iter().enumerate() {
        if let Some(&t_true) = true_p.get(&(idx as u64)) {
            worst_p = worst_p.max(((p_t[i] - ref_shared) - (t_true - ref_true)).abs());
        }
    }
    let period = bench.instruments.deflection.sample_interval_s;
    let rms = (sum2 / n as f64).sqrt();
    eprintln!(
        "alignment vs truth over {n} digitizer readings: max {:.1} us, rms {:.1} us \
         (potentiostat max {:.1} us; estimate {:.1} us; digitizer period {:.1} ms)",
        worst_s * 1e6,
        rms * 1e6,
        worst_p * 1e6,
        est * 1e6,
        period * 1e3
    );
    assert!(n > 1000, "only {n} readings matched the truth log");
    assert!(
        worst_s < period,
        "max alignment error {worst_s} s >= {period} s"
    );
    assert!(worst_p < period, "potentiostat timeline error {worst_p} s");

    // Relative to the potentiostat (what the estimate is about): each
    // reading against the potentiostat's aligned timeline at its true
    // instant, so the potentiostat's own timeline error cancels.
    let mut pairs: Vec<(f64, f64)> = p_idx
        .iter()
        .enumerate()
        .filter_map(|(i, &idx)| true_p.get(&(idx as u64)).map(|&t| (t, p_t[i])))
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let worst_rel = common::relative_worst_s(
        &pairs,
        d_idx
            .iter()
            .zip(&d_t)
            .filter_map(|(&idx, &t)| true_d.get(&(idx as u64)).map(|&tt| (tt, t))),
    );
    eprintln!(
        "relative to the potentiostat: max {:.1} us",
        worst_rel * 1e6
    );
    // Within the estimate, which is one block's (1 s), not the segment's.
    assert!(
        worst_rel < est,
        "max error {worst_rel} s > estimate {est} s"
    );
    // Without the repeated edges the error would have grown to 200 ppm over
    // the whole CV (~20 s = 4 ms): the test can fail.
    let span = truth.deflection.last().unwrap().t_true_s - ref_true;
    assert!(200e-6 * span > worst_s * 5.0, "test too weak: span {span}");
}
