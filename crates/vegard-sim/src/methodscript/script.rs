//! Parsing a MethodSCRIPT script (the lines between `e` and the empty line)
//! into the commands the emulator executes. Everything is checked before the
//! script starts, like the firmware does: a bad script is refused whole
//! (`!2001`) and never half-run.

use crate::world::{CvWave, LinearWave};
use std::collections::HashSet;

/// A parsed script: the main body and the `on_finished:` block that runs
/// after it, also after an abort or a fault.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Script {
    pub body: Vec<Cmd>,
    pub on_finished: Vec<Cmd>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cmd {
    SetE { E_V: f64 },
    SetRange { range_A: f64 },
    SetAutoranging { min_A: f64, max_A: f64 },
    SetGpioCfg { mask: u32, mode: u32 },
    SetGpio { value: u32 },
    CellOn,
    CellOff,
    Wait { t_s: f64 },
    Loop(MeasLoop),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MeasLoop {
    pub kind: LoopKind,
    /// What each `pck_add` puts in the package, in order.
    pub package: Vec<Quantity>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum LoopKind {
    /// `meas_loop_cv`: `n_samples_per_scan = round(span / step)`, sample
    /// interval `step / scan_rate`; `scan_markers` when `nscans(n)` was given.
    Cv {
        wave: CvWave,
        step_V: f64,
        scan_markers: bool,
    },
    /// `meas_loop_ocp`: cell left as it is, potential measured.
    Ocp { interval_s: f64, run_s: f64 },
    /// `meas_loop_ca`: potential held, current and the measured potential
    /// (set potential plus anything on the external input) reported.
    Ca {
        E_V: f64,
        interval_s: f64,
        run_s: f64,
    },
    /// `meas_loop_lsv`: one linear sweep, a sample every `step_V`.
    Lsv { wave: LinearWave, step_V: f64 },
    /// `meas_loop_eis`: `n_points` frequencies log-spaced by the device from
    /// `f_start` to `f_end`, `Eac` RMS around `Edc`, one package per point.
    Eis {
        E_dc_V: f64,
        E_ac_V_rms: f64,
        f_start_Hz: f64,
        f_end_Hz: f64,
        n_points: u32,
    },
}

impl LoopKind {
    /// Device time between samples, s.
    /// Device time between samples, s (EIS points have their own timing,
    /// [`LoopKind::eis_frequencies_Hz`]; 0 for them).
    pub fn interval_s(&self) -> f64 {
        match *self {
            LoopKind::Cv { wave, step_V, .. } => step_V / wave.scan_rate_V_per_s,
            LoopKind::Lsv { wave, step_V } => step_V / wave.scan_rate_V_per_s,
            LoopKind::Ocp { interval_s, .. } | LoopKind::Ca { interval_s, .. } => interval_s,
            LoopKind::Eis { .. } => 0.0,
        }
    }

    /// The EIS loop's frequencies in measurement order (empty for others).
    pub fn eis_frequencies_Hz(&self) -> Vec<f64> {
        match *self {
            LoopKind::Eis {
                f_start_Hz,
                f_end_Hz,
                n_points,
                ..
            } => vegard_recipe::log_frequencies_Hz(f_start_Hz, f_end_Hz, n_points),
            _ => Vec::new(),
        }
    }

    /// Samples in one scan (CV) or in the whole loop.
    pub fn samples_per_scan(&self) -> u64 {
        match *self {
            LoopKind::Cv { wave, step_V, .. } => (wave.span_V() / step_V).round() as u64,
            LoopKind::Lsv { wave, step_V } => {
                ((wave.E_end_V - wave.E_begin_V).abs() / step_V).round() as u64
            }
            LoopKind::Eis { n_points, .. } => u64::from(n_points),
            LoopKind::Ocp { interval_s, run_s }
            | LoopKind::Ca {
                interval_s, run_s, ..
            } => (run_s / interval_s).round() as u64,
        }
    }

    pub fn n_samples(&self) -> u64 {
        match *self {
            LoopKind::Cv { wave, .. } => self.samples_per_scan() * u64::from(wave.n_scans),
            _ => self.samples_per_scan(),
        }
    }
}

/// A value a loop puts into its package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quantity {
    /// The potential the loop applies (`da`).
    SetPotential,
    /// The measured working-electrode potential (`ab`).
    MeasuredPotential,
    /// The working-electrode current (`ba`).
    Current,
    /// EIS: the frequency of the point (`dc`).
    Frequency,
    /// EIS: real part of Z (`cc`).
    ZReal,
    /// EIS: imaginary part of Z (`cd`), negative for a capacitive cell.
    ZImag,
}

/// Why a script was refused: 1-based line number within the script (the `e`
/// line is line 1) and the reason.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScriptError {
    pub line: usize,
    pub reason: ScriptFault,
}

