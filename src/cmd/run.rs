//! `vegard run`: a recipe on a bench, with the dashboard or progress lines,
//! and the summary with the exit status of how the run ended.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{Context, Result};
use vegard_core::RunEvent;
use vegard_engine::{EngineFault, Resources, RunRequest, StopCause};
use vegard_sim::VirtualBench;
use vegard_store::RunStatus;

use crate::cmd::sim::{emulator_resources, sim_params};
use crate::dashboard;
use crate::input::{BadInput, load_checked};
use crate::progress::ProgressPrinter;
use crate::terminal::{TERMINAL_POLL, Ttys};

pub async fn cmd_run(
    recipe_path: PathBuf,
    bench: Option<PathBuf>,
    out: PathBuf,
    speed: Option<f64>,
    json: bool,
    tui: bool,
    fault: Option<EngineFault>,
) -> Result<ExitCode> {
    let (recipe, bench_cfg, bench_path) = load_checked(&recipe_path, bench.as_deref())?;
    // The one check of --speed against the bench (clap checked its range):
    // time acceleration exists only on the virtual bench.
    let uses_sim = bench_cfg.instruments.uses_sim();
    if let Some(s) = speed.filter(|s| !uses_sim && (s - 1.0).abs() > 1e-12) {
        return Err(BadInput(format!(
            "--speed {s}: time acceleration applies only to the virtual bench \
             (resource = \"sim\"); {} drives real instruments, which run in real time",
            bench_path.display()
        ))
        .into());
    }
    recover_stale_runs(&out, json || tui);
    // The virtual bench lives until the run has ended (dropping it shuts it
    // down); the engine only sees its emulators' resources.
    let virtual_bench = if uses_sim {
        Some(VirtualBench::start(&sim_params(&bench_cfg, speed))?)
    } else {
        None
    };
    let resources = Resources::resolve(
        &bench_cfg.instruments,
        virtual_bench.as_ref().map(emulator_resources).as_ref(),
    )?;

    let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(None);
    let stopper = Arc::new(Stopper::new(cancel_tx, tui));
    spawn_stop_signals(stopper.clone())?;
    spawn_terminal_watch(stopper.clone());

    // Kept for choosing the headline CV step of the summary.
    let recipe_for_summary = recipe.clone();
    let req = RunRequest {
        recipe,
        recipe_path: recipe_path.clone(),
        bench: bench_cfg,
        bench_path,
        out_dir: out,
        resources,
        fault,
        control: None,
    };
    let started = Instant::now();
    let outcome = if tui {
        run_with_dashboard(req, stopper.clone(), cancel_rx).await?
    } else {
        let mut printer = ProgressPrinter::new(started);
        let stop = stopper.clone();
        let progress = move |p: RunEvent| {
            if json {
                return;
            }
            printer.print(&p);
            if printer.terminal_lost() {
                stop.stop(StopCause::TerminalLost, true);
            }
        };
        let r = vegard_engine::run(req, cancel_rx, progress).await;
        if let Ok(o) = &r {
            stopper.run_ended(exit_status(o));
        }
        r?
    };
    drop(virtual_bench);
    let wall_s = started.elapsed().as_secs_f64();
    // The first CV step, unless its segment's clock is not trustworthy
    // (then no kappa is printed: the clock issue is, below).
    let dvc = outcome
        .summary
        .as_ref()
        .and_then(|s| {
            vegard_pipeline::headline_cv(&s.cv_steps, &s.analysis_errors, &recipe_for_summary)
                .ok()
                .flatten()
        })
        .map(|c| &c.analysis.deformation_vs_charge);
    let align_err = outcome
        .summary
        .as_ref()
        .and_then(|s| s.alignment_error_estimate_s);
    if let Some(e) = &outcome.cell_off_error {
        let _ = writeln!(
            std::io::stderr(),
            "WARNING: the potentiostat did not confirm the switch-off ({e}): THE CELL MAY STILL BE ON. \
             Check the potentiostat now."
        );
    }
    for what in &outcome.unconfirmed_off {
        let _ = writeln!(
            std::io::stderr(),
            "WARNING: {what}: the sine out / heater MAY STILL BE ON. Check the instrument now."
        );
    }
    if let Some(e) = &outcome.finalize_error {
        let _ = writeln!(
            std::io::stderr(),
            "vegard: finalising failed: {e}\n  the raw data is kept in {}/raw; retry with: vegard recover {}",
            outcome.run_dir.display(),
            outcome.run_dir.display()
        );
    }
    let analysis_errors: Vec<vegard_pipeline::AnalysisIssue> = outcome
        .summary
        .as_ref()
        .map(|s| s.analysis_errors.clone())
        .unwrap_or_default();
    if json {
        let v = serde_json::json!({
            "run_dir": outcome.run_dir,
            "status": outcome.status.to_string(),
            "reason": outcome.reason,
            "cell_off_error": outcome.cell_off_error.as_ref().map(ToString::to_string),
            "unconfirmed_off": outcome.unconfirmed_off,
            "finalize_error": outcome.finalize_error.as_ref().map(ToString::to_string),
            "analysis_errors": analysis_errors,
            "wall_s": wall_s,
            "alignment_error_estimate_s": align_err,
            "deformation_vs_charge": dvc,
        });
        let _ = writeln!(std::io::stdout().lock(), "{v}");
    } else {
        // Put together, then written once: the run is over and recorded, so
        // a terminal that is gone by now must not change the exit status.
        let mut o: Vec<u8> = Vec::new();
        let _ = writeln!(o, "\nrun {} in {:.1} s wall", outcome.status, wall_s);
        if let Some(r) = &outcome.reason {
            let _ = writeln!(o, "  reason:    {r}");
        }
        let _ = writeln!(o, "  run folder: {}", outcome.run_dir.display());
        if let Some(d) = dvc {
            let _ = writeln!(
                o,
                "  kappa:     {:+.4} ± {:.4} nm/mC  (95 % interval [{:+.4}, {:+.4}]; R² = {:.4}, {} cycle{}, deformation vs faradaic charge)",
                d.slope_nm_per_mC,
                d.slope_se_nm_per_mC,
                d.slope_ci95_nm_per_mC[0],
                d.slope_ci95_nm_per_mC[1],
                d.r2,
                d.per_cycle.len(),
                if d.per_cycle.len() == 1 { "" } else { "s" }
            );
        }
        for e in &analysis_errors {
            let _ = writeln!(o, "  analysis:  {e}");
        }
        for a in outcome
            .summary
            .iter()
            .flat_map(|s| vegard_pipeline::alignment_issues(&s.alignment))
        {
            let _ = writeln!(o, "  alignment: {a}");
        }
        if let Some(e) = align_err {
            let _ = writeln!(o, "  clock alignment error estimate: {:.1} µs", e * 1e6);
        }
        let _ = writeln!(
            o,
            "  next:      vegard analyze {} --json",
            outcome.run_dir.display()
        );
        let _ = std::io::stdout().lock().write_all(&o);
    }
    let clock_untrusted = analysis_errors
        .iter()
        .any(|i| i.kind == vegard_pipeline::IssueKind::Clock);
    if let Some(why) = &outcome.bench_overrun {
        let _ = writeln!(
            std::io::stderr(),
            "WARNING: {why}; results that depend on the recorded data are withheld"
        );
    } else if clock_untrusted {
        let _ = writeln!(
            std::io::stderr(),
            "WARNING: the run's time alignment is not trustworthy (clock drift beyond ±{} ppm: \
             do the bench and the run agree on the speed?); results that depend on it are withheld",
            vegard_pipeline::DRIFT_BOUND_PPM
        );
    }
    Ok(ExitCode::from(exit_status(&outcome)))
}

