//! Parsing a MethodSCRIPT script (the lines between `e` and the empty line)
//! into a statement tree the emulator interprets. Like the firmware, the
//! whole script is checked before anything runs: an unknown command, a
//! wrong argument count, a malformed literal, an undeclared variable or an
//! unbalanced block refuses the script with `!XXXX: Line N, Col C` and
//! nothing is executed. Values that depend on variables (a scan rate held in
//! a variable, an array index) can only be checked while running; those
//! errors stop the script at run time (see `mod.rs`).

use crate::world::{CvWave, LinearWave};
use std::collections::HashSet;

/// Deepest nesting of loops and conditions the emulator accepts (the
/// interpreter recurses once per level).
const MAX_NESTING: usize = 32;

/// A parsed script: the main body and the `on_finished:` block that runs
/// after it, also after an abort or a fault.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Script {
    pub body: Vec<Stmt>,
    pub on_finished: Vec<Stmt>,
}

/// One command with the position the firmware reports errors at: the
/// script line (the `e` line is line 1) and the 1-based column of the
/// command word.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stmt {
    pub line: usize,
    pub col: usize,
    pub cmd: Cmd,
}

/// A command argument: a literal or a declared variable, resolved when the
/// command runs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Lit(f64),
    Var(String),
}

/// Integer arithmetic of the `*_var` commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// `<operand> <op> <operand>` of `loop` and `if`/`elseif`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cond {
    pub lhs: Operand,
    pub op: CmpOp,
    pub rhs: Operand,
}

impl Cond {
    pub fn holds(&self, lhs: f64, rhs: f64) -> bool {
        match self.op {
            CmpOp::Lt => lhs < rhs,
            CmpOp::Le => lhs <= rhs,
            CmpOp::Gt => lhs > rhs,
            CmpOp::Ge => lhs >= rhs,
            CmpOp::Eq => lhs == rhs,
            CmpOp::Ne => lhs != rhs,
        }
    }
}

/// A two-letter MethodSCRIPT variable type (`da`, `ba`, `ja`, ...): what a
/// package reports the value as.
pub(crate) type VarType = [u8; 2];

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cmd {
    /// `store_var v value type`.
    StoreVar {
        var: String,
        value: Operand,
        vtype: VarType,
    },
    /// `add_var`/`sub_var`/`mul_var`/`div_var v operand`.
    Arith {
        op: ArithOp,
        var: String,
        operand: Operand,
    },
    /// `copy_var src dst`.
    CopyVar {
        src: String,
        dst: String,
    },
    /// `array name size`.
    Array {
        name: String,
        size: Operand,
    },
    /// `array_set name index value`.
    ArraySet {
        name: String,
        index: Operand,
        value: Operand,
    },
    /// `array_get name index dst`.
    ArrayGet {
        name: String,
        index: Operand,
        dst: String,
    },
    SetE(Operand),
    /// `set_range ba <range>` (other quantities are accepted and ignored).
    SetRange(Operand),
    /// `set_autoranging ba <min> <max>`.
    SetAutoranging {
        min: Operand,
        max: Operand,
    },
    SetGpioCfg {
        mask: Operand,
        mode: Operand,
    },
    SetGpio(Operand),
    CellOn,
    CellOff,
    Wait(Operand),
    /// `send_string "text"`: `T<text>` to the host.
    SendString(String),
    /// `timer_start`: zero of the script timer.
    TimerStart,
    /// `timer_get v`: device seconds since `timer_start` into `v` (type `eb`).
    TimerGet(String),
    /// `loop <cond>` ... `endloop`: `L` before the first check, `+` after.
    Loop {
        cond: Cond,
        body: Vec<Stmt>,
    },
    /// `if`/`elseif`/`else`/`endif`.
    If {
        branches: Vec<(Cond, Vec<Stmt>)>,
        otherwise: Vec<Stmt>,
    },
    BreakLoop,
    Meas(MeasLoop),
    PckStart,
    PckAdd(String),
    PckEnd,
    /// A configuration command the emulator accepts and has nothing to do
    /// for (`set_pgstat_mode`, `set_max_bandwidth`, `set_range_minmax`, ...).
    Nop,
}

/// A `meas_loop_*` with its arguments unresolved and its body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MeasLoop {
    pub tech: Technique,
    /// The output variables, in argument order, with the quantity each gets.
    pub outputs: Vec<(String, Quantity)>,
    /// The technique's numeric arguments, in argument order.
    pub args: Vec<Operand>,
    /// `nscans(n)` of a CV.
    pub nscans: Option<Operand>,
    pub body: Vec<Stmt>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Technique {
    Cv,
    Lsv,
    Ca,
    Ocp,
    Eis,
    Swv,
    Dpv,
    Npv,
}