/// What is wrong with one script line. The texts go to the host in the
/// `!2001: line N: ...` reply, so they read like the firmware's complaints.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum ScriptFault {
    #[error("expected {expected} argument(s), got {got}")]
    Arity { expected: usize, got: usize },
    #[error("invalid number '{0}'")]
    Number(String),
    #[error("'{0}' must be > 0")]
    NotPositive(String),
    #[error("'{0}' must be >= 0")]
    Negative(String),
    #[error("'{0}' must be a non-negative integer")]
    NotInteger(String),
    #[error("malformed '{0}'")]
    Malformed(String),
    #[error("invalid variable name '{0}'")]
    VariableName(String),
    #[error("variable '{0}' not declared with var")]
    Undeclared(String),
    #[error("variable '{0}' is not measured by this loop")]
    NotMeasured(String),
    #[error("autoranging minimum {min} above maximum {max}")]
    Autoranging { min: String, max: String },
    #[error("unknown command '{0}'")]
    UnknownCommand(String),
    #[error("{0} outside a measurement loop")]
    OutsideLoop(String),
    #[error("'{0}' is not supported inside a measurement loop")]
    NotInLoop(String),
    /// A rule of the script's structure (one package per loop, ...).
    #[error("{0}")]
    Structure(&'static str),
}

/// Parses the lines after `e` (without the terminating empty line).
pub(crate) fn parse(lines: &[String]) -> Result<Script, ScriptError> {
    Parser::default().run(lines)
}

#[derive(Default)]
struct Parser {
    vars: HashSet<String>,
    body: Vec<Cmd>,
    on_finished: Vec<Cmd>,
    in_on_finished: bool,
    /// The loop being parsed: its kind, its variables and their meaning.
    open_loop: Option<OpenLoop>,
}

struct OpenLoop {
    kind: LoopKind,
    bindings: Vec<(String, Quantity)>,
    package: Vec<Quantity>,
    in_package: bool,
    had_package: bool,
}

impl Parser {
    fn run(mut self, lines: &[String]) -> Result<Script, ScriptError> {
        for (i, raw) in lines.iter().enumerate() {
            let line_no = i + 2;
            let code = raw.split('#').next().unwrap_or("");
            let words: Vec<&str> = code.split_whitespace().collect();
            let Some((&head, args)) = words.split_first() else {
                continue;
            };
            self.command(head, args).map_err(|reason| ScriptError {
                line: line_no,
                reason,
            })?;
        }
        if self.open_loop.is_some() {
            return Err(ScriptError {
                line: lines.len() + 1,
                reason: ScriptFault::Structure("loop without endloop"),
            });
        }
        Ok(Script {
            body: self.body,
            on_finished: self.on_finished,
        })
    }

