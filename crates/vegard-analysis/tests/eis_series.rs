//! Issue 13, EIS series: a solid electrolyte `p(R1,CPE1)-p(R2,CPE2)-CPE3`
//! at 7 temperatures 25-150 C with known activation energies (bulk R
//! 0.59 eV, grain-boundary R 0.80 eV; Q and alpha fixed, so the time
//! constants have Ea/alpha: ln tau = (ln R + ln Q)/alpha), 0.5 % noise
//! with fixed seeds. The series must keep the labels (R1 = bulk at every
//! temperature) and recover each Ea within its 95 % interval.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};
use vegard_analysis::{
    Circuit, EisFitOptions, EisWeighting, Geometry, SeriesSpectrum, fit_series, series_arrhenius,
};

const K_B: f64 = 8.617_333_262e-5;
const T_MID_K: f64 = 360.0;
const EA_BULK: f64 = 0.59;
const EA_GB: f64 = 0.80;
const A1: f64 = 0.95;
const A2: f64 = 0.85;

/// Parameters at `T_K`: R scales as exp(Ea/k (1/T - 1/T_mid)) from R1 = 1
/// kohm, R2 = 3 kohm at 360 K, where tau1 = 1e-6 s and tau2 = 1e-3 s.
fn params(T_K: f64) -> [f64; 8] {
    let s = |ea: f64| (ea / K_B * (1.0 / T_K - 1.0 / T_MID_K)).exp();
    let (r1m, r2m) = (1e3_f64, 3e3_f64);
    let q1 = 1e-6_f64.powf(A1) / r1m;
    let q2 = 1e-3_f64.powf(A2) / r2m;
    [r1m * s(EA_BULK), q1, A1, r2m * s(EA_GB), q2, A2, 2e-6, 0.8]
}

#[test]
fn series_keeps_labels_and_recovers_activation_energies() {
    let c = Circuit::parse("p(R1,CPE1)-p(R2,CPE2)-CPE3").unwrap();
    // 10 MHz -> 10 mHz, 8 points per decade.
    let f: Vec<f64> = (0..=72)
        .map(|k| 1e7 * 10f64.powf(-k as f64 / 8.0))
        .collect();
    let temps_C = [25.0, 45.0, 65.0, 85.0, 105.0, 125.0, 150.0];
    // Given out of order: the series sorts by temperature.
    let order = [3, 0, 6, 1, 5, 2, 4];
    let noise = Normal::new(0.0, 0.005).unwrap();
    let spectra: Vec<SeriesSpectrum> = order
        .iter()
        .map(|&i| {
            let T_K = temps_C[i] + 273.15;
            let mut rng = StdRng::seed_from_u64(100 + i as u64);
            let z = c
                .impedance_spectrum(&params(T_K), &f)
                .unwrap()
                .iter()
                .map(|z| {
                    let m = z.norm();
                    (
                        z.re + m * noise.sample(&mut rng),
                        z.im + m * noise.sample(&mut rng),
                    )
                })
                .collect();
            SeriesSpectrum {
                label: format!("{} C", temps_C[i]),
                T_K,
                f_Hz: f.clone(),
                Z: z,
            }
        })
        .collect();
    let opts = EisFitOptions {
        weighting: EisWeighting::Modulus,
        ..EisFitOptions::default()
    };
    let series = fit_series(&c, &spectra, &opts).unwrap();
    // Sorted, every fit Ok, labels stable: R1 is bulk (within 5 %) everywhere.
    for (p, &t) in series.points.iter().zip(&temps_C) {
        assert!((p.T_K - (t + 273.15)).abs() < 1e-9);
        assert!(p.fit.status.is_ok(), "{}: {:?}", p.label, p.fit.status);
        let want = params(p.T_K);
        for (k, name) in [(0, "R1"), (3, "R2")] {
            let got = p.fit.get(name).unwrap();
            assert!(
                (got / want[k] - 1.0).abs() < 0.05,
                "{}: {name} = {got:.4e}, truth {:.4e}",
                p.label,
                want[k]
            );
        }
        println!(
            "{}: won {:?}, R1 {:.4e}, R2 {:.4e}, {:.1} ms",
            p.label,
            p.fit.start,
            p.fit.get("R1").unwrap(),
            p.fit.get("R2").unwrap(),
            p.fit.fit_time_s * 1e3
        );
    }
    let geometry = Geometry {
        thickness_cm: 0.1,
        area_cm2: 0.5,
    };
    let arr = series_arrhenius(&c, &series, Some(geometry));
    assert!(
        arr.excluded.is_empty() && arr.failed_lines.is_empty(),
        "{arr:?}"
    );
    assert_eq!(arr.total_includes, ["R1", "R2"]);
    let line = |q: &str| {
        arr.lines
            .iter()
            .find(|l| l.quantity == q)
            .unwrap_or_else(|| panic!("no line {q}"))
    };
    for (q, truth) in [
        ("R1", EA_BULK),
        ("R2", EA_GB),
        ("tau p(R1,CPE1)", EA_BULK / A1),
        ("tau p(R2,CPE2)", EA_GB / A2),
    ] {
        let l = line(q);
        let [lo, hi] = l.ea_ci95_eV.unwrap();
        println!(
            "{q}: Ea = {:.4} +- {:.4} eV (propagated {:.4}, Birge {:.2}), CI [{lo:.4}, {hi:.4}], truth {truth:.4}",
            l.ea_eV,
            l.ea_se_eV,
            l.ea_se_propagated_eV,
            l.birge_ratio.unwrap()
        );
        assert_eq!(l.n_points, 7);
        assert!(
            lo <= truth && truth <= hi,
            "{q}: {truth} outside [{lo}, {hi}]"
        );
        // Sane: narrower than 0.05 eV, and the SE not below the propagated.
        assert!(hi - lo < 0.05, "{q}: CI {lo}..{hi}");
        assert!(l.ea_se_eV >= l.ea_se_propagated_eV);
        assert!((l.ea_kJ_per_mol / l.ea_eV - 96.485_332).abs() < 1e-3);
    }
    // ln(sigma T) = ln(L/A) + ln(1/R) + ln T: its slope is Ea_R + k_B T
    // (T near the weighted middle of the range, ~330-390 K).
    let s = line("sigma p(R1,CPE1)");
    let shift = s.ea_eV - line("R1").ea_eV;
    assert!(shift > K_B * 300.0 && shift < K_B * 420.0, "{shift}");
    // sigma at each point: L/(R A).
    let p0 = &series.points[0];
    let sigma_T = (0.1 / (p0.fit.get("R1").unwrap() * 0.5)) * p0.T_K;
    assert!((s.y_values[0] - sigma_T.ln()).abs() < 1e-9);
    // R_total = R1 + R2: not one exponential, but dominated by R2 at low T.
    let tot = line("R_total");
    assert!(tot.ea_eV > EA_BULK && tot.ea_eV < EA_GB + 0.01, "{tot:?}");
    assert!(arr.convention.contains("R_total = R1 + R2"));
}
