//! The scan-rate analysis end to end: `recipes/scan-rate.toml` (CVs at 5,
//! 10, 20, 50 and 100 mV/s, two cycles each) on the virtual bench, then
//! `vegard analyze --json`, compared with known answers: the bench's
//! Vegard coefficient, the exact equivalent frequencies, and the peak
//! currents, b-values and Dunn coefficients of the bench's own electrode
//! model driven noise-free with the same potentials (vegard-sim's
//! `Electrode`, no instruments, no noise).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::path::PathBuf;

use common::{tmpdir, vegard};
use serde_json::Value;
use vegard_sim::model::{Control, Electrode};

const RATES_V_PER_S: [f64; 5] = [0.005, 0.01, 0.02, 0.05, 0.1];
const LOW_V: f64 = 0.1;
const HIGH_V: f64 = 0.7;

/// The noise-free electrode under the recipe's drive: 2 s at rest, then per
/// scan rate two cycles 0.4 -> 0.7 -> 0.1 -> 0.4, back to back. Returns,
/// per scan rate, (E, I) of the second cycle's complete anodic sweep (0.1
/// -> 0.7, across the cycle boundary) and of its last cathodic sweep,
/// sampled every mV.
#[allow(clippy::type_complexity)]
fn model_sweeps() -> Vec<(Vec<(f64, f64)>, Vec<(f64, f64)>)> {
    let p = vegard_recipe::SimParams::default();
    let mut el = Electrode::new(&p).unwrap();
    el.step(2.0, Control::OpenCircuit);
    let dE = 0.001;
    let mut out = Vec::new();
    for v in RATES_V_PER_S {
        let mut trace: Vec<(f64, f64)> = Vec::new();
        let ramp = |el: &mut Electrode, from: f64, to: f64, trace: &mut Vec<(f64, f64)>| {
            let n = ((to - from).abs() / dE).round() as usize;
            for k in 0..n {
                let a = from + (to - from) * k as f64 / n as f64;
                let b = from + (to - from) * (k + 1) as f64 / n as f64;
                let s = el.step_ramp(dE / v, a, b);
                trace.push((b, s.I_A));
            }
        };
        for _ in 0..2 {
            ramp(&mut el, 0.4, HIGH_V, &mut trace);
            ramp(&mut el, HIGH_V, LOW_V, &mut trace);
            ramp(&mut el, LOW_V, 0.4, &mut trace);
        }
        // Samples: 300 up, 600 down, 300 up per cycle.
        let anodic: Vec<(f64, f64)> = trace[900..1500].to_vec();
        let cathodic: Vec<(f64, f64)> = trace[1500..2100].to_vec();
        out.push((anodic, cathodic));
    }
    out
}

