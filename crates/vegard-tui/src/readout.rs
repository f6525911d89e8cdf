//! The numeric "now" readout: the latest E, I, u, T, the step's charge and
//! the running kappa, as numbers with units. Owns the choice of what counts
//! as "now" (a value older than [`STALE_AFTER_S`] is not shown as current)
//! and the formatting of the readout; drawing only lays the items out.
//!
//! Why a readout next to the traces: a trace shows the shape, but an
//! electrochemist checks the numbers (is E at the vertex yet, is the current
//! in the µA range the cell should give, has T reached the setpoint), and
//! reading them off a braille axis with two tick labels is guesswork.

use crate::state::DashState;
use vegard_recipe::ZERO_C_IN_K;

/// A sample older than this (experiment s) behind the newest time seen in
/// any stream is not "now": during a temperature step the potentiostat is
/// idle, and its last E from minutes ago must not read as the present
/// potential. Five seconds is several flushes of every stream (the engine
/// flushes at least once a second), so a live stream is never called stale.
pub const STALE_AFTER_S: f64 = 5.0;

/// Shown for a value that is not available (no temperature stage, open
/// circuit current, no deflection yet, stale).
pub const MISSING: &str = "—";

/// Kinds of steps whose u–Q slope is a Vegard coefficient: the charge is
/// passed slowly and the deformation follows it (cyclic and linear sweeps,
/// potential steps). In EIS and ESM sweeps the charge oscillates around
/// zero at up to kHz while the lever's response is filtered and phase
/// shifted, so a u–Q regression there gives a meaningless slope with a
/// poor R² (0.18 was seen in a campaign's ESM sweep).
pub fn kappa_applies(kind: &str) -> bool {
    matches!(kind, "cv" | "lsv" | "steps")
}

/// The running kappa as the readout shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct KappaNow {
    /// Plan index of the step the fit is over.
    pub step: usize,
    /// That step's kind (`cv`, `lsv`, `steps`), `?` if not known.
    pub kind: String,
    pub kappa_nm_per_mC: f64,
    pub r2: Option<f64>,
    /// Whether that step is the one running now (else it is the last CV or
    /// step technique's value, kept while e.g. an EIS step runs).
    pub current: bool,
}

/// The latest value of each quantity, None where not available.
#[derive(Debug, Clone, PartialEq, Default)]
#[allow(non_snake_case)] // units in names: E_V, I_A, T_K
pub struct Readout {
    pub E_V: Option<f64>,
    pub I_A: Option<f64>,
    pub u_nm: Option<f64>,
    pub T_K: Option<f64>,
    pub setpoint_K: Option<f64>,
    /// Charge passed since the running step began, mC.
    pub Q_mC: Option<f64>,
    pub kappa: Option<KappaNow>,
}

/// The last element of `v` if it is finite and its time in `t` is not stale.
fn latest(t_s: &[f64], v: &[f64], now_s: f64) -> Option<f64> {
    let (&t, &x) = (t_s.last()?, v.last()?);
    (x.is_finite() && t.is_finite() && now_s - t <= STALE_AFTER_S).then_some(x)
}

impl Readout {
    /// The readout of `state` as it stands.
    pub fn of(state: &DashState) -> Self {
        let now = state.t_latest_s;
        let p = &state.pot;
        let kappa = state.kappa().map(|(step, k, r2, _)| KappaNow {
            step,
            kind: state.step_kind(step).unwrap_or("?").to_string(),
            kappa_nm_per_mC: k,
            r2,
            current: state.step.as_ref().is_some_and(|s| s.index == step),
        });
        // Potentiostat values belong to the running step: none while a step
        // without potentiostat samples runs (EIS points and temperatures
        // carry no sample times, so staleness alone would not tell).
        let running = state.step.as_ref().map(|s| s.index);
        let this_step = running.is_none() || p.step.last().copied() == running;
        let pot = |v: &[f64]| latest(&p.t_s, v, now).filter(|_| this_step);
        // Deflection recorded after the last potentiostat sample is current
        // even when that sample is from an earlier step.
        let d = &state.defl;
        let defl_newer = match (d.t_s.last(), p.t_s.last()) {
            (Some(td), Some(tp)) => td > tp,
            _ => true,
        };
        Readout {
            E_V: pot(&p.E_V),
            I_A: pot(&p.I_A),
            u_nm: latest(&d.t_s, &d.nm, now).filter(|_| this_step || defl_newer),
            T_K: latest(&state.temp.t_s, &state.temp.T_K, now),
            setpoint_K: latest(&state.temp.t_s, &state.temp.setpoint_K, now),
            Q_mC: pot(&p.Q_mC),
            kappa,
        }
    }

