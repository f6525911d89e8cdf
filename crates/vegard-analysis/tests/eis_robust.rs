//! Issue 13, EIS part: canonical labels, the global stage before LM, and
//! the identifiability verdict, on synthetic spectra of known parameters.
//!
//! The spectrum is a solid electrolyte, `p(R1,CPE1)-p(R2,CPE2)-CPE3`: bulk
//! arc (tau 1e-6 s, f_char 159 kHz), grain-boundary arc (tau 1e-3 s,
//! 159 Hz) and a blocking-electrode tail, measured 10 MHz -> 0.1 Hz at 10
//! points per decade with 0.5 % complex noise (Gaussian, fixed seeds),
//! fitted with modulus weighting.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};
use vegard_analysis::{
    Circuit, EisFit, EisFitOptions, EisWeighting, FitProblem, FitStatus, fit_circuit,
    fit_circuit_with,
};

const CIRCUIT: &str = "p(R1,CPE1)-p(R2,CPE2)-CPE3";

/// True parameters: R1, Q1, a1, R2, Q2, a2, Q3, a3.
fn truth() -> [f64; 8] {
    let (r1, a1, tau1): (f64, f64, f64) = (1e4, 0.95, 1e-6);
    let (r2, a2, tau2): (f64, f64, f64) = (3e4, 0.85, 1e-3);
    // tau = (R Q)^(1/alpha)  =>  Q = tau^alpha / R.
    [
        r1,
        tau1.powf(a1) / r1,
        a1,
        r2,
        tau2.powf(a2) / r2,
        a2,
        2e-6,
        0.8,
    ]
}

fn freqs() -> Vec<f64> {
    (0..=80)
        .map(|k| 1e7 * 10f64.powf(-k as f64 / 10.0))
        .collect()
}

/// The model with 0.5 % of |Z| Gaussian noise on each part.
fn noisy(c: &Circuit, p: &[f64], f: &[f64], seed: u64) -> Vec<(f64, f64)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = Normal::new(0.0, 0.005).unwrap();
    c.impedance_spectrum(p, f)
        .unwrap()
        .iter()
        .map(|z| {
            let m = z.norm();
            (z.re + m * n.sample(&mut rng), z.im + m * n.sample(&mut rng))
        })
        .collect()
}

/// LM alone from the true parameters: the minimum the robust fit must
/// reach (or beat).
fn reference(c: &Circuit, f: &[f64], z: &[(f64, f64)]) -> EisFit {
    fit_circuit_with(
        c,
        f,
        z,
        &EisFitOptions {
            weighting: EisWeighting::Modulus,
            guess: Some(truth().to_vec()),
            n_candidates: 0,
            ..EisFitOptions::default()
        },
    )
    .unwrap()
}

/// Every parameter within 5 % of the truth (alphas within 0.02) and within
/// 5 standard errors of it, bulk first; SSR no worse than LM from the
/// truth (relative 1e-9).
fn assert_recovered(what: &str, fit: &EisFit, best: &EisFit) {
    assert_eq!(fit.status, FitStatus::Ok, "{what}: {fit:#?}");
    let t = truth();
    for (k, ((name, got), (_, se))) in fit.parameters.iter().zip(&fit.stderr).enumerate() {
        let want = t[k];
        let is_alpha = name.ends_with("_1");
        let err = got - want;
        let tol = if is_alpha { 0.02 } else { 0.05 * want };
        assert!(
            err.abs() < tol && err.abs() < 5.0 * se,
            "{what}: {name} = {got:.4e} +- {se:.1e}, truth {want:.4e}"
        );
    }
    assert!(
        fit.quality.chi2_weighted <= best.quality.chi2_weighted * (1.0 + 1e-9),
        "{what}: chi2 {} vs {} from the truth",
        fit.quality.chi2_weighted,
        best.quality.chi2_weighted
    );
    // Arc 1 is the high-frequency (bulk) one.
    assert!(fit.arcs[0].f_char_Hz > fit.arcs[1].f_char_Hz, "{what}");
    assert!((fit.arcs[0].tau_s / 1e-6 - 1.0).abs() < 0.1, "{what}");
    assert!((fit.arcs[1].tau_s / 1e-3 - 1.0).abs() < 0.1, "{what}");
}

