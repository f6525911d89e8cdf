//! Driver for PalmSens MethodSCRIPT potentiostats (EmStat Pico / EmStat4 /
//! Sensit) on a serial port, and for the virtual bench's emulation of them.
//!
//! The device sends no timestamps: sample k of a loop is at device time
//! `trigger_latency_s + (k + 1) * interval` after the `set_gpio` edge that
//! precedes the loop, so this driver numbers the samples and computes that
//! time; the engine maps it onto the host timeline.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use vegard_recipe::PotentiostatConfig;

use crate::device::{CellSafety, Potentiostat, PstatEvent, Technique};
use crate::error::{Fault, InstrumentError};
use crate::methodscript::{Line, ScriptFrame, VarType, build_script, parse_line};
use crate::transport::{SerialLine, SerialWriter};
use vegard_recipe::Resource;

const ROLE: &str = "potentiostat";
/// Version output of `t` is a few lines; more means we are not talking to a
/// MethodSCRIPT device (or it is busy streaming a script).
const MAX_VERSION_LINES: usize = 16;
/// Pause between the abort and the cell-off script, so the device has run
/// `on_finished` and is idle when the new script arrives.
const SAFETY_GAP: Duration = Duration::from_millis(50);
/// How long the safety path reads at a time while it waits for the
/// acknowledgement itself (when the run thread is not reading).
const ACK_POLL: Duration = Duration::from_millis(20);
/// Shortest wait for the switch-off acknowledgement: an EmStat answers
/// within milliseconds, but a host under load may take a while to read it.
const MIN_ACK_WAIT: Duration = Duration::from_secs(1);

/// State of the script currently running.
#[derive(Debug, Clone, Copy)]
struct Run {
    interval_s: f64,
    /// Which variable carries E by preference (the other is accepted when it
    /// is missing): `da` (set) in CV and LSV, `ab` (measured) in OCP and in
    /// potential steps (where it contains the lock-in sine during ESM
    /// sweeps). Unused for EIS.
    potential: VarType,
    /// EIS packages carry frequency and impedance, not samples.
    impedance: bool,
    next_index: u64,
    /// CV: the scan within `nscans`; potential steps: the level (one loop each).
    scan: u32,
    /// Potential steps count levels by loop ends instead of scan markers.
    level_per_loop: bool,
}

/// The script line a firmware error detail points at (`Line N, Col C`,
/// counting the `e` line as line 1), trimmed.
fn script_line<'a>(script: &'a str, detail: &str) -> Option<&'a str> {
    let n: usize = detail
        .strip_prefix("Line ")?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    script.lines().nth(n.checked_sub(1)?).map(str::trim)
}

/// Orders script writes against the safety path, which writes on its own
/// port handle from another thread. `true` once `switch_off` ran: from then
/// on `start` refuses, so no script can run with the cell on after "cell
/// off" was logged. Both sides hold the lock for their whole write, so a
/// `Z` never lands inside a script and a script never follows the cell-off.
type OffLatch = Arc<Mutex<bool>>;

/// The latch's lock; a panic of the other holder must not stop this one
/// (least of all the safety path), and a `bool` cannot be left half-written.
fn lock_latch(latch: &Mutex<bool>) -> MutexGuard<'_, bool> {
    latch
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where the safety path's acknowledgement stands. The device's answer to
/// the switch-off is, in order: a line starting with `Z` (`Z` when a script
/// was aborted, `Z!0006` when none ran), then `e` (the cell-off script
/// accepted), then the empty line (that script, i.e. `cell_off`, done). Only
/// the whole sequence, in this order, confirms the cell is off: output of
/// the aborted script (its own `e` or end line) cannot be mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ack {
    /// No switch-off asked for.
    Idle,
    WaitAbort,
    WaitAccept,
    WaitEnd,
    Confirmed,
}