    fn command(&mut self, head: &str, args: &[&str]) -> Result<(), ScriptFault> {
        if self.open_loop.is_some() {
            return self.loop_body(head, args);
        }
        let cmd = match head {
            "var" => {
                let [name] = exact(args)?;
                if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(ScriptFault::VariableName(name.to_string()));
                }
                self.vars.insert(name.to_string());
                return Ok(());
            }
            "set_pgstat_chan" | "set_pgstat_mode" | "set_max_bandwidth" => {
                let [v] = exact(args)?;
                number(v)?;
                return Ok(());
            }
            "set_range" => {
                let [kind, v] = exact(args)?;
                let range_A = positive(v)?;
                if kind != "ba" {
                    // Only the current range matters to the emulator.
                    return Ok(());
                }
                Cmd::SetRange { range_A }
            }
            "set_autoranging" => {
                let [kind, lo, hi] = exact(args)?;
                let (min_A, max_A) = (positive(lo)?, positive(hi)?);
                if min_A > max_A {
                    return Err(ScriptFault::Autoranging {
                        min: lo.to_string(),
                        max: hi.to_string(),
                    });
                }
                if kind != "ba" {
                    return Ok(());
                }
                Cmd::SetAutoranging { min_A, max_A }
            }
            "set_e" => {
                let [v] = exact(args)?;
                Cmd::SetE { E_V: number(v)? }
            }
            "set_gpio_cfg" => {
                let [mask, mode] = exact(args)?;
                Cmd::SetGpioCfg {
                    mask: integer(mask)?,
                    mode: integer(mode)?,
                }
            }
            "set_gpio" => {
                let [v] = exact(args)?;
                Cmd::SetGpio { value: integer(v)? }
            }
            "cell_on" => {
                exact::<0>(args)?;
                Cmd::CellOn
            }
            "cell_off" => {
                exact::<0>(args)?;
                Cmd::CellOff
            }
            "wait" => {
                let [v] = exact(args)?;
                Cmd::Wait {
                    t_s: non_negative(v)?,
                }
            }
            "on_finished:" => {
                exact::<0>(args)?;
                if self.in_on_finished {
                    return Err(ScriptFault::Structure("second on_finished:"));
                }
                self.in_on_finished = true;
                return Ok(());
            }
            "meas_loop_cv" | "meas_loop_ocp" | "meas_loop_ca" | "meas_loop_lsv"
            | "meas_loop_eis" => {
                if self.in_on_finished {
                    return Err(ScriptFault::Structure(
                        "measurement loops are not allowed in on_finished",
                    ));
                }
                self.open_loop = Some(self.loop_header(head, args)?);
                return Ok(());
            }
            "endloop" | "pck_start" | "pck_add" | "pck_end" => {
                return Err(ScriptFault::OutsideLoop(head.to_string()));
            }
            other => return Err(ScriptFault::UnknownCommand(other.to_string())),
        };
        self.push(cmd);
        Ok(())
    }

    fn push(&mut self, cmd: Cmd) {
        if self.in_on_finished {
            self.on_finished.push(cmd);
        } else {
            self.body.push(cmd);
        }
    }

    fn var(&self, name: &str) -> Result<String, ScriptFault> {
        if self.vars.contains(name) {
            Ok(name.to_string())
        } else {
            Err(ScriptFault::Undeclared(name.to_string()))
        }
    }

    fn loop_header(&self, head: &str, args: &[&str]) -> Result<OpenLoop, ScriptFault> {
        let (kind, bindings) = match head {
            "meas_loop_cv" => {
                let (fixed, nscans) = match args {
                    [fixed @ .., last] if last.starts_with("nscans(") => {
                        let n = last
                            .strip_prefix("nscans(")
                            .and_then(|s| s.strip_suffix(')'))
                            .ok_or_else(|| ScriptFault::Malformed(last.to_string()))?;
                        (fixed, Some(integer(n)?))
                    }
                    _ => (args, None),
                };
                let [p, c, beg, v1, v2, step, rate] = exact(fixed)?;
                let n_scans = nscans.unwrap_or(1);
                if n_scans == 0 {
                    return Err(ScriptFault::Structure("nscans must be >= 1"));
                }
                let wave = CvWave {
                    E_begin_V: number(beg)?,
                    E_vertex1_V: number(v1)?,
                    E_vertex2_V: number(v2)?,
                    scan_rate_V_per_s: positive(rate)?,
                    n_scans,
                };
                let step_V = positive(step)?;
                if (wave.span_V() / step_V).round() < 1.0 {
                    return Err(ScriptFault::Structure(
                        "the scan spans less than one potential step",
                    ));
                }
                (
                    LoopKind::Cv {
                        wave,
                        step_V,
                        scan_markers: nscans.is_some(),
                    },
                    vec![
                        (self.var(p)?, Quantity::SetPotential),
                        (self.var(c)?, Quantity::Current),
                    ],
                )
            }
            "meas_loop_ocp" => {
                let [p, interval, run] = exact(args)?;
                (
                    LoopKind::Ocp {
                        interval_s: positive(interval)?,
                        run_s: non_negative(run)?,
                    },
                    vec![(self.var(p)?, Quantity::MeasuredPotential)],
                )
            }
            "meas_loop_lsv" => {
                let [p, c, beg, end, step, rate] = exact(args)?;
                let wave = LinearWave {
                    E_begin_V: number(beg)?,
                    E_end_V: number(end)?,
                    scan_rate_V_per_s: positive(rate)?,
                };
                let step_V = positive(step)?;
                if ((wave.E_end_V - wave.E_begin_V).abs() / step_V).round() < 1.0 {
                    return Err(ScriptFault::Structure(
                        "the sweep spans less than one potential step",
                    ));
                }
                (
                    LoopKind::Lsv { wave, step_V },
                    vec![
                        (self.var(p)?, Quantity::SetPotential),
                        (self.var(c)?, Quantity::Current),
                    ],
                )
            }
            "meas_loop_eis" => {
                let [f, zr, zi, eac, f_start, f_end, n, edc] = exact(args)?;
                let n_points = integer(n)?;
                if n_points == 0 {
                    return Err(ScriptFault::Structure("n_points must be >= 1"));
                }
                (
                    LoopKind::Eis {
                        E_dc_V: number(edc)?,
                        E_ac_V_rms: positive(eac)?,
                        f_start_Hz: positive(f_start)?,
                        f_end_Hz: positive(f_end)?,
                        n_points,
                    },
                    vec![
                        (self.var(f)?, Quantity::Frequency),
                        (self.var(zr)?, Quantity::ZReal),
                        (self.var(zi)?, Quantity::ZImag),
                    ],
                )
            }
            _ => {
                let [p, c, e, interval, run] = exact(args)?;
                (
                    LoopKind::Ca {
                        E_V: number(e)?,
                        interval_s: positive(interval)?,
                        run_s: non_negative(run)?,
                    },
                    // The potential a CA loop reports is the measured one:
                    // it carries the external-input sine of an ESM dwell.
                    vec![
                        (self.var(p)?, Quantity::MeasuredPotential),
                        (self.var(c)?, Quantity::Current),
                    ],
                )
            }
        };
        Ok(OpenLoop {
            kind,
            bindings,
            package: Vec::new(),
            in_package: false,
            had_package: false,
        })
    }

    fn loop_body(&mut self, head: &str, args: &[&str]) -> Result<(), ScriptFault> {
        let Some(l) = self.open_loop.as_mut() else {
            return Err(ScriptFault::Structure("internal: no open loop"));
        };
        match head {
            "pck_start" => {
                exact::<0>(args)?;
                if l.in_package || l.had_package {
                    return Err(ScriptFault::Structure("only one package per loop"));
                }
                l.in_package = true;
            }
            "pck_add" => {
                let [name] = exact(args)?;
                if !l.in_package {
                    return Err(ScriptFault::Structure("pck_add outside pck_start/pck_end"));
                }
                let q = l
                    .bindings
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, q)| *q)
                    .ok_or_else(|| ScriptFault::NotMeasured(name.to_string()))?;
                l.package.push(q);
            }
            "pck_end" => {
                exact::<0>(args)?;
                if !l.in_package {
                    return Err(ScriptFault::Structure("pck_end without pck_start"));
                }
                l.in_package = false;
                l.had_package = true;
            }
            "endloop" => {
                exact::<0>(args)?;
                if l.in_package {
                    return Err(ScriptFault::Structure("endloop inside pck_start/pck_end"));
                }
                let done = MeasLoop {
                    kind: l.kind,
                    package: std::mem::take(&mut l.package),
                };
                self.open_loop = None;
                self.push(Cmd::Loop(done));
            }
            other => {
                return Err(ScriptFault::NotInLoop(other.to_string()));
            }
        }
        Ok(())
    }
}

