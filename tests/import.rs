//! `vegard import` end to end: the BioLogic CV fixture plus a deflection
//! trace generated from it with a known Vegard coefficient, clock offset,
//! drift, sample rate and detector noise; imported by trigger edges and by
//! cross-correlation, then `vegard analyze`, `export` and `report` on the
//! run folder. Bad input exits 2 naming the file.
//!
//! The truth is u = κ·Q_F, with Q_F the faradaic charge as the analysis
//! computes it (its C_dl estimate is a function of the potentiostat data
//! only), so the recovered slope tests the import and the alignment, not
//! the C_dl estimator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{tmpdir, vegard};
use serde_json::Value;

const FIXTURE: &str = "tests/data/import/Pt_poly_cv_CUT.mpt";
const KAPPA_NM_PER_MC: f64 = -150.0;
/// Trace clock: t_potentiostat = OFFSET_S + (1 + DRIFT) * t_trace.
const OFFSET_S: f64 = -3.217;
const DRIFT: f64 = 50e-6;
const DT_TRACE_S: f64 = 0.05;
const NOISE_NM: f64 = 0.02;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE)
}

fn truth_t(tau: f64) -> f64 {
    OFFSET_S + (1.0 + DRIFT) * tau
}

/// Deterministic Gaussian noise (xorshift + Box-Muller).
fn gauss(n: usize, sigma: f64, seed: u64) -> Vec<f64> {
    let mut x = seed | 1;
    let mut u = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| sigma * (-2.0 * u().ln()).sqrt() * (2.0 * std::f64::consts::PI * u()).cos())
        .collect()
}

/// Linear interpolation, held flat outside the samples (the cell rests
/// before and after the recording).
fn interp(t: &[f64], v: &[f64], x: f64) -> f64 {
    if x <= t[0] {
        return v[0];
    }
    if x >= t[t.len() - 1] {
        return v[v.len() - 1];
    }
    let k = t.partition_point(|&s| s <= x) - 1;
    let w = (x - t[k]) / (t[k + 1] - t[k]);
    v[k] + w * (v[k + 1] - v[k])
}

/// Write the trace CSV: deflection = κ·Q_F on the trace's clock, 20 Hz,
/// noise, and a sync square wave toggled at each cycle start of the
/// potentiostat (its trigger output).
fn write_trace(dir: &Path, with_sync: bool) -> PathBuf {
    let ec =
        vegard_formats::read_ec_series(&fixture()).expect("the BioLogic reader reads the fixture");
    let c_dl = vegard_analysis::estimate_C_dl_F(&ec.t_s, &ec.E_V, &ec.I_A)
        .map(|e| e.C_dl_F)
        .unwrap_or(0.0);
    let q_f = vegard_analysis::faradaic_charge_C(&ec.t_s, &ec.E_V, &ec.I_A, c_dl).unwrap();
    let cycle = ec.cycle.clone().expect("cycle column");
    let mut events = vec![ec.t_s[0]];
    for k in 1..cycle.len() {
        if cycle[k] != cycle[k - 1] {
            events.push(ec.t_s[k]);
        }
    }
    let t_end = ec.t_s[ec.t_s.len() - 1];
    let n = ((t_end - OFFSET_S + 2.0) / DT_TRACE_S) as usize;
    let noise = gauss(n, NOISE_NM, 20_261_203);
    let path = dir.join(if with_sync {
        "trace-sync.csv"
    } else {
        "trace.csv"
    });
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    if with_sync {
        writeln!(f, "time (s),deflection (nm),sync").unwrap();
    } else {
        writeln!(f, "time (s),deflection (nm)").unwrap();
    }
    for (k, z) in noise.iter().enumerate() {
        let tau = k as f64 * DT_TRACE_S;
        let t = truth_t(tau);
        // nm/mC × C × 1e3 mC/C
        let u = KAPPA_NM_PER_MC * interp(&ec.t_s, &q_f, t) * 1e3 + z;
        if with_sync {
            let level = events.iter().filter(|&&e| e <= t).count() % 2;
            writeln!(f, "{tau},{u},{}", 5.0 * level as f64).unwrap();
        } else {
            writeln!(f, "{tau},{u}").unwrap();
        }
    }
    f.flush().unwrap();
    path
}

struct Imported {
    run_dir: PathBuf,
    import: Value,
}

