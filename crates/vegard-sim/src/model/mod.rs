//! The physics behind the virtual bench (PHYSICS.md sections 1-3).
//!
//! Owns: the insertion electrode (1D diffusion in a thin film, Butler-Volmer
//! kinetics on a lattice-gas isotherm, series resistance and double layer),
//! the cantilever that turns faradaic charge (and, where the bench switches
//! them on, the non-ideal mechanisms: Omega(x), the electrostatic force on
//! the tip) into a deflection signal, and the ground-truth record the
//! analysis must recover. No I/O and no clocks live
//! here: the emulators decide when to advance the model and what to report.
//!
//! Sign conventions (shared contract): current is IUPAC, anodic positive; the
//! cation is inserted on reduction, so a positive faradaic charge `Q_F` means
//! ions left the film and the film shrinks (`u = kappa Q_F`, `kappa < 0`).

mod electrode;
mod impedance;
mod lever;
#[cfg(test)]
pub(crate) mod testutil;
mod thermal;
mod truth;

pub use electrode::Electrode;
pub use impedance::{
    C64, SmallSignal, faradaic_fraction, film_transfer_H, impedance_ohm, strain_transfer_nm_per_V,
};
pub use lever::{DeflectionTerm, Lever};
pub use thermal::ThermalStage;
pub use truth::{
    ARRHENIUS_CAMPAIGN_T_C, CELSIUS_ZERO_K, ClockTruth, TauAtTemperature, Truth, clamping_factor,
    electrostatic_nm_per_V2, kappa_nm_per_C, kappa2_nm_per_C2, truth,
};

use crate::SimError;
use vegard_core::constants::BOLTZMANN_EV_PER_K;
use vegard_recipe::{MAX_ACTIVATION_ENERGY_EV, SimParams};

/// What the potentiostat imposes on the cell during a step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Control {
    /// Cell on: the applied potential (working vs reference, before the IR drop).
    Potential { E_app_V: f64 },
    /// Cell off: no net current flows, the film relaxes and the measured
    /// potential is the interface potential.
    OpenCircuit,
}

/// Snapshot of the cell after a step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CellState {
    /// Applied potential; under open circuit this is the measured OCP.
    pub E_app_V: f64,
    /// Potential across the interface, `E_app - I R_s`.
    pub E_int_V: f64,
    /// Total current through the cell, anodic positive.
    pub I_A: f64,
    /// Faradaic part of the current (ion transfer), anodic positive.
    pub I_F_A: f64,
    /// Cumulative integral of `I_F` since construction; rises when ions leave.
    pub Q_F_C: f64,
    /// Cumulative integral of `I` since construction.
    pub Q_C: f64,
    /// Mole fraction of inserted ion at the electrolyte side of the film.
    pub x_surface: f64,
    /// Film-averaged mole fraction.
    pub x_mean: f64,
    /// Temperature of the film during the step, K (the stage's, in the world).
    pub T_K: f64,
    /// Temperature rise of the spot under the tip from Joule heating in the
    /// electrolyte, `I^2 R_s` through the first-order lag of
    /// `joule_heating` (0 with it off: the ideal bench), K. Drives only the
    /// lever's thermal-expansion term; the film's kinetics stay at `T_K`.
    pub dT_joule_K: f64,
}