#[test]
fn two_arcs_from_no_guess_and_from_poor_guesses() {
    let c = Circuit::parse(CIRCUIT).unwrap();
    let f = freqs();
    let t = truth();
    for seed in [1, 2, 3] {
        let z = noisy(&c, &t, &f, seed);
        let best = reference(&c, &f, &z);
        let fit = fit_circuit(&c, &f, &z, None, EisWeighting::Modulus).unwrap();
        println!(
            "seed {seed}: no guess: {:.1} ms, {} starts, won {:?}, chi2 {:.6e} (truth start {:.6e}), cond {:.2e}",
            fit.fit_time_s * 1e3,
            fit.n_starts,
            fit.start,
            fit.quality.chi2_weighted,
            best.quality.chi2_weighted,
            fit.condition_number
        );
        assert_recovered("no guess", &fit, &best);

        // Arcs swapped in the guess: the result is relabelled, bulk first.
        let swapped = [t[3], t[4], t[5], t[0], t[1], t[2], t[6], t[7]];
        let fit = fit_circuit(&c, &f, &z, Some(&swapped), EisWeighting::Modulus).unwrap();
        assert_recovered("swapped guess", &fit, &best);
        println!(
            "  swapped guess: won {:?}, relabelled {}",
            fit.start, fit.relabelled
        );

        // Off by 100x: R and Q x100 (or /100), exponents at 0.5.
        for scale in [100.0, 0.01] {
            let poor = [
                t[0] * scale,
                t[1] * scale,
                0.5,
                t[3] * scale,
                t[4] * scale,
                0.5,
                t[6] * scale,
                0.5,
            ];
            let fit = fit_circuit(&c, &f, &z, Some(&poor), EisWeighting::Modulus).unwrap();
            assert_recovered(&format!("guess x{scale}"), &fit, &best);
            // LM alone from the same poor guess, for the record.
            let alone = fit_circuit_with(
                &c,
                &f,
                &z,
                &EisFitOptions {
                    weighting: EisWeighting::Modulus,
                    guess: Some(poor.to_vec()),
                    n_candidates: 0,
                    ..EisFitOptions::default()
                },
            )
            .unwrap();
            println!(
                "  guess x{scale}: won {:?} (chi2 {:.4e}); LM alone from it: chi2 {:?}, status {}",
                fit.start,
                fit.quality.chi2_weighted,
                alone.given_guess_chi2,
                alone.status.name()
            );
        }
    }
}

#[test]
fn swapping_the_guess_maps_values_and_standard_errors_together() {
    let c = Circuit::parse(CIRCUIT).unwrap();
    let f = freqs();
    let t = truth();
    let z = noisy(&c, &t, &f, 11);
    let only = |g: Vec<f64>| {
        fit_circuit_with(
            &c,
            &f,
            &z,
            &EisFitOptions {
                weighting: EisWeighting::Modulus,
                guess: Some(g),
                n_candidates: 0,
                ..EisFitOptions::default()
            },
        )
        .unwrap()
    };
    let straight = only(t.to_vec());
    let swapped = only(vec![t[3], t[4], t[5], t[0], t[1], t[2], t[6], t[7]]);
    assert!(!straight.relabelled && swapped.relabelled);
    // Same minimum reached from both sides, same labels, same errors
    // (relative 1e-5: the two LM runs stop at slightly different points).
    for (((n, a), (_, b)), ((_, sa), (_, sb))) in straight
        .parameters
        .iter()
        .zip(&swapped.parameters)
        .zip(straight.stderr.iter().zip(&swapped.stderr))
    {
        assert!((a / b - 1.0).abs() < 1e-5, "{n}: {a} vs {b}");
        assert!((sa / sb - 1.0).abs() < 1e-3, "{n}: se {sa} vs {sb}");
    }
    for (i, row) in straight.covariance.iter().enumerate() {
        for (j, x) in row.iter().enumerate() {
            let y = swapped.covariance[i][j];
            assert!(
                (x - y).abs()
                    <= 1e-3 * (x.abs() + 1e-300)
                        + 1e-3 * (straight.covariance[i][i] * straight.covariance[j][j]).sqrt(),
                "cov[{i}][{j}]: {x} vs {y}"
            );
        }
    }
}