fn exact<'a, const N: usize>(args: &[&'a str]) -> Result<[&'a str; N], ScriptFault> {
    <[&str; N]>::try_from(args).map_err(|_| ScriptFault::Arity {
        expected: N,
        got: args.len(),
    })
}

/// A MethodSCRIPT literal: `500m`, `-100u`, `1k`, `2i`, `0x01`, `0b101`, `0.5`.
pub(crate) fn number(tok: &str) -> Result<f64, ScriptFault> {
    let bad = || ScriptFault::Number(tok.to_string());
    let (neg, body) = match tok.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, tok),
    };
    let radix = if body.starts_with("0x") || body.starts_with("0X") {
        Some(16)
    } else if body.starts_with("0b") || body.starts_with("0B") {
        Some(2)
    } else {
        None
    };
    let value = if let Some(radix) = radix {
        let digits = body[2..].strip_suffix('i').unwrap_or(&body[2..]);
        u64::from_str_radix(digits, radix).map_err(|_| bad())? as f64
    } else {
        let last = body.chars().last().ok_or_else(bad)?;
        let (digits, scale) = match last {
            'a' => (&body[..body.len() - 1], 1e-18),
            'f' => (&body[..body.len() - 1], 1e-15),
            'p' => (&body[..body.len() - 1], 1e-12),
            'n' => (&body[..body.len() - 1], 1e-9),
            'u' => (&body[..body.len() - 1], 1e-6),
            'm' => (&body[..body.len() - 1], 1e-3),
            'i' => (&body[..body.len() - 1], 1.0),
            'k' => (&body[..body.len() - 1], 1e3),
            'M' => (&body[..body.len() - 1], 1e6),
            'G' => (&body[..body.len() - 1], 1e9),
            'T' => (&body[..body.len() - 1], 1e12),
            'P' => (&body[..body.len() - 1], 1e15),
            'E' => (&body[..body.len() - 1], 1e18),
            _ => (body, 1.0),
        };
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(bad());
        }
        digits.parse::<f64>().map_err(|_| bad())? * scale
    };
    Ok(if neg { -value } else { value })
}

