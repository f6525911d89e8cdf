//! Known-answer tests on synthetic CVs generated here: a triangle potential,
//! a faradaic current of Gaussian peaks (plus, optionally, a continuous leak
//! current that is large at the vertices), a double-layer current with an
//! R_s*C_dl relaxation after each reversal, and a deflection
//! kappa*Q_F + drift*t + noise.

#![allow(clippy::unwrap_used)]

use rand::{SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Normal};
use vegard_analysis::*;

struct Spec {
    n_cycles: usize,
    dt_s: f64,
    scan_rate_V_per_s: f64,
    C_dl_F: f64,
    /// Per-cycle kappa (nm/C); cycle c uses kappa_nm_per_C[c].
    kappa_nm_per_C: Vec<f64>,
    drift_nm_per_s: f64,
    deflection_noise_nm: f64,
    current_noise_A: f64,
    /// Continuous faradaic leak (E - 0.65 V)/R, kinked at every vertex.
    leak_ohm: Option<f64>,
    /// R_s*C_dl time constant of the capacitive current after a reversal.
    tau_rc_s: f64,
    /// Holder random walk added to the deflection, nm per sqrt(s).
    random_walk_nm_per_sqrt_s: f64,
    seed: u64,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            n_cycles: 3,
            dt_s: 0.01,
            scan_rate_V_per_s: 0.1,
            C_dl_F: 100e-6,
            kappa_nm_per_C: vec![-200.0; 3], // -0.2 nm/mC
            drift_nm_per_s: 0.01,
            deflection_noise_nm: 0.02,
            current_noise_A: 0.1e-6,
            leak_ohm: None,
            tau_rc_s: 0.005,
            random_walk_nm_per_sqrt_s: 0.0,
            seed: 7,
        }
    }
}

struct Data {
    t_s: Vec<f64>,
    E_V: Vec<f64>,
    I_A: Vec<f64>,
    Q_F_true_C: Vec<f64>,
    deflection_nm: Vec<f64>,
    cycle: Vec<i64>,
}

impl Data {
    fn input(&self, C_dl_F: Option<f64>) -> CvInput<'_> {
        CvInput {
            t_s: &self.t_s,
            E_V: &self.E_V,
            I_A: &self.I_A,
            deflection_nm: &self.deflection_nm,
            cycle: &self.cycle,
            C_dl_F: C_dl_F.map(|c| (c, CdlSource::Given)),
            period_s: None,
        }
    }
}

const E_LO: f64 = 0.4;
const E_HI: f64 = 0.9;

fn generate(s: &Spec) -> Data {
    let mut rng = StdRng::seed_from_u64(s.seed);
    let u_noise = Normal::new(0.0, s.deflection_noise_nm.max(1e-300)).unwrap();
    let i_noise = Normal::new(0.0, s.current_noise_A.max(1e-300)).unwrap();
    let v = s.scan_rate_V_per_s;
    let half_s = (E_HI - E_LO) / v;
    let period_s = 2.0 * half_s;
    // Samples are offset by 0.3 dt so no sample falls on a vertex.
    let n = (s.n_cycles as f64 * period_s / s.dt_s).round() as usize;
    let mut d = Data {
        t_s: Vec::new(),
        E_V: Vec::new(),
        I_A: Vec::new(),
        Q_F_true_C: Vec::new(),
        deflection_nm: Vec::new(),
        cycle: Vec::new(),
    };
    let mut i_far = Vec::new();
    for k in 0..n {
        let t = (k as f64 + 0.3) * s.dt_s;
        let c = ((t / period_s).floor() as usize).min(s.n_cycles - 1);
        let ph = t - c as f64 * period_s;
        let (e, rate) = if ph < half_s {
            (E_LO + v * ph, v)
        } else {
            (E_HI - v * (ph - half_s), -v)
        };
        // Capacitive current, relaxing with tau_rc after the latest reversal.
        let t_rev = if ph < half_s {
            c as f64 * period_s
        } else {
            c as f64 * period_s + half_s
        };
        let c_now = s.C_dl_F * rate;
        let i_cap = if t_rev > 0.0 {
            c_now - 2.0 * c_now * (-(t - t_rev) / s.tau_rc_s).exp()
        } else {
            c_now
        };
        let peak = |center: f64| 5e-3 * (-((e - center) / 0.06_f64).powi(2)).exp();
        let mut i_f = if rate > 0.0 { peak(0.67) } else { -peak(0.63) };
        if let Some(r) = s.leak_ohm {
            i_f += (e - 0.65) / r;
        }
        d.t_s.push(t);
        d.E_V.push(e);
        d.I_A.push(i_f + i_cap + i_noise.sample(&mut rng));
        d.cycle.push(c as i64);
        i_far.push(i_f);
    }
    d.Q_F_true_C = cumulative_charge_C(&d.t_s, &i_far).unwrap();
    let walk_step = Normal::new(0.0, 1.0).unwrap();
    let mut walk_nm = 0.0;
    for k in 0..n {
        if s.random_walk_nm_per_sqrt_s > 0.0 {
            walk_nm += s.random_walk_nm_per_sqrt_s * s.dt_s.sqrt() * walk_step.sample(&mut rng);
        }
        let kappa = s.kappa_nm_per_C[d.cycle[k] as usize];
        let noise = if s.deflection_noise_nm > 0.0 {
            u_noise.sample(&mut rng)
        } else {
            0.0
        };
        d.deflection_nm
            .push(kappa * d.Q_F_true_C[k] + s.drift_nm_per_s * d.t_s[k] + 3.0 + noise + walk_nm);
    }
    d
}

