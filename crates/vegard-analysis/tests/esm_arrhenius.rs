//! Known-answer tests for the ESM spectrum fit and the Arrhenius fit on
//! synthetic data from the small-signal physics of PHYSICS.md §4 (a
//! self-contained Randles + open finite Warburg model, the same formulas as
//! vegard-sim's `SmallSignal`), with the default bench's element values.
//!
//! Run with `--nocapture` to see the figures quoted in the assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};
use std::f64::consts::PI;
use vegard_analysis::{
    CellCorrection, EsmFitOptions, Phasor, compare, deflection_per_faradaic_charge,
    film_transfer_H, fit_arrhenius, fit_esm_h, fit_esm_h_corrected,
};
use vegard_core::constants::BOLTZMANN_EV_PER_K;

type C = num_complex::Complex64;

// ---- the Randles + open Warburg cell ------------------------------------

/// coth(u)/u for u = sqrt(j s) (Re u > 0), via exp(-2u).
fn coth_over_u(s: f64) -> C {
    let a = (0.5 * s).sqrt();
    let u = C::new(a, a);
    let e = u.scale(-2.0).exp();
    (C::ONE + e) / (C::ONE - e) / u
}

#[derive(Clone, Copy)]
struct Cell {
    R_s_ohm: f64,
    C_dl_F: f64,
    R_ct_ohm: f64,
    tau_s: f64,
    C_int_F: f64,
    kappa_nm_per_C: f64,
}

/// Default bench at 25 degC (vegard-recipe sim_defaults, SmallSignal at E0).
const BENCH: Cell = Cell {
    R_s_ohm: 10.0,
    C_dl_F: 150e-6,
    R_ct_ohm: 11.0,
    tau_s: 26.7,
    C_int_F: 0.44,
    kappa_nm_per_C: -205.3,
};

/// One lock-in point: (E, I, u/E) for a 5 mV sine at `f_Hz`.
fn point(c: &Cell, f_Hz: f64) -> (C, C, C) {
    let w = 2.0 * PI * f_Hz;
    let z0 = c.tau_s / c.C_int_F;
    let z_f = C::new(c.R_ct_ohm, 0.0) + coth_over_u(w * c.tau_s).scale(z0);
    let y_dl = C::new(0.0, w * c.C_dl_F);
    let z_int = C::ONE / (C::ONE / z_f + y_dl);
    let z = C::new(c.R_s_ohm, 0.0) + z_int;
    let e = C::new(5e-3, 0.0);
    let i = e / z;
    let i_f = i * z_int / z_f;
    let q_f = i_f / C::new(0.0, w);
    let u = q_f.scale(c.kappa_nm_per_C);
    (e, i, u / e)
}

/// 1 Hz down to 5 mHz, 4 points per decade (10 points, log-spaced).
fn freqs() -> Vec<f64> {
    let n = ((200f64).log10() * 4.0).round() as usize + 1;
    (0..n)
        .map(|k| 10f64.powf(-(200f64).log10() * k as f64 / (n - 1) as f64))
        .collect()
}

struct Spectrum {
    f: Vec<f64>,
    e: Vec<Phasor>,
    i: Vec<Phasor>,
    r: Vec<Phasor>,
}

/// Spectrum with complex Gaussian noise of `rel` times |u/E| per component
/// on the deflection (E and I from the lock-in are far less noisy and are
/// kept exact).
fn spectrum(c: &Cell, rel: f64, rng: &mut StdRng) -> Spectrum {
    let f = freqs();
    let nrm = Normal::new(0.0, 1.0).unwrap();
    let (mut e, mut i, mut r) = (vec![], vec![], vec![]);
    for &fk in &f {
        let (ek, ik, rk) = point(c, fk);
        let a = rel * rk.norm();
        let noisy = rk + C::new(a * nrm.sample(rng), a * nrm.sample(rng));
        e.push(ek.into());
        i.push(ik.into());
        r.push(noisy.into());
    }
    Spectrum { f, e, i, r }
}

fn correction(c: &Cell) -> CellCorrection {
    CellCorrection {
        R_s_ohm: c.R_s_ohm,
        R_ct_ohm: c.R_ct_ohm,
        C_dl_F: c.C_dl_F,
        // The synthetic spectra are the small-signal model itself.
        thermal_voltage_V: None,
    }
}