impl Technique {
    /// Command name, output quantities and the number of numeric arguments.
    fn signature(self) -> (&'static str, &'static [Quantity], usize) {
        use Quantity::*;
        match self {
            Technique::Cv => ("meas_loop_cv", &[SetPotential, Current], 5),
            Technique::Lsv => ("meas_loop_lsv", &[SetPotential, Current], 4),
            // The potential of a CA loop is the MEASURED one: it carries the
            // external-input sine of an ESM dwell (protocols/methodscript.md).
            Technique::Ca => ("meas_loop_ca", &[MeasuredPotential, Current], 3),
            Technique::Ocp => ("meas_loop_ocp", &[MeasuredPotential], 2),
            Technique::Eis => ("meas_loop_eis", &[Frequency, ZReal, ZImag], 5),
            Technique::Swv => (
                "meas_loop_swv",
                &[SetPotential, Current, CurrentForward, CurrentReverse],
                5,
            ),
            Technique::Dpv => ("meas_loop_dpv", &[SetPotential, Current], 6),
            Technique::Npv => ("meas_loop_npv", &[SetPotential, Current], 5),
        }
    }

    fn from_name(name: &str) -> Option<Technique> {
        [
            Technique::Cv,
            Technique::Lsv,
            Technique::Ca,
            Technique::Ocp,
            Technique::Eis,
            Technique::Swv,
            Technique::Dpv,
            Technique::Npv,
        ]
        .into_iter()
        .find(|t| t.signature().0 == name)
    }
}

/// A measurement loop with its arguments resolved and checked.
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
    /// `meas_loop_ca`: potential held, current and the measured potential.
    Ca {
        E_V: f64,
        interval_s: f64,
        run_s: f64,
    },
    /// `meas_loop_lsv`: one linear sweep, a sample every `step_V`.
    Lsv { wave: LinearWave, step_V: f64 },
    /// `meas_loop_eis`: `n_points` frequencies log-spaced by the device.
    Eis {
        E_dc_V: f64,
        E_ac_V_rms: f64,
        f_start_Hz: f64,
        f_end_Hz: f64,
        n_points: u32,
    },
    /// Pulse techniques on a staircase from `E_begin_V` towards `E_end_V`
    /// in steps of `step_V`; see [`Pulse`].
    Pulse(Pulse),
}

/// The staircase pulse techniques (SWV, DPV, NPV). Point k (k = 0 ..
/// n_points-1) has the base potential `E_k = E_begin + k * step * sign`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Pulse {
    pub shape: PulseShape,
    pub E_begin_V: f64,
    pub E_end_V: f64,
    pub step_V: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum PulseShape {
    /// Square wave of amplitude `amplitude_V` around each step at
    /// `frequency_Hz`: forward half period at `E_k + A`, reverse at
    /// `E_k - A` (signs follow the scan direction); the current is sampled at
    /// the end of each half period and `I = I_fwd - I_rev`.
    Swv { amplitude_V: f64, frequency_Hz: f64 },
    /// Differential pulse: each step lasts `step / scan_rate`; the base is
    /// held to `t_pulse` before the step's end, then `E_k + pulse` until
    /// its end. `I = I(end of pulse) - I(just before the pulse)`.
    Dpv {
        pulse_V: f64,
        t_pulse_s: f64,
        scan_rate_V_per_s: f64,
    },
    /// Normal pulse: the base `E_begin` is held between pulses; pulse k goes
    /// to `E_k` for the last `t_pulse` of the step; `I` is sampled at the
    /// pulse's end.
    Npv {
        t_pulse_s: f64,
        scan_rate_V_per_s: f64,
    },
}

impl Pulse {
    pub fn n_points(&self) -> u64 {
        ((self.E_end_V - self.E_begin_V).abs() / self.step_V).round() as u64 + 1
    }

    pub fn base_V(&self, k: u64) -> f64 {
        self.E_begin_V + (self.E_end_V - self.E_begin_V).signum() * self.step_V * k as f64
    }

    /// Device time one point takes, s.
    pub fn period_s(&self) -> f64 {
        match self.shape {
            PulseShape::Swv { frequency_Hz, .. } => 1.0 / frequency_Hz,
            PulseShape::Dpv {
                scan_rate_V_per_s, ..
            }
            | PulseShape::Npv {
                scan_rate_V_per_s, ..
            } => self.step_V / scan_rate_V_per_s,
        }
    }
}

impl LoopKind {
    /// Device time between samples, s (EIS points have their own timing,
    /// [`LoopKind::eis_frequencies_Hz`]; 0 for them).
    pub fn interval_s(&self) -> f64 {
        match *self {
            LoopKind::Cv { wave, step_V, .. } => step_V / wave.scan_rate_V_per_s,
            LoopKind::Lsv { wave, step_V } => step_V / wave.scan_rate_V_per_s,
            LoopKind::Ocp { interval_s, .. } | LoopKind::Ca { interval_s, .. } => interval_s,
            LoopKind::Eis { .. } => 0.0,
            LoopKind::Pulse(p) => p.period_s(),
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
            LoopKind::Pulse(p) => p.n_points(),
        }
    }

