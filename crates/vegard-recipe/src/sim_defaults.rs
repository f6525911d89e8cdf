//! Default values of the virtual bench: a LiMn2O4-like thin film on a 1 cm^2
//! collector, chosen so the demo CV (0.4 -> 0.9 -> -0.1 -> 0.4 V at 0.2 V/s)
//! crosses the whole redox wave with mA peaks and a few nm of Vegard
//! deformation per cycle, well above detector noise and holder drift
//! (PHYSICS.md section 6). Every value is realistic for such a cell.

use crate::schema::{
    CellParams, ClockParams, DriftParams, EisNoiseParams, ElectrostaticParams,
    ElectrostrictionParams, FilmParams, JouleHeatingParams, KineticsParams, LeverParams,
    NoiseParams, SimClocks, SimParams, StrainParams, ThermalParams,
};

impl Default for SimParams {
    fn default() -> Self {
        SimParams {
            seed: 42,
            time_acceleration: 1.0,
            film: FilmParams::default(),
            kinetics: KineticsParams::default(),
            cell: CellParams::default(),
            strain: StrainParams::default(),
            lever: LeverParams::default(),
            electrostatic: ElectrostaticParams::default(),
            electrostriction: ElectrostrictionParams::default(),
            joule_heating: JouleHeatingParams::default(),
            noise: NoiseParams::default(),
            drift: DriftParams::default(),
            clocks: SimClocks::default(),
            faults: Default::default(),
            thermal: ThermalParams::default(),
            eis: EisNoiseParams::default(),
        }
    }
}

impl Default for FilmParams {
    fn default() -> Self {
        FilmParams {
            // 200 nm with D = 1.5e-15 m^2/s: tau = L^2/D = 26.7 s, longer than a
            // half cycle of the demo CV (5 s), so the film is partly
            // diffusion-limited, as real sputtered films are at 0.2 V/s.
            thickness_m: 200e-9,
            area_m2: 1e-4,
            // LiMn2O4: 4.28 g/cm^3 / 180.8 g/mol.
            c_max_mol_per_m3: 2.367e4,
            // At rest at the demo's begin potential, 0.4 V = E0: x = 1/2.
            x_initial: 0.5,
            // At T_ref_K = 298.15 K.
            D_m2_per_s: 1.5e-15,
            // Li diffusion in oxides: 0.3-0.6 eV (PHYSICS.md section 6). From
            // 25 to 65 degC, D grows 7.9-fold: tau = 26.7 s -> 3.4 s.
            Ea_D_eV: 0.45,
            // Relative to the (virtual) reference; the demo window 0.4 +- 0.5 V
            // spans the whole wave.
            E0_V: 0.4,
            z: 1.0,
            nodes: 80,
        }
    }
}

impl Default for KineticsParams {
    fn default() -> Self {
        KineticsParams {
            // Exchange current zFA c_max k0 / 2 = 2.3 mA at x = 1/2:
            // quasi-reversible at 0.2 V/s (k0 / sqrt(D f v) = 0.19).
            k0_m_per_s: 2e-8,
            // Charge transfer is usually less activated than bulk diffusion:
            // k0 grows 5-fold from 25 to 65 degC.
            Ea_k0_eV: 0.35,
            alpha: 0.5,
        }
    }
}

impl Default for CellParams {
    fn default() -> Self {
        CellParams {
            // About 60 mV of IR drop at the demo's peak currents.
            R_s_ohm: 10.0,
            // 150 uF/cm^2 for a rough oxide film: R_s C_dl = 1.5 ms and
            // C_dl v = 30 uA at 0.2 V/s, under 1 % of the faradaic peaks.
            C_dl_F: 150e-6,
            // The bench runs at the reference temperature (25 degC): D and k0
            // are the values given above.
            T_K: 298.15,
            T_ref_K: 298.15,
        }
    }
}

impl Default for StrainParams {
    fn default() -> Self {
        StrainParams {
            // LiMn2O4, PHYSICS.md section 6; with nu = 0.3 clamped and
            // A = 1 cm^2: kappa = -0.205 nm/mC.
            Omega_m3_per_mol: 3.2e-6,
            // Ideal bench: Omega independent of x (pure Vegard strain).
            dOmega_dx_m3_per_mol: 0.0,
            poisson_ratio: 0.3,
            clamped: true,
        }
    }
}

impl Default for LeverParams {
    fn default() -> Self {
        LeverParams {
            invols_nm_per_V: 60.0,
            spring_constant_N_per_m: 0.8,
        }
    }
}

/// Off: the ideal bench has no electrostatic force on the lever.
impl Default for ElectrostaticParams {
    fn default() -> Self {
        ElectrostaticParams {
            dC_dz_F_per_m: 0.0,
            V_cpd_V: 0.0,
        }
    }
}

/// Off: the ideal bench's film does not strain under the field itself.
impl Default for ElectrostrictionParams {
    fn default() -> Self {
        ElectrostrictionParams {
            coefficient_nm_per_V2: 0.0,
            E_zero_V: 0.0,
        }
    }
}

/// Off: no Joule heating on the ideal bench. The time constant and
/// expansion are typical of a micro-spot (ms-s, a few nm/K) so that turning
/// on `R_th_K_per_W` alone gives a plausible thermal term.
impl Default for JouleHeatingParams {
    fn default() -> Self {
        JouleHeatingParams {
            R_th_K_per_W: 0.0,
            tau_s: 0.5,
            expansion_nm_per_K: 5.0,
        }
    }
}

impl Default for NoiseParams {
    fn default() -> Self {
        NoiseParams {
            deflection_nm_rms: 0.02,
            current_A_rms: 50e-9,
            potential_V_rms: 50e-6,
        }
    }
}

impl Default for DriftParams {
    fn default() -> Self {
        DriftParams {
            holder_nm_per_min: 0.3,
            random_walk_nm_per_sqrt_min: 0.05,
        }
    }
}

impl Default for SimClocks {
    fn default() -> Self {
        SimClocks {
            potentiostat: ClockParams {
                offset_s: 12.5,
                drift_ppm: 20.0,
                jitter_s: 20e-6,
            },
            deflection: ClockParams {
                offset_s: -3.2,
                drift_ppm: -35.0,
                jitter_s: 5e-6,
            },
        }
    }
}

/// A perfect oscillator; the bench's clocks are set in [`SimClocks::default`].
impl Default for ClockParams {
    fn default() -> Self {
        ClockParams {
            offset_s: 0.0,
            drift_ppm: 0.0,
            jitter_s: 0.0,
        }
    }
}

impl Default for ThermalParams {
    fn default() -> Self {
        ThermalParams {
            // A small Peltier/resistive AFM cell stage: a 10 K step settles
            // to 0.3 K in about 2-3 minutes, comparable to real stages and
            // short enough for a 5-temperature campaign.
            tau_s: 20.0,
            // Overshoot exp(-pi zeta / sqrt(1 - zeta^2)) = 9.5 % of the step:
            // the engine's hold time must ride it out.
            damping: 0.6,
            // A calibrated Cernox/Pt100 read by a 336: ~10 mK of noise.
            sensor_noise_K_rms: 0.01,
        }
    }
}

impl Default for EisNoiseParams {
    fn default() -> Self {
        EisNoiseParams {
            // 0.2 %: a good potentiostat's impedance accuracy at 10 mV.
            noise_rel: 0.002,
        }
    }
}