/// The exit status of a run that ended (README, exit status): 4 when
/// something that drives or heats the sample was not confirmed off, 5 when
/// recorded but its time alignment is untrusted (or the virtual bench fell
/// behind: every segment untrusted), 0 complete, 1 complete but
/// not finalised, 3 aborted or failed.
fn exit_status(outcome: &vegard_engine::RunOutcome) -> u8 {
    let clock_untrusted = outcome.summary.as_ref().is_some_and(|s| {
        s.analysis_errors
            .iter()
            .any(|i| i.kind == vegard_pipeline::IssueKind::Clock)
    });
    let unsafe_end = outcome.cell_off_error.is_some() || !outcome.unconfirmed_off.is_empty();
    match (unsafe_end, outcome.status) {
        (true, _) => 4,
        (false, RunStatus::Complete) if outcome.finalize_error.is_none() && clock_untrusted => 5,
        (false, RunStatus::Complete) if outcome.finalize_error.is_none() => 0,
        (false, RunStatus::Complete) => 1,
        _ => 3,
    }
}

/// Who stops `vegard run`, and how: shared by the signal handlers, the
/// terminal watch, the progress lines and the dashboard.
///
/// While the run goes on, a stop (Ctrl-C, SIGTERM, SIGHUP, a lost
/// terminal) goes to the engine, which switches the cell off and finalises
/// the folder; further stops are absorbed so an impatient second Ctrl-C
/// cannot kill vegard halfway through switching the cell off. Once the
/// engine has returned, everything is recorded: a stop then ends the process
/// at once with the run's exit status, so no process is ever left behind on
/// a dead terminal or deaf to SIGTERM.
pub struct Stopper {
    cancel: tokio::sync::watch::Sender<Option<StopCause>>,
    /// The exit status once the engine has returned; −1 before.
    ended_code: AtomicI32,
    /// A stop came from outside the dashboard (a signal, a lost terminal):
    /// the dashboard closes at the run's end instead of waiting for `q`.
    external: tokio::sync::watch::Sender<bool>,
    /// The dashboard has the terminal (alternate screen, raw mode), to be
    /// given back before an immediate exit.
    tui: bool,
}