    pub fn n_samples(&self) -> u64 {
        match *self {
            LoopKind::Cv { wave, .. } => self.samples_per_scan() * u64::from(wave.n_scans),
            _ => self.samples_per_scan(),
        }
    }
}

/// A value a loop assigns to one of its output variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quantity {
    /// The potential the loop applies (`da`).
    SetPotential,
    /// The measured working-electrode potential (`ab`).
    MeasuredPotential,
    /// The working-electrode current (`ba`).
    Current,
    /// SWV: current at the end of the forward half period (`ba`).
    CurrentForward,
    /// SWV: current at the end of the reverse half period (`ba`).
    CurrentReverse,
    /// EIS: the frequency of the point (`dc`).
    Frequency,
    /// EIS: real part of Z (`cc`).
    ZReal,
    /// EIS: imaginary part of Z (`cd`), negative for a capacitive cell.
    ZImag,
}

impl Quantity {
    pub fn var_type(self) -> VarType {
        match self {
            Quantity::SetPotential => *b"da",
            Quantity::MeasuredPotential => *b"ab",
            Quantity::Current | Quantity::CurrentForward | Quantity::CurrentReverse => *b"ba",
            Quantity::Frequency => *b"dc",
            Quantity::ZReal => *b"cc",
            Quantity::ZImag => *b"cd",
        }
    }
}

/// The error codes the emulator reports (`!XXXX`), see
/// `protocols/methodscript.md` for the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    UnknownCommand = 0x2001,
    ArgumentCount = 0x2002,
    InvalidArgument = 0x2003,
    Undeclared = 0x2004,
    Structure = 0x2005,
    InvalidValue = 0x4001,
    DivisionByZero = 0x4002,
    IndexOutOfRange = 0x4003,
}

/// Why a script was refused or stopped: code, position and an explanation
/// (which goes to the log, not the wire: the firmware sends the code and the
/// position only).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScriptError {
    pub code: ErrorCode,
    pub line: usize,
    pub col: usize,
    pub reason: String,
}

impl ScriptError {
    /// The line the firmware prints: `!XXXX: Line N, Col C`.
    pub fn wire(&self) -> String {
        format!(
            "!{:04X}: Line {}, Col {}",
            self.code as u16, self.line, self.col
        )
    }
}

/// A fault found in one line, before its position is known.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fault {
    pub code: ErrorCode,
    /// 0-based index of the offending word (0 = the command itself).
    pub word: usize,
    pub reason: String,
}

fn fault(code: ErrorCode, word: usize, reason: impl Into<String>) -> Fault {
    Fault {
        code,
        word,
        reason: reason.into(),
    }
}

