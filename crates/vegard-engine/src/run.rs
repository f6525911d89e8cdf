//! Executing a recipe: device tasks, the supervisor loop, limits and the
//! safe state.
//!
//! Invariant: once the potentiostat is open, every way out of [`run`] — normal
//! end, user abort, device error, limit hit, a panicking task, an error
//! return, or a panic unwinding through here — goes through
//! [`SafeOff`], which sends the instrument's abort + `cell_off` sequence.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, watch};
use vegard_core::{HostClock, RunEvent, UtcStamp};
use vegard_instruments::{
    CellSafety, DeflectionProbe, DigitizerSetup, DigitizerTrigger, InstrumentError, LockIn,
    Potentiostat, PstatEvent, Resource, Role, Technique,
};
use vegard_recipe::{BenchConfig, Instruments, PlannedStep, Recipe, Step};
use vegard_store::{EventLog, RawStream, RunMeta, RunStatus, RunWriter};

use crate::EngineError;
use crate::abort::{AbortReason, Device, StopCause, StopRx};
use crate::stage::{StageHandle, stabilise};
use vegard_pipeline::{FinalizeSummary, finalize_run};
use vegard_store::schema::{
    DeflectionRaw, DeflectionRow, EisRaw, EisRow, LockInRaw, LockInRow, PotentiostatRaw,
    PotentiostatRow, TemperatureRaw,
};

/// Everything a run needs, already parsed and validated.
pub struct RunRequest {
    pub recipe: Recipe,
    pub recipe_path: PathBuf,
    pub bench: BenchConfig,
    pub bench_path: PathBuf,
    /// Parent folder of run folders (default `runs/`).
    pub out_dir: PathBuf,
    /// Where the instruments are, resolved (no `sim`: whoever started the
    /// virtual bench put its emulators' addresses here), and how fast the
    /// experiment's time runs. The resources in `bench` are not used.
    pub resources: Resources,
    /// Deliberate fault for testing the safe paths (hidden CLI flag).
    pub fault: Option<EngineFault>,
    /// Pause/resume and markers from the dashboard (abort goes through the
    /// `cancel` channel, like Ctrl-C). `None`: no one steers this run.
    pub control: Option<tokio::sync::mpsc::UnboundedReceiver<RunControl>>,
}

/// What a user can ask of a running run besides stopping it.
#[derive(Debug, Clone, PartialEq)]
pub enum RunControl {
    /// Pause before the next step (the safe point: every technique ends
    /// with the cell switched off), or resume.
    TogglePause,
    /// A note in events.jsonl (`kind = "marker"`), stamped now and with the
    /// step it fell in.
    Marker(String),
}

/// Faults the engine can inject into itself, so tests can prove the safe
/// paths that the virtual bench cannot provoke from outside.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EngineFault {
    /// The digitizer task panics after this many fetches.
    PanicInDeflectionTask { after_fetches: u32 },
}

/// Where each instrument of a run is: the bench config's resources with
/// every `sim` replaced by the virtual bench's emulator, so the engine
/// itself never starts or knows the virtual bench.
#[derive(Debug, Clone, PartialEq)]
pub struct Resources {
    pub potentiostat: Resource,
    pub deflection: Resource,
    /// Needed when the recipe has ESM sweeps and the bench a lock-in.
    pub lockin: Option<Resource>,
    /// Needed when the bench has a temperature stage.
    pub temperature: Option<Resource>,
    /// Experiment seconds per wall second: 1 on real instruments, the
    /// virtual bench's time acceleration on it.
    pub time_acceleration: f64,
    /// The virtual bench's word on whether it kept up (`None` on real
    /// instruments): asked once recording is over, before finalising.
    pub bench_health: Option<BenchHealth>,
    /// Frees what the bench keeps for itself (the virtual bench's journal)
    /// once recording is over and its health has been asked, before
    /// finalising: `None` keeps it (real instruments; tests that read the
    /// truth after the run).
    pub release_bench: Option<BenchRelease>,
}

/// See [`Resources::release_bench`].
#[derive(Clone)]
pub struct BenchRelease(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for BenchRelease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BenchRelease(..)")
    }
}

/// Asks whoever served the instruments whether the data can be trusted:
/// `Some(why)` when it cannot (the virtual bench fell behind and answered
/// from stale model state). A run is then finalised with every segment
/// untrusted, so no number derived from the deflection is reported as a
/// result (`run.toml` `bench_overrun`).
#[derive(Clone)]
pub struct BenchHealth(pub Arc<dyn Fn() -> Option<String> + Send + Sync>);

impl std::fmt::Debug for BenchHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BenchHealth(..)")
    }
}

impl PartialEq for BenchHealth {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.0), Arc::as_ptr(&other.0))
    }
}

impl PartialEq for BenchRelease {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.0), Arc::as_ptr(&other.0))
    }
}

impl Resources {
    /// The bench's resources, each `sim` taken from `virtual_bench` (the
    /// running emulators' resources and time acceleration). Without a
    /// virtual bench, time runs at 1x and a `sim` resource is an error.
    pub fn resolve(
        instruments: &Instruments,
        virtual_bench: Option<&Resources>,
    ) -> Result<Resources, EngineError> {
        let pick = |role: Role,
                    configured: &Resource,
                    emulated: Option<&Resource>|
         -> Result<Resource, EngineError> {
            match (configured, emulated) {
                (Resource::Sim, Some(r)) => Ok(r.clone()),
                (Resource::Sim, None) => Err(EngineError::UnresolvedSim { role: role.table() }),
                (r, _) => Ok(r.clone()),
            }
        };
        Ok(Resources {
            potentiostat: pick(
                Role::Potentiostat,
                &instruments.potentiostat.resource,
                virtual_bench.map(|v| &v.potentiostat),
            )?,
            deflection: pick(
                Role::Deflection,
                &instruments.deflection.resource,
                virtual_bench.map(|v| &v.deflection),
            )?,
            lockin: instruments
                .lockin
                .as_ref()
                .map(|l| {
                    pick(
                        Role::LockIn,
                        &l.resource,
                        virtual_bench.and_then(|v| v.lockin.as_ref()),
                    )
                })
                .transpose()?,
            temperature: instruments
                .temperature
                .as_ref()
                .map(|t| {
                    pick(
                        Role::TemperatureStage,
                        &t.resource,
                        virtual_bench.and_then(|v| v.temperature.as_ref()),
                    )
                })
                .transpose()?,
            time_acceleration: virtual_bench.map_or(1.0, |v| v.time_acceleration),
            bench_health: virtual_bench.and_then(|v| v.bench_health.clone()),
            release_bench: virtual_bench.and_then(|v| v.release_bench.clone()),
        })
    }
}

/// How a run ended.
#[derive(Debug)]
pub struct RunOutcome {
    pub run_dir: PathBuf,
    pub status: RunStatus,
    /// Why the engine stopped the run early, if it did.
    pub abort: Option<AbortReason>,
    /// The text recorded in run.toml: the abort reason, plus anything that
    /// failed while stopping (`...; while stopping: heater off: ...`).
    pub reason: Option<String>,
    /// None if finalising failed (see `finalize_error`; the raw data is kept
    /// and `vegard recover` retries).
    pub summary: Option<FinalizeSummary>,
    /// Set when the potentiostat did not confirm the switch-off (the
    /// sequence could not be sent, or the instrument did not acknowledge it):
    /// the cell may be on.
    pub cell_off_error: Option<InstrumentError>,
    /// What else did not confirm going quiet: the lock-in's sine out (it
    /// drives the cell) and the stage's heater, as `"lock-in sine off not confirmed: ..."`
    /// and `"heater off not confirmed: ..."`. Empty when both confirmed (or were unused).
    pub unconfirmed_off: Vec<String>,
    pub finalize_error: Option<EngineError>,
    /// The virtual bench fell behind (run.toml `bench_overrun`): why.
    pub bench_overrun: Option<String>,
}