fn import(out: &Path, trace: &Path, sync: &str) -> Imported {
    let o = vegard()
        .args(["import", "--potentiostat"])
        .arg(fixture())
        .arg("--deflection")
        .arg(trace)
        .args(["--sync", sync, "--json", "--out"])
        .arg(out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "import --sync {sync}: {stderr}");
    eprintln!("{stderr}");
    let import: Value = serde_json::from_slice(&o.stdout).unwrap();
    Imported {
        run_dir: PathBuf::from(import["run_dir"].as_str().unwrap()),
        import,
    }
}

/// Check κ and the alignment; returns (κ error fraction, worst offset
/// error over the trace, stated 2σ error).
fn check(run: &Imported, label: &str, trace_span_s: (f64, f64)) -> (f64, f64, f64) {
    let o = vegard()
        .arg("analyze")
        .arg(&run.run_dir)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "analyze: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let a: Value = serde_json::from_slice(&o.stdout).unwrap();
    let kappa = a["deformation_vs_charge"]["slope_nm_per_mC"]
        .as_f64()
        .unwrap();
    let kappa_se = a["deformation_vs_charge"]["slope_se_nm_per_mC"]
        .as_f64()
        .unwrap();
    let ext = &a["alignment"]["external"];
    let offset = ext["offset_s"].as_f64().unwrap();
    let drift_ppm = ext["drift_ppm"].as_f64().unwrap();
    let stated = a["alignment"]["alignment_error_estimate_s"]
        .as_f64()
        .unwrap();
    assert_eq!(
        run.import["alignment_error_estimate_s"].as_f64().unwrap(),
        stated
    );
    // Worst error of the mapping over the trace.
    let err = |tau: f64| offset + (1.0 + drift_ppm * 1e-6) * tau - truth_t(tau);
    let (t0, t1) = trace_span_s;
    let worst = (0..=100)
        .map(|k| err(t0 + (t1 - t0) * k as f64 / 100.0).abs())
        .fold(0.0, f64::max);
    let kappa_err = (kappa - KAPPA_NM_PER_MC) / KAPPA_NM_PER_MC;
    eprintln!(
        "{label}: kappa {kappa:.3} ± {kappa_se:.3} nm/mC (truth {KAPPA_NM_PER_MC}, error {:+.3} %); \
         offset {offset:.4} s (truth {OFFSET_S}), drift {drift_ppm:+.1} ppm (truth {:+.1}); \
         worst time error {:.2} ms, stated 2σ {:.2} ms",
        100.0 * kappa_err,
        DRIFT * 1e6,
        worst * 1e3,
        stated * 1e3
    );
    assert!(
        kappa_err.abs() < 0.01,
        "{label}: kappa {kappa} vs {KAPPA_NM_PER_MC}"
    );
    assert!(worst < DT_TRACE_S, "{label}: time error {worst} s");
    assert!(
        worst <= stated,
        "{label}: error {worst} s beyond the stated {stated} s"
    );
    assert_eq!(ext["method"].as_str().unwrap(), label);
    (kappa_err, worst, stated)
}

fn trace_span() -> (f64, f64) {
    let ec = vegard_formats::read_ec_series(&fixture()).unwrap();
    // The part of the trace that overlaps the potentiostat record.
    let t0 = (ec.t_s[0] - OFFSET_S) / (1.0 + DRIFT);
    let t1 = (ec.t_s[ec.t_s.len() - 1] - OFFSET_S) / (1.0 + DRIFT);
    (t0, t1)
}

