//! `vegard run`: a recipe on a bench, with the dashboard or progress lines,
//! and the summary with the exit status of how the run ended.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use vegard_core::RunEvent;
use vegard_engine::{EngineFault, Resources, RunRequest};
use vegard_sim::VirtualBench;
use vegard_store::RunStatus;

use crate::cmd::sim::{emulator_resources, sim_params};
use crate::dashboard;
use crate::input::{BadInput, load_checked};
use crate::progress::ProgressPrinter;

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

    let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
    let cancel_tx = std::sync::Arc::new(cancel_tx);
    spawn_stop_signals(cancel_tx.clone())?;

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
        run_with_dashboard(req, cancel_tx, cancel_rx).await?
    } else {
        let mut printer = ProgressPrinter::new(started);
        let progress = move |p: RunEvent| {
            if json {
                return;
            }
            printer.print(&p);
        };
        vegard_engine::run(req, cancel_rx, progress).await?
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
        println!("{v}");
    } else {
        let mut o = std::io::stdout().lock();
        writeln!(o, "\nrun {} in {:.1} s wall", outcome.status, wall_s)?;
        if let Some(r) = &outcome.reason {
            writeln!(o, "  reason:    {r}")?;
        }
        writeln!(o, "  run folder: {}", outcome.run_dir.display())?;
        if let Some(d) = dvc {
            writeln!(
                o,
                "  kappa:     {:+.4} ± {:.4} nm/mC  (95 % interval [{:+.4}, {:+.4}]; R² = {:.4}, {} cycle{}, deformation vs faradaic charge)",
                d.slope_nm_per_mC,
                d.slope_se_nm_per_mC,
                d.slope_ci95_nm_per_mC[0],
                d.slope_ci95_nm_per_mC[1],
                d.r2,
                d.per_cycle.len(),
                if d.per_cycle.len() == 1 { "" } else { "s" }
            )?;
        }
        for e in &analysis_errors {
            writeln!(o, "  analysis:  {e}")?;
        }
        for a in outcome
            .summary
            .iter()
            .flat_map(|s| vegard_pipeline::alignment_issues(&s.alignment))
        {
            writeln!(o, "  alignment: {a}")?;
        }
        if let Some(e) = align_err {
            writeln!(o, "  clock alignment error estimate: {:.1} µs", e * 1e6)?;
        }
        writeln!(
            o,
            "  next:      vegard analyze {} --json",
            outcome.run_dir.display()
        )?;
    }
    let clock_untrusted = analysis_errors
        .iter()
        .any(|i| i.kind == vegard_pipeline::IssueKind::Clock);
    if clock_untrusted {
        let _ = writeln!(
            std::io::stderr(),
            "WARNING: the run's time alignment is not trustworthy (clock drift beyond ±{} ppm: \
             do the bench and the run agree on the speed?); results that depend on it are withheld",
            vegard_pipeline::DRIFT_BOUND_PPM
        );
    }
    // 4: something that drives or heats the sample was not confirmed off.
    let unsafe_end = outcome.cell_off_error.is_some() || !outcome.unconfirmed_off.is_empty();
    Ok(match (unsafe_end, outcome.status) {
        (true, _) => ExitCode::from(4),
        // 5: recorded, but its analysis cannot be trusted (as for reports).
        (false, RunStatus::Complete) if outcome.finalize_error.is_none() && clock_untrusted => {
            ExitCode::from(5)
        }
        (false, RunStatus::Complete) if outcome.finalize_error.is_none() => ExitCode::SUCCESS,
        (false, RunStatus::Complete) => ExitCode::from(1),
        _ => ExitCode::from(3),
    })
}

/// The run with the dashboard on this terminal: engine reports and the run
/// folder's data go to the view; its keys come back as pause, markers and
/// abort. If the view fails (or is left), the run goes on to its end and the
/// summary is printed as usual.
pub async fn run_with_dashboard(
    mut req: RunRequest,
    cancel_tx: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    cancel_rx: tokio::sync::watch::Receiver<bool>,
) -> Result<vegard_engine::RunOutcome> {
    let (dash_tx, dash_rx) = tokio::sync::mpsc::unbounded_channel();
    let (cmd_tx, cmd_rx) = tokio::sync::mpsc::unbounded_channel();
    let (ctl_tx, ctl_rx) = tokio::sync::mpsc::unbounded_channel();
    req.control = Some(ctl_rx);
    dashboard::spawn_command_forwarder(cmd_rx, ctl_tx, cancel_tx);
    let progress_tx = dash_tx.clone();
    let progress = move |p: RunEvent| {
        if let RunEvent::Started { run_dir, .. } = &p {
            dashboard::spawn_run_tailer(run_dir.clone(), progress_tx.clone());
        }
        let _ = progress_tx.send(p);
    };
    let engine = async move {
        let r = vegard_engine::run(req, cancel_rx, progress).await;
        let (status, reason) = match &r {
            Ok(o) => (o.status.to_string(), o.reason.clone()),
            Err(e) => ("failed".to_string(), Some(e.to_string())),
        };
        let _ = dash_tx.send(RunEvent::Finished { status, reason });
        r
    };
    let view = vegard_tui::run_dashboard(vegard_tui::Mode::Run, dash_rx, Some(cmd_tx));
    let (outcome, view) = tokio::join!(engine, view);
    if let Err(e) = view {
        let _ = writeln!(
            std::io::stderr(),
            "vegard: dashboard: {e} (the run went on; its data is in the run folder)"
        );
    }
    Ok(outcome?)
}

/// Ctrl-C (SIGINT), SIGTERM and SIGHUP all mean "stop safely": the engine
/// switches the cell off and saves the data. Repeated signals are absorbed
/// (the handlers stay installed) so an impatient second Ctrl-C cannot kill
/// vegard halfway through switching the cell off.
pub fn spawn_stop_signals(cancel: std::sync::Arc<tokio::sync::watch::Sender<bool>>) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    tokio::spawn(async move {
        let mut count = 0u32;
        loop {
            let name = tokio::select! {
                _ = int.recv() => "Ctrl-C",
                _ = term.recv() => "SIGTERM",
                _ = hup.recv() => "SIGHUP",
            };
            count += 1;
            if count == 1 {
                let _ = cancel.send(true);
            } else {
                let mut e = std::io::stderr().lock();
                let _ = writeln!(
                    e,
                    "{name} again: already stopping (cell off, saving data), please wait"
                );
            }
        }
    });
    Ok(())
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