impl Ack {
    fn observe(self, line: &str) -> Ack {
        let line = line.strip_suffix('\r').unwrap_or(line);
        match self {
            Ack::WaitAbort if line.starts_with('Z') => Ack::WaitAccept,
            Ack::WaitAccept if line == "e" => Ack::WaitEnd,
            Ack::WaitEnd if line.is_empty() => Ack::Confirmed,
            // The cell-off script failed: its end line confirms nothing.
            Ack::WaitEnd if line.contains('!') => Ack::WaitAccept,
            other => other,
        }
    }
}

/// The port's reading side, shared by the run thread and the safety path.
/// Every line either of them reads goes through [`Link::read_line`], which
/// feeds the switch-off acknowledgement, so the safety path sees it even
/// when the run thread took the lines (it usually does: it reads all the
/// time). The line lock is held for one read only.
struct Link {
    line: Mutex<SerialLine>,
    ack: Mutex<Ack>,
}

impl Link {
    fn line(&self) -> MutexGuard<'_, SerialLine> {
        // A panicked reader leaves the port usable; the safety path must not
        // give up because of it.
        self.line.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ack(&self) -> MutexGuard<'_, Ack> {
        self.ack.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read_line(&self, timeout: Duration) -> Result<Option<String>, Fault> {
        let line = self.line().read_line(timeout)?;
        if let Some(l) = &line {
            let mut ack = self.ack();
            *ack = ack.observe(l);
        }
        Ok(line)
    }

    /// Like [`Link::read_line`], but only if no one else is reading.
    fn try_read_line(&self, timeout: Duration) -> Result<Option<String>, Fault> {
        let line = match self.line.try_lock() {
            Ok(mut l) => l.read_line(timeout)?,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().read_line(timeout)?,
            Err(std::sync::TryLockError::WouldBlock) => {
                std::thread::sleep(ACK_POLL / 4);
                None
            }
        };
        if let Some(l) = &line {
            let mut ack = self.ack();
            *ack = ack.observe(l);
        }
        Ok(line)
    }
}

/// A MethodSCRIPT potentiostat on a serial port.
pub struct MethodScriptPotentiostat {
    link: Arc<Link>,
    cfg: PotentiostatConfig,
    resource: String,
    timeout: Duration,
    run: Option<Run>,
    off_latched: OffLatch,
}

impl MethodScriptPotentiostat {
    /// Open the serial port named by `resource` (8N1 at `cfg.baud`). Nothing
    /// is sent until [`Potentiostat::identify`] or [`Potentiostat::start`].
    pub fn open(
        cfg: &PotentiostatConfig,
        resource: &Resource,
    ) -> Result<MethodScriptPotentiostat, InstrumentError> {
        let name = resource.to_string();
        let err = |fault| InstrumentError::Device {
            role: ROLE,
            resource: name.clone(),
            fault,
        };
        let Resource::Serial { path } = resource else {
            return Err(err(Fault::UnsupportedResource(
                "the methodscript driver needs a serial resource (ASRL<path>::INSTR)".into(),
            )));
        };
        let timeout = Duration::try_from_secs_f64(cfg.timeout_s)
            .ok()
            .filter(|t| !t.is_zero())
            .ok_or_else(|| {
                err(Fault::InvalidSetting(format!(
                    "timeout_s = {} must be > 0",
                    cfg.timeout_s
                )))
            })?;
        if !(cfg.trigger_latency_s.is_finite() && cfg.trigger_latency_s >= 0.0) {
            return Err(err(Fault::InvalidSetting(format!(
                "trigger_latency_s = {} must be >= 0",
                cfg.trigger_latency_s
            ))));
        }
        let line = SerialLine::open(path, cfg.baud, timeout).map_err(err)?;
        Ok(MethodScriptPotentiostat {
            link: Arc::new(Link {
                line: Mutex::new(line),
                ack: Mutex::new(Ack::Idle),
            }),
            cfg: cfg.clone(),
            resource: name,
            timeout,
            run: None,
            off_latched: Arc::new(Mutex::new(false)),
        })
    }

    fn err(&self, fault: Fault) -> InstrumentError {
        InstrumentError::Device {
            role: ROLE,
            resource: self.resource.clone(),
            fault,
        }
    }

