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
use script::{Cmd, LoopKind, MeasLoop, Quantity, Script};
use serialport::{SerialPort, TTYPort};
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
/// Current range before any `set_range`, A.
const DEFAULT_RANGE_A: f64 = 1e-3;

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
    range_A: f64,
    autorange: Option<(f64, f64)>,
    /// GPIO pins configured as outputs.
    gpio_out_mask: u32,
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

    fn host_command(&mut self, line: &str) {
        match line.trim() {
            "" => {}
            "t" => {
                self.send("tespbl_virtual");
                self.send("R1.4.0#vegard virtual bench*");
            }
            "i" => self.send("iVIRTUAL-EMSTAT-0001"),
            "v" => self.send("v0104"),
            "Z" => self.send("Z!0006"),
            other => self.send(&format!("!0003: unknown command '{other}'")),
        }
    }

    fn script(&mut self, lines: &[String]) {
        match script::parse(lines) {
            Ok(s) => self.run_script(&s),
            Err(e) => self.send(&format!("!2001: line {}: {}", e.line, e.reason)),
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
        let mut run = Run::default();
        let outcome = self.exec(&s.body, &mut run, true);
        match outcome {
            Ok(()) => {}
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

    fn exec(&mut self, cmds: &[Cmd], run: &mut Run, abortable: bool) -> Result<(), Stop> {
        for cmd in cmds {
            if abortable && self.gate.abort.swap(false, Ordering::SeqCst) {
                return Err(Stop::Abort);
            }
            if self.shared.shutdown.load(Ordering::Relaxed) {
                return Err(Stop::Shutdown);
            }
            match *cmd {
                Cmd::SetE { E_V } => {
                    self.set_E_V = E_V;
                    let mut world = lock(&self.shared.world);
                    if world.cell_is_on() {
                        world.set_program_now(Program::Hold { E_V });
                    }
                }
                Cmd::SetRange { range_A } => self.range_A = range_A,
                Cmd::SetAutoranging { min_A, max_A } => self.autorange = Some((min_A, max_A)),
                Cmd::SetGpioCfg { mask, mode } => {
                    if mode == 1 {
                        self.gpio_out_mask |= mask;
                    } else {
                        self.gpio_out_mask &= !mask;
                    }
                }
                Cmd::SetGpio { value } => {
                    if self.gpio_out_mask & TRIGGER_PIN_MASK != 0 {
                        let high = value & TRIGGER_PIN_MASK != 0;
                        if let Some(edge) = lock(&self.shared.world).set_trigger_level_now(high) {
                            run.pending_edge = Some(edge);
                        }
                    }
                }
                Cmd::CellOn => {
                    lock(&self.shared.world).set_program_now(Program::Hold { E_V: self.set_E_V });
                }
                Cmd::CellOff => {
                    lock(&self.shared.world).set_program_now(Program::OpenCircuit);
                }
                Cmd::Wait { t_s } => {
                    run.last_loop_end_true_s = None;
                    let now = self.shared.clock.now_s();
                    let until = now + self.clock.true_interval_s(t_s);
                    self.wait_until(until, abortable)?;
                }
                Cmd::Loop(ref l) => self.meas_loop(l, run)?,
            }
        }
        Ok(())
    }

    fn meas_loop(&mut self, l: &MeasLoop, run: &mut Run) -> Result<(), Stop> {
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
                match l.kind {
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
        if let LoopKind::Eis { .. } = l.kind {
            self.eis_loop(l, t0, segment, &faults)?;
            self.send("*");
            run.in_loop = false;
            return Ok(());
        }
        let interval_s = l.kind.interval_s();
        let per_scan = l.kind.samples_per_scan();
        let scan_markers = matches!(
            l.kind,
            LoopKind::Cv {
                scan_markers: true,
                ..
            }
        );
        for k in 0..l.kind.n_samples() {
            let t_dev_s = (k + 1) as f64 * interval_s;
            let t_k = self.clock.event_true_s(t0, t_dev_s);
            self.wait_for_sample(t_k, &faults)?;
            let state = lock(&self.shared.world).state_at(t_k);
            let spike_A = faults.spike_A(t_k, &self.faults);
            let mut fields = Vec::with_capacity(l.package.len());
            for q in &l.package {
                fields.push(match q {
                    Quantity::SetPotential => {
                        let E_V = match l.kind {
                            LoopKind::Cv { wave, .. } => wave.potential_V(t_dev_s),
                            LoopKind::Lsv { wave, .. } => wave.potential_V(t_dev_s),
                            LoopKind::Ca { E_V, .. } => E_V,
                            LoopKind::Eis { E_dc_V, .. } => E_dc_V,
                            LoopKind::Ocp { .. } => state.E_app_V,
                        };
                        format!("da{}", package::encode_value(E_V))
                    }
                    Quantity::MeasuredPotential => {
                        let noise = self
                            .potential_noise
                            .map_or(0.0, |n| n.sample(&mut self.rng));
                        format!("ab{}", package::encode_value(state.E_app_V + noise))
                    }
                    Quantity::Current => {
                        let noise = self.current_noise.map_or(0.0, |n| n.sample(&mut self.rng));
                        self.current_field(state.I_A + noise + spike_A)
                    }
                    // Not bound in time-domain loops (the parser refuses them).
                    Quantity::Frequency | Quantity::ZReal | Quantity::ZImag => continue,
                });
            }
            if !fields.is_empty() {
                self.send(&format!("P{}", fields.join(";")));
            }
            self.shared.journal.sample(
                Device::Potentiostat,
                SampleTruth {
                    segment,
                    index: k,
                    t_true_s: t_k,
                },
            );
            if scan_markers && (k + 1) % per_scan == 0 {
                self.send("-");
            }
        }
        self.send("*");
        run.in_loop = false;
        run.last_loop_end_true_s = Some(
            self.clock
                .event_true_s(t0, l.kind.n_samples() as f64 * interval_s),
        );
        let end_V = match l.kind {
            LoopKind::Cv { wave, .. } => Some(wave.E_begin_V),
            LoopKind::Lsv { wave, .. } => Some(wave.E_end_V),
            _ => None,
        };
        if let Some(E_V) = end_V {
            let mut world = lock(&self.shared.world);
            if world.cell_is_on() {
                world.set_program_now(Program::Hold { E_V });
            }
        }
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
        l: &MeasLoop,
        t0: f64,
        segment: usize,
        faults: &LoopFaults,
    ) -> Result<(), Stop> {
        let LoopKind::Eis {
            E_dc_V, E_ac_V_rms, ..
        } = l.kind
        else {
            return Ok(());
        };
        let mut t_dev_s = 0.0;
        for (k, f_Hz) in l.kind.eis_frequencies_Hz().into_iter().enumerate() {
            t_dev_s += vegard_recipe::eis_point_duration_s(f_Hz);
            let t_k = self.clock.event_true_s(t0, t_dev_s);
            self.wait_for_sample(t_k, faults)?;
            let T_K = lock(&self.shared.world).state_at(t_k).T_K;
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
            let (status, index) = self.range_status(I_peak_A);
            let meta = format!(",1{status:X},2{index:02X}");
            let mut fields = Vec::with_capacity(l.package.len());
            for q in &l.package {
                fields.push(match q {
                    Quantity::Frequency => format!("dc{}", package::encode_value(f_Hz)),
                    Quantity::ZReal => {
                        format!("cc{}{meta}", package::encode_value(reported.re))
                    }
                    Quantity::ZImag => {
                        format!("cd{}{meta}", package::encode_value(reported.im))
                    }
                    _ => continue,
                });
            }
            if !fields.is_empty() {
                self.send(&format!("P{}", fields.join(";")));
            }
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
        }
        Ok(())
    }

    /// `ba<value>,1<status>,2<range index>`: the range is the fixed one or the
    /// smallest decade of the autoranging window that holds the current;
    /// status 0x2 (overload) when the current exceeds it. The value itself is
    /// not clipped, so a safety limit above the range still sees it.
    fn current_field(&self, I_A: f64) -> String {
        let (status, index) = self.range_status(I_A);
        format!("ba{},1{status:X},2{index:02X}", package::encode_value(I_A))
    }

    /// Status nibble (0x2 overload when `|I_A|` exceeds the range) and the
    /// current-range index (decades above 1 nA) for a current.
    fn range_status(&self, I_A: f64) -> (u8, u8) {
        let range_A = match self.autorange {
            Some((min_A, max_A)) => {
                let mut r = min_A;
                while r < I_A.abs() && r * 10.0 <= max_A * (1.0 + 1e-9) {
                    r *= 10.0;
                }
                r
            }
            None => self.range_A,
        };
        let status = if I_A.abs() > range_A { 0x2 } else { 0x0 };
        let index = (range_A / 1e-9).log10().round().clamp(0.0, 255.0) as u8;
        (status, index)
    }
}