/// Switches the cell off exactly once, on drop if nobody did it explicitly.
struct SafeOff {
    safety: Arc<dyn CellSafety>,
    done: AtomicBool,
}

impl SafeOff {
    /// Send the switch-off sequence (again, if need be: it is idempotent on
    /// the instrument). Retries once; only success disarms the drop guard.
    fn switch_off(&self) -> Result<(), InstrumentError> {
        let r = self
            .safety
            .switch_off()
            .or_else(|_| self.safety.switch_off());
        if r.is_ok() {
            self.done.store(true, Ordering::SeqCst);
        }
        r
    }
}

impl Drop for SafeOff {
    fn drop(&mut self) {
        if !self.done.load(Ordering::SeqCst) {
            // Nothing to report to: we are unwinding or returning an error.
            let _ = self.safety.switch_off();
        }
    }
}

enum PstatCmd {
    /// The technique, and every how many samples the sync edge repeats.
    Start(Technique, Option<u64>),
}

enum PstatMsg {
    Event { host_ns: i64, event: PstatEvent },
    Error(InstrumentError),
}

/// What the digitizer task hands back: its own result and the probe.
type DmmReturn = (Result<(), InstrumentError>, Box<dyn DeflectionProbe>);

/// What a step ends with: done, or the reason to stop the run.
type StepResult = Result<(), AbortReason>;