    /// The readout's items, most important first, each `(label, value)`
    /// with the unit inside the value; `wide` adds the kelvin next to the
    /// degrees Celsius and the setpoint.
    ///
    /// Digits follow what the instruments resolve, not a fixed count, and
    /// are fixed per quantity so the line does not jump as values change:
    /// E to 0.1 mV (noise ~50 µV), u to 1 pm (noise ~20 pm), T to 0.01 K;
    /// I and Q to four significant digits with an SI prefix (they span
    /// nA to mA), kappa to four significant digits.
    pub fn items(&self, wide: bool) -> Vec<(&'static str, String)> {
        let t = match (self.T_K, self.setpoint_K) {
            // Kelvin to 0.01 K (four digits would be 0.1 K, coarser than
            // the stage's control).
            (Some(t), Some(sp)) if wide => {
                format!("{:.2} °C = {t:.2} K → {sp:.2} K", t - ZERO_C_IN_K)
            }
            (Some(t), _) if wide => format!("{:.2} °C = {t:.2} K", t - ZERO_C_IN_K),
            (Some(t), _) => format!("{:.2} °C", t - ZERO_C_IN_K),
            (None, _) => MISSING.to_string(),
        };
        let kappa = match &self.kappa {
            Some(k) => {
                let r2 = k.r2.map_or(String::new(), |r| format!(" R² {r:.2}"));
                let from = if k.current {
                    format!(" ({})", k.kind)
                } else {
                    format!(" (last {}, step {})", k.kind, k.step + 1)
                };
                format!("{} nm/mC{r2}{from}", sig4(k.kappa_nm_per_mC))
            }
            None => MISSING.to_string(),
        };
        vec![
            ("E", opt(self.E_V, |v| format!("{} V", fixed(v, 4)))),
            ("I", opt(self.I_A, |v| si(v, "A"))),
            ("u", opt(self.u_nm, |v| format!("{} nm", fixed(v, 3)))),
            ("T", t),
            ("Q", opt(self.Q_mC, |v| si(v * 1e-3, "C"))),
            ("κ", kappa),
        ]
    }
}

/// Fixed decimals, `-0.000` printed as `0.000`.
fn fixed(v: f64, decimals: usize) -> String {
    vegard_core::format::fixed(v, decimals)
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or(MISSING.to_string(), f)
}

/// Four significant digits, trailing zeros kept so a value that changes does
/// not change width (the readout would jitter); an exponent outside
/// 1e-4..1e5. `—` for non-finite values.
pub fn sig4(v: f64) -> String {
    if !v.is_finite() {
        return MISSING.to_string();
    }
    if v == 0.0 {
        return "0.000".into();
    }
    let mut e = v.abs().log10().floor() as i32;
    // 9.9996 rounds to 10.00: one decimal fewer, as for 10.
    let rounded = |e: i32| {
        let d = (3 - e).clamp(0, 8) as usize;
        (d, vegard_core::format::fixed(v, d))
    };
    let (_, mut s) = rounded(e);
    if s.trim_start_matches('-')
        .replace('.', "")
        .trim_start_matches('0')
        .len()
        > 4
        && e < 4
    {
        e += 1;
        s = rounded(e).1;
    }
    if !(-4..5).contains(&e) {
        return format!("{v:.3e}");
    }
    s
}