/// Parses the lines after `e` (without the terminating empty line).
pub(crate) fn parse(lines: &[String]) -> Result<Script, ScriptError> {
    let mut p = Parser::default();
    let mut stack: Vec<Frame> = vec![Frame::root()];
    let mut on_finished: Option<Vec<Stmt>> = None;
    for (i, raw) in lines.iter().enumerate() {
        let line_no = i + 2;
        if stack.len() > MAX_NESTING {
            return Err(ScriptError {
                code: ErrorCode::Structure,
                line: line_no - 1,
                col: 1,
                reason: format!("blocks nested deeper than {MAX_NESTING}"),
            });
        }
        let code = raw.split('#').next().unwrap_or("");
        let words = split_words(code);
        let Some(&(col0, head)) = words.first() else {
            continue;
        };
        let at = |f: Fault| ScriptError {
            line: line_no,
            col: words.get(f.word).map_or(col0, |w| w.0) + 1,
            code: f.code,
            reason: f.reason,
        };
        let args: Vec<&str> = words[1..].iter().map(|w| w.1).collect();
        let stmt = |cmd| Stmt {
            line: line_no,
            col: col0 + 1,
            cmd,
        };
        match head {
            "on_finished:" => {
                if stack.len() > 1 || on_finished.is_some() {
                    return Err(at(fault(
                        ErrorCode::Structure,
                        0,
                        "on_finished: inside a block or twice",
                    )));
                }
                exact::<0>(&args).map_err(at)?;
                let body = std::mem::take(&mut stack[0].body);
                on_finished = Some(body);
                continue;
            }
            "loop" => {
                let cond = p.cond(&args).map_err(at)?;
                stack.push(Frame::open(line_no, col0, Opener::Loop(cond)));
                continue;
            }
            "if" => {
                let cond = p.cond(&args).map_err(at)?;
                stack.push(Frame::open(
                    line_no,
                    col0,
                    Opener::If {
                        done: Vec::new(),
                        cond: Some(cond),
                    },
                ));
                continue;
            }
            "elseif" | "else" => {
                let cond = if head == "elseif" {
                    Some(p.cond(&args).map_err(at)?)
                } else {
                    exact::<0>(&args).map_err(at)?;
                    None
                };
                let Some(top) = stack.last_mut() else {
                    return Err(at(fault(ErrorCode::Structure, 0, "no open block")));
                };
                let body = std::mem::take(&mut top.body);
                match &mut top.opener {
                    Opener::If { done, cond: open } => match open.take() {
                        Some(c) => {
                            done.push((c, body));
                            *open = cond;
                        }
                        None => {
                            return Err(at(fault(
                                ErrorCode::Structure,
                                0,
                                format!("{head} after else"),
                            )));
                        }
                    },
                    _ => {
                        return Err(at(fault(
                            ErrorCode::Structure,
                            0,
                            format!("{head} without if"),
                        )));
                    }
                }
                continue;
            }
            "endif" | "endloop" => {
                exact::<0>(&args).map_err(at)?;
                let closes = match stack.last().map(|f| &f.opener) {
                    Some(Opener::If { .. }) => "endif",
                    Some(Opener::Loop(_) | Opener::Meas(_)) => "endloop",
                    _ => "",
                };
                if closes != head || stack.len() < 2 {
                    return Err(at(fault(
                        ErrorCode::Structure,
                        0,
                        format!("{head} without a matching opener"),
                    )));
                }
                let Some(frame) = stack.pop() else {
                    return Err(at(fault(ErrorCode::Structure, 0, "no open block")));
                };
                let (line, col) = (frame.line, frame.col + 1);
                let cmd = frame.close();
                if let Some(parent) = stack.last_mut() {
                    parent.body.push(Stmt { line, col, cmd });
                }
                continue;
            }
            _ => {}
        }
        if let Some(tech) = Technique::from_name(head) {
            if on_finished.is_some() {
                return Err(at(fault(
                    ErrorCode::Structure,
                    0,
                    "measurement loops are not allowed in on_finished",
                )));
            }
            if stack.iter().any(|f| matches!(f.opener, Opener::Meas(_))) {
                return Err(at(fault(
                    ErrorCode::Structure,
                    0,
                    "measurement loops do not nest",
                )));
            }
            let m = p.meas_header(tech, &args).map_err(at)?;
            stack.push(Frame::open(line_no, col0, Opener::Meas(m)));
            continue;
        }
        let cmd = p.simple(head, &args).map_err(at)?;
        if let Some(top) = stack.last_mut() {
            top.body.push(stmt(cmd));
        }
    }
    if stack.len() > 1 {
        let f = &stack[stack.len() - 1];
        return Err(ScriptError {
            code: ErrorCode::Structure,
            line: f.line,
            col: f.col + 1,
            reason: "block not closed (endloop/endif missing)".into(),
        });
    }
    let rest = stack.pop().map(|f| f.body).unwrap_or_default();
    Ok(match on_finished {
        Some(body) => Script {
            body,
            on_finished: rest,
        },
        None => Script {
            body: rest,
            on_finished: Vec::new(),
        },
    })
}

/// Words of a line with their 0-based columns; a `"..."` string is one word.
fn split_words(code: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if bytes[i] == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += 1;
            }
            i = (i + 1).min(bytes.len());
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
        }
        if let Some(w) = code.get(start..i) {
            out.push((start, w));
        }
    }
    out
}

enum Opener {
    Root,
    Loop(Cond),
    If {
        done: Vec<(Cond, Vec<Stmt>)>,
        /// The condition of the branch being collected; None in `else`.
        cond: Option<Cond>,
    },
    Meas(MeasLoop),
}

struct Frame {
    opener: Opener,
    line: usize,
    col: usize,
    body: Vec<Stmt>,
}

impl Frame {
    fn root() -> Frame {
        Frame::open(1, 0, Opener::Root)
    }

    fn open(line: usize, col: usize, opener: Opener) -> Frame {
        Frame {
            opener,
            line,
            col,
            body: Vec::new(),
        }
    }

    fn close(self) -> Cmd {
        match self.opener {
            Opener::Root => Cmd::Nop,
            Opener::Loop(cond) => Cmd::Loop {
                cond,
                body: self.body,
            },
            Opener::If { mut done, cond } => {
                let otherwise = match cond {
                    Some(c) => {
                        done.push((c, self.body));
                        Vec::new()
                    }
                    None => self.body,
                };
                Cmd::If {
                    branches: done,
                    otherwise,
                }
            }
            Opener::Meas(mut m) => {
                m.body = self.body;
                Cmd::Meas(m)
            }
        }
    }
}

#[derive(Default)]
struct Parser {
    vars: HashSet<String>,
    arrays: HashSet<String>,
}

impl Parser {
    fn declared(&self, name: &str, word: usize) -> Result<String, Fault> {
        if self.vars.contains(name) {
            Ok(name.to_string())
        } else {
            Err(fault(
                ErrorCode::Undeclared,
                word,
                format!("variable '{name}' not declared"),
            ))
        }
    }

    fn array(&self, name: &str, word: usize) -> Result<String, Fault> {
        if self.arrays.contains(name) {
            Ok(name.to_string())
        } else {
            Err(fault(
                ErrorCode::Undeclared,
                word,
                format!("array '{name}' not declared"),
            ))
        }
    }