fn positive(tok: &str) -> Result<f64, ScriptFault> {
    let v = number(tok)?;
    if v > 0.0 {
        Ok(v)
    } else {
        Err(ScriptFault::NotPositive(tok.to_string()))
    }
}

fn non_negative(tok: &str) -> Result<f64, ScriptFault> {
    let v = number(tok)?;
    if v >= 0.0 {
        Ok(v)
    } else {
        Err(ScriptFault::Negative(tok.to_string()))
    }
}

fn integer(tok: &str) -> Result<u32, ScriptFault> {
    let v = number(tok)?;
    if v >= 0.0 && v.fract() == 0.0 && v <= f64::from(u32::MAX) {
        Ok(v as u32)
    } else {
        Err(ScriptFault::NotInteger(tok.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    #[test]
    fn literals() {
        let cases = [
            ("500m", 0.5),
            ("100u", 1e-4),
            ("-100m", -0.1),
            ("1k", 1e3),
            ("2i", 2.0),
            ("0x01", 1.0),
            ("0x1Fi", 31.0),
            ("0b101", 5.0),
            ("0.5", 0.5),
            ("1n", 1e-9),
        ];
        for (s, v) in cases {
            let got = number(s).unwrap();
            assert!((got - v).abs() <= 1e-15 * v.abs(), "{s}: {got}");
        }
        for s in ["", "m", "1x", "abc", "0xZZ", "1.2.3"] {
            assert!(number(s).is_err(), "{s}");
        }
    }

    #[test]
    fn the_contract_cv_script_parses() {
        let s = parse(&lines(
            "var c\nvar p\nset_pgstat_chan 0\nset_pgstat_mode 2\nset_max_bandwidth 400\n\
             set_range ba 10m\nset_autoranging ba 1n 10m\nset_e 400m\nset_gpio_cfg 0x01 1\n\
             cell_on\nset_gpio 0x01i   # trigger\n\
             meas_loop_cv p c 400m 900m -100m 2m 200m nscans(3)\n  pck_start\n    pck_add p\n\
             \x20   pck_add c\n  pck_end\nendloop\nset_gpio 0x00i\non_finished:\n  cell_off",
        ))
        .unwrap();
        assert_eq!(s.on_finished, vec![Cmd::CellOff]);
        let Some(Cmd::Loop(l)) = s.body.iter().find(|c| matches!(c, Cmd::Loop(_))) else {
            panic!("no loop in {:?}", s.body);
        };
        assert_eq!(l.package, vec![Quantity::SetPotential, Quantity::Current]);
        assert_eq!(l.kind.samples_per_scan(), 1000);
        assert_eq!(l.kind.n_samples(), 3000);
        assert!((l.kind.interval_s() - 0.01).abs() < 1e-15);
        assert_eq!(s.body[0], Cmd::SetRange { range_A: 1e-2 });
    }

    #[test]
    fn eis_lsv_and_ca_loops_parse() {
        let s = parse(&lines(
            "var f\nvar r\nvar j\nvar p\nvar c\nset_e 400m\ncell_on\n\
             meas_loop_eis f r j 7071u 10k 10m 16i 400m\n pck_start\n pck_add f\n pck_add r\n\
             \x20pck_add j\n pck_end\nendloop\n\
             meas_loop_lsv p c 200m 800m 2m 10m\n pck_start\n pck_add p\n pck_add c\n pck_end\nendloop\n\
             meas_loop_ca p c 400m 20m 3\n pck_start\n pck_add p\n pck_add c\n pck_end\nendloop",
        ))
        .unwrap();
        let loops: Vec<&MeasLoop> = s
            .body
            .iter()
            .filter_map(|c| match c {
                Cmd::Loop(l) => Some(l),
                _ => None,
            })
            .collect();
        assert_eq!(loops.len(), 3);
        let eis = loops[0];
        assert_eq!(
            eis.package,
            vec![Quantity::Frequency, Quantity::ZReal, Quantity::ZImag]
        );
        assert_eq!(eis.kind.n_samples(), 16);
        let f = eis.kind.eis_frequencies_Hz();
        assert_eq!(f.len(), 16);
        // 6 decades in 15 intervals: 10^(6/15) = 2.512 per point.
        assert!((f[0] - 1e4).abs() < 1e-9 && (f[15] - 1e-2).abs() < 1e-15);
        assert!((f[0] / f[1] - 10f64.powf(0.4)).abs() < 1e-12);
        assert!(matches!(eis.kind, LoopKind::Eis { E_ac_V_rms, E_dc_V, .. }
            if (E_ac_V_rms - 7.071e-3).abs() < 1e-15 && (E_dc_V - 0.4).abs() < 1e-15));
        let lsv = loops[1];
        assert_eq!(lsv.kind.n_samples(), 300);
        assert!((lsv.kind.interval_s() - 0.2).abs() < 1e-12);
        assert_eq!(lsv.package, vec![Quantity::SetPotential, Quantity::Current]);
        assert_eq!(
            loops[2].package,
            vec![Quantity::MeasuredPotential, Quantity::Current]
        );
        let e = parse(&lines(
            "var f\nvar r\nvar j\nmeas_loop_eis f r j 7m 1k 1 0i 0\nendloop",
        ))
        .unwrap_err();
        assert!(e.reason.to_string().contains("n_points"), "{e:?}");
    }

    #[test]
    fn bad_scripts_name_the_line() {
        let e = parse(&lines("var p\nfoo 1")).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.reason.to_string().contains("foo"));
        let e = parse(&lines("meas_loop_ocp p 10m 2\nendloop")).unwrap_err();
        assert!(e.reason.to_string().contains("not declared"), "{e:?}");
        let e = parse(&lines("var p\nmeas_loop_ocp p 10m 2\npck_start\npck_add p")).unwrap_err();
        assert!(e.reason.to_string().contains("endloop"), "{e:?}");
        let e = parse(&lines("set_e")).unwrap_err();
        assert!(e.reason.to_string().contains("expected 1"), "{e:?}");
    }
}