fn current_at(sweep: &[(f64, f64)], E: f64) -> f64 {
    sweep
        .windows(2)
        .find_map(|w| {
            let (a, b) = (w[0].0 - E, w[1].0 - E);
            (a * b <= 0.0 && a != b).then(|| w[0].1 + a / (a - b) * (w[1].1 - w[0].1))
        })
        .unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn scan_rate_series_matches_the_bench_model() {
    let dir = tmpdir("scan-rate");
    // 910 s of experiment at 40x: about 25 s of wall time.
    let out = vegard()
        .args([
            "run",
            "recipes/scan-rate.toml",
            "--speed",
            "40",
            "--json",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let res: Value =
        serde_json::from_str(stdout.lines().rev().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(res["status"], "complete");
    let run_dir = PathBuf::from(res["run_dir"].as_str().unwrap());

    let an = vegard()
        .arg("analyze")
        .arg(&run_dir)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        an.status.success(),
        "{}",
        String::from_utf8_lossy(&an.stderr)
    );
    let an: Value = serde_json::from_slice(&an.stdout).unwrap();
    let errors = an["analysis_errors"].as_array().unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let sr = &an["scan_rate"];
    let steps = sr["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5, "{sr}");

    let truth = vegard_sim::truth(&vegard_recipe::SimParams::default()).unwrap();
    let model = model_sweeps();
    let peak = |s: &[(f64, f64)], sign: f64| {
        s.iter()
            .copied()
            .max_by(|a, b| (sign * a.1).total_cmp(&(sign * b.1)))
            .unwrap()
    };
    let (mut model_pa, mut model_pc) = (Vec::new(), Vec::new());
    for (k, (s, (an_m, ca_m))) in steps.iter().zip(&model).enumerate() {
        let v = RATES_V_PER_S[k];
        assert_eq!(f(&s["scan_rate_V_per_s"]), v);
        // f_eq = 1 / period, period = 1.2 V / v: exact.
        assert!((f(&s["f_eq_Hz"]) - v / 1.2).abs() < 1e-12 * v, "{s}");
        // kappa within its own 95 % interval of the bench's truth.
        let ci = s["kappa_ci95_nm_per_mC"].as_array().unwrap();
        let k_true = truth.kappa_nm_per_mC;
        assert!(
            f(&ci[0]) <= k_true && k_true <= f(&ci[1]),
            "step {}: kappa {} CI {ci:?} vs truth {k_true}",
            s["step"],
            s["kappa_nm_per_mC"]
        );
        // Peaks against the noise-free model: current within 2 %, potential
        // within 5 mV (the bench adds noise and a staircase; the model
        // runs the same electrode under an analog ramp).
        let (pa, pc) = (peak(an_m, 1.0), peak(ca_m, -1.0));
        model_pa.push(pa.1);
        model_pc.push(-pc.1);
        let (i_pa, e_pa) = (f(&s["I_peak_anodic_A"]), f(&s["E_peak_anodic_V"]));
        let (i_pc, e_pc) = (f(&s["I_peak_cathodic_A"]), f(&s["E_peak_cathodic_V"]));
        eprintln!(
            "{:>5.0} mV/s: I_pa {:.4} mA at {:.3} V (model {:.4} at {:.3}), I_pc {:.4} at {:.3} \
             (model {:.4} at {:.3}), swing {:.3} nm, kappa {:+.4}",
            1e3 * v,
            1e3 * i_pa,
            e_pa,
            1e3 * pa.1,
            pa.0,
            1e3 * i_pc,
            e_pc,
            1e3 * pc.1,
            pc.0,
            f(&s["deflection_swing_nm"]),
            f(&s["kappa_nm_per_mC"]),
        );
        assert!((i_pa / pa.1 - 1.0).abs() < 0.02, "{s}");
        assert!((i_pc / pc.1 - 1.0).abs() < 0.02, "{s}");
        assert!(
            (e_pa - pa.0).abs() < 0.005 && (e_pc - pc.0).abs() < 0.005,
            "{s}"
        );
    }
    // b-values: the model's peaks give the bench's true b over these rates;
    // the measured one lies within 3 of its SE (and 0.02) of it. On this
    // bench b is below 0.5 (the 2.3 mA exchange current and the 10 ohm
    // of solution shift the peaks apart as they grow): the verdict says so.
    for (key, model_peaks) in [("b_anodic_peak", &model_pa), ("b_cathodic_peak", &model_pc)] {
        let b_true = vegard_analysis::b_value(&RATES_V_PER_S, model_peaks)
            .unwrap()
            .b;
        let fit = &sr[key];
        let (b, se) = (f(&fit["b"]), f(&fit["b_se"]));
        eprintln!(
            "{key}: b = {b:.4} ± {se:.4} (model {b_true:.4}): {}",
            fit["interpretation"]
        );
        assert!(se.is_finite() && se > 0.0 && se < 0.1, "{fit}");
        assert!(
            (b - b_true).abs() < (3.0 * se).max(0.02),
            "{fit} vs {b_true}"
        );
        assert!((0.3..0.5).contains(&b_true), "model b {b_true}");
        let ci = fit["b_ci95"].as_array().unwrap();
        if f(&ci[1]) < 0.5 {
            assert!(
                fit["interpretation"]
                    .as_str()
                    .unwrap()
                    .contains("below 0.5")
            );
        }
    }
    // The swing follows the charge per sweep: its exponent + 1 lies with
    // the current's (within the swing's 95 % interval).
    let sw = &sr["b_deflection_swing"];
    let ci = sw["b_ci95"].as_array().unwrap();
    let b_i = f(&sr["b_cathodic_peak"]["b"]);
    eprintln!("swing: b = {} {ci:?}", sw["b"]);
    assert!(
        f(&ci[0]) + 1.0 <= b_i + 0.05 && b_i - 0.05 <= f(&ci[1]) + 1.0,
        "{sw}"
    );

    // Dunn split against the model's own currents at the same potentials:
    // k1 and k2 within 3 SE (or 5 % of the larger term) of the model's.
    let dunn = sr["dunn"].as_array().unwrap();
    assert_eq!(dunn.len(), 10, "5 potentials per branch");
    for d in dunn {
        let E = f(&d["E_V"]);
        let anodic = d["branch"] == "anodic";
        let I_model: Vec<f64> = model
            .iter()
            .map(|(a, c)| current_at(if anodic { a } else { c }, E))
            .collect();
        let m = vegard_analysis::dunn_split(&RATES_V_PER_S, &I_model).unwrap();
        let (k1, k2) = (f(&d["k1_A_s_per_V"]), f(&d["k2_A_sqrt_s_per_V"]));
        let (k1_se, k2_se) = (f(&d["k1_se_A_s_per_V"]), f(&d["k2_se_A_sqrt_s_per_V"]));
        eprintln!(
            "Dunn {} {E:.3} V: k1 {k1:+.3e} ± {k1_se:.1e} (model {:+.3e}), k2 {k2:+.3e} ± {k2_se:.1e} \
             (model {:+.3e}), holds {}",
            d["branch"], m.k1_A_s_per_V, m.k2_A_sqrt_s_per_V, d["model_holds"]
        );
        let scale1 = 0.05
            * (m.k1_A_s_per_V.abs() * 0.1).max(m.k2_A_sqrt_s_per_V.abs() * 0.1f64.sqrt())
            / 0.1;
        assert!(
            (k1 - m.k1_A_s_per_V).abs() < (3.0 * k1_se).max(scale1),
            "{d}"
        );
        let scale2 = scale1 * 0.1 / 0.1f64.sqrt();
        assert!(
            (k2 - m.k2_A_sqrt_s_per_V).abs() < (3.0 * k2_se).max(scale2),
            "{d}"
        );
        // Where it holds, every capacitive fraction lies in [0, 1] and
        // grows with the scan rate; at the formal potential the peak's
        // shift breaks the model on both branches and it says so.
        let frac: Vec<f64> = d["capacitive_fraction"]
            .as_array()
            .unwrap()
            .iter()
            .map(f)
            .collect();
        if d["model_holds"] == true {
            assert!(frac.iter().all(|x| (-0.05..=1.05).contains(x)), "{d}");
            assert!(frac.windows(2).all(|w| w[1] >= w[0] - 1e-9), "{d}");
        }
        if (E - 0.4).abs() < 1e-9 {
            assert_eq!(d["model_holds"], false, "{d}");
            assert!(d["note"].as_str().unwrap().contains("not k1 v + k2"), "{d}");
        }
    }
}
