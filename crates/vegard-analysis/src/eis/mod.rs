//! Electrochemical impedance spectroscopy: equivalent-circuit fitting and
//! Kramers-Kronig validation (PHYSICS.md §4).
//!
//! - [`Circuit`]: impedance.py circuit strings (`R0-p(R1-Wo1,C1)`), their
//!   impedance and analytic derivatives;
//! - [`fit_circuit`] / [`fit_circuit_with`]: complex nonlinear least
//!   squares by Levenberg-Marquardt with positivity by log-parameters, from
//!   the given guess, an automatic guess and a global multi-start stage
//!   (`global`); canonical labels for interchangeable arcs (`structure`);
//!   standard errors, a typed [`FitStatus`] with the identifiability checks
//!   and the quality figures (`quality`);
//! - [`fit_series`], [`series_arrhenius`]: temperature series with chained
//!   starts and the Arrhenius lines of resistances, time constants and
//!   conductivities (`series`);
//! - [`lin_kk`]: Kramers-Kronig validation (Schönleber lin-KK);
//! - [`read_eis_csv`]: three-column spectrum files.
//!
//! Convention (PHYSICS.md §3): Z = V/I with exp(+j w t), so a capacitive
//! arc has Z'' < 0. Frequencies are in Hz, impedances in ohm, `(Z', Z'')`
//! pairs.

mod circuit;
mod fit;
mod global;
mod io;
mod kk;
mod quality;
mod series;
mod structure;

pub use circuit::{
    C64, Circuit, CircuitElement, ElementKind, MAX_CIRCUIT_DEPTH, MAX_CIRCUIT_ELEMENTS,
};
pub use fit::{
    DEFAULT_CANDIDATES, DEFAULT_LM_STARTS, EisFit, FitOptions, MAX_FIT_POINTS, Weighting,
    fit_circuit, fit_circuit_with, initial_guess,
};
pub use io::{Spectrum, parse_eis_text, read_eis_csv};
pub use kk::{LinKk, LinKkOptions, lin_kk, lin_kk_with};
pub use quality::{
    ALPHA_BOUND_TOL, FitProblem, FitStatus, MAX_CONDITION, MAX_RELATIVE_SE, Quality,
};
pub use series::{
    ArrheniusLine, EisSeries, Geometry, SeriesArrhenius, SeriesPoint, SeriesSpectrum,
    fit_arrhenius_line, fit_series, series_arrhenius,
};
pub use structure::ArcSummary;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    /// impedance.py's example spectrum (shared/fixtures/eis/README.md).
    pub(crate) const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/eis/exampleData.csv"
    );

    /// The fixture keeping only Z'' < 0, as in the published known answer.
    pub(crate) fn fixture_capacitive() -> (Vec<f64>, Vec<(f64, f64)>) {
        let (f, z) = read_eis_csv(FIXTURE).unwrap();
        f.into_iter().zip(z).filter(|(_, z)| z.1 < 0.0).unzip()
    }

    const CIRCUIT: &str = "R0-p(R1-Wo1,C1)";
    /// Published answer: R0, R1, Wo1_0, Wo1_1, C1 (relative tolerance 1e-2).
    const KNOWN: [f64; 5] = [1.862e-2, 1.168e-2, 6.271e-2, 221.2, 1.172];

    fn assert_known(fit: &EisFit) {
        for ((name, got), want) in fit.parameters.iter().zip(KNOWN) {
            assert!(
                (got / want - 1.0).abs() < 1e-2,
                "{name} = {got}, expected {want} (+-1 %): {fit:?}"
            );
        }
    }

    #[test]
    fn known_answer_from_published_guess() {
        let (f, z) = fixture_capacitive();
        let c = Circuit::parse(CIRCUIT).unwrap();
        let fit = fit_circuit(
            &c,
            &f,
            &z,
            Some(&[0.01, 0.005, 0.01, 200.0, 0.1]),
            Weighting::Unit,
        )
        .unwrap();
        assert_known(&fit);
        // Model at 10 Hz: 0.0251618 - 0.00601304j ohm (published to 6 digits).
        let z10 = c.impedance(&fit.values(), 10.0).unwrap();
        assert!(
            (z10.re - 0.0251618).abs() < 2e-6 * 0.0251618 + 1e-7,
            "{z10}"
        );
        assert!((z10.im + 0.00601304).abs() < 1e-7, "{z10}");
        // Standard errors: finite, positive and small against the values.
        for ((name, se), (_, v)) in fit.stderr.iter().zip(&fit.parameters) {
            assert!(
                se.is_finite() && *se > 0.0 && se / v < 0.2,
                "{name}: {se} of {v}"
            );
        }
        // The model cannot follow the depressed arc: a few percent of |Z|.
        assert!(fit.rmse_ohm > 1e-3 && fit.rmse_ohm < 2e-3, "{fit:?}");
        assert_eq!(fit.n_points, z.len());
        println!(
            "known-answer fit: {:.3} ms, {} evaluations, rmse {:.3e} ohm, stderr {:?}",
            fit.fit_time_s * 1e3,
            fit.n_evaluations,
            fit.rmse_ohm,
            fit.stderr
        );
        let json = serde_json::to_value(&fit).unwrap();
        assert!((json["parameters"]["Wo1_1"].as_f64().unwrap() / 221.2 - 1.0).abs() < 1e-2);
        assert!(json["stderr"]["C1"].as_f64().is_some());
        assert!(json["rmse"].as_f64().is_some() && json["fit_time_s"].as_f64().is_some());
        assert_eq!(json["weighting"], "unit");
    }

    #[test]
    fn known_answer_from_automatic_guess() {
        let (f, z) = fixture_capacitive();
        let c = Circuit::parse(CIRCUIT).unwrap();
        let g = initial_guess(&c, &f, &z).unwrap();
        println!("automatic guess: {g:?}");
        let fit = fit_circuit(&c, &f, &z, None, Weighting::Unit).unwrap();
        println!(
            "auto-guess fit: {:.3} ms, start used {:?}",
            fit.fit_time_s * 1e3,
            fit.initial_guess
        );
        assert_known(&fit);
    }

    /// Timing of the known-answer fit, repeated, with the global stage
    /// (the default) and LM from the published guess alone: run with
    /// `cargo test --release -p vegard-analysis known_answer_timing -- --nocapture`.
    #[test]
    fn known_answer_timing() {
        let (f, z) = fixture_capacitive();
        let c = Circuit::parse(CIRCUIT).unwrap();
        let guess = [0.01, 0.005, 0.01, 200.0, 0.1];
        let reps = if cfg!(debug_assertions) { 3 } else { 100 };
        for (what, n_candidates) in [("global stage", DEFAULT_CANDIDATES), ("guess only", 0)] {
            let opts = FitOptions {
                guess: Some(guess.to_vec()),
                n_candidates,
                ..FitOptions::default()
            };
            let mut times = Vec::with_capacity(reps);
            for _ in 0..reps {
                let fit = fit_circuit_with(&c, &f, &z, &opts).unwrap();
                assert_known(&fit);
                times.push(fit.fit_time_s);
            }
            times.sort_by(f64::total_cmp);
            println!(
                "known-answer fit, {what}, over {reps} runs: median {:.1} us, min {:.1} us",
                times[reps / 2] * 1e6,
                times[0] * 1e6
            );
        }
        let fit = fit_circuit(&c, &f, &z, None, Weighting::Unit).unwrap();
        println!(
            "automatic: {:.1} us, {} starts, won {:?}",
            fit.fit_time_s * 1e6,
            fit.n_starts,
            fit.start
        );
    }
}