/// Checks every parameter the model uses, once, so the solver and the lever
/// never have to handle an unphysical value at run time.
pub fn validate(p: &SimParams) -> Result<(), SimError> {
    fn positive(name: &'static str, v: f64) -> Result<(), SimError> {
        if v.is_finite() && v > 0.0 {
            Ok(())
        } else {
            Err(SimError::InvalidParam {
                name,
                reason: format!("must be a finite number > 0, got {v}"),
            })
        }
    }
    fn non_negative(name: &'static str, v: f64) -> Result<(), SimError> {
        if v.is_finite() && v >= 0.0 {
            Ok(())
        } else {
            Err(SimError::InvalidParam {
                name,
                reason: format!("must be a finite number >= 0, got {v}"),
            })
        }
    }
    fn open_unit(name: &'static str, v: f64) -> Result<(), SimError> {
        if v > 0.0 && v < 1.0 {
            Ok(())
        } else {
            Err(SimError::InvalidParam {
                name,
                reason: format!("must lie strictly between 0 and 1, got {v}"),
            })
        }
    }
    fn activation_energy(name: &'static str, v: f64) -> Result<(), SimError> {
        if (0.0..MAX_ACTIVATION_ENERGY_EV).contains(&v) {
            Ok(())
        } else {
            Err(SimError::InvalidParam {
                name,
                reason: format!("must be >= 0 and < {MAX_ACTIVATION_ENERGY_EV} eV, got {v}"),
            })
        }
    }
    let f = &p.film;
    positive("film.thickness_m", f.thickness_m)?;
    positive("film.area_m2", f.area_m2)?;
    positive("film.c_max_mol_per_m3", f.c_max_mol_per_m3)?;
    open_unit("film.x_initial", f.x_initial)?;
    positive("film.D_m2_per_s", f.D_m2_per_s)?;
    activation_energy("film.Ea_D_eV", f.Ea_D_eV)?;
    positive("film.z", f.z)?;
    if !f.E0_V.is_finite() {
        return Err(SimError::InvalidParam {
            name: "film.E0_V",
            reason: format!("must be finite, got {}", f.E0_V),
        });
    }
    if f.nodes < electrode::MIN_NODES {
        return Err(SimError::InvalidParam {
            name: "film.nodes",
            reason: format!("must be >= {}, got {}", electrode::MIN_NODES, f.nodes),
        });
    }
    positive("kinetics.k0_m_per_s", p.kinetics.k0_m_per_s)?;
    activation_energy("kinetics.Ea_k0_eV", p.kinetics.Ea_k0_eV)?;
    open_unit("kinetics.alpha", p.kinetics.alpha)?;
    non_negative("cell.R_s_ohm", p.cell.R_s_ohm)?;
    non_negative("cell.C_dl_F", p.cell.C_dl_F)?;
    positive("cell.T_K", p.cell.T_K)?;
    positive("cell.T_ref_K", p.cell.T_ref_K)?;
    non_negative("strain.Omega_m3_per_mol", p.strain.Omega_m3_per_mol)?;
    let dOmega_dx = p.strain.dOmega_dx_m3_per_mol;
    if !dOmega_dx.is_finite() {
        return Err(SimError::InvalidParam {
            name: "strain.dOmega_dx_m3_per_mol",
            reason: format!("must be finite, got {dOmega_dx}"),
        });
    }
    // A sign change of Omega(x) inside 0 <= x <= 1 would turn insertion
    // into contraction part-way through a scan: no insertion film does that.
    let (lo, hi) = p.strain.dOmega_dx_range_m3_per_mol(f.x_initial);
    if dOmega_dx != 0.0 && !(dOmega_dx > lo && dOmega_dx < hi) {
        return Err(SimError::InvalidParam {
            name: "strain.dOmega_dx_m3_per_mol",
            reason: format!(
                "must keep Omega(x) = Omega + dOmega_dx (x - x_initial) > 0 for 0 <= x <= 1, \
                 i.e. lie strictly between {lo:e} and {hi:e}, got {dOmega_dx:e}"
            ),
        });
    }
    let nu = p.strain.poisson_ratio;
    if !(nu > -1.0 && nu <= 0.5) {
        return Err(SimError::InvalidParam {
            name: "strain.poisson_ratio",
            reason: format!("an isotropic solid has -1 < nu <= 0.5, got {nu}"),
        });
    }
    positive("lever.invols_nm_per_V", p.lever.invols_nm_per_V)?;
    positive(
        "lever.spring_constant_N_per_m",
        p.lever.spring_constant_N_per_m,
    )?;
    non_negative("electrostatic.dC_dz_F_per_m", p.electrostatic.dC_dz_F_per_m)?;
    if !p.electrostatic.V_cpd_V.is_finite() {
        return Err(SimError::InvalidParam {
            name: "electrostatic.V_cpd_V",
            reason: format!("must be finite, got {}", p.electrostatic.V_cpd_V),
        });
    }
    for (name, v) in [
        (
            "electrostriction.coefficient_nm_per_V2",
            p.electrostriction.coefficient_nm_per_V2,
        ),
        ("electrostriction.E_zero_V", p.electrostriction.E_zero_V),
        (
            "joule_heating.expansion_nm_per_K",
            p.joule_heating.expansion_nm_per_K,
        ),
    ] {
        if !v.is_finite() {
            return Err(SimError::InvalidParam {
                name,
                reason: format!("must be finite, got {v}"),
            });
        }
    }
    non_negative("joule_heating.R_th_K_per_W", p.joule_heating.R_th_K_per_W)?;
    non_negative("joule_heating.tau_s", p.joule_heating.tau_s)?;
    non_negative("noise.deflection_nm_rms", p.noise.deflection_nm_rms)?;
    non_negative("noise.current_A_rms", p.noise.current_A_rms)?;
    non_negative("noise.potential_V_rms", p.noise.potential_V_rms)?;
    if !p.drift.holder_nm_per_min.is_finite() {
        return Err(SimError::InvalidParam {
            name: "drift.holder_nm_per_min",
            reason: format!("must be finite, got {}", p.drift.holder_nm_per_min),
        });
    }
    non_negative(
        "drift.random_walk_nm_per_sqrt_min",
        p.drift.random_walk_nm_per_sqrt_min,
    )?;
    positive("thermal.tau_s", p.thermal.tau_s)?;
    positive("thermal.damping", p.thermal.damping)?;
    non_negative("thermal.sensor_noise_K_rms", p.thermal.sensor_noise_K_rms)?;
    non_negative("eis.noise_rel", p.eis.noise_rel)?;
    Ok(())
}