fn rel_err(got: f64, want: f64) -> f64 {
    ((got - want) / want).abs()
}

#[test]
fn c_dl_is_recovered_from_vertex_jumps() {
    let s = Spec::default();
    let d = generate(&s);
    let est = estimate_C_dl_F(&d.t_s, &d.E_V, &d.I_A).unwrap();
    // 3 cycles: tops at 5, 15, 25 s, bottoms at 10, 20 s.
    assert_eq!(est.n_vertices, 5, "{est:?}");
    assert!(rel_err(est.C_dl_F, s.C_dl_F) < 0.05, "{est:?}");
    assert!(est.spread_F.unwrap() < 0.05 * s.C_dl_F, "{est:?}");
    for c in &est.per_vertex_F {
        assert!(rel_err(*c, s.C_dl_F) < 0.1, "{est:?}");
    }
}

#[test]
fn c_dl_survives_a_faradaic_current_that_kinks_at_the_vertex() {
    // A 1 kOhm leak gives 0.25 mA at the vertices, 12x the capacitive jump,
    // and its slope flips sign there: a single-line step fit would be wrong.
    let s = Spec {
        leak_ohm: Some(1e3),
        ..Spec::default()
    };
    let d = generate(&s);
    let est = estimate_C_dl_F(&d.t_s, &d.E_V, &d.I_A).unwrap();
    assert_eq!(est.n_vertices, 5);
    assert!(rel_err(est.C_dl_F, s.C_dl_F) < 0.05, "{est:?}");
}