    /// A literal, or a declared variable. `word` is the 1-based argument index.
    fn operand(&self, tok: &str, word: usize) -> Result<Operand, Fault> {
        if starts_like_number(tok) {
            number(tok)
                .map(Operand::Lit)
                .map_err(|r| fault(ErrorCode::InvalidArgument, word, r))
        } else if is_name(tok) {
            self.declared(tok, word).map(Operand::Var)
        } else {
            Err(fault(
                ErrorCode::InvalidArgument,
                word,
                format!("invalid argument '{tok}'"),
            ))
        }
    }

    fn cond(&self, args: &[&str]) -> Result<Cond, Fault> {
        let [l, op, r] = exact(args)?;
        let op = match op {
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            ">=" => CmpOp::Ge,
            "==" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            other => {
                return Err(fault(
                    ErrorCode::InvalidArgument,
                    2,
                    format!("unknown operator '{other}'"),
                ));
            }
        };
        Ok(Cond {
            lhs: self.operand(l, 1)?,
            op,
            rhs: self.operand(r, 3)?,
        })
    }

    fn meas_header(&self, tech: Technique, args: &[&str]) -> Result<MeasLoop, Fault> {
        let (_, quantities, n_numeric) = tech.signature();
        let (args, nscans) = match (tech, args) {
            (Technique::Cv, [fixed @ .., last]) if last.starts_with("nscans(") => {
                let inner = last
                    .strip_prefix("nscans(")
                    .and_then(|s| s.strip_suffix(')'))
                    .ok_or_else(|| {
                        fault(
                            ErrorCode::InvalidArgument,
                            args.len(),
                            format!("malformed '{last}'"),
                        )
                    })?;
                (fixed, Some(self.operand(inner, args.len())?))
            }
            _ => (args, None),
        };
        let expected = quantities.len() + n_numeric;
        if args.len() != expected {
            return Err(fault(
                ErrorCode::ArgumentCount,
                0,
                format!("expected {expected} argument(s), got {}", args.len()),
            ));
        }
        let mut outputs = Vec::new();
        for (i, (name, q)) in args.iter().zip(quantities).enumerate() {
            outputs.push((self.declared(name, i + 1)?, *q));
        }
        let mut operands = Vec::new();
        for (i, tok) in args.iter().enumerate().skip(quantities.len()) {
            operands.push(self.operand(tok, i + 1)?);
        }
        Ok(MeasLoop {
            tech,
            outputs,
            args: operands,
            nscans,
            body: Vec::new(),
        })
    }