#[test]
fn degenerate_inputs_give_a_failed_or_unidentifiable_status() {
    // R0-R1: only R0 + R1 is determined.
    let c = Circuit::parse("R0-R1").unwrap();
    let f: Vec<f64> = (0..10).map(|k| 10f64.powi(k)).collect();
    let z: Vec<(f64, f64)> = f.iter().map(|_| (100.0, 0.0)).collect();
    let fit = fit_circuit(&c, &f, &z, None, EisWeighting::Unit).unwrap();
    match &fit.status {
        FitStatus::Unidentifiable { reasons } => assert!(
            reasons
                .iter()
                .any(|r| matches!(r, FitProblem::RankDeficient { params } if params.len() == 2)),
            "{reasons:?}"
        ),
        other => panic!("R0-R1: {other:?}"),
    }
    assert!((fit.values().iter().sum::<f64>() - 100.0).abs() < 1e-6);

    // All frequencies equal.
    let c = Circuit::parse("R0-p(R1,C1)").unwrap();
    let f = [1e3; 12];
    let z: Vec<(f64, f64)> = (0..12).map(|k| (10.0 + k as f64 * 1e-3, -5.0)).collect();
    let fit = fit_circuit(&c, &f, &z, None, EisWeighting::Unit).unwrap();
    assert!(
        matches!(
            fit.status,
            FitStatus::Failed {
                reason: FitProblem::AllFrequenciesEqual { .. }
            }
        ),
        "{:?}",
        fit.status
    );
    assert!(fit.values().iter().all(|v| v.is_nan()));

    // 2 points for 5 parameters.
    let c = Circuit::parse("R0-p(R1-Wo1,C1)").unwrap();
    let fit = fit_circuit(
        &c,
        &[1.0, 10.0],
        &[(1.0, -1.0), (0.8, -0.5)],
        None,
        EisWeighting::Unit,
    )
    .unwrap();
    assert!(
        matches!(
            fit.status,
            FitStatus::Failed {
                reason: FitProblem::TooFewPoints { .. }
            }
        ),
        "{:?}",
        fit.status
    );

    // (4 well-spread points for these 5 parameters are 8 numbers and DO
    // determine them: that is a fit with 3 degrees of freedom, not a
    // failure; the precheck is 2 N_distinct <= p.)

    // The case: a CPE driven to Q = 1e66 is at a bound.
    let c = Circuit::parse(CIRCUIT).unwrap();
    let mut p = truth();
    p[4] = 8.06e66;
    p[5] = 0.99999;
    let f = freqs();
    let z: Vec<(f64, f64)> = c
        .impedance_spectrum(&p, &f)
        .unwrap()
        .iter()
        .map(|z| (z.re, z.im))
        .collect();
    let fit = fit_circuit_with(
        &c,
        &f,
        &z,
        &EisFitOptions {
            guess: Some(p.to_vec()),
            n_candidates: 0,
            ..EisFitOptions::default()
        },
    )
    .unwrap();
    println!("CPE at 1e66: {}", fit.status.reasons_text());
    assert!(!fit.status.is_ok());
}

/// Issue 16: the fit's time is linear in the points with a large constant
/// (930 000 rows took minutes), so more than `MAX_FIT_POINTS` is refused
/// before any work, saying how to decimate; the limit itself is fitted.
#[test]
fn fit_eis_on_a_huge_spectrum_is_refused_with_a_decimation_hint() {
    use vegard_analysis::{AnalysisError, MAX_FIT_POINTS, lin_kk};
    let c = Circuit::parse("R0-p(R1,C1)").unwrap();
    let spectrum = |n: usize| -> (Vec<f64>, Vec<(f64, f64)>) {
        let f: Vec<f64> = (0..n)
            .map(|k| 10f64.powf(5.0 - 7.0 * k as f64 / n as f64))
            .collect();
        let z = c.impedance_spectrum(&[10.0, 100.0, 1e-5], &f).unwrap();
        (f, z.iter().map(|z| (z.re, z.im)).collect())
    };
    let (f, z) = spectrum(930_000);
    let e = fit_circuit(&c, &f, &z, None, EisWeighting::Unit).unwrap_err();
    assert_eq!(
        e,
        AnalysisError::TooMuchData(
            "930000 impedance points, at most 10000 can be fitted (a measured spectrum has \
             10-1000 frequencies): decimate the spectrum, e.g. keep one point in 93, or \
             average repeated frequencies"
                .into()
        )
    );
    assert!(matches!(lin_kk(&f, &z), Err(AnalysisError::TooMuchData(_))));
    let (f, z) = spectrum(MAX_FIT_POINTS + 1);
    assert!(fit_circuit(&c, &f, &z, None, EisWeighting::Unit).is_err());
    // Exactly the limit is a fit (no random starts: this checks the
    // boundary, not the global stage).
    let (f, z) = spectrum(MAX_FIT_POINTS);
    let opts = EisFitOptions {
        n_candidates: 0,
        n_lm_starts: 0,
        ..EisFitOptions::default()
    };
    let fit = fit_circuit_with(&c, &f, &z, &opts).unwrap();
    assert_eq!(fit.n_points, MAX_FIT_POINTS);
    assert!((fit.values()[1] - 100.0).abs() < 1e-6, "{:?}", fit.values());
}