// ---- H(s) facts --------------------------------------------------------

#[test]
fn h_half_power_point_and_high_frequency_phase() {
    // |H| falls monotonically: bisect |H(s)| = 1/sqrt 2.
    let target = 0.5f64.sqrt();
    let (mut lo, mut hi): (f64, f64) = (0.1, 100.0);
    for _ in 0..100 {
        let mid = (lo * hi).sqrt();
        if film_transfer_H(mid).amplitude() > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let s_half = (lo * hi).sqrt();
    println!("|H| = 1/sqrt2 at s = {s_half:.4}");
    assert!((s_half - 2.61).abs() < 0.01, "{s_half}");
    // Phase: -45 deg in the limit; -44.99 deg already at s = 1e3.
    let ph = film_transfer_H(1e3).phase_deg();
    println!("phase H(1e3) = {ph:.4} deg");
    assert!((ph + 45.0).abs() < 0.05, "{ph}");
    assert!((film_transfer_H(1e8).phase_deg() + 45.0).abs() < 1e-9);
    // And it agrees with this file's own coth(u)/u.
    let s = 2.6;
    let h = film_transfer_H(s);
    // H = tanh(u)/u = 1/(u^2 coth(u)/u) = 1/(j s coth(u)/u).
    let alt = C::ONE / (C::new(0.0, s) * coth_over_u(s));
    assert!((h.re - alt.re).abs() < 1e-12 && (h.im - alt.im).abs() < 1e-12);
}

// ---- ESM fits on the default bench -------------------------------------

#[test]
fn noise_free_bench_raw_fit_is_biased_corrected_fit_is_not() {
    let mut rng = StdRng::seed_from_u64(0);
    let s = spectrum(&BENCH, 0.0, &mut rng);
    let opt = EsmFitOptions::default();
    let a = fit_esm_h(&s.f, &s.r, &opt).unwrap();
    let b = fit_esm_h_corrected(&s.f, &s.r, &s.e, &s.i, &correction(&BENCH), &opt).unwrap();
    let expect_A = BENCH.kappa_nm_per_C * BENCH.C_int_F;
    println!(
        "noise-free: (a) tau = {:.3} s ({:+.2} %), A = {:.2}, B = {:.3}, misfit {:.4}; \
         (b) tau = {:.3} s ({:+.3} %), A = {:.2} (truth {expect_A:.2}), B = {:.4}, misfit {:.2e}",
        a.tau_s,
        100.0 * (a.tau_s / BENCH.tau_s - 1.0),
        a.A_nm_per_V,
        a.B_nm_per_V,
        a.misfit_rms,
        b.tau_s,
        100.0 * (b.tau_s / BENCH.tau_s - 1.0),
        b.A_nm_per_V,
        b.B_nm_per_V,
        b.misfit_rms
    );
    // The raw fit cannot describe the RC-distorted spectrum.
    assert!((a.tau_s / BENCH.tau_s - 1.0).abs() > 0.05);
    // With R_s, R_ct and C_dl the correction is exact: only I_F crosses
    // R_ct (without C_dl it was 0.4 % off).
    assert!((b.tau_s / BENCH.tau_s - 1.0).abs() < 1e-6, "{b:?}");
    assert!((b.A_nm_per_V / expect_A - 1.0).abs() < 1e-6, "{b:?}");
    assert!(b.B_nm_per_V.abs() < 1e-6 * expect_A.abs());
    let no_cdl = CellCorrection {
        C_dl_F: 0.0,
        ..correction(&BENCH)
    };
    let c = fit_esm_h_corrected(&s.f, &s.r, &s.e, &s.i, &no_cdl, &opt).unwrap();
    let bias = c.tau_s / BENCH.tau_s - 1.0;
    assert!(bias > 1e-3 && bias < 0.01, "without C_dl: {bias}");
}

#[test]
fn one_percent_noise_corrected_fit_recovers_tau_within_3_percent() {
    let opt = EsmFitOptions::default();
    let reps = 100;
    let (mut sum_a, mut sum_b, mut sum_b2, mut inside_2se) = (0.0, 0.0, 0.0, 0);
    let mut worst_b: f64 = 0.0;
    let mut within_3pct = 0;
    let mut se_b_mean = 0.0;
    for seed in 0..reps {
        let mut rng = StdRng::seed_from_u64(1000 + seed);
        let s = spectrum(&BENCH, 0.01, &mut rng);
        let a = fit_esm_h(&s.f, &s.r, &opt).unwrap();
        let b = fit_esm_h_corrected(&s.f, &s.r, &s.e, &s.i, &correction(&BENCH), &opt).unwrap();
        let (da, db) = (a.tau_s / BENCH.tau_s - 1.0, b.tau_s / BENCH.tau_s - 1.0);
        if seed == 0 {
            println!(
                "seed 0, 1 % noise: (a) tau = {:.2} +- {:.2} s ({:+.1} %), misfit {:.4}; \
                 (b) tau = {:.2} +- {:.2} s ({:+.2} %), misfit {:.4}",
                a.tau_s,
                a.tau_se_s,
                100.0 * da,
                a.misfit_rms,
                b.tau_s,
                b.tau_se_s,
                100.0 * db,
                b.misfit_rms
            );
            assert!(db.abs() < 0.03, "{b:?}");
        }
        sum_a += da;
        sum_b += db;
        sum_b2 += db * db;
        worst_b = worst_b.max(db.abs());
        if db.abs() < 0.03 {
            within_3pct += 1;
        }
        se_b_mean += b.ln_tau_se;
        if (b.tau_s.ln() - BENCH.tau_s.ln()).abs() < 2.0 * b.ln_tau_se {
            inside_2se += 1;
        }
    }
    let n = reps as f64;
    let (mean_a, mean_b) = (sum_a / n, sum_b / n);
    let sd_b = (sum_b2 / n - mean_b * mean_b).sqrt();
    se_b_mean /= n;
    println!(
        "{reps} seeds: (a) mean bias {:+.2} %; (b) mean {:+.3} %, sd {:.3} %, worst {:.3} %, \
         mean SE(ln tau) {:.3} %, within 2 SE {inside_2se}/{reps}, within 3 % {within_3pct}/{reps}",
        100.0 * mean_a,
        100.0 * mean_b,
        100.0 * sd_b,
        100.0 * worst_b,
        100.0 * se_b_mean
    );
    assert!(mean_a.abs() > 0.05);
    assert!(mean_b.abs() < 0.01);
    // sd ~1.5 %: 3 % is a 2-sigma band, so a few seeds in 100 may leave it.
    assert!(within_3pct >= 90, "{within_3pct}");
    assert!(worst_b < 0.05);
    // The SE describes the scatter (within a factor of ~1.3).
    assert!(
        (se_b_mean / sd_b - 1.0).abs() < 0.3,
        "{se_b_mean} vs {sd_b}"
    );
    assert!((85..=100).contains(&inside_2se));
}

#[test]
fn electrostatic_background_is_separated() {
    // A flat +3 nm/V term per volt of cell potential on top of the Vegard
    // response (|u/E| is 90 nm/V on the plateau, ~10 nm/V at 1 Hz).
    let mut rng = StdRng::seed_from_u64(7);
    let mut s = spectrum(&BENCH, 0.0, &mut rng);
    for r in &mut s.r {
        r.re += 3.0;
    }
    let opt = EsmFitOptions::default();
    let b = fit_esm_h_corrected(&s.f, &s.r, &s.e, &s.i, &correction(&BENCH), &opt).unwrap();
    println!(
        "with B = 3 nm/V: tau = {:.3} s, B = {:.3}",
        b.tau_s, b.B_nm_per_V
    );
    assert!((b.tau_s / BENCH.tau_s - 1.0).abs() < 0.01);
    assert!((b.B_nm_per_V - 3.0).abs() < 0.1);
}

// ---- Arrhenius ---------------------------------------------------------

const EA_EV: f64 = 0.45;
const T_REF_K: f64 = 298.15;
const TAU_REF_S: f64 = 26.7;

fn temps() -> Vec<f64> {
    [25.0, 35.0, 45.0, 55.0, 65.0]
        .iter()
        .map(|c| c + 273.15)
        .collect()
}

fn tau_true(T_K: f64) -> f64 {
    TAU_REF_S * (EA_EV / BOLTZMANN_EV_PER_K * (1.0 / T_K - 1.0 / T_REF_K)).exp()
}

#[test]
fn exact_arrhenius_data_recover_ea_and_d0() {
    let t = temps();
    let tau: Vec<f64> = t.iter().map(|&t| tau_true(t)).collect();
    let se: Vec<f64> = tau.iter().map(|t| 0.02 * t).collect();
    let r = fit_arrhenius(&t, &tau, &se).unwrap();
    assert!((r.ea_eV - EA_EV).abs() < 1e-9, "{}", r.ea_eV);
    assert!(
        (r.ea_kJ_per_mol - 43.418_4).abs() < 1e-3,
        "{}",
        r.ea_kJ_per_mol
    );
    assert!((r.tau_s(T_REF_K) / TAU_REF_S - 1.0).abs() < 1e-9);
    // Bench truth: L = 200 nm, D(25 degC) = L^2/tau = 1.498e-15 m^2/s.
    let L_m = 200e-9;
    let d0_true = L_m * L_m / TAU_REF_S * (EA_EV / (BOLTZMANN_EV_PER_K * T_REF_K)).exp();
    assert!((r.D0_m2_per_s(L_m) / d0_true - 1.0).abs() < 1e-8);
    assert!((r.D_m2_per_s(L_m, T_REF_K) - 1.498_127e-15).abs() < 1e-20);
    // 25 -> 65 degC: tau 26.7 s -> 3.36 s (sim_defaults: "7.9-fold").
    assert!((tau.last().unwrap() - 3.363).abs() < 1e-3, "{tau:?}");
    assert_eq!((r.n_points, r.dof), (5, 3));
    let json = serde_json::to_value(&r).unwrap();
    for key in [
        "ea_eV",
        "ea_se_eV",
        "ea_ci95_eV",
        "ea_kJ_per_mol",
        "inv_tau0_per_s",
        "chi2_reduced",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
}

#[test]
fn two_percent_noise_interval_covers_truth_about_95_percent() {
    let t = temps();
    let nrm: Normal<f64> = Normal::new(0.0, 1.0).unwrap();
    let reps = 200;
    let (mut covered, mut sum, mut sum2, mut se_sum) = (0, 0.0, 0.0, 0.0);
    let mut se_int = 0.0;
    for seed in 0..reps {
        let mut rng = StdRng::seed_from_u64(seed);
        let tau: Vec<f64> = t
            .iter()
            .map(|&t| tau_true(t) * (0.02 * nrm.sample(&mut rng)).exp())
            .collect();
        let se: Vec<f64> = tau.iter().map(|t| 0.02 * t).collect();
        let r = fit_arrhenius(&t, &tau, &se).unwrap();
        let [lo, hi] = r.ea_ci95_eV.unwrap();
        if lo <= EA_EV && EA_EV <= hi {
            covered += 1;
        }
        sum += r.ea_eV;
        sum2 += r.ea_eV * r.ea_eV;
        se_sum += r.ea_se_eV;
        se_int = r.ea_se_internal_eV;
    }
    let n = reps as f64;
    let mean = sum / n;
    let sd = (sum2 / n - mean * mean).sqrt();
    println!(
        "2 % noise, {reps} seeds: Ea mean {mean:.4} eV, sd {sd:.4} eV, mean SE {:.4} eV, \
         internal SE {se_int:.4} eV, 95 % CI covers truth {covered}/{reps}",
        se_sum / n
    );
    assert!((mean - EA_EV).abs() < 3.0 * sd / n.sqrt() + 1e-4);
    // Internal SE (2 % per point) equals the true sd of the estimator.
    assert!((se_int / sd - 1.0).abs() < 0.15, "{se_int} vs {sd}");
    let cov = covered as f64 / n;
    assert!((0.90..=0.99).contains(&cov), "{cov}");
}

/// The chain end to end: per temperature an ESM spectrum with 1 % noise,
/// the corrected fit, then Arrhenius on tau_ESM; and the raw fit's Ea for
/// comparison. R_ct has its own activation energy (0.35 eV, sim_defaults)
/// and C_int, R_ct scale with T through RT/F.
#[test]
fn esm_to_arrhenius_end_to_end() {
    let opt = EsmFitOptions::default();
    let (mut taus_a, mut ses_a, mut taus_b, mut ses_b) = (vec![], vec![], vec![], vec![]);
    let t = temps();
    let mut rng = StdRng::seed_from_u64(42);
    for &T in &t {
        let arr = |ea: f64| (ea / BOLTZMANN_EV_PER_K * (1.0 / T - 1.0 / T_REF_K)).exp();
        let cell = Cell {
            tau_s: tau_true(T),
            C_int_F: BENCH.C_int_F * T_REF_K / T,
            R_ct_ohm: BENCH.R_ct_ohm * T / T_REF_K * arr(0.35),
            ..BENCH
        };
        let s = spectrum(&cell, 0.01, &mut rng);
        let a = fit_esm_h(&s.f, &s.r, &opt).unwrap();
        let b = fit_esm_h_corrected(&s.f, &s.r, &s.e, &s.i, &correction(&cell), &opt).unwrap();
        println!(
            "T = {T:.2} K: tau true {:.3} s, (a) {:.3} s, (b) {:.3} +- {:.3} s",
            cell.tau_s, a.tau_s, b.tau_s, b.tau_se_s
        );
        taus_a.push(a.tau_s);
        ses_a.push(a.tau_se_s);
        taus_b.push(b.tau_s);
        ses_b.push(b.tau_se_s);
    }
    let ra = fit_arrhenius(&t, &taus_a, &ses_a).unwrap();
    let rb = fit_arrhenius(&t, &taus_b, &ses_b).unwrap();
    let d = compare(&ra, &rb);
    println!(
        "Ea raw (a) {:.4} +- {:.4} eV, corrected (b) {:.4} +- {:.4} eV [{:.4}, {:.4}], \
         internal SE (b) {:.4} eV, diff {:+.4} +- {:.4} eV (z = {:.2})",
        ra.ea_eV,
        ra.ea_se_eV,
        rb.ea_eV,
        rb.ea_se_eV,
        rb.ea_ci95_eV.unwrap()[0],
        rb.ea_ci95_eV.unwrap()[1],
        rb.ea_se_internal_eV,
        d.diff_eV,
        d.se_eV,
        d.z
    );
    let [lo, hi] = rb.ea_ci95_eV.unwrap();
    assert!(lo <= EA_EV && EA_EV <= hi);
    assert!((rb.ea_eV - EA_EV).abs() < 0.02);
}

#[test]
fn deflection_per_faradaic_charge_is_flat_kappa_for_pure_vegard_strain() {
    let mut rng = StdRng::seed_from_u64(3);
    let s = spectrum(&BENCH, 0.0, &mut rng);
    let k = deflection_per_faradaic_charge(&s.f, &s.r, &s.e, &s.i, &correction(&BENCH)).unwrap();
    let kappa_nm_per_mC = BENCH.kappa_nm_per_C * 1e-3;
    for (f, p) in s.f.iter().zip(&k) {
        // u = kappa Q_F exactly: real, negative, the same at every frequency.
        assert!(
            (p.re / kappa_nm_per_mC - 1.0).abs() < 1e-9 && p.im.abs() < 1e-9 * p.re.abs(),
            "{f} Hz: {p:?} vs {kappa_nm_per_mC}"
        );
    }
    // Without C_dl the double layer's charge counts as faradaic: |u/Q| is
    // too small where the double layer takes a share of the current.
    let no_cdl = CellCorrection {
        C_dl_F: 0.0,
        ..correction(&BENCH)
    };
    let k0 = deflection_per_faradaic_charge(&s.f, &s.r, &s.e, &s.i, &no_cdl).unwrap();
    let worst = k0
        .iter()
        .map(|p| (p.amplitude() / kappa_nm_per_mC.abs() - 1.0).abs())
        .fold(0.0, f64::max);
    assert!(worst > 1e-3, "{worst}");
}