    fn simple(&mut self, head: &str, args: &[&str]) -> Result<Cmd, Fault> {
        Ok(match head {
            "var" => {
                let [name] = exact(args)?;
                if !is_name(name) {
                    return Err(fault(
                        ErrorCode::InvalidArgument,
                        1,
                        format!("invalid variable name '{name}'"),
                    ));
                }
                self.vars.insert(name.to_string());
                Cmd::Nop
            }
            "array" => {
                let [name, size] = exact(args)?;
                if !is_name(name) {
                    return Err(fault(
                        ErrorCode::InvalidArgument,
                        1,
                        format!("invalid array name '{name}'"),
                    ));
                }
                let size = self.operand(size, 2)?;
                self.arrays.insert(name.to_string());
                Cmd::Array {
                    name: name.to_string(),
                    size,
                }
            }
            "array_set" => {
                let [name, index, value] = exact(args)?;
                Cmd::ArraySet {
                    name: self.array(name, 1)?,
                    index: self.operand(index, 2)?,
                    value: self.operand(value, 3)?,
                }
            }
            "array_get" => {
                let [name, index, dst] = exact(args)?;
                Cmd::ArrayGet {
                    name: self.array(name, 1)?,
                    index: self.operand(index, 2)?,
                    dst: self.declared(dst, 3)?,
                }
            }
            "store_var" => {
                let [var, value, vtype] = exact(args)?;
                let vtype = var_type(vtype)
                    .ok_or_else(|| fault(ErrorCode::InvalidArgument, 3, "invalid variable type"))?;
                Cmd::StoreVar {
                    var: self.declared(var, 1)?,
                    value: self.operand(value, 2)?,
                    vtype,
                }
            }
            "add_var" | "sub_var" | "mul_var" | "div_var" => {
                let [var, operand] = exact(args)?;
                let op = match head {
                    "add_var" => ArithOp::Add,
                    "sub_var" => ArithOp::Sub,
                    "mul_var" => ArithOp::Mul,
                    _ => ArithOp::Div,
                };
                Cmd::Arith {
                    op,
                    var: self.declared(var, 1)?,
                    operand: self.operand(operand, 2)?,
                }
            }
            "copy_var" => {
                let [src, dst] = exact(args)?;
                Cmd::CopyVar {
                    src: self.declared(src, 1)?,
                    dst: self.declared(dst, 2)?,
                }
            }
            "set_pgstat_chan"
            | "set_pgstat_mode"
            | "set_max_bandwidth"
            | "set_acquisition_frac"
            | "set_acquisition_frac_autoadjust"
            | "set_poly_we_mode" => {
                let [v] = exact(args)?;
                self.operand(v, 1)?;
                Cmd::Nop
            }
            "set_range_minmax" => {
                let [kind, lo, hi] = exact(args)?;
                var_type(kind)
                    .ok_or_else(|| fault(ErrorCode::InvalidArgument, 1, "invalid variable type"))?;
                self.operand(lo, 2)?;
                self.operand(hi, 3)?;
                Cmd::Nop
            }
            "set_range" => {
                let [kind, v] = exact(args)?;
                var_type(kind)
                    .ok_or_else(|| fault(ErrorCode::InvalidArgument, 1, "invalid variable type"))?;
                let range = self.operand(v, 2)?;
                if kind == "ba" {
                    Cmd::SetRange(range)
                } else {
                    Cmd::Nop
                }
            }
            "set_autoranging" => {
                let [kind, lo, hi] = exact(args)?;
                var_type(kind)
                    .ok_or_else(|| fault(ErrorCode::InvalidArgument, 1, "invalid variable type"))?;
                let (min, max) = (self.operand(lo, 2)?, self.operand(hi, 3)?);
                if let (Operand::Lit(a), Operand::Lit(b)) = (&min, &max)
                    && (a > b || *a <= 0.0)
                {
                    return Err(fault(
                        ErrorCode::InvalidArgument,
                        2,
                        format!("autoranging minimum {lo} not in (0, {hi}]"),
                    ));
                }
                if kind == "ba" {
                    Cmd::SetAutoranging { min, max }
                } else {
                    Cmd::Nop
                }
            }
            "set_e" => {
                let [v] = exact(args)?;
                Cmd::SetE(self.operand(v, 1)?)
            }
            "set_gpio_cfg" => {
                let [mask, mode] = exact(args)?;
                Cmd::SetGpioCfg {
                    mask: self.operand(mask, 1)?,
                    mode: self.operand(mode, 2)?,
                }
            }
            "set_gpio" => {
                let [v] = exact(args)?;
                Cmd::SetGpio(self.operand(v, 1)?)
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
                let t = self.operand(v, 1)?;
                if let Operand::Lit(t_s) = t
                    && t_s < 0.0
                {
                    return Err(fault(ErrorCode::InvalidArgument, 1, "negative wait"));
                }
                Cmd::Wait(t)
            }
            "send_string" => {
                let [s] = exact(args)?;
                let text = s
                    .strip_prefix('"')
                    .and_then(|s| s.strip_suffix('"'))
                    .ok_or_else(|| fault(ErrorCode::InvalidArgument, 1, "expected \"text\""))?;
                Cmd::SendString(text.to_string())
            }
            "breakloop" => {
                exact::<0>(args)?;
                Cmd::BreakLoop
            }
            "timer_start" => {
                exact::<0>(args)?;
                Cmd::TimerStart
            }
            "timer_get" => {
                let [var] = exact(args)?;
                Cmd::TimerGet(self.declared(var, 1)?)
            }
            "pck_start" => {
                // An optional measurement-type argument is accepted.
                if args.len() > 1 {
                    return Err(fault(ErrorCode::ArgumentCount, 0, "pck_start takes <= 1"));
                }
                Cmd::PckStart
            }
            "pck_add" => {
                let [name] = exact(args)?;
                Cmd::PckAdd(self.declared(name, 1)?)
            }
            "pck_end" => {
                exact::<0>(args)?;
                Cmd::PckEnd
            }
            other => {
                return Err(fault(
                    ErrorCode::UnknownCommand,
                    0,
                    format!("unknown command '{other}'"),
                ));
            }
        })
    }
}