/// Arrhenius factor `exp(-Ea / k_B (1/T - 1/T_ref))`: what a quantity given
/// at `T_ref_K` is multiplied by at `T_K`. Exactly 1 at `T_K == T_ref_K`.
pub fn arrhenius_factor(Ea_eV: f64, T_K: f64, T_ref_K: f64) -> f64 {
    (-Ea_eV / BOLTZMANN_EV_PER_K * (1.0 / T_K - 1.0 / T_ref_K)).exp()
}

/// Chemical diffusion coefficient at the cell temperature `cell.T_K`, m^2/s.
/// The single place for D(T): every user (solver, impedance, truth) goes
/// through here.
pub fn diffusion_m2_per_s(p: &SimParams) -> f64 {
    diffusion_m2_per_s_at(p, p.cell.T_K)
}

/// Chemical diffusion coefficient at `T_K`, m^2/s: the Arrhenius law
/// `D(T) = D_ref exp(-Ea_D / k_B (1/T - 1/T_ref))` (PHYSICS.md section 1,
/// written per ion in eV), with `D_ref = film.D_m2_per_s` at
/// `T_ref = cell.T_ref_K`.
pub fn diffusion_m2_per_s_at(p: &SimParams, T_K: f64) -> f64 {
    p.film.D_m2_per_s * arrhenius_factor(p.film.Ea_D_eV, T_K, p.cell.T_ref_K)
}

/// Pre-exponential factor of the diffusion coefficient (D at infinite
/// temperature), `D0 = D_ref exp(Ea_D / (k_B T_ref))`, m^2/s.
pub fn diffusion_prefactor_m2_per_s(p: &SimParams) -> f64 {
    p.film.D_m2_per_s * (p.film.Ea_D_eV / (BOLTZMANN_EV_PER_K * p.cell.T_ref_K)).exp()
}

/// Butler-Volmer standard rate constant at the cell temperature `cell.T_K`,
/// m/s; the single place for k0(T), like [`diffusion_m2_per_s`].
pub fn rate_constant_m_per_s(p: &SimParams) -> f64 {
    rate_constant_m_per_s_at(p, p.cell.T_K)
}