#[test]
fn kappa_and_drift_are_recovered_from_a_noisy_drifting_cv() {
    let s = Spec::default();
    let d = generate(&s);
    let a = analyze_cv(&d.input(None)).unwrap();
    let dvc = &a.deformation_vs_charge;
    assert_eq!(dvc.C_dl_source, CdlSource::VertexJump);
    assert!(rel_err(dvc.slope_nm_per_mC, -0.2) < 0.01, "{dvc:?}");
    // The standard error is honest: the true value lies within 5 SE.
    assert!(
        (dvc.slope_nm_per_mC + 0.2).abs() < 5.0 * dvc.slope_se_nm_per_mC,
        "{dvc:?}"
    );
    assert!(
        dvc.slope_se_nm_per_mC > 0.0 && dvc.slope_se_nm_per_mC < 0.002,
        "{dvc:?}"
    );
    assert!(
        rel_err(dvc.drift_nm_per_s, s.drift_nm_per_s) < 0.1,
        "{dvc:?}"
    );
    assert_eq!(dvc.n_points, d.t_s.len());
    assert_eq!(dvc.n_cycles, 3);
    assert_eq!(dvc.n_nonfinite, 0);
    assert!(dvc.r2 > 0.99 && dvc.r2_vs_charge > 0.99, "{dvc:?}");

    assert_eq!(dvc.per_cycle.len(), 3);
    for (c, fit) in dvc.per_cycle.iter().enumerate() {
        assert_eq!(fit.cycle, c as i64);
        assert_eq!(fit.n_points, 1000);
        assert!(rel_err(fit.slope_nm_per_mC, -0.2) < 0.01, "{fit:?}");
        // Gaussian peak: Q_F swings by A w sqrt(pi) / v = 5.32 mC.
        let swing_mC = 5e-3 * 0.06 * std::f64::consts::PI.sqrt() / 0.1 * 1e3;
        assert!(rel_err(fit.Q_F_swing_mC, swing_mC) < 0.01, "{fit:?}");
        // Deflection swing: |kappa| * swing, widened by the noise extremes
        // (at most ~10 sigma over 1000 samples).
        let excess = fit.deflection_swing_nm - 0.2 * swing_mC;
        assert!((0.0..10.0 * 0.02).contains(&excess), "{fit:?}");
    }

    // Two monotonic sweeps per cycle, each with the same slope once the
    // pooled drift is out.
    let halves = &dvc.per_half_cycle;
    assert_eq!(halves.len(), 6, "{halves:?}");
    for (k, h) in halves.iter().enumerate() {
        let want = if k % 2 == 0 {
            SweepDirection::Anodic
        } else {
            SweepDirection::Cathodic
        };
        assert_eq!(h.direction, want, "{h:?}");
        assert_eq!(h.cycle, (k / 2) as i64);
        assert!(rel_err(h.slope_nm_per_mC, -0.2) < 0.01, "{h:?}");
        assert!(
            (h.slope_nm_per_mC + 0.2).abs() < 5.0 * h.slope_se_nm_per_mC + 1e-3,
            "{h:?}"
        );
        assert!((h.n_points as i64 - 500).abs() <= 4, "{h:?}");
    }
    // No period given: no nonlinearity analysis, and a note why.
    assert!(a.nonlinearity.is_none() && a.nonlinearity_note.is_some());

    let c = &a.charge;
    assert!(rel_err(c.C_dl_F, s.C_dl_F) < 0.05);
    // Each cycle returns its faradaic charge, and the capacitor ends at E0.
    assert!(
        c.Q_total_C.abs() < 1e-5 && c.Q_F_total_C.abs() < 1e-5,
        "{c:?}"
    );
    // Anodic = every up sweep: the faradaic peak plus C_dl * v * 5 s.
    let per_sweep = 5e-3 * 0.06 * std::f64::consts::PI.sqrt() / 0.1 + s.C_dl_F * 0.1 * 5.0;
    assert!(rel_err(c.Q_anodic_C, 3.0 * per_sweep) < 0.005, "{c:?}");
    assert!(rel_err(-c.Q_cathodic_C, 3.0 * per_sweep) < 0.005, "{c:?}");
}

#[test]
fn noiseless_data_fit_exactly() {
    let s = Spec {
        deflection_noise_nm: 0.0,
        current_noise_A: 0.0,
        ..Spec::default()
    };
    let d = generate(&s);
    let dvc = deformation_vs_charge(&d.input(Some(s.C_dl_F))).unwrap();
    assert_eq!(dvc.C_dl_source, CdlSource::Given);
    assert!(dvc.r2 > 0.999 && dvc.r2_vs_charge > 0.999, "{dvc:?}");
    assert!(rel_err(dvc.slope_nm_per_mC, -0.2) < 1e-3, "{dvc:?}");
    assert!(
        rel_err(dvc.drift_nm_per_s, s.drift_nm_per_s) < 1e-2,
        "{dvc:?}"
    );
    for fit in &dvc.per_cycle {
        assert!(fit.r2 > 0.999, "{fit:?}");
    }
}

#[test]
fn standard_error_shrinks_with_noise() {
    let se = |noise: f64| {
        let d = generate(&Spec {
            deflection_noise_nm: noise,
            ..Spec::default()
        });
        deformation_vs_charge(&d.input(None))
            .unwrap()
            .slope_se_nm_per_mC
    };
    let (noisy, quiet) = (se(0.05), se(0.005));
    // SE is proportional to the noise: a 10x quieter deflection gives ~10x
    // smaller SE (not exactly: the current noise also enters Q_F).
    let ratio = noisy / quiet;
    assert!((7.0..13.0).contains(&ratio), "{noisy} / {quiet} = {ratio}");
}

#[test]
fn per_cycle_slopes_follow_each_cycle() {
    let kappas = vec![-200.0, -220.0, -240.0, -260.0];
    let s = Spec {
        n_cycles: 4,
        kappa_nm_per_C: kappas.clone(),
        ..Spec::default()
    };
    let d = generate(&s);
    let dvc = deformation_vs_charge(&d.input(None)).unwrap();
    assert_eq!(dvc.per_cycle.len(), 4);
    for (fit, kappa) in dvc.per_cycle.iter().zip(&kappas) {
        assert!(rel_err(fit.slope_nm_per_mC, kappa * 1e-3) < 0.01, "{fit:?}");
    }
    // The pooled slope lies between the extremes.
    assert!(
        dvc.slope_nm_per_mC < -0.2 && dvc.slope_nm_per_mC > -0.26,
        "{dvc:?}"
    );
}