/// Resolves a meas loop's arguments into a checked [`LoopKind`]; `Err`
/// names the offending argument (1-based, counting the output variables).
pub(crate) fn loop_kind(
    m: &MeasLoop,
    values: &[f64],
    nscans: Option<f64>,
) -> Result<LoopKind, (usize, String)> {
    let first = m.outputs.len() + 1;
    let arg = |i: usize| {
        values
            .get(i)
            .copied()
            .ok_or((first + i, "missing".to_string()))
    };
    let positive = |i: usize| {
        let v = arg(i)?;
        if v > 0.0 && v.is_finite() {
            Ok(v)
        } else {
            Err((first + i, format!("{v} must be > 0")))
        }
    };
    let non_negative = |i: usize| {
        let v = arg(i)?;
        if v >= 0.0 && v.is_finite() {
            Ok(v)
        } else {
            Err((first + i, format!("{v} must be >= 0")))
        }
    };
    let spans = |from: f64, to: f64, step: f64, i: usize| {
        if ((to - from).abs() / step).round() < 1.0 {
            Err((i, "the scan spans less than one potential step".to_string()))
        } else {
            Ok(())
        }
    };
    Ok(match m.tech {
        Technique::Cv => {
            let n_scans = match nscans {
                Some(n) if n >= 1.0 && n.fract() == 0.0 && n <= f64::from(u32::MAX) => n as u32,
                Some(n) => {
                    return Err((first + 5, format!("nscans({n}) must be a positive integer")));
                }
                None => 1,
            };
            let wave = CvWave {
                E_begin_V: arg(0)?,
                E_vertex1_V: arg(1)?,
                E_vertex2_V: arg(2)?,
                scan_rate_V_per_s: positive(4)?,
                n_scans,
            };
            let step_V = positive(3)?;
            if (wave.span_V() / step_V).round() < 1.0 {
                return Err((
                    first + 3,
                    "the scan spans less than one potential step".into(),
                ));
            }
            LoopKind::Cv {
                wave,
                step_V,
                scan_markers: nscans.is_some(),
            }
        }
        Technique::Lsv => {
            let wave = LinearWave {
                E_begin_V: arg(0)?,
                E_end_V: arg(1)?,
                scan_rate_V_per_s: positive(3)?,
            };
            let step_V = positive(2)?;
            spans(wave.E_begin_V, wave.E_end_V, step_V, first + 2)?;
            LoopKind::Lsv { wave, step_V }
        }
        Technique::Ca => LoopKind::Ca {
            E_V: arg(0)?,
            interval_s: positive(1)?,
            run_s: non_negative(2)?,
        },
        Technique::Ocp => LoopKind::Ocp {
            interval_s: positive(0)?,
            run_s: non_negative(1)?,
        },
        Technique::Eis => {
            let n = arg(3)?;
            if !(n >= 1.0 && n.fract() == 0.0 && n <= f64::from(u32::MAX)) {
                return Err((
                    first + 3,
                    format!("n_points {n} must be a positive integer"),
                ));
            }
            LoopKind::Eis {
                E_ac_V_rms: positive(0)?,
                f_start_Hz: positive(1)?,
                f_end_Hz: positive(2)?,
                n_points: n as u32,
                E_dc_V: arg(4)?,
            }
        }
        Technique::Swv => {
            let (b, e, step) = (arg(0)?, arg(1)?, positive(2)?);
            spans(b, e, step, first + 2)?;
            LoopKind::Pulse(Pulse {
                shape: PulseShape::Swv {
                    amplitude_V: non_negative(3)?,
                    frequency_Hz: positive(4)?,
                },
                E_begin_V: b,
                E_end_V: e,
                step_V: step,
            })
        }
        Technique::Dpv => {
            let (b, e, step) = (arg(0)?, arg(1)?, positive(2)?);
            spans(b, e, step, first + 2)?;
            let t_pulse_s = positive(4)?;
            let scan_rate_V_per_s = positive(5)?;
            if t_pulse_s >= step / scan_rate_V_per_s {
                return Err((
                    first + 4,
                    "pulse time not shorter than the step time".into(),
                ));
            }
            LoopKind::Pulse(Pulse {
                shape: PulseShape::Dpv {
                    pulse_V: arg(3)?,
                    t_pulse_s,
                    scan_rate_V_per_s,
                },
                E_begin_V: b,
                E_end_V: e,
                step_V: step,
            })
        }
        Technique::Npv => {
            let (b, e, step) = (arg(0)?, arg(1)?, positive(2)?);
            spans(b, e, step, first + 2)?;
            let t_pulse_s = positive(3)?;
            let scan_rate_V_per_s = positive(4)?;
            if t_pulse_s >= step / scan_rate_V_per_s {
                return Err((
                    first + 3,
                    "pulse time not shorter than the step time".into(),
                ));
            }
            LoopKind::Pulse(Pulse {
                shape: PulseShape::Npv {
                    t_pulse_s,
                    scan_rate_V_per_s,
                },
                E_begin_V: b,
                E_end_V: e,
                step_V: step,
            })
        }
    })
}

fn exact<'a, const N: usize>(args: &[&'a str]) -> Result<[&'a str; N], Fault> {
    <[&str; N]>::try_from(args).map_err(|_| {
        fault(
            ErrorCode::ArgumentCount,
            0,
            format!("expected {N} argument(s), got {}", args.len()),
        )
    })
}

fn is_name(tok: &str) -> bool {
    tok.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && tok.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn starts_like_number(tok: &str) -> bool {
    let body = tok.strip_prefix('-').unwrap_or(tok);
    body.chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '.')
}

/// A two-lowercase-letter variable type (`da`, `ba`, `ja`, ...).
fn var_type(tok: &str) -> Option<VarType> {
    match tok.as_bytes() {
        [a, b] if a.is_ascii_lowercase() && b.is_ascii_lowercase() => Some([*a, *b]),
        _ => None,
    }
}