/// `v` in `unit` with the SI prefix that puts the mantissa in 1..1000, four
/// significant digits ("−12.34 µA", "1.500 mA").
pub fn si(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return MISSING.to_string();
    }
    const PREFIXES: [(f64, &str); 6] = [
        (1.0, ""),
        (1e-3, "m"),
        (1e-6, "µ"),
        (1e-9, "n"),
        (1e-12, "p"),
        (1e-15, "f"),
    ];
    let a = v.abs();
    let (scale, prefix) = if a == 0.0 || a >= 1.0 {
        (1.0, "")
    } else {
        // The largest prefix whose mantissa is >= 1 once rounded to four digits.
        PREFIXES
            .iter()
            .copied()
            .find(|(s, _)| a / s >= 0.99995)
            .unwrap_or((1e-15, "f"))
    };
    format!("{} {prefix}{unit}", sig4(v / scale))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{DashEvent, Mode};

    #[test]
    fn four_significant_digits_known_answers() {
        assert_eq!(sig4(0.41234), "0.4123");
        assert_eq!(sig4(-0.2120), "-0.2120");
        assert_eq!(sig4(313.154), "313.2");
        assert_eq!(sig4(40.0), "40.00");
        assert_eq!(sig4(9.99996), "10.00");
        assert_eq!(sig4(1234.4), "1234");
        assert_eq!(sig4(0.0), "0.000");
        assert_eq!(sig4(-0.0004), "-0.0004000");
        assert_eq!(sig4(-0.00001), "-1.000e-5");
        assert_eq!(sig4(f64::NAN), "—");
        assert_eq!(sig4(123_456.0), "1.235e5");
    }

    #[test]
    fn si_prefix_known_answers() {
        assert_eq!(si(-12.345e-6, "A"), "-12.35 µA");
        assert_eq!(si(1.5e-3, "A"), "1.500 mA");
        assert_eq!(si(473.0e-6, "A"), "473.0 µA");
        assert_eq!(si(0.9999999e-6, "A"), "1.000 µA");
        assert_eq!(si(50e-9, "A"), "50.00 nA");
        assert_eq!(si(2.0, "A"), "2.000 A");
        assert_eq!(si(f64::NAN, "A"), "—");
    }

    /// The readout is the last sample of each stream; open-circuit current
    /// (NaN) and a missing stage read "—"; kappa only from a CV step.
    #[test]
    fn readout_of_the_last_samples() {
        let mut s = DashState::new(Mode::Run);
        s.apply(DashEvent::StepStarted {
            index: 0,
            count: 2,
            kind: "ocp".into(),
            duration_s: 1.0,
            sweep: String::new(),
        });
        s.apply(DashEvent::Potentiostat {
            t_s: vec![0.0, 0.5, 1.0],
            E_V: vec![0.41, 0.412, 0.41234],
            I_A: vec![f64::NAN; 3],
            cycle: vec![0; 3],
            step: vec![0; 3],
        });
        s.apply(DashEvent::Deflection {
            t_s: vec![0.0, 1.0],
            deflection_nm: vec![0.1, 0.10426],
        });
        let r = Readout::of(&s);
        assert_eq!(r.E_V, Some(0.41234));
        assert_eq!(r.I_A, None, "open circuit: no current");
        assert_eq!(r.T_K, None, "no temperature stage");
        assert_eq!(r.kappa, None, "an OCP step has no kappa");
        let items = r.items(false);
        assert_eq!(items[0], ("E", "0.4123 V".to_string()));
        assert_eq!(items[1], ("I", "—".to_string()));
        assert_eq!(items[2], ("u", "0.104 nm".to_string()));
        assert_eq!(items[3], ("T", "—".to_string()));
        assert_eq!(items[5], ("κ", "—".to_string()));

        s.apply(DashEvent::Temperature {
            t_s: 1.0,
            T_K: 313.15,
            setpoint_K: Some(313.15),
        });
        let items = Readout::of(&s).items(true);
        assert_eq!(items[3].1, "40.00 °C = 313.15 K → 313.15 K");
        // Ten seconds later with only temperature readings, E is stale.
        s.apply(DashEvent::Temperature {
            t_s: 11.0,
            T_K: 313.0,
            setpoint_K: None,
        });
        let r = Readout::of(&s);
        assert_eq!(r.E_V, None);
        assert_eq!(r.T_K, Some(313.0));
    }
}