/// Failing to park the lock-in's sine at the end of a run.
#[derive(Debug, thiserror::Error)]
enum SineOffError {
    #[error(transparent)]
    Instrument(#[from] InstrumentError),
    #[error("lock-in did not answer within 5 s")]
    Timeout,
}

struct DmmBatch {
    host_ns: i64,
    readings_V: Vec<f64>,
}

/// Run a recipe to the end (or to an abort) and finalise the run folder.
///
/// `cancel` turning `Some` stops the run safely (Ctrl-C, a lost terminal:
/// [`StopCause`]). Setup problems (bad
/// resource, instrument not answering) are returned as errors before a run
/// folder exists; anything after that ends as a run with a status.
pub async fn run(
    mut req: RunRequest,
    mut cancel: StopRx,
    mut progress: impl FnMut(RunEvent),
) -> Result<RunOutcome, EngineError> {
    let inst = &req.bench.instruments;
    let speed = req.resources.time_acceleration;
    let pstat_res = req.resources.potentiostat.clone();
    let dmm_res = req.resources.deflection.clone();

    // Open the potentiostat and make sure it is the instrument we think it
    // is before anything is sent to it; from then on the cell is guarded.
    let mut pstat = vegard_instruments::open_potentiostat(&inst.potentiostat, &pstat_res)?;
    let pstat_idn = pstat.identify()?;
    let safe = SafeOff {
        safety: Arc::from(pstat.safety()?),
        done: AtomicBool::new(false),
    };
    let mut probe = vegard_instruments::open_deflection(&inst.deflection, &dmm_res).await?;
    let dmm_idn = probe.identify().await?;
    // Optional instruments: the lock-in (sine source and hardware
    // demodulator of ESM sweeps) and the temperature stage.
    // Optional instruments are used only when the recipe needs them, so a
    // CV on a bench whose lock-in is switched off still runs, and a stage
    // someone set by hand is left as found.
    let plan = req.recipe.plan();
    let needs_lockin = plan.iter().any(|p| matches!(p.step, Step::EsmSweep(_)));
    let sets_temperature = plan.iter().any(|p| matches!(p.step, Step::Temperature(_)));
    let mut lockin: Option<Box<dyn LockIn>> = None; // moved into the step context
    let mut lockin_info = serde_json::Value::Null;
    if let Some(cfg) = inst.lockin.as_ref().filter(|_| needs_lockin) {
        let res = req
            .resources
            .lockin
            .clone()
            .ok_or(EngineError::MissingResource {
                role: Role::LockIn.table(),
            })?;
        let mut l = vegard_instruments::open_lockin(cfg, &res).await?;
        let idn = l.identify().await?;
        // Its sine out drives the cell's potential: silent until an ESM
        // sweep needs it.
        l.sine_off().await?;
        lockin_info = json!({"resource": res.to_string(), "idn": idn});
        lockin = Some(l);
    }
    let mut stage_dev = None;
    let mut stage_info = serde_json::Value::Null;
    if let Some(cfg) = &inst.temperature {
        let res = req
            .resources
            .temperature
            .clone()
            .ok_or(EngineError::MissingResource {
                role: Role::TemperatureStage.table(),
            })?;
        // A configured stage is read through every run (the temperature of
        // each step goes into run.toml); when the recipe does not control
        // it, an unreachable stage costs only that record.
        let opened = async {
            let mut st = vegard_instruments::open_temperature(cfg, &res).await?;
            let idn = st.identify().await?;
            Ok::<_, vegard_instruments::InstrumentError>((st, idn))
        }
        .await;
        match opened {
            Ok((st, idn)) => {
                stage_info = json!({"resource": res.to_string(), "idn": idn,
                                    "controlled": sets_temperature});
                stage_dev = Some(st);
            }
            Err(e) if !sets_temperature => {
                tracing::warn!("temperature stage unavailable, not recorded: {e}");
                stage_info = json!({"resource": res.to_string(), "unavailable": e.to_string()});
            }
            Err(e) => return Err(e.into()),
        }
    }
    // Lent to each step's digitizer task and handed back; None once a task died with it.
    let mut dmm: Option<Box<dyn DeflectionProbe>> = Some(probe);
    if cancel.borrow().is_some() {
        // Ctrl-C during set-up: nothing was started, nothing recorded.
        return Err(EngineError::Cancelled);
    }

    let clock = HostClock::start();
    let utc = UtcStamp::now();
    let writer = RunWriter::create(
        &req.out_dir,
        &vegard_recipe::slug(&req.recipe.run.name),
        utc,
    )?;
    let run_dir = writer.dir().to_path_buf();
    let mut meta = RunMeta {
        status: RunStatus::Running,
        reason: None,
        vegard_version: env!("CARGO_PKG_VERSION").to_string(),
        hostname: hostname(),
        utc_start: clock.utc_anchor().rfc3339(),
        time_acceleration: speed,
        recipe_path: req.recipe_path.display().to_string(),
        bench_path: req.bench_path.display().to_string(),
        recipe: to_table(&req.recipe),
        bench: to_table(&req.bench),
        alignment: None,
        analysis_summary: None,
        steps: Vec::new(),
        data_issues: Vec::new(),
        import: None,
        bench_overrun: None,
        deflection_readings_lost: Vec::new(),
    };
    writer.write_meta(&meta)?;
    let mut events = writer.events()?;
    events.append(
        "run_start",
        clock.now_ns(),
        json!({"pid": std::process::id(), "utc_start_unix_s": clock.utc_anchor_unix_s(),
               "potentiostat": {"resource": pstat_res.to_string(), "idn": pstat_idn},
               "deflection": {"resource": dmm_res.to_string(), "idn": dmm_idn},
               "lockin": lockin_info, "temperature": stage_info,
               "time_acceleration": speed}),
    )?;
    let mut pstat_raw = writer.stream(PotentiostatRaw::FILE, PotentiostatRaw::COLUMNS)?;
    let mut dmm_raw = writer.stream(DeflectionRaw::FILE, DeflectionRaw::COLUMNS)?;
    let mut eis_raw = writer.stream(EisRaw::FILE, EisRaw::COLUMNS)?;
    let mut lockin_raw = writer.stream(LockInRaw::FILE, LockInRaw::COLUMNS)?;
    let current_step = Arc::new(AtomicI64::new(-1));
    let mut stage = match stage_dev {
        Some(st) => Some(StageHandle::start(
            st,
            writer.stream(TemperatureRaw::FILE, TemperatureRaw::COLUMNS)?,
            clock,
            speed,
            current_step.clone(),
        )),
        None => None,
    };
    // From here on nothing returns early: every problem becomes the abort
    // reason, so the folder always ends with a status and finalised data.

    // Dashboard controls: markers are written by their own task (the event
    // log is shared, line-atomic); pause is a flag the step loop checks.
    let (pause_tx, mut pause_rx) = watch::channel(false);
    let (control_note_tx, mut control_note_rx) = tokio::sync::mpsc::unbounded_channel::<RunEvent>();
    let control_task = req.control.take().map(|mut rx| {
        let ev = events.clone();
        let step_now = current_step.clone();
        tokio::spawn(async move {
            while let Some(c) = rx.recv().await {
                match c {
                    RunControl::Marker(note) => {
                        let step = usize::try_from(step_now.load(Ordering::SeqCst)).ok();
                        if ev
                            .append(
                                "marker",
                                clock.now_ns(),
                                json!({"note": note, "step": step}),
                            )
                            .is_ok()
                        {
                            let _ = control_note_tx.send(RunEvent::Marker { note, step });
                        }
                    }
                    RunControl::TogglePause => {
                        let requested = !*pause_tx.borrow();
                        pause_tx.send_replace(requested);
                        let _ = ev.append(
                            if requested {
                                "pause_requested"
                            } else {
                                "resume_requested"
                            },
                            clock.now_ns(),
                            json!({}),
                        );
                        let _ = control_note_tx.send(RunEvent::PauseRequested(requested));
                    }
                }
            }
        })
    });

    let total_s: f64 = plan.iter().map(|p| p.step.duration_s()).sum();
    progress(RunEvent::Started {
        run_dir: run_dir.clone(),
        total_s,
        speed,
        plan: vegard_recipe::plan_rows(&req.recipe),
        instruments: vec![
            ("potentiostat".into(), pstat_res.to_string()),
            ("deflection".into(), dmm_res.to_string()),
        ],
    });

    // The potentiostat's blocking I/O lives on its own thread.
    let (cmd_tx, cmd_rx) = std::sync::mpsc::channel::<PstatCmd>();
    let (pmsg_tx, mut pmsg_rx) = mpsc::unbounded_channel::<PstatMsg>();
    let stop_pstat = Arc::new(AtomicBool::new(false));
    let stop_flag = stop_pstat.clone();
    let last_heard_ns = Arc::new(AtomicI64::new(i64::MIN));
    let heard = Arc::clone(&last_heard_ns);
    let mut abort_reason: Option<AbortReason> = None;
    let pstat_thread = std::thread::Builder::new()
        .name("potentiostat".into())
        .spawn(move || potentiostat_thread(&mut *pstat, cmd_rx, pmsg_tx, clock, &stop_flag, &heard))
        .map_err(|e| abort_reason = Some(AbortReason::PotentiostatThreadStart(e)))
        .ok();

    let mut ctx = Ctx {
        req: &req,
        clock,
        speed,
        events: &mut events,
        pstat_raw: &mut pstat_raw,
        dmm_raw: &mut dmm_raw,
        eis_raw: &mut eis_raw,
        lockin_raw: &mut lockin_raw,
        lockin,
        safe: &safe,
        last_heard_ns: &last_heard_ns,
        seq_p: 0,
        seq_d: 0,
        seq_e: 0,
        seq_l: 0,
        plan_len: plan.len(),
        segment: 0,
        total_s,
        done_s: 0.0,
        readings_lost: Vec::new(),
    };
    for (index, planned) in plan.iter().enumerate() {
        while let Ok(p) = control_note_rx.try_recv() {
            progress(p);
        }
        if abort_reason.is_some() {
            break;
        }
        // Copy the flag out: a watch guard must not live across an await.
        let paused = *pause_rx.borrow();
        if paused
            && let Err(e) = wait_while_paused(
                &mut ctx,
                index,
                &mut pause_rx,
                &mut control_note_rx,
                &mut cancel,
                &mut progress,
            )
            .await
        {
            abort_reason = Some(e);
            break;
        }
        let step = &planned.step;
        current_step.store(index as i64, Ordering::SeqCst);
        progress(RunEvent::StepStarted {
            index,
            count: plan.len(),
            kind: step.kind_name().to_string(),
            duration_s: step.duration_s(),
            sweep: planned.label.sweep_values_text(),
        });
        if let Err(e) = ctx.events.append(
            "step_start",
            clock.now_ns(),
            json!({"step": index, "technique": step.kind_name(), "duration_s": step.duration_s(),
                   "recipe_step": planned.label.recipe_step,
                   "sweep_iteration": planned.label.sweep_iteration,
                   "setpoint_K": planned.label.setpoint_K,
                   "sweep": planned.label.sweep_values()
                       .map(|v| json!({"parameter": v.parameter.name(), "value": v.value}))
                       .collect::<Vec<_>>()}),
        ) {
            abort_reason = Some(e.into());
            break;
        }
        let result = match step {
            Step::Wait(w) => wait_step(w.duration_s / speed, &mut cancel).await,
            Step::Temperature(t) => match stage.as_mut() {
                None => Err(AbortReason::NoTemperatureStage),
                Some(st) => {
                    let target_K = t.target_K();
                    let count = plan.len();
                    let r = stabilise(
                        st,
                        target_K,
                        t.tolerance_K,
                        t.hold_s,
                        t.timeout_s,
                        clock,
                        speed,
                        &mut cancel,
                        |w| {
                            progress(RunEvent::TemperatureWait {
                                step: index,
                                count,
                                setpoint_K: target_K,
                                T_K: w.T_K,
                                stable_s: w.stable_s,
                                hold_s: t.hold_s,
                                elapsed_s: w.elapsed_s,
                                timeout_s: t.timeout_s,
                            });
                            // The dashboard's progress line: no cycles to
                            // count, no planned end while settling.
                            progress(RunEvent::Progress {
                                step: index,
                                count,
                                kind: "temperature".into(),
                                cycle: 0,
                                cycles: 0,
                                elapsed_s: w.elapsed_s,
                                eta_s: f64::NAN,
                            });
                        },
                    )
                    .await;
                    match r {
                        Ok(ok) => ctx
                            .events
                            .append(
                                "temperature_stable",
                                clock.now_ns(),
                                json!({"step": index, "setpoint_K": target_K, "T_K": ok.T_K,
                                       "waited_s": ok.waited_s}),
                            )
                            .map_err(AbortReason::from),
                        Err(cause) => Err(AbortReason::Temperature { step: index, cause }),
                    }
                }
            },
            _ => {
                let Some(lent) = dmm.take() else {
                    abort_reason = Some(AbortReason::DigitizerLost);
                    break;
                };
                let (res, probe) = record_step(
                    &mut ctx,
                    index,
                    planned,
                    lent,
                    &cmd_tx,
                    &mut pmsg_rx,
                    &mut cancel,
                    &mut progress,
                )
                .await;
                match probe {
                    Some(p) => dmm = Some(p),
                    None => {
                        // The digitizer task died with the probe; nothing more can run.
                        abort_reason = Some(res.err().unwrap_or(AbortReason::DeflectionProbeLost));
                        break;
                    }
                }
                res
            }
        };
        ctx.done_s += step.duration_s();
        let ended = result.and_then(|()| {
            ctx.events
                .append("step_end", clock.now_ns(), json!({"step": index}))
                .map_err(AbortReason::from)
        });
        if let Err(reason) = ended {
            abort_reason = Some(reason);
            break;
        }
    }

    current_step.store(-1, Ordering::SeqCst);
    // Every step reports a stop as "stop requested"; a lost terminal is
    // named as such in run.toml, not as something a person did.
    let stop_cause = *cancel.borrow();
    if stop_cause == Some(StopCause::TerminalLost)
        && abort_reason
            .as_ref()
            .is_some_and(AbortReason::is_stop_requested)
    {
        abort_reason = Some(AbortReason::TerminalLost);
    }
    if let Some(t) = control_task {
        t.abort();
    }
    // Every exit path: cell off first, then bookkeeping (all best effort:
    // a failing disk must not stop the rest from being tried).
    let off = safe.switch_off();
    let readings_lost = std::mem::take(&mut ctx.readings_lost);
    // The lock-in's sine out drives the cell; the stage's heater would keep
    // heating an unattended sample. Both go quiet on every exit.
    let sine_off: Result<(), SineOffError> = match ctx.lockin.as_mut() {
        Some(l) => match tokio::time::timeout(Duration::from_secs(5), l.sine_off()).await {
            Ok(r) => r.map_err(SineOffError::from),
            Err(_) => Err(SineOffError::Timeout),
        },
        None => Ok(()),
    };
    // Only a run that set the stage switches its heater off.
    let heater_off = match stage.take() {
        Some(st) if sets_temperature => {
            let r = st.heater_off().await;
            st.stop().await;
            r
        }
        Some(st) => {
            st.stop().await;
            Ok(())
        }
        None => Ok(()),
    };
    let mut problems: Vec<String> = Vec::new();
    // Recorded in run.toml's reason: a switch-off the instrument did not
    // acknowledge is never passed over as a clean end.
    if let Err(e) = &off {
        problems.push(format!("cell off: {e}"));
    }
    let mut unconfirmed_off = Vec::new();
    if let Err(e) = &sine_off {
        unconfirmed_off.push(format!("lock-in sine off not confirmed: {e}"));
    }
    if let Err(e) = &heater_off {
        unconfirmed_off.push(format!("heater off not confirmed: {e}"));
    }
    problems.extend(unconfirmed_off.iter().cloned());
    let mut note = |r: Result<(), vegard_store::StoreError>| {
        if let Err(e) = r {
            problems.push(e.to_string());
        }
    };
    let text = |e: &dyn std::fmt::Display| e.to_string();
    if let Some(reason) = &abort_reason {
        let reason = reason.to_string();
        progress(RunEvent::Aborting {
            reason: reason.clone(),
        });
        note(
            ctx.events
                .append("abort", clock.now_ns(), json!({"reason": reason})),
        );
    }
    note(ctx.events.append(
        "cell_off",
        clock.now_ns(),
        json!({"ok": off.is_ok(), "error": off.as_ref().err().map(|e| text(e))}),
    ));
    if needs_lockin && inst.lockin.is_some() {
        note(ctx.events.append(
            "lockin_sine_off",
            clock.now_ns(),
            json!({"ok": sine_off.is_ok(), "error": sine_off.as_ref().err().map(|e| text(e))}),
        ));
    }
    if sets_temperature && inst.temperature.is_some() {
        note(ctx.events.append(
            "heater_off",
            clock.now_ns(),
            json!({"ok": heater_off.is_ok(), "error": heater_off.as_ref().err().map(|e| text(e))}),
        ));
    }

    // Stop the potentiostat thread; a device that went silent must not hang us.
    stop_pstat.store(true, Ordering::SeqCst);
    drop(cmd_tx);
    drop(pmsg_rx);
    if let Some(t) = pstat_thread {
        let wait = secs(inst.potentiostat.timeout_s.max(0.5) + 1.0);
        let now = std::time::Instant::now();
        let deadline = now
            .checked_add(wait)
            .unwrap_or(now + Duration::from_secs(3600));
        while !t.is_finished() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if t.is_finished() {
            let _ = t.join();
        } // else: left detached; the process or the next read timeout ends it
    }
    // Best effort: the digitizer is harmless, but leave it idle.
    if let Some(d) = dmm.as_mut() {
        let _ = tokio::time::timeout(Duration::from_secs(2), d.abort()).await;
    }
    note(pstat_raw.flush());
    note(dmm_raw.flush());
    note(eis_raw.flush());
    note(lockin_raw.flush());
    drop(pstat_raw);
    drop(dmm_raw);
    drop(eis_raw);
    drop(lockin_raw);

    let status = if abort_reason.is_some() || !problems.is_empty() {
        RunStatus::Aborted
    } else {
        RunStatus::Complete
    };
    let reason = match (&abort_reason, problems.is_empty()) {
        (r, true) => r.as_ref().map(ToString::to_string),
        (Some(r), false) => Some(format!("{r}; while stopping: {}", problems.join("; "))),
        (None, false) => Some(format!("while stopping: {}", problems.join("; "))),
    };
    let _ = events.append(
        "run_end",
        clock.now_ns(),
        json!({"status": status.to_string(), "reason": reason}),
    );
    // Before finalising: a bench that fell behind served values that are
    // not the model's, and finalisation must withhold what derives from them.
    meta.deflection_readings_lost = readings_lost;
    if let Some(why) = req.resources.bench_health.as_ref().and_then(|h| (h.0)()) {
        let _ = events.append("bench_overrun", clock.now_ns(), json!({"reason": why}));
        meta.bench_overrun = Some(why);
    }
    if let Some(release) = &req.resources.release_bench {
        (release.0)();
    }
    meta.status = status;
    meta.reason = reason.clone();
    let meta_written = writer.write_meta(&meta);
    progress(RunEvent::Finalizing);
    let (summary, finalize_error) = match meta_written
        .map_err(EngineError::from)
        .and_then(|()| finalize_run(&run_dir, status, reason.clone()).map_err(EngineError::from))
    {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(e)),
    };
    Ok(RunOutcome {
        run_dir,
        status,
        abort: abort_reason,
        reason,
        summary,
        cell_off_error: off.err(),
        unconfirmed_off,
        finalize_error,
        bench_overrun: meta.bench_overrun.clone(),
    })
}