#[test]
fn non_finite_samples_and_short_cycles_are_skipped() {
    let mut d = generate(&Spec::default());
    d.deflection_nm[100] = f64::NAN;
    d.I_A[2500] = f64::NAN;
    d.E_V[1500] = f64::INFINITY;
    // A stray 5-sample "cycle 9" at the end.
    for k in d.cycle.len() - 5..d.cycle.len() {
        d.cycle[k] = 9;
    }
    let dvc = deformation_vs_charge(&d.input(None)).unwrap();
    assert_eq!(dvc.n_nonfinite, 3);
    assert_eq!(dvc.n_cycles, 3);
    assert_eq!(dvc.skipped_cycles.len(), 1);
    let sk = &dvc.skipped_cycles[0];
    assert_eq!((sk.cycle, sk.n_points, sk.in_pooled_fit), (9, 5, false));
    assert!(sk.reason.contains("only 5 usable samples"), "{sk:?}");
    assert_eq!(dvc.n_points, 3000 - 3 - 5);
    assert!(rel_err(dvc.slope_nm_per_mC, -0.2) < 0.01, "{dvc:?}");
}

#[test]
fn degenerate_inputs_are_errors_not_panics() {
    let d = generate(&Spec::default());
    let empty = CvInput {
        t_s: &[],
        E_V: &[],
        I_A: &[],
        deflection_nm: &[],
        cycle: &[],
        C_dl_F: None,
        period_s: None,
    };
    assert!(matches!(
        analyze_cv(&empty),
        Err(AnalysisError::Insufficient(_))
    ));

    let mut short = d.input(None);
    short.deflection_nm = &d.deflection_nm[1..];
    assert!(matches!(
        analyze_cv(&short),
        Err(AnalysisError::Length {
            name: "deflection_nm",
            ..
        })
    ));

    // No current at all: Q_F is constant, kappa is undefined.
    let zeros = vec![0.0; d.t_s.len()];
    let mut flat = d.input(Some(0.0));
    flat.I_A = &zeros;
    let err = deformation_vs_charge(&flat).unwrap_err();
    assert!(matches!(err, AnalysisError::Degenerate(_)), "{err}");

    // Deflection all NaN: nothing usable.
    let nans = vec![f64::NAN; d.t_s.len()];
    let mut blind = d.input(None);
    blind.deflection_nm = &nans;
    assert!(matches!(
        deformation_vs_charge(&blind),
        Err(AnalysisError::Insufficient(_))
    ));

    // Constant potential: no vertex; the analysis still runs, uncorrected,
    // and says why.
    let e_flat = vec![0.5; d.t_s.len()];
    let mut ocp = d.input(None);
    ocp.E_V = &e_flat;
    let a = analyze_cv(&ocp).unwrap();
    assert_eq!(a.charge.C_dl_source, CdlSource::Uncorrected);
    assert_eq!(a.charge.C_dl_F, 0.0);
    assert!(
        a.charge
            .C_dl_note
            .as_deref()
            .unwrap()
            .contains("E_V never changes")
    );
    assert!(estimate_C_dl_F(&d.t_s[..10], &d.E_V[..10], &d.I_A[..10]).is_err());

    let mut bad_c = d.input(Some(-1e-6));
    bad_c.C_dl_F = Some((-1e-6, CdlSource::Given));
    assert!(matches!(
        analyze_cv(&bad_c),
        Err(AnalysisError::Parameter { name: "C_dl_F", .. })
    ));
}

#[test]
fn json_field_names_are_the_documented_ones() {
    let d = generate(&Spec::default());
    let v = serde_json::to_value(analyze_cv(&d.input(None)).unwrap()).unwrap();
    let dvc = &v["deformation_vs_charge"];
    for key in [
        "slope_nm_per_mC",
        "slope_se_nm_per_mC",
        "r2",
        "drift_nm_per_s",
        "C_dl_F",
    ] {
        assert!(dvc[key].is_number(), "{key} missing: {dvc}");
    }
    assert_eq!(dvc["C_dl_source"], "vertex-jump");
    assert!(dvc["n_points"].is_u64());
    let c0 = &dvc["per_cycle"][0];
    for key in [
        "slope_nm_per_mC",
        "slope_se_nm_per_mC",
        "r2",
        "n_points",
        "Q_F_swing_mC",
        "deflection_swing_nm",
    ] {
        assert!(c0[key].is_number(), "{key} missing: {c0}");
    }
    assert_eq!(c0["cycle"], 0);
    for key in ["Q_total_C", "Q_F_total_C", "C_dl_F"] {
        assert!(v["charge"][key].is_number(), "{key} missing");
    }
    assert_eq!(v["charge"]["C_dl_estimate"]["n_vertices"], 5);
}

