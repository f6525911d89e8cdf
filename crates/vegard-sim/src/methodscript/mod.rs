//! The MethodSCRIPT potentiostat emulator (EmStat-like) on a pseudo-terminal.
//!
//! Owns: the pty master side, the line protocol (host commands `t`, `i`, `v`,
//! `Z`; scripts from `e` to the empty line), script execution against the
//! shared world (cell on/off, potential program, trigger GPIO), sample timing
//! on the potentiostat's own clock, current noise and the injected faults.
//!
//! Two threads: a reader that splits the byte stream into host commands and
//! whole scripts (and turns a `Z` that arrives while a script runs into an
//! abort flag at once), and an executor that answers commands and runs
//! scripts one after another, emitting each sample only after true time has
//! passed its instant.

mod package;
mod script;

use crate::SimError;
use crate::bench::Shared;
use crate::clock::{DeviceClock, Interrupted};
use crate::journal::{Device, Direction, ImpedanceTruth, SampleTruth, lock};
use crate::model::{C64, SmallSignal};
use crate::world::{Edge, Program, Wave};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};
use script::{
    ArithOp, Cmd, ErrorCode, LoopKind, MeasLoop, Operand, Pulse, PulseShape, Quantity, Script,
    ScriptError, Stmt, VarType,
};
use serialport::{SerialPort, TTYPort};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use vegard_recipe::{SimFaults, SimParams};

/// `TTYPort::pair()` is not thread-safe (it may use `ptsname`); benches
/// started in parallel (tests) create their pairs one at a time.
static PTY_PAIR_LOCK: Mutex<()> = Mutex::new(());

/// The GPIO bit wired to the digitizer's external trigger input (pin 0).
const TRIGGER_PIN_MASK: u32 = 0x01;
/// Poll period of the reader and the executor's queue, wall time: bounds
/// how long a shutdown waits for them.
const POLL: Duration = Duration::from_millis(20);
const STREAM_JITTER: u64 = 0x5053_5441_5400_0001;
const STREAM_NOISE: u64 = 0x5053_5441_5400_0002;
const STREAM_EIS: u64 = 0x5053_5441_5400_0003;
/// Current range of a script that selects none, A: the widest (EmStat4 LR),
/// so nothing clips until a script narrows it.
const DEFAULT_RANGE_A: f64 = 10e-3;
/// The lowest current range (EmStat4 LR), A.
const MIN_RANGE_A: f64 = 1e-9;
/// Package status bit: the current is beyond the range's full scale.
const STATUS_OVERLOAD: u8 = 0x2;
/// Largest `array` the emulator allocates.
const MAX_ARRAY_LEN: usize = 65_536;
/// Reply to `t`: the firmware identifies as an EmStat4 LR (device id
/// `es4_lr`, which PalmSens' libraries map to "EmStat4 LR"), firmware 1.4,
/// build tag naming the bench. Line 2 ends in `*`.
const FIRMWARE_LINE_1: &str = "tes4_lr1.4";
const FIRMWARE_LINE_2: &str = "R1.4.0#vegard virtual bench*";
/// Reply to `v`: MethodSCRIPT language version 1.4.
const MSCRIPT_VERSION_LINE: &str = "v0104";
/// Error code of an unknown idle-mode command.
const UNKNOWN_HOST_COMMAND: u16 = 0x0003;

/// The potentiostat as the bench keeps it: the pty path the driver opens,
/// the slave handle that keeps the pty alive, and the two threads.
pub(crate) struct Potentiostat {
    pub path: String,
    /// Held open so the master never sees a hang-up while no driver has the
    /// port open (reads on a pty master fail with EIO once every slave fd is
    /// closed). It is not exclusive, so it does not stop the driver opening
    /// the path, exclusively or not.
    _slave: TTYPort,
    pub threads: Vec<JoinHandle<()>>,
}

/// What the reader hands to the executor.
enum Message {
    Host(String),
    Script(Vec<String>),
}

/// Coordination between reader and executor for `Z`.
#[derive(Default)]
struct Gate {
    /// Scripts handed to the executor and not finished yet.
    pending_scripts: Mutex<usize>,
    abort: AtomicBool,
}

pub(crate) fn start(shared: Arc<Shared>, params: &SimParams) -> Result<Potentiostat, SimError> {
    let (mut master, slave) = {
        let _guard = lock(&PTY_PAIR_LOCK);
        TTYPort::pair()?
    };
    let path = slave.name().ok_or_else(|| SimError::Io {
        what: "pseudo-terminal",
        source: std::io::Error::other("the slave side has no path"),
    })?;
    master.set_timeout(POLL)?;
    let mut writer = master.try_clone_native()?;
    writer.set_timeout(POLL)?;

    let (tx, rx) = mpsc::channel();
    let gate = Arc::new(Gate::default());
    let clock = DeviceClock::new(
        "clocks.potentiostat",
        &params.clocks.potentiostat,
        params.seed ^ STREAM_JITTER,
    )?;
    let normal = |rms: f64| (rms > 0.0).then(|| Normal::new(0.0, rms).ok()).flatten();
    let executor = Executor {
        shared: shared.clone(),
        gate: gate.clone(),
        writer,
        clock,
        rng: StdRng::seed_from_u64(params.seed ^ STREAM_NOISE),
        current_noise: normal(params.noise.current_A_rms),
        potential_noise: normal(params.noise.potential_V_rms),
        eis_rng: StdRng::seed_from_u64(params.seed ^ STREAM_EIS),
        // Each of Re and Im gets half the variance: E|dZ/Z|^2 = noise_rel^2.
        eis_noise: normal(params.eis.noise_rel / std::f64::consts::SQRT_2),
        params: params.clone(),
        faults: params.faults.clone(),
        set_E_V: 0.0,
        range_A: DEFAULT_RANGE_A,
        autorange: None,
        gpio_out_mask: 0,
    };
    let reader_shared = shared;
    let reader = std::thread::Builder::new()
        .name("vegard-sim-pstat-rx".into())
        .spawn(move || read_loop(&mut master, &tx, &gate, &reader_shared))
        .map_err(|source| SimError::Io {
            what: "potentiostat thread",
            source,
        })?;
    let exec = std::thread::Builder::new()
        .name("vegard-sim-pstat".into())
        .spawn(move || executor.run(&rx))
        .map_err(|source| SimError::Io {
            what: "potentiostat thread",
            source,
        })?;
    Ok(Potentiostat {
        path,
        _slave: slave,
        threads: vec![reader, exec],
    })
}