    /// One reply line within the configured timeout; device error lines
    /// become errors.
    fn reply(&mut self, command: &str) -> Result<String, InstrumentError> {
        let line = self
            .link
            .read_line(self.timeout)
            .map_err(|f| self.err(f))?
            .ok_or_else(|| {
                self.err(Fault::Timeout {
                    waiting_for: format!("reply to {command}"),
                    after_s: self.timeout.as_secs_f64(),
                })
            })?;
        if let Ok(Line::DeviceError { code, detail }) = parse_line(&line) {
            return Err(self.err(Fault::DeviceError { code, detail }));
        }
        Ok(line)
    }

    fn bad_reply(&self, command: &str, reply: &str, reason: &str) -> InstrumentError {
        self.err(Fault::BadReply {
            command: command.into(),
            reply: reply.into(),
            reason: reason.into(),
        })
    }

    fn sample(
        &mut self,
        line: &str,
        pkg: &crate::methodscript::Package,
    ) -> Result<PstatEvent, InstrumentError> {
        let Some(run) = self.run.as_mut() else {
            return Err(self.bad_reply(
                "measurement",
                line,
                "data package while no script of ours is running",
            ));
        };
        if run.impedance {
            let index = run.next_index;
            let value = |kind: VarType| pkg.get(kind).map(|v| v.value);
            let (Some(f_Hz), Some(Z_re_ohm), Some(Z_im_ohm)) = (
                value(VarType::Frequency),
                value(VarType::ZReal),
                value(VarType::ZImag),
            ) else {
                return Err(self.bad_reply(
                    "measurement",
                    line,
                    "EIS package lacks frequency (dc), Z' (cc) or Z'' (cd)",
                ));
            };
            run.next_index += 1;
            return Ok(PstatEvent::Impedance {
                index,
                f_Hz,
                Z_re_ohm,
                Z_im_ohm,
                status: pkg.status(),
            });
        }
        let other = match run.potential {
            VarType::SetPotential => VarType::MeasuredPotential,
            _ => VarType::SetPotential,
        };
        let Some(e) = pkg.get(run.potential).or_else(|| pkg.get(other)) else {
            return Err(self.bad_reply("measurement", line, "package has no potential (da/ab)"));
        };
        let index = run.next_index;
        run.next_index += 1;
        Ok(PstatEvent::Sample {
            index,
            t_dev_s: self.cfg.trigger_latency_s + (index + 1) as f64 * run.interval_s,
            E_V: e.value,
            I_A: pkg.get(VarType::Current).map(|v| v.value),
            status: pkg.status(),
            scan: run.scan,
        })
    }
}

impl Potentiostat for MethodScriptPotentiostat {
    /// `t` (firmware, multi-line up to a line ending in `*`), `i` (serial
    /// number), `v` (MethodSCRIPT version).
    fn identify(&mut self) -> Result<String, InstrumentError> {
        self.link.line().discard_input().map_err(|f| self.err(f))?;
        self.link.line().write_line("t").map_err(|f| self.err(f))?;
        let mut firmware = Vec::new();
        loop {
            let l = self.reply("t")?;
            let done = l.ends_with('*');
            let l = l.strip_suffix('*').unwrap_or(&l);
            let l = if firmware.is_empty() {
                l.strip_prefix('t').unwrap_or(l)
            } else {
                l
            };
            if !l.is_empty() {
                firmware.push(l.to_string());
            }
            if done {
                break;
            }
            if firmware.len() >= MAX_VERSION_LINES {
                return Err(self.bad_reply(
                    "t",
                    &firmware.join(" | "),
                    "no line ending in '*'; is this a MethodSCRIPT device?",
                ));
            }
        }
        self.link.line().write_line("i").map_err(|f| self.err(f))?;
        let serial = self.reply("i")?;
        let Some(serial) = serial.strip_prefix('i') else {
            return Err(self.bad_reply("i", &serial, "expected i<serial number>"));
        };
        let serial = serial.to_string();
        self.link.line().write_line("v").map_err(|f| self.err(f))?;
        let version = self.reply("v")?;
        let Some(version) = version.strip_prefix('v') else {
            return Err(self.bad_reply("v", &version, "expected v<version>"));
        };
        Ok(format!(
            "{} (serial {serial}, MethodSCRIPT {version})",
            firmware.join(" ")
        ))
    }