/// Butler-Volmer standard rate constant at `T_K`, m/s:
/// `k0(T) = k0_ref exp(-Ea_k0 / k_B (1/T - 1/T_ref))` with
/// `k0_ref = kinetics.k0_m_per_s` at `T_ref = cell.T_ref_K`.
pub fn rate_constant_m_per_s_at(p: &SimParams, T_K: f64) -> f64 {
    p.kinetics.k0_m_per_s * arrhenius_factor(p.kinetics.Ea_k0_eV, T_K, p.cell.T_ref_K)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use vegard_core::constants::FARADAY_C_PER_MOL;

    /// 65 degC, the hottest temperature of the Arrhenius campaign.
    const T_HOT_K: f64 = 338.15;

    #[test]
    fn at_the_reference_temperature_d_and_k0_are_the_config_values() {
        // Known answer: exactly the given values (1/T - 1/T_ref = 0 exactly).
        let mut p = SimParams::default();
        assert_eq!(p.cell.T_K, p.cell.T_ref_K);
        assert_eq!(diffusion_m2_per_s(&p), p.film.D_m2_per_s);
        assert_eq!(rate_constant_m_per_s(&p), p.kinetics.k0_m_per_s);
        // Also away from 25 degC and with other activation energies.
        p.cell.T_ref_K = 310.7;
        p.cell.T_K = 310.7;
        p.film.Ea_D_eV = 0.6;
        p.kinetics.Ea_k0_eV = 1.2;
        assert_eq!(diffusion_m2_per_s(&p), p.film.D_m2_per_s);
        assert_eq!(rate_constant_m_per_s(&p), p.kinetics.k0_m_per_s);
        assert_eq!(diffusion_m2_per_s_at(&p, 310.7), p.film.D_m2_per_s);
        // Ea = 0: temperature-independent.
        p.film.Ea_D_eV = 0.0;
        assert_eq!(diffusion_m2_per_s_at(&p, 400.0), p.film.D_m2_per_s);
    }

    #[test]
    fn d_and_k0_follow_the_arrhenius_law() {
        let mut p = SimParams::default();
        p.cell.T_K = T_HOT_K;
        let (D_ref, k0_ref, T_ref) = (p.film.D_m2_per_s, p.kinetics.k0_m_per_s, p.cell.T_ref_K);
        let kB = BOLTZMANN_EV_PER_K;
        let D_expected = D_ref * (-p.film.Ea_D_eV / kB * (1.0 / T_HOT_K - 1.0 / T_ref)).exp();
        let k0_expected =
            k0_ref * (-p.kinetics.Ea_k0_eV / kB * (1.0 / T_HOT_K - 1.0 / T_ref)).exp();
        let rel = |a: f64, b: f64| (a / b - 1.0).abs();
        let D = diffusion_m2_per_s(&p);
        assert!(rel(D, D_expected) < 1e-12, "{D} vs {D_expected}");
        assert!(rel(rate_constant_m_per_s(&p), k0_expected) < 1e-12);
        // Independent figures (Python, CODATA k_B): Ea 0.45 eV -> x7.939387809216,
        // Ea 0.35 eV -> x5.009961008623 from 25 to 65 degC.
        assert!(rel(D / D_ref, 7.939_387_809_216) < 1e-12, "{}", D / D_ref);
        assert!(rel(rate_constant_m_per_s(&p) / k0_ref, 5.009_961_008_623) < 1e-12);
        // PHYSICS.md's form D0 exp(-Ea/(k_B T)) with the prefactor, and the
        // molar form exp(-Ea F / (R T)) (Ea in eV times F is J/mol).
        let D0 = diffusion_prefactor_m2_per_s(&p);
        assert!(rel(D0 * (-p.film.Ea_D_eV / (kB * T_HOT_K)).exp(), D) < 1e-12);
        let Ea_J_per_mol = p.film.Ea_D_eV * FARADAY_C_PER_MOL;
        let R = vegard_core::constants::GAS_CONSTANT_J_PER_MOL_K;
        assert!(rel(D0 * (-Ea_J_per_mol / (R * T_HOT_K)).exp(), D) < 1e-9);
        // The `_at` variants agree with the cell-temperature ones.
        assert_eq!(diffusion_m2_per_s_at(&p, T_HOT_K), D);
        // Colder than the reference: slower.
        assert!(diffusion_m2_per_s_at(&p, 280.0) < D_ref);
    }

    #[test]
    fn activation_energies_and_reference_temperature_are_validated() {
        let check = |edit: fn(&mut SimParams), name: &str| {
            let mut p = SimParams::default();
            edit(&mut p);
            match validate(&p) {
                Err(SimError::InvalidParam { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{name}: expected InvalidParam, got {other:?}"),
            }
        };
        check(|p| p.film.Ea_D_eV = -0.01, "film.Ea_D_eV");
        check(|p| p.film.Ea_D_eV = 3.0, "film.Ea_D_eV");
        check(|p| p.film.Ea_D_eV = f64::NAN, "film.Ea_D_eV");
        check(|p| p.kinetics.Ea_k0_eV = 43_000.0, "kinetics.Ea_k0_eV");
        check(|p| p.cell.T_ref_K = 0.0, "cell.T_ref_K");
        // The non-ideal deflection terms.
        check(
            |p| p.strain.dOmega_dx_m3_per_mol = f64::INFINITY,
            "strain.dOmega_dx_m3_per_mol",
        );
        // Omega = 3.2e-6 at x = 0.5: Omega(0) = 0 at dOmega_dx = 6.4e-6,
        // Omega(1) = 0 at -6.4e-6; both are out, just inside is fine.
        check(
            |p| p.strain.dOmega_dx_m3_per_mol = 6.4e-6,
            "strain.dOmega_dx_m3_per_mol",
        );
        check(
            |p| p.strain.dOmega_dx_m3_per_mol = -6.4e-6,
            "strain.dOmega_dx_m3_per_mol",
        );
        check(
            |p| {
                p.strain.Omega_m3_per_mol = 0.0;
                p.strain.dOmega_dx_m3_per_mol = 1e-9;
            },
            "strain.dOmega_dx_m3_per_mol",
        );
        check(
            |p| p.electrostatic.dC_dz_F_per_m = -1e-9,
            "electrostatic.dC_dz_F_per_m",
        );
        check(
            |p| p.electrostatic.V_cpd_V = f64::NAN,
            "electrostatic.V_cpd_V",
        );
        for d in [6.39e-6, -6.39e-6, 3e-6] {
            let mut p = SimParams::default();
            p.strain.dOmega_dx_m3_per_mol = d;
            assert!(validate(&p).is_ok(), "{d}");
        }
        // A strain-free film stays allowed while Omega does not depend on x.
        let mut p = SimParams::default();
        p.strain.Omega_m3_per_mol = 0.0;
        assert!(validate(&p).is_ok());
        let mut p = SimParams::default();
        p.film.Ea_D_eV = 0.0;
        p.kinetics.Ea_k0_eV = 2.99;
        assert!(validate(&p).is_ok());
    }

    /// Charge passed `t_s` after a step from rest at E0 to E0 + 0.5 V into a
    /// thick film with fast kinetics and no R_s or C_dl, at cell temperature `T_K`.
    fn step_charge_C(T_K: f64, t_s: f64) -> (f64, SimParams) {
        let mut p = SimParams::default();
        p.cell.R_s_ohm = 0.0;
        p.cell.C_dl_F = 0.0;
        p.kinetics.k0_m_per_s = 1e-3;
        p.film.thickness_m = 2e-6;
        p.film.D_m2_per_s = 1e-15;
        p.film.nodes = 200;
        p.film.x_initial = 0.5;
        p.cell.T_K = T_K;
        let mut el = Electrode::new(&p).unwrap();
        let E_app_V = p.film.E0_V + 0.5;
        let s = el.step(t_s, Control::Potential { E_app_V });
        (s.Q_F_C, p)
    }

    #[test]
    fn the_solver_diffuses_with_d_of_the_cell_temperature() {
        // Cottrell regime (sqrt(D t) = 89 nm at 65 degC << L = 2 um): the
        // surface empties (x_s < 4e-8 at both temperatures) and
        // Q(t) = 2 zFA c_max (x0 - x_s) sqrt(D t / pi), so the charge after
        // the same step scales by sqrt(D(T) / D_ref) = sqrt(7.939) = 2.818.
        let t_s = 1.0;
        let (q_ref, p_ref) = step_charge_C(SimParams::default().cell.T_ref_K, t_s);
        let (q_hot, p_hot) = step_charge_C(T_HOT_K, t_s);
        let expected_ratio = (diffusion_m2_per_s(&p_hot) / diffusion_m2_per_s(&p_ref)).sqrt();
        let ratio = q_hot / q_ref;
        eprintln!(
            "Q_F after 1 s: {q_ref:.6e} C at 25 C, {q_hot:.6e} C at 65 C; \
             ratio {ratio:.5} vs sqrt(D ratio) {expected_ratio:.5}"
        );
        assert!(
            (ratio / expected_ratio - 1.0).abs() < 0.03,
            "ratio {ratio} vs {expected_ratio}"
        );
        // Each run also matches the absolute Cottrell charge (1 %).
        for (q, p) in [(q_ref, &p_ref), (q_hot, &p_hot)] {
            let f = &p.film;
            let cottrell = 2.0
                * f.z
                * FARADAY_C_PER_MOL
                * f.area_m2
                * f.c_max_mol_per_m3
                * 0.5
                * (diffusion_m2_per_s(p) * t_s / std::f64::consts::PI).sqrt();
            eprintln!(
                "T = {} K: Q_F / Cottrell - 1 = {:+.2e}",
                p.cell.T_K,
                q / cottrell - 1.0
            );
            assert!(
                (q / cottrell - 1.0).abs() < 0.01,
                "T = {} K: Q_F {q} vs Cottrell {cottrell}",
                p.cell.T_K
            );
        }
        // The small-signal model sees the same D(T): tau = L^2 / D(T).
        let ss = SmallSignal::new(&p_hot, p_hot.film.E0_V);
        let tau = p_hot.film.thickness_m.powi(2) / diffusion_m2_per_s(&p_hot);
        assert_eq!(ss.tau_s, tau);
    }
}
