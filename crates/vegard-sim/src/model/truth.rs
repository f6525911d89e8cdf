//! Ground truth of a virtual bench: the numbers the analysis must recover
//! from the recorded data, derived from the same parameters the simulator
//! runs on, so known-answer tests compare like with like.

use super::{
    diffusion_m2_per_s, diffusion_m2_per_s_at, diffusion_prefactor_m2_per_s, rate_constant_m_per_s,
    rate_constant_m_per_s_at, validate,
};
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

/// Cell temperatures of the Arrhenius campaign, degC: the rows of
/// [`Truth::tau_vs_T`].
pub const ARRHENIUS_CAMPAIGN_T_C: [f64; 5] = [25.0, 35.0, 45.0, 55.0, 65.0];

/// 0 degC in kelvin.
pub const CELSIUS_ZERO_K: f64 = 273.15;

/// The film's transport at one cell temperature.
#[derive(Debug, Clone, Serialize)]
pub struct TauAtTemperature {
    pub T_C: f64,
    pub T_K: f64,
    /// D(T), m^2/s.
    pub D_m2_per_s: f64,
    /// k0(T), m/s.
    pub k0_m_per_s: f64,
    /// Diffusion time L^2 / D(T), s.
    pub tau_s: f64,
}

/// What the bench really is (written next to a run so reports can show the
/// recovered values against the truth).
#[derive(Debug, Clone, Serialize)]
pub struct Truth {
    /// Deflection per faradaic charge, signed: negative because extraction
    /// (positive Q_F) shrinks the film.
    pub kappa_nm_per_mC: f64,
    /// Quadratic term of the deflection vs faradaic charge,
    /// `u = kappa Q_F + kappa2 Q_F^2` with `Q_F` counted from the rest state
    /// at `x_initial`, nm/mC^2: from a concentration-dependent Omega
    /// (see [`kappa2_nm_per_C2`]); 0 on the ideal bench.
    pub kappa2_nm_per_mC2: f64,
    /// Out-of-plane amplification of the eigenstrain (clamped film) or 1.
    pub G: f64,
    /// Partial molar volume at `x_initial`.
    pub Omega_m3_per_mol: f64,
    /// `Omega(x) = Omega + dOmega_dx (x - x_initial)`.
    pub dOmega_dx_m3_per_mol: f64,
    /// Electrostatic deflection `u = electrostatic_nm_per_V2 (E - V_cpd)^2`
    /// with `E` the working electrode's potential, nm/V^2 (`-0.5 C'/k`,
    /// see [`electrostatic_nm_per_V2`]); 0 on the ideal bench.
    pub electrostatic_nm_per_V2: f64,
    /// Contact potential difference: where the electrostatic term vanishes.
    pub V_cpd_V: f64,
    /// Electrostriction `u = electrostriction_nm_per_V2 (E_int - E_zero)^2`,
    /// nm/V^2; 0 on the ideal bench.
    pub electrostriction_nm_per_V2: f64,
    /// Interface potential where the electrostriction vanishes, V.
    pub electrostriction_E_zero_V: f64,
    /// Joule heating: steady deflection per watt dissipated in `R_s`,
    /// `R_th expansion`, nm/W (0 on the ideal bench), reached through a
    /// first-order lag of `joule_tau_s`.
    pub joule_nm_per_W: f64,
    /// Thermal time constant of the Joule term, s.
    pub joule_tau_s: f64,
    /// Thermal resistance of the heated spot, K/W (0 = off).
    pub joule_R_th_K_per_W: f64,
    /// Diffusion time L^2/D at the cell temperature `T_K`.
    pub tau_s: f64,
    /// Charge of the whole film from empty to full, zFALc_max.
    pub Q_full_C: f64,
    pub C_dl_F: f64,
    pub R_s_ohm: f64,
    /// Time constant of the uncompensated resistance and the double layer.
    pub R_s_C_dl_s: f64,
    /// Cell temperature; `D_m2_per_s`, `k0_m_per_s`, `tau_s` and
    /// `exchange_current_A` are the values at this temperature.
    pub T_K: f64,
    pub D_m2_per_s: f64,
    pub k0_m_per_s: f64,
    /// Temperature at which the config gives D and k0.
    pub T_ref_K: f64,
    /// Activation energy of diffusion: what an Arrhenius analysis of tau
    /// must recover (`ln(1/tau)` vs `1/T` has slope `-Ea_D / k_B`).
    pub Ea_D_eV: f64,
    /// Activation energy of the rate constant k0.
    pub Ea_k0_eV: f64,
    /// Pre-exponential factor of D (D at infinite temperature):
    /// `D(T) = D0 exp(-Ea_D / (k_B T))`.
    pub D0_m2_per_s: f64,
    /// D, k0 and tau at the temperatures of the Arrhenius campaign
    /// ([`ARRHENIUS_CAMPAIGN_T_C`]).
    pub tau_vs_T: Vec<TauAtTemperature>,
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

/// Quadratic Vegard coefficient kappa2 of `u = kappa Q_F + kappa2 Q_F^2`,
/// nm per C^2, from the concentration dependence of the partial molar
/// volume, `Omega(x) = Omega + dOmega_dx (x - x_initial)`. 0 when
/// `strain.dOmega_dx_m3_per_mol` is 0 (the ideal bench).
///
/// Derivation (PHYSICS.md section 2): the eigenstrain increment is
/// `(Omega(x)/3) dc` and the clamped film's height grows by `G` times its
/// integral over the thickness. Assuming a uniform profile, `x` = the
/// film's mean mole fraction and `dc = c_max dx`, so from `x_initial`
///
/// ```text
/// dh = (G L c_max / 3) integral_{x0}^{x0 + dx} Omega(x') dx'
///    = (G L c_max / 3) (Omega dx + dOmega_dx dx^2 / 2).
/// ```
///
/// A positive `Q_F` takes `Q_F / (zF)` mol out of the film's `A L c_max`
/// sites: `dx = -Q_F / (z F A L c_max)`. Substituting,
/// `dh = -G Omega Q_F / (3 z F A) + G dOmega_dx Q_F^2 / (6 z^2 F^2 A^2 L c_max)`:
/// the first term is [`kappa_nm_per_C`] (negative), the second
/// `kappa2 = G dOmega_dx / (6 z^2 F^2 A^2 L c_max)`. Sign check: with
/// `dOmega_dx > 0` the ions taken out below `x_initial` occupy less volume
/// than `Omega`, so extraction shrinks the film less than `kappa Q_F`, and
/// the ions put in above it occupy more, so insertion swells it more: on
/// both sides `u` lies above the line, `kappa2 > 0`, whatever the sign of
/// `Q_F`. Unlike kappa it depends on `L c_max`: the same charge moves `x`
/// further in a thinner film.
///
/// The uniform-profile approximation is what the lever implements (it sees
/// `Q_F` only). For a real profile `x(z)` the quadratic term is
/// `(G c_max dOmega_dx / 6) integral (x(z) - x0)^2 dz`, i.e. the one above
/// plus `(G L c_max dOmega_dx / 6) Var_z(x)`: exact for a relaxed film,
/// an underestimate while a fast scan leaves a steep profile. Keeping it a
/// function of `Q_F` gives the analysis's quadratic regression a closed-form
/// truth to recover.
pub fn kappa2_nm_per_C2(p: &SimParams) -> f64 {
    let f = &p.film;
    let zFA = f.z * FARADAY_C_PER_MOL * f.area_m2;
    clamping_factor(p) * p.strain.dOmega_dx_m3_per_mol
        / (6.0 * zFA * zFA * f.thickness_m * f.c_max_mol_per_m3)
        * 1e9
}

/// Deflection per squared volt of the electrostatic force on the lever,
/// nm/V^2: `u = -F / k = -0.5 (dC/dz) (V - V_cpd)^2 / k`, so the coefficient
/// is `-0.5 dC_dz / k` (negative: the force pulls the tip toward the
/// surface). 0 when `electrostatic.dC_dz_F_per_m` is 0 (the ideal bench).
/// `k` is the true spring constant of the virtual lever, `[sim.lever]`.
pub fn electrostatic_nm_per_V2(p: &SimParams) -> f64 {
    -0.5 * p.electrostatic.dC_dz_F_per_m / p.lever.spring_constant_N_per_m * 1e9
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
        kappa2_nm_per_mC2: kappa2_nm_per_C2(p) * 1e-6,
        G: clamping_factor(p),
        Omega_m3_per_mol: p.strain.Omega_m3_per_mol,
        dOmega_dx_m3_per_mol: p.strain.dOmega_dx_m3_per_mol,
        electrostatic_nm_per_V2: electrostatic_nm_per_V2(p),
        V_cpd_V: p.electrostatic.V_cpd_V,
        electrostriction_nm_per_V2: p.electrostriction.coefficient_nm_per_V2,
        electrostriction_E_zero_V: p.electrostriction.E_zero_V,
        joule_nm_per_W: p.joule_heating.R_th_K_per_W * p.joule_heating.expansion_nm_per_K,
        joule_tau_s: p.joule_heating.tau_s,
        joule_R_th_K_per_W: p.joule_heating.R_th_K_per_W,
        tau_s: f.thickness_m * f.thickness_m / D,
        Q_full_C,
        C_dl_F: p.cell.C_dl_F,
        R_s_ohm: p.cell.R_s_ohm,
        R_s_C_dl_s: p.cell.R_s_ohm * p.cell.C_dl_F,
        T_K: p.cell.T_K,
        D_m2_per_s: D,
        k0_m_per_s: k0,
        T_ref_K: p.cell.T_ref_K,
        Ea_D_eV: f.Ea_D_eV,
        Ea_k0_eV: p.kinetics.Ea_k0_eV,
        D0_m2_per_s: diffusion_prefactor_m2_per_s(p),
        tau_vs_T: ARRHENIUS_CAMPAIGN_T_C
            .iter()
            .map(|&T_C| {
                let T_K = T_C + CELSIUS_ZERO_K;
                let D_T = diffusion_m2_per_s_at(p, T_K);
                TauAtTemperature {
                    T_C,
                    T_K,
                    D_m2_per_s: D_T,
                    k0_m_per_s: rate_constant_m_per_s_at(p, T_K),
                    tau_s: f.thickness_m * f.thickness_m / D_T,
                }
            })
            .collect(),
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
    use vegard_core::constants::BOLTZMANN_EV_PER_K;

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
    fn non_ideal_coefficients_of_the_truth() {
        // Ideal bench: both 0, and the JSON carries them for the analysis.
        let p = SimParams::default();
        let t = truth(&p).unwrap();
        assert_eq!((t.kappa2_nm_per_mC2, t.electrostatic_nm_per_V2), (0.0, 0.0));
        let json = serde_json::to_value(&t).unwrap();
        for key in [
            "kappa2_nm_per_mC2",
            "dOmega_dx_m3_per_mol",
            "electrostatic_nm_per_V2",
            "V_cpd_V",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from the JSON truth");
        }
        // configs/sim-nonideal.toml. By hand: kappa2 = G dOmega_dx /
        // (6 (zFA)^2 L c_max) = 1.857143 * 3e-6 / (6 * 93.09418 * 4.734e-3)
        // = 2.1070e-6 m/C^2 = 2.1070e-3 nm/mC^2; -0.5 C'/k = -0.5 * 2e-9 / 0.8
        // = -1.25 nm/V^2.
        let mut p = SimParams::default();
        p.strain.dOmega_dx_m3_per_mol = 3e-6;
        p.electrostatic.dC_dz_F_per_m = 2e-9;
        p.electrostatic.V_cpd_V = -0.1;
        let t = truth(&p).unwrap();
        assert!(
            (t.kappa2_nm_per_mC2 / 2.107_0e-3 - 1.0).abs() < 1e-4,
            "{}",
            t.kappa2_nm_per_mC2
        );
        assert!((t.electrostatic_nm_per_V2 + 1.25).abs() < 1e-12);
        assert_eq!((t.V_cpd_V, t.dOmega_dx_m3_per_mol), (-0.1, 3e-6));
        // kappa is unchanged: Omega is given at x_initial.
        assert_eq!(
            t.kappa_nm_per_mC,
            truth(&SimParams::default()).unwrap().kappa_nm_per_mC
        );
        // kappa2 scales as 1/(A^2 L c_max) and with G, unlike kappa.
        p.film.thickness_m *= 2.0;
        p.strain.clamped = false;
        let t2 = truth(&p).unwrap();
        let G = 1.3 / 0.7;
        assert!((t2.kappa2_nm_per_mC2 * 2.0 * G / t.kappa2_nm_per_mC2 - 1.0).abs() < 1e-12);
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

    /// Unweighted least-squares slope and intercept of y against x
    /// (centred sums, no cancellation).
    fn line_fit(x: &[f64], y: &[f64]) -> (f64, f64) {
        let n = x.len() as f64;
        let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
        let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
        let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
        let slope = sxy / sxx;
        (slope, my - slope * mx)
    }

    #[test]
    fn temperature_truth_of_the_default_bench() {
        let p = SimParams::default();
        let t = truth(&p).unwrap();
        assert_eq!((t.T_K, t.T_ref_K), (298.15, 298.15));
        assert_eq!((t.Ea_D_eV, t.Ea_k0_eV), (0.45, 0.35));
        // At T = T_ref nothing changed: D, k0 and tau are the config's.
        assert_eq!(t.D_m2_per_s, p.film.D_m2_per_s);
        assert_eq!(t.k0_m_per_s, p.kinetics.k0_m_per_s);
        // D0 = D_ref exp(Ea/(k_B T_ref)): back at T_ref it gives D_ref (1e-12).
        let back = t.D0_m2_per_s * (-t.Ea_D_eV / (BOLTZMANN_EV_PER_K * t.T_ref_K)).exp();
        assert!((back / p.film.D_m2_per_s - 1.0).abs() < 1e-12, "{back}");
        // The campaign table: 25..65 degC; its first row is the bench itself.
        let T_K: Vec<f64> = t.tau_vs_T.iter().map(|r| r.T_K).collect();
        assert_eq!(T_K, [298.15, 308.15, 318.15, 328.15, 338.15]);
        let first = &t.tau_vs_T[0];
        assert_eq!(
            (first.D_m2_per_s, first.k0_m_per_s, first.tau_s),
            (t.D_m2_per_s, t.k0_m_per_s, t.tau_s)
        );
        // tau falls with T and stays within the EIS/ESM windows of the
        // campaign: 26.7 s at 25 degC, 3.36 s at 65 degC (L^2/D by hand).
        assert!(t.tau_vs_T.windows(2).all(|w| w[1].tau_s < w[0].tau_s));
        let last = &t.tau_vs_T[4];
        assert!((last.tau_s - 3.358_781_219).abs() < 1e-8, "{}", last.tau_s);
        let json = serde_json::to_value(&t).unwrap();
        for key in ["Ea_D_eV", "Ea_k0_eV", "D0_m2_per_s", "T_ref_K", "tau_vs_T"] {
            assert!(json.get(key).is_some(), "{key} missing from the JSON truth");
        }
        assert_eq!(json["tau_vs_T"][4]["T_K"], 338.15);
    }

    #[test]
    fn arrhenius_fit_of_the_truth_table_recovers_ea() {
        // PHYSICS.md section 5: Ea = -k_B d ln(1/tau) / d(1/T); L cancels
        // from the slope and only sets the intercept ln(D0 / L^2).
        for (L_m, Ea_D_eV, T_ref_K, T_K) in [
            (200e-9, 0.45, 298.15, 298.15),
            (1e-6, 0.45, 298.15, 318.15),
            (350e-9, 0.31, 310.0, 298.15),
            (120e-9, 0.6, 273.15, 338.15),
        ] {
            let mut p = SimParams::default();
            p.film.thickness_m = L_m;
            p.film.Ea_D_eV = Ea_D_eV;
            p.cell.T_ref_K = T_ref_K;
            p.cell.T_K = T_K;
            let t = truth(&p).unwrap();
            let inv_T: Vec<f64> = t.tau_vs_T.iter().map(|r| 1.0 / r.T_K).collect();
            let ln_rate: Vec<f64> = t.tau_vs_T.iter().map(|r| (1.0 / r.tau_s).ln()).collect();
            let (slope, intercept) = line_fit(&inv_T, &ln_rate);
            let Ea_fit = -BOLTZMANN_EV_PER_K * slope;
            let D0_fit = intercept.exp() * L_m * L_m;
            eprintln!(
                "L = {L_m:e} m, T_ref = {T_ref_K} K: Ea fit - truth = {:.1e} eV, \
                 D0 fit / truth - 1 = {:.1e}",
                Ea_fit - Ea_D_eV,
                D0_fit / t.D0_m2_per_s - 1.0
            );
            assert!(
                (Ea_fit - Ea_D_eV).abs() < 1e-9,
                "L = {L_m} m: Ea {Ea_fit} eV vs {Ea_D_eV} eV"
            );
            assert!(
                (D0_fit / t.D0_m2_per_s - 1.0).abs() < 1e-9,
                "D0 {D0_fit} vs {}",
                t.D0_m2_per_s
            );
        }
    }
}