struct Ctx<'a> {
    req: &'a RunRequest,
    clock: HostClock,
    speed: f64,
    events: &'a mut EventLog,
    pstat_raw: &'a mut RawStream,
    dmm_raw: &'a mut RawStream,
    eis_raw: &'a mut RawStream,
    lockin_raw: &'a mut RawStream,
    lockin: Option<Box<dyn LockIn>>,
    safe: &'a SafeOff,
    /// Host time the potentiostat thread last received anything from the
    /// device: the silence watchdog's measure, independent of how far
    /// behind this task is in processing what was received.
    last_heard_ns: &'a AtomicI64,
    seq_p: i64,
    seq_d: i64,
    seq_e: i64,
    seq_l: i64,
    plan_len: usize,
    segment: i64,
    total_s: f64,
    done_s: f64,
    /// Segments whose digitizer lost readings (memory overflow).
    readings_lost: Vec<i64>,
}

/// Holds the run between steps while paused: the previous technique has
/// switched the cell off, the digitizer is idle, the stage keeps its
/// setpoint. Returns when resumed, or the stop reason when stopped.
async fn wait_while_paused(
    ctx: &mut Ctx<'_>,
    next_step: usize,
    pause: &mut watch::Receiver<bool>,
    notes: &mut tokio::sync::mpsc::UnboundedReceiver<RunEvent>,
    cancel: &mut StopRx,
    progress: &mut impl FnMut(RunEvent),
) -> StepResult {
    let clock = ctx.clock;
    ctx.events
        .append("paused", clock.now_ns(), json!({"next_step": next_step}))?;
    progress(RunEvent::Paused(true));
    loop {
        tokio::select! {
            // Resumed, or the control task ended (an Err: nobody could
            // resume any more, so go on rather than hang).
            _ = pause.wait_for(|p| !*p) => break,
            Some(p) = notes.recv() => progress(p),
            _ = cancel.wait_for(Option::is_some) => {
                return Err(AbortReason::StopRequested);
            }
        }
    }
    ctx.events
        .append("resumed", clock.now_ns(), json!({"next_step": next_step}))?;
    progress(RunEvent::Paused(false));
    Ok(())
}