    fn start_synced(
        &mut self,
        technique: &Technique,
        sync_every_samples: Option<u64>,
    ) -> Result<(), InstrumentError> {
        let frame = ScriptFrame {
            trigger_gpio_pin: self.cfg.trigger_gpio_pin,
            current_range_min_A: self.cfg.current_range_min_A,
            current_range_max_A: self.cfg.current_range_max_A,
        };
        let script = build_script(technique, &frame, sync_every_samples)
            .map_err(|e| self.err(Fault::InvalidSetting(e.to_string())))?;
        self.run = None;
        {
            // Held while writing: a concurrent switch_off waits until the
            // script is complete on the wire (its Z then aborts it), or we
            // see the latch and write nothing.
            let latch = Arc::clone(&self.off_latched);
            let off = lock_latch(&latch);
            if *off {
                return Err(self.err(Fault::SwitchedOff));
            }
            // Replies to an earlier exchange (the safety script, an aborted
            // run) must not be taken for this script's acceptance.
            self.link.line().discard_input().map_err(|f| self.err(f))?;
            self.link
                .line()
                .write_raw(script.as_bytes())
                .map_err(|f| self.err(f))?;
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let Some(l) = self.link.read_line(remaining).map_err(|f| self.err(f))? else {
                return Err(self.err(Fault::Timeout {
                    waiting_for: "the device to accept the script (e)".into(),
                    after_s: self.timeout.as_secs_f64(),
                }));
            };
            match parse_line(&l) {
                Ok(Line::ScriptAccepted) => break,
                Ok(Line::DeviceError { code, detail }) => {
                    // The firmware refuses a script naming the position
                    // (`!2001: Line 3, Col 1`); say which command that is.
                    let detail = match script_line(&script, &detail) {
                        Some(cmd) => format!("{detail} (script: {cmd:?})"),
                        None => detail,
                    };
                    return Err(self.err(Fault::DeviceError { code, detail }));
                }
                _ => {
                    tracing::debug!(resource = %self.resource, line = %l, "ignored before script acceptance")
                }
            }
        }
        self.run = Some(Run {
            interval_s: technique.sample_interval_s(),
            potential: match technique {
                Technique::Cv { .. } | Technique::Lsv { .. } | Technique::Eis { .. } => {
                    VarType::SetPotential
                }
                // Contract: CA packages carry the measured WE potential.
                Technique::Steps { .. } | Technique::Ocp { .. } => VarType::MeasuredPotential,
            },
            impedance: matches!(technique, Technique::Eis { .. }),
            level_per_loop: matches!(technique, Technique::Steps { .. }),
            next_index: 0,
            scan: 0,
        });
        Ok(())
    }

    fn read_event(&mut self, timeout: Duration) -> Result<Option<PstatEvent>, InstrumentError> {
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let Some(l) = self.link.read_line(remaining).map_err(|f| self.err(f))? else {
                return Ok(None);
            };
            let parsed = parse_line(&l).map_err(|e| {
                let reason = match &e {
                    crate::methodscript::MsError::BadLine { reason, .. } => reason.clone(),
                    other => other.to_string(),
                };
                self.err(Fault::Garbled {
                    waiting_for: "measurement data".into(),
                    line: l.clone(),
                    reason,
                })
            })?;
            let event = match parsed {
                Line::LoopStart(_) => PstatEvent::Started,
                Line::Data(pkg) => self.sample(&l, &pkg)?,
                Line::ScanEnd => {
                    let scan = self.run.as_ref().map_or(0, |r| r.scan);
                    if let Some(r) = self.run.as_mut() {
                        r.scan += 1;
                    }
                    PstatEvent::ScanEnd { scan }
                }
                Line::LoopEnd => {
                    if let Some(r) = self.run.as_mut().filter(|r| r.level_per_loop) {
                        r.scan += 1;
                    }
                    PstatEvent::LoopEnd
                }
                Line::EndOfScript => {
                    self.run = None;
                    PstatEvent::Finished
                }
                Line::DeviceError { code, detail } => PstatEvent::DeviceError { code, detail },
                Line::Text(t) => {
                    tracing::info!(resource = %self.resource, text = %t, "device text");
                    continue;
                }
                Line::ScanStart(_) | Line::ScriptAccepted | Line::Abort | Line::Other(_) => {
                    tracing::debug!(resource = %self.resource, line = %l, "ignored during run");
                    continue;
                }
            };
            return Ok(Some(event));
        }
    }

    fn safety(&self) -> Result<Box<dyn CellSafety>, InstrumentError> {
        let writer = self
            .link
            .line()
            .try_clone_writer()
            .map_err(|f| self.err(f))?;
        Ok(Box::new(MethodScriptSafety {
            writer,
            link: Arc::clone(&self.link),
            ack_wait: self.timeout.max(MIN_ACK_WAIT),
            resource: self.resource.clone(),
            off_latched: Arc::clone(&self.off_latched),
        }))
    }
}