impl Stopper {
    pub fn new(cancel: tokio::sync::watch::Sender<Option<StopCause>>, tui: bool) -> Self {
        Stopper {
            cancel,
            ended_code: AtomicI32::new(-1),
            external: tokio::sync::watch::Sender::new(false),
            tui,
        }
    }

    /// Stop the run for `cause` (the first cause is the one recorded), or
    /// end the process if the run has already ended. `external`: not the
    /// dashboard's own abort key.
    pub fn stop(&self, cause: StopCause, external: bool) {
        let code = self.ended_code.load(Ordering::SeqCst);
        if code >= 0 {
            self.exit_now(code);
        }
        if external {
            self.external.send_replace(true);
        }
        self.cancel.send_if_modified(|c| {
            let first = c.is_none();
            if first {
                *c = Some(cause);
            }
            first
        });
    }

    /// Whether a stop is under way (the engine is switching off and saving).
    pub fn stopping(&self) -> bool {
        self.cancel.borrow().is_some()
    }

    /// The engine returned with exit status `code`: from now on a stop ends
    /// the process at once.
    pub fn run_ended(&self, code: u8) {
        self.ended_code.store(i32::from(code), Ordering::SeqCst);
    }

    /// Gives the terminal back if the dashboard had it, then exits. Only
    /// called once the run folder is final.
    fn exit_now(&self, code: i32) -> ! {
        if self.tui {
            vegard_tui::restore_terminal();
        }
        std::process::exit(code)
    }
}