async fn wait_step(wall_s: f64, cancel: &mut StopRx) -> StepResult {
    tokio::select! {
        _ = tokio::time::sleep(secs(wall_s)) => Ok(()),
        _ = cancel.wait_for(Option::is_some) => Err(AbortReason::StopRequested),
    }
}

/// One recording step (OCP or CV): arm the digitizer, start the technique,
/// supervise until the potentiostat finishes. Returns the probe back unless
/// its task died with it.
#[allow(clippy::too_many_arguments)]
async fn record_step(
    ctx: &mut Ctx<'_>,
    step_index: usize,
    planned: &PlannedStep,
    mut dmm: Box<dyn DeflectionProbe>,
    cmd_tx: &std::sync::mpsc::Sender<PstatCmd>,
    pmsg_rx: &mut mpsc::UnboundedReceiver<PstatMsg>,
    cancel: &mut StopRx,
    progress: &mut impl FnMut(RunEvent),
) -> (StepResult, Option<Box<dyn DeflectionProbe>>) {
    let step = &planned.step;
    let inst = &ctx.req.bench.instruments;
    let limits = &ctx.req.recipe.limits;
    let dt_dmm_s = deflection_interval_s(ctx.req);
    let duration_s = step.duration_s();
    let Some(technique) = Technique::from_step(step, &inst.potentiostat) else {
        return (Ok(()), Some(dmm)); // nothing to record (wait)
    };
    // The acquisition the recipe check accepted: blocks pinned to repeated
    // sync edges, or one burst (EIS, capped at the meter's SAMP:COUN).
    let acquisition =
        match vegard_recipe::deflection_acquisition(step, dt_dmm_s, inst.deflection.max_samples) {
            Ok(vegard_recipe::DeflectionAcquisition::Single { count }) => {
                vegard_recipe::DeflectionAcquisition::Single {
                    count: count.min(inst.deflection.max_samples),
                }
            }
            Ok(a) => a,
            Err(why) => {
                let error = InstrumentError::Device {
                    role: "dmm",
                    resource: inst.deflection.resource.to_string(),
                    fault: vegard_instruments::Fault::InvalidSetting(why),
                };
                return (
                    Err(AbortReason::DeviceFault {
                        device: Device::Digitizer,
                        error,
                    }),
                    Some(dmm),
                );
            }
        };
    // The longest the device may legitimately stay quiet: one sample
    // interval, or one impedance point (two periods at the lowest frequency).
    let quiet_s = match step {
        Step::Eis(e) => e
            .frequencies_Hz()
            .iter()
            .map(|&f| vegard_recipe::eis_point_duration_s(f))
            .fold(e.equilibrate_s, f64::max),
        _ => technique.sample_interval_s(),
    };
    // What the progress line counts: CV cycles, potential-step levels,
    // ESM frequencies or impedance points (as the plan rows count them).
    let cycles = vegard_recipe::step_cycles(step);
    // ESM sweep: the lock-in's sine out drives the cell (through the
    // potentiostat's external input); one frequency per CA loop.
    let esm = match step {
        Step::EsmSweep(e) => Some(EsmDrive {
            freqs_Hz: e.frequencies_Hz(),
            dwell_s: e.dwell_s(),
            sine_V_peak: e.amplitude_V
                / inst.lockin.as_ref().map_or(1.0, |l| l.sine_to_cell_V_per_V),
        }),
        _ => None,
    };
    let mut esm_switched_ns: i64 = 0;
    let mut esm_loops_done: u32 = 0;
    let mut esm_tc_s = f64::NAN;
    if let Some(d) = &esm {
        match d.switch(ctx.lockin.as_mut(), 0).await {
            Ok(tc) => {
                esm_tc_s = tc;
                esm_switched_ns = ctx.clock.now_ns();
            }
            Err(e) => return (Err(e), Some(dmm)),
        }
    }
    let segment = ctx.segment;
    ctx.segment += 1;

    let setup = DigitizerSetup {
        sample_interval_s: dt_dmm_s,
        count: acquisition.readings_per_trigger(),
        triggers: acquisition.triggers(),
        range_V: inst.deflection.range_V,
        trigger: DigitizerTrigger::External,
    };
    let digitizer = |error| AbortReason::DeviceFault {
        device: Device::Digitizer,
        error,
    };
    if let Err(e) = dmm.configure(setup).await {
        return (Err(digitizer(e)), Some(dmm));
    }
    if let Err(e) = dmm.arm().await {
        return (Err(digitizer(e)), Some(dmm));
    }
    let _ = ctx.events.append(
        "digitizer_armed",
        ctx.clock.now_ns(),
        json!({
            "segment": segment,
            "sample_interval_s": dt_dmm_s,
            "count": acquisition.readings_per_trigger(),
            "triggers": acquisition.triggers(),
            "sync_every_samples": acquisition.sync_every_samples(),
            "block_period_s": match acquisition {
                vegard_recipe::DeflectionAcquisition::Blocks(p) => Some(p.block_period_s),
                vegard_recipe::DeflectionAcquisition::Single { .. } => None,
            },
        }),
    );

    // Digitizer task: poll R? about every 10 ms of wall time until told to
    // stop. Frequent polls keep memory low and give the clock fit many
    // receive stamps close to the newest reading.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (batch_tx, mut batch_rx) = mpsc::unbounded_channel::<Result<DmmBatch, InstrumentError>>();
    let clock = ctx.clock;
    let fault = ctx.req.fault;
    let mut dmm_task = tokio::spawn(async move {
        let res = digitizer_loop(&mut *dmm, stop_rx, batch_tx, clock, fault).await;
        (res, dmm)
    });

    // Last chance to honour a Ctrl-C before the cell goes on.
    if cancel.borrow().is_some()
        || cmd_tx
            .send(PstatCmd::Start(technique, acquisition.sync_every_samples()))
            .is_err()
    {
        let _ = stop_tx.send(true);
        let probe = dmm_task.await.ok().map(|(_, d)| d);
        let why = if cancel.borrow().is_some() {
            AbortReason::StopRequested
        } else {
            AbortReason::PotentiostatThreadStopped
        };
        return (Err(why), probe);
    }

    let step_start_ns = ctx.clock.now_ns();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    // A device that keeps streaming past the step's end is as wrong as a silent one.
    let deadline_ns = step_start_ns
        + ((duration_s / ctx.speed * 1.5 + inst.potentiostat.timeout_s.max(2.0) + 2.0) * 1e9)
            as i64;
    let mut last_event_ns = step_start_ns;
    let silence_limit_ns = (silence_limit_s(
        quiet_s,
        ctx.speed,
        inst.potentiostat.baud,
        inst.potentiostat.timeout_s,
    ) * 1e9) as i64;
    let mut dmm_index: i64 = 0;
    let mut last = (f64::NAN, f64::NAN, f64::NAN, 0u32);
    let invols = inst.deflection.invols_nm_per_V;
    let [w_lo, w_hi] = limits.potential_window_V;
    let margin_V = 0.05 * (w_hi - w_lo).abs().max(0.1);
    let mut finished = false;
    let mut outcome: StepResult = Ok(());
    // Set when the digitizer task ended on its own (always a fault): the
    // probe, if the task handed it back.
    let mut dmm_done: Option<Option<Box<dyn DeflectionProbe>>> = None;

    while !finished {
        tokio::select! {
            msg = pmsg_rx.recv() => match msg {
                None => { outcome = Err(AbortReason::PotentiostatTaskEnded); break; }
                Some(PstatMsg::Error(error)) => {
                    outcome = Err(AbortReason::DeviceFault { device: Device::Potentiostat, error });
                    break;
                }
                Some(PstatMsg::Event { host_ns, event }) => {
                    last_event_ns = host_ns;
                    match event {
                        PstatEvent::Sample { index, t_dev_s, E_V, I_A, status, scan } => {
                            // At open circuit the instrument measures only
                            // E; no current can flow, so the current is 0 A
                            // (as EC-Lab records an OCV period), not missing:
                            // a table that starts at open circuit then types
                            // as numbers in polars and pandas. Missing (NaN)
                            // only where the cell was connected and the
                            // instrument gave no current.
                            let I_A = I_A.unwrap_or(if matches!(step, Step::Ocp(_)) { 0.0 } else { f64::NAN });
                            // 1-based CV cycle, potential-step level or ESM
                            // frequency; 0 at open circuit.
                            let cycle = if matches!(step, Step::Ocp(_)) { 0 } else { scan as i64 + 1 };
                            let row = PotentiostatRow {
                                seq: ctx.seq_p, step: step_index as i64, segment,
                                index: index as i64, cycle, t_dev_s,
                                host_ns, E_V, I_A, status: i64::from(status),
                            };
                            ctx.seq_p += 1;
                            if let Err(e) = ctx.pstat_raw.append(&row.cells()) {
                                outcome = Err(e.into()); break;
                            }
                            last.0 = E_V; last.1 = I_A; last.3 = cycle.max(0) as u32;
                            // An overloaded reading is clipped to the range's
                            // full scale: at the limit it means beyond it.
                            let overload = status & vegard_instruments::methodscript::status::OVERLOAD != 0;
                            if I_A.is_finite()
                                && (I_A.abs() > limits.current_max_A
                                    || (overload && I_A.abs() >= limits.current_max_A))
                            {
                                outcome = Err(AbortReason::CurrentLimit {
                                    step: step_index, sample: index,
                                    I_abs_A: I_A.abs(), current_max_A: limits.current_max_A,
                                });
                                break;
                            }
                            if E_V.is_finite() && (E_V < w_lo - margin_V || E_V > w_hi + margin_V) {
                                outcome = Err(AbortReason::PotentialLimit {
                                    step: step_index, sample: index, E_V, low_V: w_lo, high_V: w_hi,
                                });
                                break;
                            }
                        }
                        PstatEvent::DeviceError { code, detail } => {
                            outcome = Err(AbortReason::PotentiostatError { code, detail });
                            break;
                        }
                        PstatEvent::Finished => finished = true,
                        PstatEvent::ScanEnd { scan } => {
                            let _ = ctx.events.append("scan_end", host_ns, json!({"step": step_index, "scan": scan}));
                        }
                        PstatEvent::LoopEnd => {
                            // In an ESM sweep each CA loop is one frequency.
                            let scan = esm_loops_done;
                            esm_loops_done += 1;
                            if let Some(d) = &esm {
                                // The frequency just finished: read the hardware
                                // lock-in, then switch the sine to the next one.
                                if let Err(e) = d.record(ctx, step_index, scan, esm_switched_ns, esm_tc_s).await {
                                    outcome = Err(e); break;
                                }
                                let next = scan as usize + 1;
                                if next < d.freqs_Hz.len() {
                                    match d.switch(ctx.lockin.as_mut(), next).await {
                                        Ok(tc) => { esm_tc_s = tc; esm_switched_ns = ctx.clock.now_ns(); }
                                        Err(e) => { outcome = Err(e); break; }
                                    }
                                }
                            }
                        }
                        PstatEvent::Impedance { index, f_Hz, Z_re_ohm, Z_im_ohm, status } => {
                            let row = EisRow {
                                seq: ctx.seq_e, step: step_index as i64, segment,
                                index: index as i64, host_ns, f_Hz,
                                Z_re_ohm, Z_im_ohm, status: i64::from(status),
                            };
                            ctx.seq_e += 1;
                            if let Err(e) = ctx.eis_raw.append(&row.cells()) {
                                outcome = Err(e.into()); break;
                            }
                            last.3 = index as u32 + 1;
                        }
                        _ => {}
                    }
                }
            },
            batch = batch_rx.recv() => match batch {
                Some(Ok(b)) => {
                    if let Err(e) = append_readings(ctx, &b, step_index, segment, &mut dmm_index, &acquisition, dt_dmm_s) {
                        outcome = Err(e.into());
                        break;
                    }
                    if let Some(v) = b.readings_V.last() { last.2 = v * invols; }
                }
                Some(Err(e)) => { outcome = Err(digitizer(e)); break; }
                None => {} // task finished; its JoinHandle tells how
            },
            joined = &mut dmm_task, if dmm_done.is_none() => {
                // How it ended is the abort reason; the probe, if it came
                // back, is kept for the next step.
                let (failed, probe) = match joined {
                    Err(e) if e.is_panic() => (AbortReason::DeflectionTaskPanicked, None),
                    Err(e) => (AbortReason::DeflectionTaskFailed(e), None),
                    Ok((Err(e), probe)) => (digitizer(e), Some(probe)),
                    Ok((Ok(()), probe)) => (AbortReason::DeflectionTaskStopped, Some(probe)),
                };
                dmm_done = Some(probe);
                outcome = Err(failed);
                break;
            },
            _ = cancel.wait_for(Option::is_some) => { outcome = Err(AbortReason::StopRequested); break; }
            _ = tick.tick() => {
                let now = ctx.clock.now_ns();
                let _ = ctx.pstat_raw.flush_if_due();
                let _ = ctx.dmm_raw.flush_if_due();
                if now > deadline_ns {
                    outcome = Err(AbortReason::StepOverran {
                        step: step_index,
                        late_s: (now - step_start_ns) as f64 * 1e-9 - duration_s / ctx.speed,
                    });
                    break;
                }
                // Silence is the device's, not ours: a line received but
                // still queued for this (busy) task counts as heard.
                let heard_ns = last_event_ns.max(ctx.last_heard_ns.load(Ordering::SeqCst));
                if now - heard_ns > silence_limit_ns {
                    outcome = Err(AbortReason::PotentiostatSilent {
                        silent_s: (now - heard_ns) as f64 * 1e-9,
                    });
                    break;
                }
                let in_step_s = (now - step_start_ns) as f64 * 1e-9 * ctx.speed;
                let elapsed_s = ctx.done_s + in_step_s.min(duration_s);
                let _ = ctx.eis_raw.flush_if_due();
                progress(RunEvent::Latest { E_V: last.0, I_A: last.1, deflection_nm: last.2 });
                progress(RunEvent::Progress {
                    step: step_index, count: ctx.plan_len, kind: step.kind_name().to_string(),
                    cycle: last.3, cycles, elapsed_s, eta_s: (ctx.total_s - elapsed_s).max(0.0),
                });
            }
        }
    }

    // A fault: the cell goes off before anything else (digitizer teardown
    // can take seconds). The run's exit path sends the sequence again.
    if outcome.is_err() {
        let _ = ctx.safe.switch_off();
    }
    if esm.is_some()
        && let Some(l) = ctx.lockin.as_mut()
        && let Err(e) = l.sine_off().await
    {
        outcome = outcome.and(Err(AbortReason::SineOff(e)));
    }
    // Stop the digitizer: a last fetch collects readings up to now. After a
    // normal end, first let it take two more samples: the potentiostat's
    // last sample is only aligned if a deflection sample follows it, and on
    // a loaded machine the end can arrive before that one was taken (seen:
    // the last aligned row without deflection in 3 of 18 LSV runs).
    if outcome.is_ok() && dmm_done.is_none() {
        let wait_s = 2.0 * dt_dmm_s / ctx.speed.max(1e-9);
        tokio::time::sleep(secs(wait_s.min(1.0))).await;
    }
    let _ = stop_tx.send(true);
    // The task's own result and the probe, or why the probe is gone. When
    // the task ended early, `outcome` already holds its failure.
    let joined: Result<DmmReturn, AbortReason> = match dmm_done {
        Some(Some(probe)) => Ok((Ok(()), probe)),
        Some(None) => Err(AbortReason::DeflectionProbeLost),
        None => match tokio::time::timeout(Duration::from_secs(5), &mut dmm_task).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) if e.is_panic() => Err(AbortReason::DeflectionTaskPanicked),
            Ok(Err(e)) => Err(AbortReason::DeflectionTaskFailed(e)),
            Err(_) => {
                dmm_task.abort();
                return (outcome.and(Err(AbortReason::DigitizerStuck)), None);
            }
        },
    };
    while let Ok(b) = batch_rx.try_recv() {
        if let Ok(b) = b
            && let Err(e) = append_readings(
                ctx,
                &b,
                step_index,
                segment,
                &mut dmm_index,
                &acquisition,
                dt_dmm_s,
            )
        {
            outcome = outcome.and(Err(e.into()));
        }
    }
    // The step's last rows go to disk now, not at the next flush tick: a
    // following wait step appends nothing and would leave them buffered.
    if let Err(e) = ctx
        .pstat_raw
        .flush()
        .and(ctx.dmm_raw.flush())
        .and(ctx.eis_raw.flush())
        .and(ctx.lockin_raw.flush())
    {
        outcome = outcome.and(Err(e.into()));
    }
    match joined {
        Ok((res, mut probe)) => {
            let mut outcome = match (outcome, res) {
                (Ok(()), Err(e)) => Err(digitizer(e)),
                (o, _) => o,
            };
            // Readings lost to a full memory shift every later one off its
            // index: the segment is flagged (run.toml), not silently kept.
            match probe.readings_lost().await {
                Ok(false) => {}
                Ok(true) => {
                    let _ = ctx.events.append(
                        "digitizer_readings_lost",
                        ctx.clock.now_ns(),
                        json!({"segment": segment, "readings_recorded": dmm_index}),
                    );
                    ctx.readings_lost.push(segment);
                }
                Err(e) => outcome = outcome.and(Err(digitizer(e))),
            }
            (outcome, Some(probe))
        }
        Err(why) => (outcome.and(Err(why)), None),
    }
}