/// Abort (`Z`) and then run a one-line `cell_off` script, on its own port
/// handle, and wait (bounded) for the device to acknowledge both. The script
/// covers the case where nothing was running (the device answers `Z!0006`
/// and `Z` alone would change nothing). Sets the driver's off latch first,
/// so no later `start` runs a script.
///
/// Writing is not switching off: a hung device (or a port whose other end is
/// gone) accepts the bytes into a kernel buffer and does nothing, so success
/// is reported only once the device's own replies ([`Ack`]) say the cell-off
/// script ran; otherwise [`Fault::SwitchOffNotConfirmed`].
struct MethodScriptSafety {
    writer: SerialWriter,
    link: Arc<Link>,
    /// How long to wait for the acknowledgement: the config's reply timeout,
    /// at least [`MIN_ACK_WAIT`].
    ack_wait: Duration,
    resource: String,
    off_latched: OffLatch,
}

impl CellSafety for MethodScriptSafety {
    fn switch_off(&self) -> Result<(), InstrumentError> {
        let err = |fault| InstrumentError::Device {
            role: ROLE,
            resource: self.resource.clone(),
            fault,
        };
        // Held until the cell-off script is written: a start() in progress
        // finishes writing its script first (and is aborted by the Z), a
        // later one sees the latch and writes nothing.
        let mut off = lock_latch(&self.off_latched);
        *off = true;
        tracing::info!(resource = %self.resource, "safety: abort and cell off");
        // Armed before the Z goes out, so its answer cannot be missed.
        *self.link.ack() = Ack::WaitAbort;
        let abort = self.writer.write_raw(b"Z\n");
        std::thread::sleep(SAFETY_GAP);
        // Sent even if the abort failed to write: it is the part that
        // matters when the device was idle.
        let cell_off = self.writer.write_raw(b"e\ncell_off\n\n");
        drop(off);
        abort.and(cell_off).map_err(err)?;
        let deadline = Instant::now() + self.ack_wait;
        loop {
            let state = *self.link.ack();
            if state == Ack::Confirmed {
                tracing::info!(resource = %self.resource, "safety: cell off confirmed by the device");
                return Ok(());
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(err(Fault::SwitchOffNotConfirmed {
                    waiting_for: match state {
                        Ack::Idle | Ack::WaitAbort => "answer to the abort (Z)",
                        Ack::WaitAccept => "acceptance (e) of the cell-off script",
                        Ack::WaitEnd | Ack::Confirmed => "end (empty line) of the cell-off script",
                    }
                    .into(),
                    after_s: self.ack_wait.as_secs_f64(),
                }));
            }
            // The run thread usually reads (and feeds the acknowledgement);
            // when it does not, read here. A read error (port gone) is not a
            // confirmation: keep waiting out the deadline.
            if let Err(e) = self.link.try_read_line(remaining.min(ACK_POLL)) {
                tracing::warn!(resource = %self.resource, error = %e, "safety: reading the acknowledgement");
                std::thread::sleep(ACK_POLL);
            }
        }
    }
}