/// Splits the incoming bytes into lines, logs them, assembles scripts and
/// raises the abort flag for a `Z` while a script is pending.
fn read_loop(master: &mut TTYPort, tx: &Sender<Message>, gate: &Gate, shared: &Shared) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut script: Option<Vec<String>> = None;
    while !shared.shutdown.load(Ordering::Relaxed) {
        match master.read(&mut chunk) {
            Ok(0) => std::thread::sleep(POLL),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => continue,
            Err(e) => {
                tracing::debug!("potentiostat pty read: {e}");
                std::thread::sleep(POLL);
                continue;
            }
        }
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&raw[..raw.len() - 1])
                .trim_end_matches('\r')
                .to_string();
            shared.journal.line(
                Device::Potentiostat,
                Direction::Received,
                line.clone(),
                shared.clock.now_s(),
            );
            let message = if line.trim() == "Z" {
                if *lock(&gate.pending_scripts) > 0 {
                    gate.abort.store(true, Ordering::SeqCst);
                    continue;
                }
                script = None;
                Message::Host(line)
            } else if let Some(lines) = script.as_mut() {
                if !line.is_empty() {
                    lines.push(line);
                    continue;
                }
                *lock(&gate.pending_scripts) += 1;
                Message::Script(script.take().unwrap_or_default())
            } else if line.trim() == "e" {
                script = Some(Vec::new());
                continue;
            } else {
                Message::Host(line)
            };
            if tx.send(message).is_err() {
                return;
            }
        }
    }
}

/// Why a running script stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Abort,
    /// A device error, already reported on the wire.
    Fault,
    Shutdown,
}

impl From<Interrupted> for Stop {
    fn from(i: Interrupted) -> Self {
        match i {
            Interrupted::Abort => Stop::Abort,
            Interrupted::Shutdown => Stop::Shutdown,
        }
    }
}

/// How a block of statements ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Normal,
    /// `breakloop`: leave the innermost (measurement) loop.
    Break,
}

/// Injected faults of one loop, as true instants.
struct LoopFaults {
    error_at: Option<f64>,
    silent_at: Option<f64>,
    spike_from: Option<f64>,
}

impl LoopFaults {
    /// The injected current at sample instant `t_k`, A.
    fn spike_A(&self, t_k: f64, faults: &SimFaults) -> f64 {
        match self.spike_from {
            Some(t) if t_k >= t => faults.current_spike_A,
            _ => 0.0,
        }
    }
}

/// A script variable: its value, its type (what a package reports it as)
/// and, for measured currents and impedances, the status and range
/// metadata the firmware attaches.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Value {
    v: f64,
    vtype: VarType,
    meta: Option<(u8, u8)>,
}

impl Value {
    fn new(v: f64, vtype: VarType) -> Value {
        Value {
            v,
            vtype,
            meta: None,
        }
    }

    /// `<type><7 hex><prefix>[,1<status>,2<range>]`.
    fn field(&self) -> String {
        let t = String::from_utf8_lossy(&self.vtype).into_owned();
        match self.meta {
            Some((status, range)) => format!(
                "{t}{},1{status:X},2{range:02X}",
                package::encode_value(self.v)
            ),
            None => format!("{t}{}", package::encode_value(self.v)),
        }
    }
}

/// Per-script state.
#[derive(Default)]
struct Run {
    /// Rising trigger edge not yet claimed by a loop.
    pending_edge: Option<Edge>,
    in_loop: bool,
    /// True instant the last time-domain loop ended on the device's
    /// timeline. Back-to-back loops (no edge, no wait between) continue from
    /// it, as the firmware's loop timing does; starting from "now" would
    /// add the emulator's own processing latency, scaled by the bench's
    /// time acceleration, to every loop.
    last_loop_end_true_s: Option<f64>,
    vars: HashMap<String, Value>,
    arrays: HashMap<String, Vec<Value>>,
    /// Fields of the package between `pck_start` and `pck_end`.
    package: Option<Vec<String>>,
    /// Device time of `timer_start`, s (0 = the script's start).
    timer_zero_dev_s: f64,
    /// True instant of the sample whose loop body is running: a GPIO write
    /// there happens at that instant (the firmware runs the body right
    /// after the measurement), and is no loop's start edge.
    sample_true_s: Option<f64>,
}

