//! The physics behind the virtual bench (PHYSICS.md sections 1-3).
//!
//! Owns: the insertion electrode (1D diffusion in a thin film, Butler-Volmer
//! kinetics on a lattice-gas isotherm, series resistance and double layer),
//! the cantilever that turns faradaic charge into a deflection signal, and the
//! ground-truth record the analysis must recover. No I/O and no clocks live
//! here: the emulators decide when to advance the model and what to report.
//!
//! Sign conventions (shared contract): current is IUPAC, anodic positive; the
//! cation is inserted on reduction, so a positive faradaic charge `Q_F` means
//! ions left the film and the film shrinks (`u = kappa Q_F`, `kappa < 0`).

mod electrode;
mod impedance;
mod lever;
mod truth;

pub use electrode::Electrode;
pub use impedance::{
    C64, SmallSignal, faradaic_fraction, film_transfer_H, impedance_ohm, strain_transfer_nm_per_V,
};
pub use lever::{DeflectionTerm, Lever};
pub use truth::{ClockTruth, Truth, clamping_factor, kappa_nm_per_C, truth};

use crate::SimError;
use vegard_recipe::SimParams;

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
    let f = &p.film;
    positive("film.thickness_m", f.thickness_m)?;
    positive("film.area_m2", f.area_m2)?;
    positive("film.c_max_mol_per_m3", f.c_max_mol_per_m3)?;
    open_unit("film.x_initial", f.x_initial)?;
    positive("film.D_m2_per_s", f.D_m2_per_s)?;
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
    open_unit("kinetics.alpha", p.kinetics.alpha)?;
    non_negative("cell.R_s_ohm", p.cell.R_s_ohm)?;
    non_negative("cell.C_dl_F", p.cell.C_dl_F)?;
    positive("cell.T_K", p.cell.T_K)?;
    non_negative("strain.Omega_m3_per_mol", p.strain.Omega_m3_per_mol)?;
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
    Ok(())
}

/// Chemical diffusion coefficient at the cell temperature.
///
/// Today the config gives D at `cell.T_K` directly. The Arrhenius law
/// `D(T) = D0 exp(-Ea_D / (R T))` (PHYSICS.md section 1) replaces this body
/// once the temperature stage exists; every user already goes through here.
pub fn diffusion_m2_per_s(p: &SimParams) -> f64 {
    p.film.D_m2_per_s
}

/// Butler-Volmer standard rate constant at the cell temperature; the place for
/// `k0(T) = k00 exp(-Ea_k / (R T))`, like [`diffusion_m2_per_s`].
pub fn rate_constant_m_per_s(p: &SimParams) -> f64 {
    p.kinetics.k0_m_per_s
}