/// The digitizer's sample interval for this recipe: the recipe's override
/// (long runs need fewer readings) or the bench's.
pub(crate) fn deflection_interval_s(req: &RunRequest) -> f64 {
    req.recipe
        .run
        .deflection_sample_interval_s
        .unwrap_or(req.bench.instruments.deflection.sample_interval_s)
}

/// How an ESM sweep drives the lock-in.
struct EsmDrive {
    freqs_Hz: Vec<f64>,
    dwell_s: Vec<f64>,
    sine_V_peak: f64,
}

impl EsmDrive {
    /// Switch the sine to frequency `k`; returns the time constant set, s.
    /// A thirtieth of the dwell is asked for (the instrument rounds up to
    /// its 1-3-10 table, so at most a tenth): with the synchronous filter
    /// there is no 2f ripple to suppress, so the shortest time constant
    /// that averages noise settles best within the dwell.
    async fn switch(
        &self,
        lockin: Option<&mut Box<dyn LockIn>>,
        k: usize,
    ) -> Result<f64, AbortReason> {
        let Some(l) = lockin else {
            return Err(AbortReason::NoLockIn);
        };
        let (Some(&f_Hz), Some(&dwell_s)) = (self.freqs_Hz.get(k), self.dwell_s.get(k)) else {
            return Err(AbortReason::EsmFrequencyOutOfRange(k));
        };
        let tc = l
            .set_time_constant(dwell_s / 30.0)
            .await
            .map_err(lockin_fault)?;
        l.set_sine(f_Hz, self.sine_V_peak)
            .await
            .map_err(lockin_fault)?;
        Ok(tc)
    }