/// The run with the dashboard on this terminal: engine reports and the run
/// folder's data go to the view; its keys come back as pause, markers and
/// abort. If the view fails because the terminal is gone (EIO, EPIPE, a
/// hangup), the run is stopped as for SIGHUP; if it fails otherwise (or is
/// left with `q`), the run goes on to its end and the summary is printed as
/// usual.
pub async fn run_with_dashboard(
    mut req: RunRequest,
    stopper: Arc<Stopper>,
    cancel_rx: vegard_engine::StopRx,
) -> Result<vegard_engine::RunOutcome> {
    let (dash_tx, dash_rx) = tokio::sync::mpsc::unbounded_channel();
    let (cmd_tx, cmd_rx) = tokio::sync::mpsc::unbounded_channel();
    let (ctl_tx, ctl_rx) = tokio::sync::mpsc::unbounded_channel();
    req.control = Some(ctl_rx);
    dashboard::spawn_command_forwarder(cmd_rx, ctl_tx, stopper.clone());
    let progress_tx = dash_tx.clone();
    let progress = move |p: RunEvent| {
        if let RunEvent::Started { run_dir, .. } = &p {
            dashboard::spawn_run_tailer(run_dir.clone(), progress_tx.clone());
        }
        let _ = progress_tx.send(p);
    };
    let run_over = tokio::sync::watch::Sender::new(false);
    let mut ended = run_over.subscribe();
    let engine_stopper = stopper.clone();
    let engine = async move {
        let r = vegard_engine::run(req, cancel_rx, progress).await;
        let (status, reason) = match &r {
            Ok(o) => {
                engine_stopper.run_ended(exit_status(o));
                (o.status.to_string(), o.reason.clone())
            }
            Err(e) => ("failed".to_string(), Some(e.to_string())),
        };
        let _ = dash_tx.send(RunEvent::Finished { status, reason });
        run_over.send_replace(true);
        r
    };
    // Stopped from outside (a signal, a lost terminal): nobody is there to
    // press q, so the view closes when the run is over.
    let mut external = stopper.external.subscribe();
    let leave = async move {
        let _ = external.wait_for(|e| *e).await;
        let _ = ended.wait_for(|e| *e).await;
    };
    let view_stopper = stopper.clone();
    let view = async move {
        let r =
            vegard_tui::run_dashboard_until(vegard_tui::Mode::Run, dash_rx, Some(cmd_tx), leave)
                .await;
        if let Err(e) = &r
            && view_failed_with_terminal(e)
        {
            view_stopper.stop(StopCause::TerminalLost, true);
        }
        r
    };
    let (outcome, view) = tokio::join!(engine, view);
    if let Err(e) = view
        && !stopper.stopping()
    {
        let _ = writeln!(
            std::io::stderr(),
            "vegard: dashboard: {e} (the run went on; its data is in the run folder)"
        );
    }
    Ok(outcome?)
}

/// Whether the dashboard failed because its terminal is gone.
fn view_failed_with_terminal(e: &vegard_tui::TuiError) -> bool {
    let gone =
        matches!(e, vegard_tui::TuiError::Terminal(io) if crate::terminal::is_terminal_gone(io));
    gone || Ttys::detect_initial().hung_up()
}

/// Ctrl-C (SIGINT) and SIGTERM mean "stop safely"; SIGHUP means the
/// terminal is gone and stops the same safe way, recorded as "terminal
/// lost". After the run has ended, any of them ends the process at once
/// (see [`Stopper`]).
pub fn spawn_stop_signals(stopper: Arc<Stopper>) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    tokio::spawn(async move {
        loop {
            let (name, cause) = tokio::select! {
                _ = int.recv() => ("Ctrl-C", StopCause::Requested),
                _ = term.recv() => ("SIGTERM", StopCause::Requested),
                _ = hup.recv() => ("SIGHUP", StopCause::TerminalLost),
            };
            let again = stopper.stopping();
            stopper.stop(cause, true);
            if again && cause == StopCause::Requested {
                // Ignored when the terminal is gone, as everything said to it.
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "{name} again: already stopping (cell off, saving data), please wait"
                );
            }
        }
    });
    Ok(())
}

/// Watches the standard streams that were terminals at start for a hangup
/// (see `crate::terminal`) and stops the run (or, after it, the process)
/// when one is seen.
pub fn spawn_terminal_watch(stopper: Arc<Stopper>) {
    let ttys = Ttys::detect_initial();
    if !ttys.any() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TERMINAL_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            if ttys.hung_up() {
                stopper.stop(StopCause::TerminalLost, true);
            }
        }
    });
}

/// A run folder still marked `running` that no live process holds was
/// interrupted: recover it before starting anything new (DESIGN.md, run
/// folder). A run another `vegard` is recording holds its lock and is skipped.
pub fn recover_stale_runs(out: &Path, quiet: bool) {
    let Ok(entries) = std::fs::read_dir(out) else {
        return;
    };
    for e in entries.flatten() {
        let dir = e.path();
        let Ok(meta) = vegard_store::read_meta(&dir) else {
            continue;
        };
        // A live run holds its lock: leave it alone.
        if meta.status != RunStatus::Running || vegard_store::claim_run(&dir).is_err() {
            continue;
        }
        match vegard_pipeline::recover_run(&dir) {
            Ok(_) if !quiet => eprintln!("recovered interrupted run {}", dir.display()),
            Ok(_) => {}
            Err(err) => eprintln!("vegard: could not recover {}: {err}", dir.display()),
        }
    }
}