#[test]
fn pure_vegard_cv_is_linear_in_charge_and_has_no_flags() {
    // Period 10 s (0.4 -> 0.9 -> 0.4 V at 0.1 V/s); C_dl from the vertices.
    let s = Spec::default();
    let d = generate(&s);
    let mut input = d.input(None);
    input.period_s = Some(10.0);
    let a = analyze_cv(&input).unwrap();
    let nl = a.nonlinearity.as_ref().unwrap();
    assert_eq!(nl.n_periods, 3);
    let g = &nl.regression;
    assert!(
        (g.kappa_at_Q0_nm_per_mC + 0.2).abs() < 0.002,
        "{g:?} {:?}",
        nl.findings
    );
    assert!(!nl.flags.quadratic_in_charge, "{:?}", nl.findings);
    assert!(
        !nl.flags.second_harmonic_not_from_charge,
        "{:?}",
        nl.findings
    );
    assert!(nl.lag_s.abs() < 0.05, "lag {}", nl.lag_s);
}

/// Issue 13 item 6b: the slope's 95 % interval must cover the truth in
/// about 95 % of repeated runs when the holder wanders (the bench's 0.05
/// nm/sqrt(min) random walk over single 10 s cycles with 20 pm white noise,
/// where the wander's rate is read off one record only loosely). 200 seeds
/// (binomial SE 1.5 %). Measured with 300 seeds (WALK_X = walk / bench's,
/// CYCLES), t interval / 1.96 SE / white-noise error:
/// 1x, 1 cycle: 93.3 / 86.7 / 35.3 %; 1x, 3 cycles: 93.7 / 89.0 / 25.3 %;
/// 4x, 1 cycle: 95.0 / 93.7 / 13.3 %; 4x, 3 cycles: 94.0 / 92.3 / 11.3 %;
/// 0.25x: 97.0 and 92.3 %; no walk: 100 and 99.7 % (conservative: a walk
/// rate fitted above zero by chance is counted). The variogram fitted at
/// short lags only (the previous estimator) gave 85.7 % at 1x.
#[test]
fn slope_interval_covers_the_truth_about_95_percent_with_a_wandering_holder() {
    let walk: f64 = std::env::var("WALK_X")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let cycles: usize = std::env::var("CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let kappa_true_nm_per_mC = -0.2;
    let (mut model, mut white, mut z2, mut ci) = (0, 0, 0.0, 0);
    let runs: u64 = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    for seed in 0..runs {
        let s = Spec {
            n_cycles: cycles,
            random_walk_nm_per_sqrt_s: walk * 0.05 / 60f64.sqrt(),
            seed: 1000 + seed,
            ..Spec::default()
        };
        let d = generate(&s);
        let dvc = deformation_vs_charge(&d.input(Some(s.C_dl_F))).unwrap();
        let err = dvc.slope_nm_per_mC - kappa_true_nm_per_mC;
        z2 += (err / dvc.slope_se_nm_per_mC).powi(2);
        if err.abs() < 1.96 * dvc.slope_se_nm_per_mC {
            model += 1;
        }
        let [lo, hi] = dvc.slope_ci95_nm_per_mC;
        if lo < kappa_true_nm_per_mC && kappa_true_nm_per_mC < hi {
            ci += 1;
        }
        if err.abs() < 1.96 * dvc.slope_se_white_nm_per_mC {
            white += 1;
        }
    }
    let (model, white) = (model as f64 / runs as f64, white as f64 / runs as f64);
    let rms_z = (z2 / runs as f64).sqrt();
    let ci = ci as f64 / runs as f64;
    eprintln!(
        "coverage of the 95 % interval: t interval {ci:.3}, 1.96 SE {model:.3}, white {white:.3}; rms z {rms_z:.2}"
    );
    assert!((0.90..=0.985).contains(&ci), "t-interval coverage {ci}");
    assert!(white < 0.6, "white-noise coverage {white}");
}
