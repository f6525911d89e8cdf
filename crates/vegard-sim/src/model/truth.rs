//! Ground truth of a virtual bench: the numbers the analysis must recover
//! from the recorded data, derived from the same parameters the simulator
//! runs on, so known-answer tests compare like with like.

use super::{diffusion_m2_per_s, rate_constant_m_per_s, validate};
use crate::SimError;
use serde::Serialize;
use vegard_core::constants::FARADAY_C_PER_MOL;
use vegard_recipe::{ClockParams, SimParams};

/// A simulated device oscillator, as configured.
#[derive(Debug, Clone, Serialize)]
pub struct ClockTruth {
    pub offset_s: f64,
    pub drift_ppm: f64,
    pub jitter_s: f64,
}

impl From<&ClockParams> for ClockTruth {
    fn from(c: &ClockParams) -> Self {
        ClockTruth {
            offset_s: c.offset_s,
            drift_ppm: c.drift_ppm,
            jitter_s: c.jitter_s,
        }
    }
}

/// What the bench really is (written next to a run so reports can show the
/// recovered values against the truth).
#[derive(Debug, Clone, Serialize)]
pub struct Truth {
    /// Deflection per faradaic charge, signed: negative because extraction
    /// (positive Q_F) shrinks the film.
    pub kappa_nm_per_mC: f64,
    /// Out-of-plane amplification of the eigenstrain (clamped film) or 1.
    pub G: f64,
    pub Omega_m3_per_mol: f64,
    /// Diffusion time L^2/D.
    pub tau_s: f64,
    /// Charge of the whole film from empty to full, zFALc_max.
    pub Q_full_C: f64,
    pub C_dl_F: f64,
    pub R_s_ohm: f64,
    /// Time constant of the uncompensated resistance and the double layer.
    pub R_s_C_dl_s: f64,
    pub T_K: f64,
    pub D_m2_per_s: f64,
    pub k0_m_per_s: f64,
    /// Exchange current at the initial composition, zFA c_max k0 x^(1-a) (1-x)^a.
    pub exchange_current_A: f64,
    pub E0_V: f64,
    pub x_initial: f64,
    pub thickness_m: f64,
    pub area_m2: f64,
    pub invols_nm_per_V: f64,
    pub potentiostat_clock: ClockTruth,
    pub deflection_clock: ClockTruth,
}

/// G = (1 + nu)/(1 - nu) for a film clamped on a rigid substrate, 1 if free.
pub fn clamping_factor(p: &SimParams) -> f64 {
    if p.strain.clamped {
        let nu = p.strain.poisson_ratio;
        (1.0 + nu) / (1.0 - nu)
    } else {
        1.0
    }
}

/// Pure Vegard coupling kappa = -G Omega / (3 z F A), nm per coulomb of
/// faradaic charge (PHYSICS.md section 2, with the contract's sign).
pub fn kappa_nm_per_C(p: &SimParams) -> f64 {
    -clamping_factor(p) * p.strain.Omega_m3_per_mol
        / (3.0 * p.film.z * FARADAY_C_PER_MOL * p.film.area_m2)
        * 1e9
}

/// The ground truth of the bench described by `p`.
pub fn truth(p: &SimParams) -> Result<Truth, SimError> {
    validate(p)?;
    let f = &p.film;
    let D = diffusion_m2_per_s(p);
    let k0 = rate_constant_m_per_s(p);
    let a = p.kinetics.alpha;
    let Q_full_C = f.z * FARADAY_C_PER_MOL * f.area_m2 * f.thickness_m * f.c_max_mol_per_m3;
    Ok(Truth {
        kappa_nm_per_mC: kappa_nm_per_C(p) * 1e-3,
        G: clamping_factor(p),
        Omega_m3_per_mol: p.strain.Omega_m3_per_mol,
        tau_s: f.thickness_m * f.thickness_m / D,
        Q_full_C,
        C_dl_F: p.cell.C_dl_F,
        R_s_ohm: p.cell.R_s_ohm,
        R_s_C_dl_s: p.cell.R_s_ohm * p.cell.C_dl_F,
        T_K: p.cell.T_K,
        D_m2_per_s: D,
        k0_m_per_s: k0,
        exchange_current_A: f.z
            * FARADAY_C_PER_MOL
            * f.area_m2
            * f.c_max_mol_per_m3
            * k0
            // Same exponents as the solver's rate law (see impedance.rs).
            * f.x_initial.powf(a)
            * (1.0 - f.x_initial).powf(1.0 - a),
        E0_V: f.E0_V,
        x_initial: f.x_initial,
        thickness_m: f.thickness_m,
        area_m2: f.area_m2,
        invols_nm_per_V: p.lever.invols_nm_per_V,
        potentiostat_clock: (&p.clocks.potentiostat).into(),
        deflection_clock: (&p.clocks.deflection).into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kappa_matches_the_physics_sheet_example() {
        // PHYSICS.md: Omega = 3.2 cm^3/mol, A = 1 cm^2, nu = 0.3 clamped -> ~0.2 nm/mC.
        // By hand: G = 1.3/0.7 = 1.857143; 1.857143 * 3.2e-6 / (3 * 96485.33 * 1e-4)
        // = 2.0530e-7 m/C = 0.20530 nm/mC.
        let mut p = SimParams::default();
        p.strain.Omega_m3_per_mol = 3.2e-6;
        p.strain.poisson_ratio = 0.3;
        p.strain.clamped = true;
        p.film.area_m2 = 1e-4;
        p.film.z = 1.0;
        let t = truth(&p).unwrap();
        assert!((t.G - 1.857_142_857).abs() < 1e-9);
        assert!(
            (t.kappa_nm_per_mC + 0.205_30).abs() < 1e-4,
            "{}",
            t.kappa_nm_per_mC
        );
        p.strain.clamped = false;
        assert!((truth(&p).unwrap().kappa_nm_per_mC + 0.205_30 / 1.857_142_857).abs() < 1e-4);
    }

    #[test]
    fn derived_times_and_charges() {
        let p = SimParams::default();
        let t = truth(&p).unwrap();
        let f = &p.film;
        assert!((t.tau_s - f.thickness_m.powi(2) / f.D_m2_per_s).abs() < 1e-9 * t.tau_s);
        assert!((10.0..=100.0).contains(&t.tau_s), "tau {} s", t.tau_s);
        let q = f.z * FARADAY_C_PER_MOL * f.area_m2 * f.thickness_m * f.c_max_mol_per_m3;
        assert!((t.Q_full_C - q).abs() < 1e-12);
        assert_eq!(
            t.potentiostat_clock.offset_s,
            p.clocks.potentiostat.offset_s
        );
        assert!(
            serde_json::to_string(&t)
                .unwrap()
                .contains("\"kappa_nm_per_mC\"")
        );
    }
}