#[test]
fn biologic_cv_with_a_synced_trace_imports_by_edges() {
    let dir = tmpdir("import-edges");
    let trace = write_trace(&dir, true);
    let out = dir.join("runs");
    // auto picks edges: the trace has a sync channel, the file cycles.
    let run = import(&out, &trace, "auto");
    assert_eq!(run.import["alignment_method"], "edges");
    check(&run, "edges", trace_span());

    // run.toml keeps the provenance: both files with their sha256.
    let meta: toml::Table =
        toml::from_str(&std::fs::read_to_string(run.run_dir.join("run.toml")).unwrap()).unwrap();
    let sources = meta["import"]["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2);
    assert_eq!(sources[0]["format"].as_str(), Some("biologic_mpt"));
    assert_eq!(sources[0]["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(sources[1]["role"].as_str(), Some("deflection"));

    // export and report read the folder as they read a native run.
    let csv = dir.join("aligned.csv");
    let o = vegard()
        .arg("export")
        .arg(&run.run_dir)
        .arg("--out")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("t_s,"), "{}", &text[..80.min(text.len())]);
    assert_eq!(text.lines().count(), 224);
    let o = vegard()
        .arg("report")
        .arg(&run.run_dir)
        .args(["--format", "json", "--out"])
        .arg(dir.join("report.json"))
        .output()
        .unwrap();
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(5),
        "report: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(dir.join("report.json").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn biologic_cv_with_a_plain_trace_imports_by_cross_correlation() {
    let dir = tmpdir("import-xcorr");
    let trace = write_trace(&dir, false);
    let out = dir.join("runs");
    // auto: no sync channel, no start time in a CSV trace -> xcorr.
    let run = import(&out, &trace, "auto");
    assert_eq!(run.import["alignment_method"], "xcorr");
    check(&run, "xcorr", trace_span());
    // Named explicitly it is the same.
    let run = import(&out, &trace, "xcorr");
    check(&run, "xcorr", trace_span());
    // The trace states no start time: timestamps are refused, naming it.
    let o = vegard()
        .args(["import", "--potentiostat"])
        .arg(fixture())
        .arg("--deflection")
        .arg(&trace)
        .args(["--sync", "timestamps", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no start time stated in") && stderr.contains("trace.csv"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unrecognised_input_exits_2_naming_the_file() {
    let dir = tmpdir("import-bad");
    let junk = dir.join("junk.txt");
    std::fs::write(&junk, "this is not a potentiostat file\n1 2 3\n").unwrap();
    let o = vegard()
        .args(["import", "--potentiostat"])
        .arg(&junk)
        .arg("--deflection")
        .arg(fixture())
        .arg("--out")
        .arg(dir.join("runs"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("junk.txt"), "{stderr}");
    // The fixture given as the trace: recognised, but not a trace.
    let o = vegard()
        .args(["import", "--potentiostat"])
        .arg(fixture())
        .arg("--deflection")
        .arg(fixture())
        .arg("--out")
        .arg(dir.join("runs"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("Pt_poly_cv_CUT.mpt"), "{stderr}");
    // A trace in volts without the InvOLS.
    let volts = dir.join("volts.csv");
    let mut text = String::from("time (s),deflection (V)\n");
    for k in 0..100 {
        text.push_str(&format!("{},{}\n", k as f64 * 0.1, 0.01 * k as f64));
    }
    std::fs::write(&volts, text).unwrap();
    let o = vegard()
        .args(["import", "--potentiostat"])
        .arg(fixture())
        .arg("--deflection")
        .arg(&volts)
        .arg("--out")
        .arg(dir.join("runs"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("volts.csv") && stderr.contains("--invols-nm-per-V"),
        "{stderr}"
    );
    assert!(
        !dir.join("runs").exists() || std::fs::read_dir(dir.join("runs")).unwrap().count() == 0
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The README's worked import runs on `examples/import/`: the BioLogic CV
/// fixture and `trace-sync.csv`, made by [`write_trace`] (re-write with
/// `VEGARD_EXAMPLE_RECORD=1 cargo test --test import shipped_example`).
/// The shipped trace must be what the generator makes now (so the README's
/// truth holds), and importing it must recover κ within 1 %.
#[test]
fn shipped_example_is_the_generated_trace_and_imports() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/import");
    let dir = tmpdir("import-example");
    let fresh = write_trace(&dir, true);
    if std::env::var_os("VEGARD_EXAMPLE_RECORD").is_some() {
        std::fs::create_dir_all(&example).unwrap();
        std::fs::copy(&fresh, example.join("trace-sync.csv")).unwrap();
        std::fs::copy(fixture(), example.join("Pt_poly_cv_CUT.mpt")).unwrap();
    }
    assert_eq!(
        std::fs::read(example.join("trace-sync.csv")).unwrap(),
        std::fs::read(&fresh).unwrap(),
        "examples/import/trace-sync.csv is stale: re-record it"
    );
    assert_eq!(
        std::fs::read(example.join("Pt_poly_cv_CUT.mpt")).unwrap(),
        std::fs::read(fixture()).unwrap()
    );
    let out = dir.join("runs");
    let run = import(&out, &example.join("trace-sync.csv"), "auto");
    check(&run, "edges", trace_span());
    let _ = std::fs::remove_dir_all(&dir);
}