/// A MethodSCRIPT literal: `500m`, `-100u`, `1k`, `2i`, `0x01`, `0b101`, `0.5`.
pub(crate) fn number(tok: &str) -> Result<f64, String> {
    let bad = || format!("invalid number '{tok}'");
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
        let scale = match last {
            'a' => 1e-18,
            'f' => 1e-15,
            'p' => 1e-12,
            'n' => 1e-9,
            'u' => 1e-6,
            'm' => 1e-3,
            'i' => 1.0,
            'k' => 1e3,
            'M' => 1e6,
            'G' => 1e9,
            'T' => 1e12,
            'P' => 1e15,
            'E' => 1e18,
            _ => 0.0,
        };
        let (digits, scale) = if scale == 0.0 {
            (body, 1.0)
        } else {
            (&body[..body.len() - 1], scale)
        };
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(bad());
        }
        digits.parse::<f64>().map_err(|_| bad())? * scale
    };
    Ok(if neg { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    fn meas(s: &Script) -> Vec<&MeasLoop> {
        s.body
            .iter()
            .filter_map(|st| match &st.cmd {
                Cmd::Meas(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    fn lits(m: &MeasLoop) -> Vec<f64> {
        m.args
            .iter()
            .map(|a| match a {
                Operand::Lit(v) => *v,
                Operand::Var(_) => f64::NAN,
            })
            .collect()
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
            ("10", 10.0),
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
        assert_eq!(s.on_finished.len(), 1);
        assert_eq!(s.on_finished[0].cmd, Cmd::CellOff);
        let m = meas(&s);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].body.len(), 4);
        let k = loop_kind(m[0], &lits(m[0]), Some(3.0)).unwrap();
        assert_eq!(k.samples_per_scan(), 1000);
        assert_eq!(k.n_samples(), 3000);
        assert!((k.interval_s() - 0.01).abs() < 1e-15);
        assert!(
            s.body
                .iter()
                .any(|st| st.cmd == Cmd::SetRange(Operand::Lit(1e-2)))
        );
    }

    #[test]
    fn pulse_loops_count_their_points() {
        let s = parse(&lines(
            "var p\nvar c\nvar f\nvar r\n\
             meas_loop_swv p c f r -300m 300m 5m 50m 5\nendloop\n\
             meas_loop_dpv p c -500m 500m 10m 20m 5m 100m\nendloop",
        ))
        .unwrap();
        let m = meas(&s);
        let swv = loop_kind(m[0], &lits(m[0]), None).unwrap();
        assert_eq!(swv.n_samples(), 121);
        assert!((swv.interval_s() - 0.2).abs() < 1e-15);
        let dpv = loop_kind(m[1], &lits(m[1]), None).unwrap();
        assert_eq!(dpv.n_samples(), 101);
        assert!((dpv.interval_s() - 0.1).abs() < 1e-15);
    }

    #[test]
    fn blocks_nest_and_variables_are_operands() {
        let s = parse(&lines(
            "var i\nvar p\nvar c\narray a 4i\nstore_var i 0i ja\nloop i < 4i\n\
             \x20 if i == 2i\n    breakloop\n  elseif i > 2i\n    add_var i 1i\n  else\n\
             \x20   array_set a i i\n  endif\n  add_var i 1i\nendloop\n\
             meas_loop_ca p c i 100m 1\nendloop",
        ))
        .unwrap();
        let Some(Cmd::Loop { body, .. }) = s
            .body
            .iter()
            .map(|st| &st.cmd)
            .find(|c| matches!(c, Cmd::Loop { .. }))
        else {
            panic!("{:?}", s.body);
        };
        let Cmd::If {
            branches,
            otherwise,
        } = &body[0].cmd
        else {
            panic!("{body:?}");
        };
        assert_eq!(branches.len(), 2);
        assert_eq!(otherwise.len(), 1);
        assert_eq!(meas(&s)[0].args[0], Operand::Var("i".into()));
    }

    #[test]
    fn bad_scripts_name_code_line_and_column() {
        let e = parse(&lines("var p\nfoo 1")).unwrap_err();
        assert_eq!((e.code, e.line, e.col), (ErrorCode::UnknownCommand, 3, 1));
        assert_eq!(e.wire(), "!2001: Line 3, Col 1");
        let e = parse(&lines("meas_loop_ocp p 10m 2\nendloop")).unwrap_err();
        assert_eq!((e.code, e.line, e.col), (ErrorCode::Undeclared, 2, 15));
        let e = parse(&lines("var p\nmeas_loop_ocp p 10m 2\npck_start\npck_add p")).unwrap_err();
        assert_eq!((e.code, e.line), (ErrorCode::Structure, 3));
        let e = parse(&lines("set_e")).unwrap_err();
        assert_eq!(e.code, ErrorCode::ArgumentCount);
        let e = parse(&lines("  set_e 1x")).unwrap_err();
        assert_eq!((e.code, e.line, e.col), (ErrorCode::InvalidArgument, 2, 9));
        let e = parse(&lines("endif")).unwrap_err();
        assert_eq!(e.code, ErrorCode::Structure);
    }
}