    /// Read the lock-in at the end of frequency `scan` into `lockin.csv`.
    async fn record(
        &self,
        ctx: &mut Ctx<'_>,
        step_index: usize,
        scan: u32,
        switched_ns: i64,
        tc_s: f64,
    ) -> StepResult {
        let Some(l) = ctx.lockin.as_mut() else {
            return Err(AbortReason::LockInLost);
        };
        let r = l.read_xy().await.map_err(lockin_fault)?;
        let row = LockInRow {
            seq: ctx.seq_l,
            step: step_index as i64,
            freq_index: i64::from(scan),
            f_Hz: self
                .freqs_Hz
                .get(scan as usize)
                .copied()
                .unwrap_or(f64::NAN),
            switched_host_ns: switched_ns,
            host_ns: ctx.clock.now_ns(),
            x_V_rms: r.x_V_rms,
            y_V_rms: r.y_V_rms,
            time_constant_s: tc_s,
        };
        ctx.seq_l += 1;
        Ok(ctx.lockin_raw.append(&row.cells())?)
    }
}

fn lockin_fault(error: InstrumentError) -> AbortReason {
    AbortReason::DeviceFault {
        device: Device::LockIn,
        error,
    }
}

/// Append one `R?` batch to the raw deflection stream; readings are indexed
/// from the segment's first edge. Device time: one sample interval apart
/// on the meter's timebase within a block, each block starting at its own
/// edge on the potentiostat's timebase (`BlockPlan::reading_time_s`).
fn append_readings(
    ctx: &mut Ctx<'_>,
    b: &DmmBatch,
    step_index: usize,
    segment: i64,
    dmm_index: &mut i64,
    acquisition: &vegard_recipe::DeflectionAcquisition,
    dt_dmm_s: f64,
) -> Result<(), vegard_store::StoreError> {
    for v in &b.readings_V {
        let t_dev_s = match acquisition {
            vegard_recipe::DeflectionAcquisition::Blocks(p) => {
                p.reading_time_s(u64::try_from(*dmm_index).unwrap_or(0))
            }
            vegard_recipe::DeflectionAcquisition::Single { .. } => *dmm_index as f64 * dt_dmm_s,
        };
        let row = DeflectionRow {
            seq: ctx.seq_d,
            step: step_index as i64,
            segment,
            index: *dmm_index,
            t_dev_s,
            host_ns: b.host_ns,
            V: *v,
        };
        ctx.dmm_raw.append(&row.cells())?;
        ctx.seq_d += 1;
        *dmm_index += 1;
    }
    Ok(())
}