struct Executor {
    shared: Arc<Shared>,
    gate: Arc<Gate>,
    writer: TTYPort,
    clock: DeviceClock,
    rng: StdRng,
    current_noise: Option<Normal<f64>>,
    potential_noise: Option<Normal<f64>>,
    /// Own stream, so EIS noise does not shift the current noise sequence.
    eis_rng: StdRng,
    /// Relative noise of each of Re and Im of a reported impedance.
    eis_noise: Option<Normal<f64>>,
    /// The cell's parameters: the EIS points are its small-signal model at
    /// the stage temperature.
    params: SimParams,
    faults: SimFaults,
    /// Potential `cell_on` applies (last `set_e`), V.
    set_E_V: f64,
    /// The current range in use (a decade), A: the last `set_range`, or
    /// where autoranging left it.
    range_A: f64,
    /// `set_autoranging ba`: the lowest and highest decade it may use, A.
    autorange: Option<(f64, f64)>,
    /// GPIO pins configured as outputs.
    gpio_out_mask: u32,
}

/// The position of the statement being executed, for runtime errors.
#[derive(Debug, Clone, Copy)]
struct At {
    line: usize,
    col: usize,
}

impl Executor {
    fn run(mut self, rx: &Receiver<Message>) {
        loop {
            match rx.recv_timeout(POLL) {
                Ok(Message::Host(line)) => self.host_command(&line),
                Ok(Message::Script(lines)) => self.script(&lines),
                Err(RecvTimeoutError::Timeout) => {
                    if self.shared.shutdown.load(Ordering::Relaxed) {
                        return;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn send(&mut self, line: &str) {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        let mut sent = 0;
        while sent < bytes.len() {
            match self.writer.write(&bytes[sent..]) {
                Ok(n) => sent += n,
                // Nobody reads the port: the pty buffer is full. Keep trying
                // (a real device would block too) but stay responsive to shutdown.
                Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                    if self.shared.shutdown.load(Ordering::Relaxed) {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!("potentiostat pty write: {e}");
                    return;
                }
            }
        }
        self.shared.journal.line(
            Device::Potentiostat,
            Direction::Sent,
            line.to_string(),
            self.shared.clock.now_s(),
        );
    }

    /// Idle-mode commands. Replies start with the command character, an
    /// error reply is that character and `!XXXX` (as `Z!0006`).
    fn host_command(&mut self, line: &str) {
        match line.trim() {
            "" => {}
            "t" => {
                self.send(FIRMWARE_LINE_1);
                self.send(FIRMWARE_LINE_2);
            }
            "i" => self.send("iVIRTUAL-EMSTAT-0001"),
            "v" => self.send(MSCRIPT_VERSION_LINE),
            "Z" => self.send("Z!0006"),
            other => {
                let first = other.chars().next().unwrap_or('?');
                self.send(&format!("{first}!{UNKNOWN_HOST_COMMAND:04X}"));
            }
        }
    }

    fn script(&mut self, lines: &[String]) {
        match script::parse(lines) {
            Ok(s) => self.run_script(&s),
            Err(e) => {
                tracing::debug!("potentiostat: script refused: {} ({})", e.wire(), e.reason);
                self.send(&e.wire());
            }
        }
        *lock(&self.gate.pending_scripts) -= 1;
        // A Z that arrived after the script's last abort check finds the
        // device idle.
        if self.gate.abort.swap(false, Ordering::SeqCst) {
            self.send("Z!0006");
        }
    }

    fn run_script(&mut self, s: &Script) {
        self.send("e");
        // Every script configures its own ranges (PalmSens' scripts and
        // vegard's always do); one script's autoranging does not leak into
        // the next one's fixed range.
        self.range_A = DEFAULT_RANGE_A;
        self.autorange = None;
        let mut run = Run::default();
        let outcome = self.exec(&s.body, &mut run, true);
        match outcome {
            Ok(_) => {}
            Err(Stop::Shutdown) => return,
            Err(Stop::Abort) => self.send("Z"),
            Err(Stop::Fault) => {}
        }
        if outcome.is_err() {
            // An interrupted ramp does not run on: the cell holds where it was.
            let mut world = lock(&self.shared.world);
            if let Program::Ramp { .. } = world.program() {
                let now = world.now_s();
                let E_V = world.applied_potential_V(now).unwrap_or(self.set_E_V);
                world.set_program_now(Program::Hold { E_V });
            }
        }
        run.package = None;
        if self.exec(&s.on_finished, &mut run, false) == Err(Stop::Shutdown) {
            return;
        }
        if outcome == Err(Stop::Abort) && run.in_loop {
            self.send("*");
        }
        self.send("");
    }

    fn wait_until(&self, t_true_s: f64, abortable: bool) -> Result<(), Stop> {
        let gate = &self.gate;
        self.shared
            .clock
            .sleep_until(t_true_s, &self.shared.shutdown, || {
                abortable && gate.abort.swap(false, Ordering::SeqCst)
            })
            .map_err(Stop::from)
    }

    /// Reports a runtime error the firmware way and stops the script.
    fn runtime_error(&mut self, code: ErrorCode, at: At, reason: &str) -> Stop {
        let e = ScriptError {
            code,
            line: at.line,
            col: at.col,
            reason: reason.to_string(),
        };
        tracing::debug!("potentiostat: runtime error {} ({reason})", e.wire());
        self.send(&e.wire());
        Stop::Fault
    }

    fn value(&self, run: &Run, op: &Operand) -> f64 {
        match op {
            Operand::Lit(v) => *v,
            // Declared (the parser checked) but never stored: 0, as the
            // firmware's zero-initialised variables.
            Operand::Var(name) => run.vars.get(name).map_or(0.0, |v| v.v),
        }
    }

    fn index(&mut self, run: &Run, name: &str, op: &Operand, at: At) -> Result<usize, Stop> {
        let i = self.value(run, op);
        let len = run.arrays.get(name).map_or(0, Vec::len);
        if i >= 0.0 && i.fract() == 0.0 && (i as usize) < len {
            Ok(i as usize)
        } else {
            Err(self.runtime_error(
                ErrorCode::IndexOutOfRange,
                at,
                &format!("index {i} outside array '{name}' of {len}"),
            ))
        }
    }

    fn exec(&mut self, stmts: &[Stmt], run: &mut Run, abortable: bool) -> Result<Flow, Stop> {
        for st in stmts {
            if abortable && self.gate.abort.swap(false, Ordering::SeqCst) {
                return Err(Stop::Abort);
            }
            if self.shared.shutdown.load(Ordering::Relaxed) {
                return Err(Stop::Shutdown);
            }
            let at = At {
                line: st.line,
                col: st.col,
            };
            match &st.cmd {
                Cmd::Nop => {}
                Cmd::StoreVar { var, value, vtype } => {
                    let v = self.value(run, value);
                    run.vars.insert(var.clone(), Value::new(v, *vtype));
                }
                Cmd::Arith { op, var, operand } => {
                    let rhs = self.value(run, operand);
                    let cur = run
                        .vars
                        .get(var)
                        .copied()
                        .unwrap_or(Value::new(0.0, *b"ja"));
                    let v = match op {
                        ArithOp::Add => cur.v + rhs,
                        ArithOp::Sub => cur.v - rhs,
                        ArithOp::Mul => cur.v * rhs,
                        ArithOp::Div => {
                            if rhs == 0.0 {
                                return Err(self.runtime_error(
                                    ErrorCode::DivisionByZero,
                                    at,
                                    "division by zero",
                                ));
                            }
                            cur.v / rhs
                        }
                    };
                    run.vars.insert(var.clone(), Value { v, ..cur });
                }
                Cmd::CopyVar { src, dst } => {
                    let v = run
                        .vars
                        .get(src)
                        .copied()
                        .unwrap_or(Value::new(0.0, *b"ja"));
                    run.vars.insert(dst.clone(), v);
                }
                Cmd::Array { name, size } => {
                    let n = self.value(run, size);
                    if !(n >= 1.0 && n.fract() == 0.0 && n <= MAX_ARRAY_LEN as f64) {
                        return Err(self.runtime_error(
                            ErrorCode::InvalidValue,
                            at,
                            &format!("array size {n}"),
                        ));
                    }
                    run.arrays
                        .insert(name.clone(), vec![Value::new(0.0, *b"ja"); n as usize]);
                }
                Cmd::ArraySet { name, index, value } => {
                    let i = self.index(run, name, index, at)?;
                    let v = match value {
                        Operand::Var(n) => {
                            run.vars.get(n).copied().unwrap_or(Value::new(0.0, *b"ja"))
                        }
                        Operand::Lit(v) => Value::new(*v, *b"ja"),
                    };
                    if let Some(slot) = run.arrays.get_mut(name).and_then(|a| a.get_mut(i)) {
                        *slot = v;
                    }
                }
                Cmd::ArrayGet { name, index, dst } => {
                    let i = self.index(run, name, index, at)?;
                    if let Some(v) = run.arrays.get(name).and_then(|a| a.get(i)).copied() {
                        run.vars.insert(dst.clone(), v);
                    }
                }
                Cmd::SetE(op) => {
                    let E_V = self.value(run, op);
                    self.set_E_V = E_V;
                    let mut world = lock(&self.shared.world);
                    if world.cell_is_on() {
                        world.set_program_now(Program::Hold { E_V });
                    }
                }
                Cmd::SetRange(op) => {
                    let r = self.value(run, op);
                    self.range_A = decade_range_A(r);
                }
                Cmd::SetAutoranging { min, max } => {
                    let (lo, hi) = (self.value(run, min), self.value(run, max));
                    if !(lo > 0.0 && lo <= hi) {
                        return Err(self.runtime_error(
                            ErrorCode::InvalidValue,
                            at,
                            &format!("autoranging {lo}..{hi}"),
                        ));
                    }
                    self.autorange = Some((decade_range_A(lo), decade_range_A(hi)));
                }
                Cmd::SetGpioCfg { mask, mode } => {
                    let mask = self.value(run, mask) as u32;
                    if self.value(run, mode) == 1.0 {
                        self.gpio_out_mask |= mask;
                    } else {
                        self.gpio_out_mask &= !mask;
                    }
                }
                Cmd::SetGpio(op) => {
                    let value = self.value(run, op) as u32;
                    if self.gpio_out_mask & TRIGGER_PIN_MASK != 0 {
                        let high = value & TRIGGER_PIN_MASK != 0;
                        let mut world = lock(&self.shared.world);
                        match run.sample_true_s {
                            // A repeated sync edge inside a loop body.
                            Some(t) => {
                                world.set_trigger_level_at(high, t);
                            }
                            None => {
                                if let Some(edge) = world.set_trigger_level_now(high) {
                                    run.pending_edge = Some(edge);
                                }
                            }
                        }
                    }
                }
                Cmd::CellOn => {
                    lock(&self.shared.world).set_program_now(Program::Hold { E_V: self.set_E_V });
                }
                Cmd::CellOff => {
                    lock(&self.shared.world).set_program_now(Program::OpenCircuit);
                }
                Cmd::Wait(op) => {
                    let t_s = self.value(run, op).max(0.0);
                    run.last_loop_end_true_s = None;
                    let now = self.shared.clock.now_s();
                    let until = now + self.clock.true_interval_s(t_s);
                    self.wait_until(until, abortable)?;
                }
                Cmd::SendString(text) => self.send(&format!("T{text}")),
                Cmd::TimerStart => {
                    run.timer_zero_dev_s = self.clock.device_time_s(self.shared.clock.now_s());
                }
                Cmd::TimerGet(var) => {
                    let now_dev_s = self.clock.device_time_s(self.shared.clock.now_s());
                    let t_s = (now_dev_s - run.timer_zero_dev_s).max(0.0);
                    run.vars.insert(var.clone(), Value::new(t_s, *b"eb"));
                }
                Cmd::PckStart => run.package = Some(Vec::new()),
                Cmd::PckAdd(name) => {
                    let v = run
                        .vars
                        .get(name)
                        .copied()
                        .unwrap_or(Value::new(0.0, *b"ja"));
                    match run.package.as_mut() {
                        Some(fields) => fields.push(v.field()),
                        None => {
                            return Err(self.runtime_error(
                                ErrorCode::InvalidValue,
                                at,
                                "pck_add without pck_start",
                            ));
                        }
                    }
                }
                Cmd::PckEnd => match run.package.take() {
                    Some(fields) if !fields.is_empty() => {
                        self.send(&format!("P{}", fields.join(";")));
                    }
                    Some(_) => {}
                    None => {
                        return Err(self.runtime_error(
                            ErrorCode::InvalidValue,
                            at,
                            "pck_end without pck_start",
                        ));
                    }
                },
                Cmd::BreakLoop => return Ok(Flow::Break),
                Cmd::If {
                    branches,
                    otherwise,
                } => {
                    let chosen = branches
                        .iter()
                        .find(|(c, _)| c.holds(self.value(run, &c.lhs), self.value(run, &c.rhs)))
                        .map_or(otherwise.as_slice(), |(_, body)| body.as_slice());
                    if self.exec(chosen, run, abortable)? == Flow::Break {
                        return Ok(Flow::Break);
                    }
                }
                Cmd::Loop { cond, body } => {
                    self.send("L");
                    while cond.holds(self.value(run, &cond.lhs), self.value(run, &cond.rhs)) {
                        // Also an empty or never-ending loop answers `Z` and
                        // lets the bench shut down.
                        if abortable && self.gate.abort.swap(false, Ordering::SeqCst) {
                            return Err(Stop::Abort);
                        }
                        if self.shared.shutdown.load(Ordering::Relaxed) {
                            return Err(Stop::Shutdown);
                        }
                        if self.exec(body, run, abortable)? == Flow::Break {
                            break;
                        }
                    }
                    self.send("+");
                }
                Cmd::Meas(m) => self.meas_loop(m, run, at)?,
            }
        }
        Ok(Flow::Normal)
    }

    fn meas_loop(&mut self, m: &MeasLoop, run: &mut Run, at: At) -> Result<(), Stop> {
        let values: Vec<f64> = m.args.iter().map(|a| self.value(run, a)).collect();
        let nscans = m.nscans.as_ref().map(|n| self.value(run, n));
        let kind = match script::loop_kind(m, &values, nscans) {
            Ok(k) => k,
            Err((arg, reason)) => {
                return Err(self.runtime_error(
                    ErrorCode::InvalidValue,
                    at,
                    &format!("argument {arg}: {reason}"),
                ));
            }
        };
        let (t0, segment) = {
            let mut world = lock(&self.shared.world);
            let continued = run.last_loop_end_true_s.take();
            let start = match run.pending_edge.take() {
                Some(edge) => (edge.t_true_s, edge.index),
                None => (
                    continued.unwrap_or_else(|| world.now_s()),
                    SampleTruth::NO_TRIGGER,
                ),
            };
            if world.cell_is_on() {
                match kind {
                    LoopKind::Cv { wave, .. } => {
                        world.set_program_now(Program::Ramp {
                            start_true_s: start.0,
                            rate: self.clock.rate(),
                            wave: Wave::Cv(wave),
                        });
                    }
                    LoopKind::Lsv { wave, .. } => {
                        world.set_program_now(Program::Ramp {
                            start_true_s: start.0,
                            rate: self.clock.rate(),
                            wave: Wave::Linear(wave),
                        });
                    }
                    LoopKind::Ca { E_V, .. } => {
                        world.set_program_now(Program::Hold { E_V });
                    }
                    // The small perturbation is not integrated in the time
                    // domain (see `eis_loop`): the cell holds E_dc.
                    LoopKind::Eis { E_dc_V, .. } => {
                        world.set_program_now(Program::Hold { E_V: E_dc_V });
                    }
                    LoopKind::Pulse(p) => {
                        world.set_program_now(Program::Hold { E_V: p.E_begin_V });
                    }
                    LoopKind::Ocp { .. } => {}
                }
            }
            start
        };
        self.send("M0000");
        run.in_loop = true;
        let faults = LoopFaults {
            error_at: self.faults.potentiostat_error_after_s.map(|s| t0 + s),
            silent_at: self.faults.potentiostat_silent_after_s.map(|s| t0 + s),
            spike_from: self.faults.current_spike_after_s.map(|s| t0 + s),
        };
        let end_V = match kind {
            LoopKind::Eis { .. } => {
                self.eis_loop(m, kind, run, t0, segment, &faults)?;
                None
            }
            LoopKind::Pulse(p) => {
                self.pulse_loop(m, p, run, t0, segment, &faults)?;
                Some(p.base_V(p.n_points().saturating_sub(1)))
            }
            _ => {
                self.time_loop(m, kind, run, t0, segment, &faults)?;
                match kind {
                    LoopKind::Cv { wave, .. } => Some(wave.E_begin_V),
                    LoopKind::Lsv { wave, .. } => Some(wave.E_end_V),
                    _ => None,
                }
            }
        };
        self.send("*");
        run.in_loop = false;
        if let Some(E_V) = end_V {
            let mut world = lock(&self.shared.world);
            if world.cell_is_on() {
                world.set_program_now(Program::Hold { E_V });
            }
        }
        Ok(())
    }

    /// Assigns one iteration's outputs and runs the loop body on them.
    fn iteration(
        &mut self,
        m: &MeasLoop,
        run: &mut Run,
        values: &[(Quantity, Value)],
    ) -> Result<Flow, Stop> {
        for (name, q) in &m.outputs {
            if let Some((_, v)) = values.iter().find(|(qq, _)| qq == q) {
                run.vars.insert(
                    name.clone(),
                    Value {
                        vtype: q.var_type(),
                        ..*v
                    },
                );
            }
        }
        self.exec(&m.body, run, true)
    }

    /// CV, LSV, CA and OCP: one sample every `interval_s` of device time.
    fn time_loop(
        &mut self,
        m: &MeasLoop,
        kind: LoopKind,
        run: &mut Run,
        t0: f64,
        segment: usize,
        faults: &LoopFaults,
    ) -> Result<(), Stop> {
        let interval_s = kind.interval_s();
        let per_scan = kind.samples_per_scan();
        let scan_markers = matches!(
            kind,
            LoopKind::Cv {
                scan_markers: true,
                ..
            }
        );
        let n = kind.n_samples();
        let mut k = 0;
        while k < n {
            if scan_markers && k % per_scan == 0 {
                self.send(&format!("C{:04X}", (k / per_scan).min(0xFFFF)));
            }
            let t_dev_s = (k + 1) as f64 * interval_s;
            let t_k = self.clock.event_true_s(t0, t_dev_s);
            self.wait_for_sample(t_k, faults)?;
            let state = lock(&self.shared.world).recorded_state_at(t_k);
            let E_set_V = match kind {
                LoopKind::Cv { wave, .. } => wave.potential_V(t_dev_s),
                LoopKind::Lsv { wave, .. } => wave.potential_V(t_dev_s),
                LoopKind::Ca { E_V, .. } => E_V,
                _ => state.E_app_V,
            };
            let noise_V = self
                .potential_noise
                .map_or(0.0, |d| d.sample(&mut self.rng));
            let noise_A = self.current_noise.map_or(0.0, |d| d.sample(&mut self.rng));
            let I_A = state.I_A + noise_A + faults.spike_A(t_k, &self.faults);
            let current = self.measure_currents(&[I_A])[0];
            let values = [
                (Quantity::SetPotential, Value::new(E_set_V, *b"da")),
                (
                    Quantity::MeasuredPotential,
                    Value::new(state.E_app_V + noise_V, *b"ab"),
                ),
                (Quantity::Current, current),
            ];
            self.shared.journal.sample(
                Device::Potentiostat,
                SampleTruth {
                    segment,
                    index: k,
                    t_true_s: t_k,
                },
            );
            run.sample_true_s = Some(t_k);
            let flow = self.iteration(m, run, &values);
            run.sample_true_s = None;
            let flow = flow?;
            k += 1;
            if scan_markers && k % per_scan == 0 {
                self.send("-");
            }
            if flow == Flow::Break {
                break;
            }
        }
        run.last_loop_end_true_s = Some(self.clock.event_true_s(t0, k as f64 * interval_s));
        Ok(())
    }

    /// SWV, DPV, NPV: the cell follows the pulse program as a sequence of
    /// holds switched on the device's timeline, and the currents are the
    /// electrode model's at the sampling instants (end of each pulse or
    /// half period), so peak shapes and their potentials come from the
    /// model's kinetics, not from a formula.
    fn pulse_loop(
        &mut self,
        m: &MeasLoop,
        p: Pulse,
        run: &mut Run,
        t0: f64,
        segment: usize,
        faults: &LoopFaults,
    ) -> Result<(), Stop> {
        let period_s = p.period_s();
        let dir = (p.E_end_V - p.E_begin_V).signum();
        let mut k = 0;
        let n = p.n_points();
        while k < n {
            let E_k = p.base_V(k);
            let t_start_dev = k as f64 * period_s;
            // (switch time within the period, potential) then the sampling
            // instants (within the period) of the first and second current.
            let (phases, sample_at): (Vec<(f64, f64)>, [f64; 2]) = match p.shape {
                PulseShape::Swv {
                    amplitude_V,
                    frequency_Hz: _,
                } => (
                    vec![
                        (0.0, E_k + dir * amplitude_V),
                        (period_s / 2.0, E_k - dir * amplitude_V),
                    ],
                    [period_s / 2.0, period_s],
                ),
                PulseShape::Dpv {
                    pulse_V, t_pulse_s, ..
                } => (
                    vec![(0.0, E_k), (period_s - t_pulse_s, E_k + dir * pulse_V)],
                    [period_s - t_pulse_s, period_s],
                ),
                PulseShape::Npv { t_pulse_s, .. } => (
                    vec![(0.0, p.E_begin_V), (period_s - t_pulse_s, E_k)],
                    [period_s - t_pulse_s, period_s],
                ),
            };
            let mut currents_A = [0.0; 2];
            for (i, (&(t_switch, E_V), &t_sample)) in phases.iter().zip(&sample_at).enumerate() {
                let t_sw = self.clock.event_true_s(t0, t_start_dev + t_switch);
                self.wait_until(t_sw, true)?;
                // The world switches "now", which a loaded machine makes a
                // little later than `t_sw`; the sample keeps its delay after
                // the switch (what the pulse current depends on), so it is
                // never taken before the potential it belongs to.
                let late_s = {
                    let mut world = lock(&self.shared.world);
                    if world.cell_is_on() {
                        (world.set_program_now(Program::Hold { E_V }) - t_sw).max(0.0)
                    } else {
                        0.0
                    }
                };
                let t_s = self.clock.event_true_s(t0, t_start_dev + t_sample) + late_s;
                self.wait_for_sample(t_s, faults)?;
                let state = lock(&self.shared.world).recorded_state_at(t_s);
                let noise_A = self.current_noise.map_or(0.0, |d| d.sample(&mut self.rng));
                currents_A[i] = state.I_A + noise_A + faults.spike_A(t_s, &self.faults);
            }
            let t_k = self.clock.event_true_s(t0, t_start_dev + period_s);
            let measured = self.measure_currents(&currents_A);
            let (first, second) = (measured[0], measured[1]);
            let (current, fwd, rev) = match p.shape {
                PulseShape::Swv { .. } => (
                    Value {
                        v: first.v - second.v,
                        ..first
                    },
                    first,
                    second,
                ),
                PulseShape::Dpv { .. } => (
                    Value {
                        v: second.v - first.v,
                        ..second
                    },
                    second,
                    first,
                ),
                PulseShape::Npv { .. } => (second, second, first),
            };
            let values = [
                (Quantity::SetPotential, Value::new(E_k, *b"da")),
                (Quantity::Current, current),
                (Quantity::CurrentForward, fwd),
                (Quantity::CurrentReverse, rev),
            ];
            self.shared.journal.sample(
                Device::Potentiostat,
                SampleTruth {
                    segment,
                    index: k,
                    t_true_s: t_k,
                },
            );
            let flow = self.iteration(m, run, &values)?;
            k += 1;
            if flow == Flow::Break {
                break;
            }
        }
        run.last_loop_end_true_s = Some(self.clock.event_true_s(t0, k as f64 * period_s));
        Ok(())
    }

    /// Waits for true time to pass the sample instant `t_k`, acting out an
    /// injected fault that falls due first: `!4004` and the script stops,
    /// or silence until a `Z`.
    fn wait_for_sample(&mut self, t_k: f64, faults: &LoopFaults) -> Result<(), Stop> {
        if let Some(t_fault) = faults.error_at.filter(|&t| t <= t_k) {
            self.wait_until(t_fault, true)?;
            self.send("!4004: measurement fault");
            return Err(Stop::Fault);
        }
        if let Some(t_silent) = faults.silent_at.filter(|&t| t <= t_k) {
            // Hung: say nothing until an abort (or shutdown) arrives.
            self.wait_until(t_silent, true)?;
            self.wait_until(1e12, true)?;
        }
        self.wait_until(t_k, true)
    }

    /// `meas_loop_eis`. Per point the device spends
    /// `eis_point_duration_s(f)` (one period settling, one period measured,
    /// 50 ms overhead) holding `E_dc`; the point's package is due at the
    /// end of that time. The reported `Z` is the analytic small-signal
    /// impedance ([`SmallSignal`]) of the same cell at the stage temperature
    /// of that instant and at `E_dc`, times `1 + n` with `n` complex
    /// gaussian noise of rms `sim.eis.noise_rel`.
    ///
    /// Why not integrate the perturbation in the time domain: the
    /// instrument reports Z from its own DFT over whole periods, which for a
    /// 5-10 mV perturbation is the small-signal impedance (the model agrees
    /// with its time-domain solver to 0.15 %, see `model::impedance`), and
    /// integrating kHz sines would cost ~100x the solver time of the rest of
    /// a run. The dc state of the film still evolves under `Hold { E_dc }`,
    /// so what follows the EIS starts from the right state.
    fn eis_loop(
        &mut self,
        m: &MeasLoop,
        kind: LoopKind,
        run: &mut Run,
        t0: f64,
        segment: usize,
        faults: &LoopFaults,
    ) -> Result<(), Stop> {
        let LoopKind::Eis {
            E_dc_V, E_ac_V_rms, ..
        } = kind
        else {
            return Ok(());
        };
        let mut t_dev_s = 0.0;
        for (k, f_Hz) in kind.eis_frequencies_Hz().into_iter().enumerate() {
            t_dev_s += vegard_recipe::eis_point_duration_s(f_Hz);
            let t_k = self.clock.event_true_s(t0, t_dev_s);
            self.wait_for_sample(t_k, faults)?;
            let T_K = lock(&self.shared.world).recorded_state_at(t_k).T_K;
            let mut p = self.params.clone();
            p.cell.T_K = T_K;
            let z = SmallSignal::new(&p, E_dc_V).impedance_ohm(f_Hz);
            let (n_re, n_im) = match self.eis_noise {
                Some(n) => (n.sample(&mut self.eis_rng), n.sample(&mut self.eis_rng)),
                None => (0.0, 0.0),
            };
            let reported = z * C64::new(1.0 + n_re, n_im);
            // Range and status from the peak ac current (plus an injected
            // spike, a dc current: it overloads the range but a DFT at f
            // rejects it, so Z itself is unaffected, as on the instrument).
            let I_peak_A = E_ac_V_rms * std::f64::consts::SQRT_2 / z.norm()
                + faults.spike_A(t_k, &self.faults).abs();
            let (range_A, status) = self.select_range(I_peak_A);
            let meta = Some((status, range_index(range_A)));
            let values = [
                (Quantity::Frequency, Value::new(f_Hz, *b"dc")),
                (
                    Quantity::ZReal,
                    Value {
                        meta,
                        ..Value::new(reported.re, *b"cc")
                    },
                ),
                (
                    Quantity::ZImag,
                    Value {
                        meta,
                        ..Value::new(reported.im, *b"cd")
                    },
                ),
            ];
            let index = k as u64;
            self.shared.journal.sample(
                Device::Potentiostat,
                SampleTruth {
                    segment,
                    index,
                    t_true_s: t_k,
                },
            );
            self.shared.journal.impedance_point(ImpedanceTruth {
                segment,
                index,
                t_true_s: t_k,
                f_Hz,
                T_K,
                E_dc_V,
                Z_re_ohm: z.re,
                Z_im_ohm: z.im,
            });
            if self.iteration(m, run, &values)? == Flow::Break {
                break;
            }
        }
        Ok(())
    }

    /// The range for a current of magnitude `I_abs_A` and the status nibble
    /// (0x2 overload when it is beyond that range's full scale). With
    /// autoranging the range is the smallest decade of the window that
    /// holds the current (the firmware settles within a sample interval at
    /// these rates); without, the `set_range` decade. The range in use is
    /// remembered, as on the instrument.
    fn select_range(&mut self, I_abs_A: f64) -> (f64, u8) {
        let range_A = match self.autorange {
            Some((min_A, max_A)) => {
                let mut r = min_A;
                while r < I_abs_A && r * 10.0 <= max_A * (1.0 + 1e-9) {
                    r *= 10.0;
                }
                r
            }
            None => self.range_A,
        };
        self.range_A = range_A;
        let status = if I_abs_A > range_A {
            STATUS_OVERLOAD
        } else {
            0
        };
        (range_A, status)
    }

    /// Currents measured together (one sample, or the two of a pulse) as
    /// the instrument reports them: on one range that holds the largest,
    /// each clipped to that range's full scale, with the overload bit when
    /// any was beyond it.
    fn measure_currents(&mut self, currents_A: &[f64]) -> Vec<Value> {
        let I_max_A = currents_A.iter().fold(0.0_f64, |m, i| m.max(i.abs()));
        let (range_A, status) = self.select_range(I_max_A);
        let meta = Some((status, range_index(range_A)));
        currents_A
            .iter()
            .map(|&i| Value {
                v: if i.is_finite() {
                    i.clamp(-range_A, range_A)
                } else {
                    i
                },
                vtype: *b"ba",
                meta,
            })
            .collect()
    }
}

/// The decade current range (1 nA .. 10 mA, the EmStat4 LR's) that holds
/// `I_A`: `set_range ba 590u` selects the 1 mA range, as on the instrument.
fn decade_range_A(I_A: f64) -> f64 {
    let decades = (I_A.abs().max(MIN_RANGE_A) / MIN_RANGE_A).log10();
    let n = (decades - 1e-9).ceil().clamp(0.0, 7.0);
    MIN_RANGE_A * 10f64.powf(n)
}

/// The EmStat4's current-range index in package metadata: 3 for 1 nA, +3
/// per decade (9 = 100 nA, 18 = 100 uA, 21 = 1 mA, 24 = 10 mA).
fn range_index(range_A: f64) -> u8 {
    let decade = (range_A / MIN_RANGE_A).log10().round().clamp(0.0, 80.0);
    3 + 3 * decade as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_the_decades_that_hold_the_value() {
        for (i, r) in [
            (590e-6, 1e-3),
            (100e-6, 100e-6),
            (30e-6, 100e-6),
            (1e-9, 1e-9),
            (1e-12, 1e-9),
            (1.0, 10e-3),
            (50e-9, 100e-9),
        ] {
            assert!(
                (decade_range_A(i) - r).abs() < r * 1e-9,
                "{i}: {}",
                decade_range_A(i)
            );
        }
        assert_eq!(range_index(1e-9), 3);
        assert_eq!(range_index(100e-6), 18);
        assert_eq!(range_index(10e-3), 24);
    }
}
