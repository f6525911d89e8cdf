//! tau_ESM on the bench's own time-domain model (vegard-sim's `Electrode`
//! and `Lever`, the code behind every recorded ESM sweep): an ESM sweep
//! like recipes/esm-sweep.toml (1 Hz -> 5 mHz, 4 per decade, one settling
//! and two analysed periods, the sine continuous across frequencies),
//! demodulated with the software lock-in and fitted with the true R_s, R_ct
//! and C_dl. No noise: what is left is bias.
//!
//! Regression test for issue 13 item 6a (tau_ESM ran ~3 % short): the
//! small-signal film model read the cubic terms of the film's rate law at
//! 20-30 mV drives as a shorter tau; the large-signal film drive
//! (`esm_fit::film_drive_V`) removes that.
//!
//! Run with `--nocapture` to see the figures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::f64::consts::PI;
use vegard_analysis::{
    CellCorrection, EsmFit, EsmFitOptions, Phasor, fit_esm_h_corrected, harmonics,
};
use vegard_recipe::SimParams;
use vegard_sim::model::{Electrode, Lever, SmallSignal};

/// 1 Hz down to 5 mHz, 4 points per decade (the recipe's 10 frequencies).
fn freqs() -> Vec<f64> {
    let n = ((200f64).log10() * 4.0).round() as usize + 1;
    (0..n)
        .map(|k| 10f64.powf(-(200f64).log10() * k as f64 / (n - 1) as f64))
        .collect()
}

struct Sweep {
    f: Vec<f64>,
    response: Vec<Phasor>,
    e: Vec<Phasor>,
    i: Vec<Phasor>,
}

/// `E_dc + amp sin(w t)` at each frequency in turn (phase restarting at 0,
/// no jump in potential), one settling and two analysed periods, 100
/// samples per period of E, I and the true deflection.
fn sweep(p: &SimParams, amp_V: f64) -> Sweep {
    let mut el = Electrode::new(p).unwrap();
    let lever = Lever::new(p);
    let E_dc = el.state().E_app_V;
    let (settle, measure, per) = (1u32, 2u32, 100usize);
    let mut out = Sweep {
        f: vec![],
        response: vec![],
        e: vec![],
        i: vec![],
    };
    for f in freqs() {
        let w = 2.0 * PI * f;
        let dt = 1.0 / f / per as f64;
        let (mut t, mut e, mut i, mut u) = (vec![], vec![], vec![], vec![]);
        for k in 0..(settle + measure) as usize * per {
            let t0 = k as f64 * dt;
            // Sub-steps as the world takes them (1/400 period, <= 1 ms).
            let s = el.step_smooth(
                dt,
                |x| E_dc + amp_V * (w * (t0 + x)).sin(),
                (1.0 / (400.0 * f)).min(1e-3),
            );
            // Sample stamped just inside its interval so the window's
            // half-open bounds pick whole periods.
            t.push(t0 + dt - 1e-9 * dt);
            e.push(s.E_app_V);
            i.push(s.I_A);
            u.push(lever.true_deflection_nm(&s));
        }
        let t_start = f64::from(settle) / f - 1e-6 * dt;
        let fund = |x: &[f64]| {
            harmonics(&t, x, f, t_start, measure, 3)
                .unwrap()
                .fundamental()
        };
        let (pe, pi, pu) = (fund(&e), fund(&i), fund(&u));
        out.f.push(f);
        out.response.push(pu.ratio(pe));
        out.e.push(pe);
        out.i.push(pi);
    }
    out
}

/// Fits the sweep with the small-signal and the large-signal film drive.
fn fits(p: &SimParams, amp_V: f64) -> (f64, EsmFit, EsmFit) {
    let ss = SmallSignal::new(p, p.film.E0_V);
    let s = sweep(p, amp_V);
    let opt = EsmFitOptions::default();
    let linear = CellCorrection {
        R_s_ohm: ss.R_s_ohm,
        R_ct_ohm: ss.R_ct_ohm,
        C_dl_F: ss.C_dl_F,
        thermal_voltage_V: None,
    };
    let large = CellCorrection {
        thermal_voltage_V: opt.thermal_voltage_V(p.cell.T_K),
        ..linear
    };
    let a = fit_esm_h_corrected(&s.f, &s.response, &s.e, &s.i, &linear, &opt).unwrap();
    let b = fit_esm_h_corrected(&s.f, &s.response, &s.e, &s.i, &large, &opt).unwrap();
    eprintln!(
        "T = {:.2} K, {:.0} mV: tau true {:.4} s; small-signal {:.4} s ({:+.2} %, misfit {:.4}); \
         large-signal {:.4} s ({:+.2} %, misfit {:.4})",
        p.cell.T_K,
        1e3 * amp_V,
        ss.tau_s,
        a.tau_s,
        100.0 * (a.tau_s / ss.tau_s - 1.0),
        a.misfit_rms,
        b.tau_s,
        100.0 * (b.tau_s / ss.tau_s - 1.0),
        b.misfit_rms
    );
    (ss.tau_s, a, b)
}

/// Measured: small-signal -1.26 % at 25 degC / 20 mV and -4.79 % at
/// 65 degC / 30 mV; large-signal +0.12 % and +0.22 %, with the misfit down
/// to the level of a 2 mV drive (8e-4). What is left is the solver's own: a
/// 2 mV drive fitted small-signal gives +0.1 to +0.2 % too.
#[test]
fn large_signal_film_drive_removes_the_tau_esm_bias() {
    for (T_K, amp_V, lin_lo, lin_hi) in
        [(298.15, 0.02, -0.02, -0.008), (338.15, 0.03, -0.06, -0.035)]
    {
        let mut p = SimParams::default();
        p.cell.T_K = T_K;
        let (tau, a, b) = fits(&p, amp_V);
        let lin = a.tau_s / tau - 1.0;
        assert!(
            (lin_lo..lin_hi).contains(&lin),
            "the small-signal film is biased short: {lin}"
        );
        let large = b.tau_s / tau - 1.0;
        assert!(large.abs() < 0.004, "large-signal bias {large}");
        assert!(b.misfit_rms < 0.3 * a.misfit_rms && b.misfit_rms < 2e-3);
    }
}