async fn digitizer_loop(
    dmm: &mut dyn DeflectionProbe,
    mut stop: watch::Receiver<bool>,
    tx: mpsc::UnboundedSender<Result<DmmBatch, InstrumentError>>,
    clock: HostClock,
    fault: Option<EngineFault>,
) -> Result<(), InstrumentError> {
    let mut fetches = 0u32;
    let after_fetches =
        fault.map(|EngineFault::PanicInDeflectionTask { after_fetches }| after_fetches);
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(10)) => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        let readings_V = dmm.fetch().await?;
        let host_ns = clock.now_ns();
        fetches += 1;
        if after_fetches.is_some_and(|n| fetches >= n) {
            panic!("injected fault: deflection task panics after {fetches} fetches");
        }
        if !readings_V.is_empty()
            && tx
                .send(Ok(DmmBatch {
                    host_ns,
                    readings_V,
                }))
                .is_err()
        {
            return Ok(());
        }
        if stopping {
            let _ = dmm.abort().await;
            return Ok(());
        }
    }
}

/// Seconds as a `Duration`, saturating: negative or NaN is zero, too large
/// is the longest `Duration` (validation bounds every duration a recipe or
/// config can give; this keeps a run folder's stored values from panicking).
fn secs(s: f64) -> Duration {
    if s.is_nan() || s <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX)
    }
}

/// Longest the potentiostat may stay silent during a technique before the
/// run is aborted as "potentiostat silent", wall seconds:
///
/// - `3 * quiet_s / speed`: by design the device is quiet for up to one
///   sample interval (one impedance point, or the equilibration, in EIS),
///   at the run's speed; three of them, so one late package is not a fault;
/// - the line time of the longest package at the serial `baud` (8N1: 10
///   bits per byte), so a slow link is not taken for a silent device;
/// - the reply timeout `timeout_s`, at least [`MIN_SILENCE_SLACK_S`]: what
///   a busy host may take to schedule the threads in between (the device's
///   UART, the OS's serial driver, the potentiostat thread). Lines received
///   but still queued for the run's task count as heard, so a run task
///   slowed by host load does not count.
pub(crate) fn silence_limit_s(quiet_s: f64, speed: f64, baud: u32, timeout_s: f64) -> f64 {
    let line_s = f64::from(MAX_PACKAGE_BYTES) * 10.0 / f64::from(baud.max(1));
    3.0 * quiet_s / speed.max(1e-9) + line_s + timeout_s.max(MIN_SILENCE_SLACK_S)
}

/// Longest data package line a MethodSCRIPT device sends, bytes (EIS:
/// frequency, Z', Z'' with metadata, about 60; doubled).
const MAX_PACKAGE_BYTES: u32 = 128;
/// Least slack the silence watchdog allows beyond the technique's own quiet
/// time, s. The watchdog exists for hung instruments and pulled cables,
/// which stay silent for good; a few seconds more before calling them
/// costs nothing, while a false alarm ends a run.
pub(crate) const MIN_SILENCE_SLACK_S: f64 = 3.0;

fn potentiostat_thread(
    pstat: &mut dyn Potentiostat,
    cmds: std::sync::mpsc::Receiver<PstatCmd>,
    tx: mpsc::UnboundedSender<PstatMsg>,
    clock: HostClock,
    stop: &AtomicBool,
    last_heard_ns: &AtomicI64,
) {
    while let Ok(PstatCmd::Start(technique, sync_every_samples)) = cmds.recv() {
        if let Err(e) = pstat.start_synced(&technique, sync_every_samples) {
            let _ = tx.send(PstatMsg::Error(e));
            continue;
        }
        loop {
            match pstat.read_event(Duration::from_millis(100)) {
                Ok(Some(event)) => {
                    let host_ns = clock.now_ns();
                    last_heard_ns.store(host_ns, Ordering::SeqCst);
                    let end = matches!(event, PstatEvent::Finished);
                    if tx.send(PstatMsg::Event { host_ns, event }).is_err() {
                        return;
                    }
                    if end {
                        break;
                    }
                }
                Ok(None) => {
                    if tx.is_closed() || stop.load(Ordering::SeqCst) {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(PstatMsg::Error(e));
                    break;
                }
            }
        }
    }
}

fn to_table<T: serde::Serialize>(v: &T) -> toml::Table {
    toml::Table::try_from(v).unwrap_or_default()
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo's CV (a sample every 10 ms at 230400 baud, 2 s reply
    /// timeout) may be silent 3.04 s; a 1 s sample interval at 10x speed
    /// adds 0.3 s; a long timeout raises the slack above its minimum.
    #[test]
    fn silence_limit_follows_interval_speed_link_and_timeout() {
        let demo = silence_limit_s(0.01, 1.0, 230_400, 2.0);
        assert!(
            (demo - (0.03 + 1280.0 / 230_400.0 + 3.0)).abs() < 1e-12,
            "{demo}"
        );
        let slow = silence_limit_s(1.0, 10.0, 230_400, 2.0);
        assert!(
            (slow - (0.3 + 1280.0 / 230_400.0 + 3.0)).abs() < 1e-12,
            "{slow}"
        );
        let patient = silence_limit_s(0.01, 1.0, 9600, 10.0);
        assert!(
            (patient - (0.03 + 1280.0 / 9600.0 + 10.0)).abs() < 1e-12,
            "{patient}"
        );
    }
}
