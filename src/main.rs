//! `vegard`: the command line. Thin by design: it parses arguments once,
//! turns them into checked requests, and hands them to the library crates.
//!
//! Exit status: 0 success, 1 runtime failure, 2 bad input (recipe, bench
//! config or arguments: message `FILE:LINE:COL: ...` on stderr), 3 a run that
//! ended `aborted` (cell switched off, data saved), 4 the switch-off sequence
//! could not be sent (the cell may be on), 5 a report was written but an
//! analysis it needs failed (the reasons are printed and in the report),
//! 130 stopped by Ctrl-C before the run started (nothing recorded).

mod dashboard;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use vegard_engine::{EngineFault, Progress, RunRequest};
use vegard_recipe::{BenchConfig, Recipe, RecipeError};
use vegard_store::RunStatus;

/// The default bench, compiled in so `vegard run` works from any folder.
const BUILTIN_SIM_BENCH: &str = include_str!("../configs/sim.toml");
const DEFAULT_BENCH: &str = "configs/sim.toml";

#[derive(Parser)]
#[command(
    name = "vegard",
    version,
    about = "In-situ electrochemistry + electrochemical strain microscopy",
    long_about = "Runs TOML recipes on a potentiostat and a passive AFM probe sharing one clock, \
                  and analyses deformation vs charge. Without hardware everything runs on the \
                  built-in virtual bench (configs/sim.toml)."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a recipe on a bench and finalise the run folder.
    Run {
        /// Recipe file (see recipes/).
        recipe: PathBuf,
        /// Bench config; default configs/sim.toml (the virtual bench).
        #[arg(long)]
        bench: Option<PathBuf>,
        /// Parent folder for run folders.
        #[arg(long, default_value = "runs")]
        out: PathBuf,
        /// Time acceleration of the virtual bench (simulated s per wall s).
        #[arg(long)]
        speed: Option<f64>,
        /// Print one JSON object instead of progress lines.
        #[arg(long)]
        json: bool,
        /// Progress lines instead of the dashboard, even on a terminal (the
        /// dashboard opens only when stdin and stdout are terminals).
        #[arg(long)]
        no_tui: bool,
        /// Testing only: make an engine task fail on purpose.
        #[arg(long, hide = true, value_parser = ["panic-deflection"])]
        inject_fault: Option<String>,
    },
    /// The dashboard on a run folder: live while `vegard run` records into
    /// it (from another terminal, e.g. over SSH), or a replay of a finished
    /// run. Read-only: q leaves.
    Watch {
        /// Run folder (runs/<UTC start>_<name>/).
        run: PathBuf,
    },
    /// Check a recipe (and its fit to a bench) without touching hardware.
    Validate {
        recipe: PathBuf,
        #[arg(long)]
        bench: Option<PathBuf>,
    },
    /// Serve the virtual bench standalone, or print its ground truth.
    Sim {
        /// Bench config; default configs/sim.toml (or the built-in copy).
        #[arg(long)]
        bench: Option<PathBuf>,
        /// Print the ground-truth quantities the bench implies, then exit.
        #[arg(long)]
        truth: bool,
        /// Time acceleration (overrides [sim] time_acceleration).
        #[arg(long)]
        speed: Option<f64>,
        /// Machine-readable output (JSON lines while serving).
        #[arg(long)]
        json: bool,
    },
    /// Analyse a finished run: deformation vs charge per CV step and cycle,
    /// circuit fits of EIS steps, film-transfer fits of ESM sweeps, and the
    /// Arrhenius comparison of tau_EIS and tau_ESM over temperature.
    Analyze {
        run: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Write a report of a finished run, or of a campaign (a folder of run
    /// folders): every plot and table as one self-contained HTML file,
    /// Markdown with SVG figures beside it, or JSON with every number.
    /// Exit status 5 when an analysis the report needs failed.
    Report {
        /// Run folder, or a folder of run folders (one report across them).
        run_or_folder: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "html")]
        format: ReportFormatArg,
        /// Output file; default `report.<ext>` in the run folder
        /// (`campaign-report.<ext>` in a campaign folder).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Report spec TOML: sections, their order, the circuit to fit
        /// (see README "Reports").
        #[arg(long)]
        spec: Option<PathBuf>,
    },
    /// Write a run's aligned table (shared clock: t_s, E_V, I_A,
    /// deflection_nm, T_K, step, cycle, ...) as CSV or Parquet.
    Export {
        run: PathBuf,
        #[arg(long, value_enum, default_value = "csv")]
        format: ExportFormatArg,
        /// Output file; default `aligned.<ext>` in the current folder.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Fit an equivalent circuit to an impedance spectrum (impedance.py
    /// circuit syntax) by complex nonlinear least squares.
    FitEis {
        /// A CSV of frequency (Hz), Z' (ohm), Z'' (ohm), or a run folder
        /// (with --step: one of its EIS steps).
        input: PathBuf,
        /// Circuit, e.g. "R0-p(R1-Wo1,C1)": `-` series, `p(a,b)` parallel,
        /// elements R C L W Wo Ws CPE.
        #[arg(long, default_value = "R0-p(R1-Wo1,C1)")]
        circuit: String,
        /// Initial guess, comma separated in parameter order (default:
        /// estimated from the spectrum).
        #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
        guess: Option<Vec<f64>>,
        /// Residual weighting: unit, modulus or proportional.
        #[arg(long, default_value = "unit")]
        weight: String,
        /// Keep only points with Z'' < 0 (capacitive), as impedance.py's
        /// ignoreBelowX does.
        #[arg(long)]
        capacitive_only: bool,
        /// Also run the lin-KK (Kramers-Kronig) validity test.
        #[arg(long)]
        kk: bool,
        /// Plan step index of the EIS step when INPUT is a run folder.
        #[arg(long)]
        step: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Turn the folder of a run whose process died into a readable run
    /// (status `interrupted`).
    Recover {
        run: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// Bad input: printed as is, exit status 2.
#[derive(Debug)]
struct BadInput(String);

#[derive(Clone, Copy, clap::ValueEnum)]
enum ReportFormatArg {
    Html,
    Md,
    Json,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormatArg {
    Csv,
    Parquet,
}
impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for BadInput {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Library warnings (e.g. the safety path firing) go to stderr; RUST_LOG
    // turns on more (`RUST_LOG=vegard_instruments=debug`). While the
    // dashboard owns the terminal they would garble it: they go to
    // `<out>/vegard-dashboard.log` instead.
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
    };
    let log_file = match &cli.cmd {
        Cmd::Run {
            out, json, no_tui, ..
        } if dashboard_wanted(*json, *no_tui) => std::fs::create_dir_all(out)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(out.join("vegard-dashboard.log"))
            })
            .ok(),
        _ => None,
    };
    match (log_file, &cli.cmd) {
        (Some(f), _) => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::sync::Mutex::new(f))
            .with_ansi(false)
            .init(),
        (None, Cmd::Watch { .. }) => {}
        (None, _) => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .with_target(false)
            .init(),
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vegard: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            if let Some(b) = e.downcast_ref::<BadInput>() {
                eprintln!("{b}");
                ExitCode::from(2)
            } else if matches!(
                e.downcast_ref::<vegard_engine::EngineError>(),
                Some(vegard_engine::EngineError::Cancelled)
            ) {
                eprintln!("vegard: {e}");
                ExitCode::from(130)
            } else {
                eprintln!("vegard: error: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}

/// `vegard run` opens the dashboard only for a person at a terminal:
/// stdin and stdout both terminals, and neither `--json` nor `--no-tui`.
fn dashboard_wanted(json: bool, no_tui: bool) -> bool {
    !json && !no_tui && std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::Run {
            recipe,
            bench,
            out,
            speed,
            json,
            no_tui,
            inject_fault,
        } => {
            let fault =
                inject_fault.map(|_| EngineFault::PanicInDeflectionTask { after_fetches: 100 });
            let tui = dashboard_wanted(json, no_tui);
            cmd_run(recipe, bench, out, speed, json, tui, fault).await
        }
        Cmd::Watch { run } => cmd_watch(&run).await,
        Cmd::Validate { recipe, bench } => cmd_validate(&recipe, bench.as_deref()),
        Cmd::Sim {
            bench,
            truth,
            speed,
            json,
        } => cmd_sim(bench.as_deref(), truth, speed, json).await,
        Cmd::Analyze { run, json } => cmd_analyze(&run, json),
        Cmd::Report {
            run_or_folder,
            format,
            out,
            spec,
        } => cmd_report(&run_or_folder, format, out, spec.as_deref()),
        Cmd::Export { run, format, out } => cmd_export(&run, format, out),
        Cmd::Recover { run, json } => cmd_recover(&run, json),
        Cmd::FitEis {
            input,
            circuit,
            guess,
            weight,
            capacitive_only,
            kk,
            step,
            json,
        } => cmd_fit_eis(
            &input,
            &circuit,
            guess.as_deref(),
            &weight,
            capacitive_only,
            kk,
            step,
            json,
        ),
    }
}

/// Any bad-input error (unreadable file, unusable data): exit status 2.
fn bad_input(e: impl std::fmt::Display) -> anyhow::Error {
    BadInput(e.to_string()).into()
}

fn bad(e: RecipeError) -> anyhow::Error {
    anyhow::Error::new(BadInput(e.to_string()))
}

/// Load the bench: the given file, else configs/sim.toml, else the built-in copy.
fn load_bench(path: Option<&Path>) -> Result<(BenchConfig, PathBuf)> {
    match path {
        Some(p) => Ok((vegard_recipe::load_bench(p).map_err(bad)?, p.to_path_buf())),
        None => {
            let p = PathBuf::from(DEFAULT_BENCH);
            if p.exists() {
                Ok((vegard_recipe::load_bench(&p).map_err(bad)?, p))
            } else {
                let b =
                    vegard_recipe::parse_bench(BUILTIN_SIM_BENCH, "<built-in configs/sim.toml>")
                        .map_err(bad)?;
                Ok((b, PathBuf::from("<built-in configs/sim.toml>")))
            }
        }
    }
}

fn load_checked(
    recipe_path: &Path,
    bench: Option<&Path>,
) -> Result<(Recipe, BenchConfig, PathBuf)> {
    let src = vegard_recipe::Source::read(recipe_path).map_err(bad)?;
    let recipe = vegard_recipe::parse_recipe(&src.text, &src.file).map_err(bad)?;
    let (bench, bench_path) = load_bench(bench)?;
    vegard_recipe::validate_with_bench(&recipe, &src, &bench).map_err(bad)?;
    Ok((recipe, bench, bench_path))
}

fn cmd_validate(recipe_path: &Path, bench: Option<&Path>) -> Result<ExitCode> {
    let (recipe, _bench, bench_path) = load_checked(recipe_path, bench)?;
    let plan = recipe.plan();
    let total = recipe.duration_s();
    println!(
        "{}: ok on bench {}",
        recipe_path.display(),
        bench_path.display()
    );
    println!(
        "  {} recipe steps -> {} planned steps, ~{:.0} s of experiment ({})",
        recipe.steps.len(),
        plan.len(),
        total,
        human_duration(total)
    );
    // The expanded plan, one line per step, so a campaign can be checked
    // before it occupies the bench for hours.
    for (k, p) in plan.iter().enumerate() {
        let label = match (p.label.sweep_iteration, p.label.setpoint_K) {
            (Some(i), Some(sp)) => format!("  [sweep {} @ {:.2} C]", i + 1, sp - 273.15),
            (None, Some(sp)) => format!("  [@ {:.2} C]", sp - 273.15),
            _ => String::new(),
        };
        let at_least = if matches!(p.step, vegard_recipe::Step::Temperature(_)) {
            ">="
        } else {
            ""
        };
        let dur = format!("{at_least}{:.1} s", p.step.duration_s());
        println!(
            "  {:>3}. {:<12} {dur:>10}{label}",
            k + 1,
            p.step.kind_name()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn cmd_run(
    recipe_path: PathBuf,
    bench: Option<PathBuf>,
    out: PathBuf,
    speed: Option<f64>,
    json: bool,
    tui: bool,
    fault: Option<EngineFault>,
) -> Result<ExitCode> {
    if let Some(s) = speed.filter(|s| !(s.is_finite() && *s > 0.0 && *s <= 1000.0)) {
        return Err(BadInput(format!("--speed {s}: must be > 0 and <= 1000")).into());
    }
    let (recipe, bench_cfg, bench_path) = load_checked(&recipe_path, bench.as_deref())?;
    let inst = &bench_cfg.instruments;
    let virtual_bench = inst.potentiostat.resource == "sim" || inst.deflection.resource == "sim";
    if let Some(s) = speed.filter(|s| !virtual_bench && (s - 1.0).abs() > 1e-12) {
        return Err(BadInput(format!(
            "--speed {s}: time acceleration applies only to the virtual bench \
             (resource = \"sim\"); {} drives real instruments, which run in real time",
            bench_path.display()
        ))
        .into());
    }
    recover_stale_runs(&out, json || tui);

    let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
    let cancel_tx = std::sync::Arc::new(cancel_tx);
    spawn_stop_signals(cancel_tx.clone())?;

    let req = RunRequest {
        recipe,
        recipe_path: recipe_path.clone(),
        bench: bench_cfg,
        bench_path,
        out_dir: out,
        speed,
        fault,
        virtual_bench: None,
        control: None,
    };
    let started = Instant::now();
    let outcome = if tui {
        run_with_dashboard(req, cancel_tx, cancel_rx).await?
    } else {
        let mut last_print: Option<Instant> = None;
        let progress = move |p: Progress| {
            if json {
                return;
            }
            print_progress(&p, &mut last_print, started);
        };
        vegard_engine::run(req, cancel_rx, progress).await?
    };
    let wall_s = started.elapsed().as_secs_f64();
    let dvc = outcome
        .summary
        .as_ref()
        .and_then(|s| s.cv_steps.first())
        .map(|c| &c.analysis.deformation_vs_charge);
    let align_err = outcome
        .summary
        .as_ref()
        .and_then(|s| s.alignment_error_estimate_s);
    if let Some(e) = &outcome.cell_off_error {
        let _ = writeln!(
            std::io::stderr(),
            "WARNING: the switch-off sequence could not be sent ({e}): THE CELL MAY STILL BE ON. \
             Check the potentiostat now."
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
    let analysis_errors: Vec<String> = outcome
        .summary
        .as_ref()
        .map(|s| s.analysis_errors.clone())
        .unwrap_or_default();
    if json {
        let v = serde_json::json!({
            "run_dir": outcome.run_dir,
            "status": outcome.status.to_string(),
            "reason": outcome.reason,
            "cell_off_error": outcome.cell_off_error,
            "finalize_error": outcome.finalize_error,
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
                "  kappa:     {:+.4} ± {:.4} nm/mC  (R² = {:.4}, {} cycle{}, deformation vs faradaic charge)",
                d.slope_nm_per_mC,
                d.slope_se_nm_per_mC,
                d.r2,
                d.per_cycle.len(),
                if d.per_cycle.len() == 1 { "" } else { "s" }
            )?;
        }
        for e in &analysis_errors {
            writeln!(o, "  analysis:  {e}")?;
        }
        for a in outcome.summary.iter().flat_map(|s| &s.alignment) {
            if let Some(n) = &a.note {
                writeln!(o, "  alignment (step {}): {n}", a.step + 1)?;
            }
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
    Ok(match (&outcome.cell_off_error, outcome.status) {
        (Some(_), _) => ExitCode::from(4),
        (None, RunStatus::Complete) if outcome.finalize_error.is_none() => ExitCode::SUCCESS,
        (None, RunStatus::Complete) => ExitCode::from(1),
        _ => ExitCode::from(3),
    })
}

/// The run with the dashboard on this terminal: engine reports and the run
/// folder's data go to the view; its keys come back as pause, markers and
/// abort. If the view fails (or is left), the run goes on to its end and the
/// summary is printed as usual.
async fn run_with_dashboard(
    mut req: RunRequest,
    cancel_tx: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    cancel_rx: tokio::sync::watch::Receiver<bool>,
) -> Result<vegard_engine::RunOutcome> {
    let (dash_tx, dash_rx) = tokio::sync::mpsc::unbounded_channel();
    let (cmd_tx, cmd_rx) = tokio::sync::mpsc::unbounded_channel();
    let (ctl_tx, ctl_rx) = tokio::sync::mpsc::unbounded_channel();
    req.control = Some(ctl_rx);
    dashboard::spawn_command_forwarder(cmd_rx, ctl_tx, cancel_tx);
    let recipe = req.recipe.clone();
    let progress_tx = dash_tx.clone();
    let progress = move |p: Progress| {
        if let Progress::Started { run_dir, .. } = &p {
            dashboard::spawn_run_tailer(run_dir.clone(), progress_tx.clone());
        }
        for ev in dashboard::from_progress(&p, &recipe) {
            let _ = progress_tx.send(ev);
        }
    };
    let engine = async move {
        let r = vegard_engine::run(req, cancel_rx, progress).await;
        let (status, reason) = match &r {
            Ok(o) => (o.status.to_string(), o.reason.clone()),
            Err(e) => ("failed".to_string(), Some(e.to_string())),
        };
        let _ = dash_tx.send(vegard_tui::DashEvent::Finished { status, reason });
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

/// `vegard watch RUN`: the dashboard on a run folder, live while another
/// process records into it, or a replay of a finished run.
async fn cmd_watch(run: &Path) -> Result<ExitCode> {
    if !run.join("run.toml").exists() {
        return Err(BadInput(format!("{}: not a run folder (no run.toml)", run.display())).into());
    }
    if !(std::io::stdout().is_terminal() && std::io::stdin().is_terminal()) {
        return Err(BadInput(
            "vegard watch needs a terminal (stdin and stdout); for numbers use `vegard analyze RUN --json`"
                .into(),
        )
        .into());
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let dir = run.to_path_buf();
    tokio::spawn(async move {
        let _ = vegard_tui::tail_run_folder(dir, tx, dashboard::TAIL_POLL).await;
    });
    vegard_tui::run_dashboard(vegard_tui::Mode::Watch, rx, None)
        .await
        .context("dashboard")?;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C (SIGINT), SIGTERM and SIGHUP all mean "stop safely": the engine
/// switches the cell off and saves the data. Repeated signals are absorbed
/// (the handlers stay installed) so an impatient second Ctrl-C cannot kill
/// vegard halfway through switching the cell off.
fn spawn_stop_signals(cancel: std::sync::Arc<tokio::sync::watch::Sender<bool>>) -> Result<()> {
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

/// `5400 s` -> `1 h 30 min`; `95 s` -> `1 min 35 s`.
fn human_duration(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec} s"),
        (0, m, sec) => format!("{m} min {sec} s"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

fn print_progress(p: &Progress, last: &mut Option<Instant>, started: Instant) {
    // Progress must never stop a run: a closed or full stderr is ignored.
    let mut err = std::io::stderr().lock();
    match p {
        Progress::Started {
            run_dir,
            total_s,
            speed,
            potentiostat,
            deflection,
        } => {
            let _ = writeln!(err, "vegard run -> {}", run_dir.display());
            let _ = writeln!(err, "  potentiostat {potentiostat}");
            let _ = writeln!(err, "  deflection   {deflection}");
            let _ = writeln!(
                err,
                "  {:.1} s of experiment at {}x speed (~{:.0} s wall)",
                total_s,
                speed,
                total_s / speed
            );
        }
        Progress::StepStarted {
            index,
            count,
            kind,
            duration_s,
        } => {
            let _ = writeln!(
                err,
                "step {}/{} {kind}: {duration_s:.1} s",
                index + 1,
                count
            );
        }
        Progress::Tick {
            step,
            count,
            kind,
            cycle,
            cycles,
            elapsed_s,
            eta_s,
            E_V,
            I_A,
            deflection_nm,
        } => {
            // EIS reports impedance points, no potential samples.
            let quiet = E_V.is_nan() && *kind != "eis";
            if quiet || last.is_some_and(|l| l.elapsed().as_secs_f64() < 1.0) {
                return;
            }
            *last = Some(Instant::now());
            let cyc = if *kind == "cv" {
                format!("cycle {cycle}/{cycles}  ")
            } else if *kind == "steps" {
                format!("level {cycle}/{cycles}  ")
            } else if *kind == "esm_sweep" {
                format!("frequency {cycle}/{cycles}  ")
            } else if *kind == "eis" {
                format!("point {cycle}/{cycles}  ")
            } else {
                String::new()
            };
            // At open circuit there is no current to show.
            let current = if I_A.is_finite() {
                format!("I = {:+.3} mA", I_A * 1e3)
            } else {
                "I = (open circuit)".to_string()
            };
            let elec = if E_V.is_finite() {
                format!("E = {E_V:+.3} V  {current}  ")
            } else {
                String::new()
            };
            let _ = writeln!(
                err,
                "  [{:>5.1} s wall] step {}/{} {kind} {cyc}elapsed {:.1} s  ETA {:.1} s  {elec}deflection = {:+.2} nm",
                started.elapsed().as_secs_f64(),
                step + 1,
                count,
                elapsed_s,
                eta_s,
                deflection_nm
            );
        }
        Progress::Temperature {
            step,
            count,
            setpoint_K,
            T_K,
            stable_s,
            hold_s,
            elapsed_s,
            timeout_s,
        } => {
            if last.is_some_and(|l| l.elapsed().as_secs_f64() < 1.0) {
                return;
            }
            *last = Some(Instant::now());
            let _ = writeln!(
                err,
                "  [{:>5.1} s wall] step {}/{} temperature: {:.3} K -> setpoint {:.2} K, stable {:.0}/{:.0} s (waited {:.0} s of {:.0} s allowed)",
                started.elapsed().as_secs_f64(),
                step + 1,
                count,
                T_K,
                setpoint_K,
                stable_s,
                hold_s,
                elapsed_s,
                timeout_s
            );
        }
        Progress::Aborting { reason } => {
            let _ = writeln!(err, "ABORT: {reason} — cell switched off, saving data");
        }
        Progress::Finalizing => {
            let _ = writeln!(err, "finalising: clock alignment, Parquet, analysis");
        }
        Progress::Paused {
            paused: true,
            next_step,
        } => {
            let _ = writeln!(
                err,
                "paused before step {} (cell off); resume from the dashboard",
                next_step + 1
            );
        }
        Progress::Paused { paused: false, .. } => {
            let _ = writeln!(err, "resumed");
        }
        Progress::PauseRequested { requested } => {
            let _ = writeln!(
                err,
                "{}",
                if *requested {
                    "pause requested: the run pauses when the current step ends"
                } else {
                    "pause request withdrawn"
                }
            );
        }
        Progress::Marker { note, step } => {
            let at = step.map_or(String::new(), |s| format!(" (step {})", s + 1));
            let _ = writeln!(err, "marker{at}: {note}");
        }
    }
}

/// A run folder still marked `running` that no live process holds was
/// interrupted: recover it before starting anything new (DESIGN.md, run
/// folder). A run another `vegard` is recording holds its lock and is skipped.
fn recover_stale_runs(out: &Path, quiet: bool) {
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
        match vegard_engine::recover_run(&dir) {
            Ok(_) if !quiet => eprintln!("recovered interrupted run {}", dir.display()),
            Ok(_) => {}
            Err(err) => eprintln!("vegard: could not recover {}: {err}", dir.display()),
        }
    }
}

fn cmd_analyze(run: &Path, json: bool) -> Result<ExitCode> {
    let analysis =
        vegard_engine::analyze_run(run).with_context(|| format!("analysing {}", run.display()))?;
    let path = run.join("analysis.json");
    let text = serde_json::to_string_pretty(&analysis)?;
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    if json {
        println!("{text}");
    } else {
        let dvc = &analysis["deformation_vs_charge"];
        println!("{}", run.display());
        if dvc.is_null() {
            println!("  no CV step could be analysed");
        } else {
            println!(
                "  deformation vs faradaic charge: {:+.4} ± {:.4} nm/mC, R² = {:.4}",
                dvc["slope_nm_per_mC"].as_f64().unwrap_or(f64::NAN),
                dvc["slope_se_nm_per_mC"].as_f64().unwrap_or(f64::NAN),
                dvc["r2"].as_f64().unwrap_or(f64::NAN)
            );
            if let Some(cycles) = dvc["per_cycle"].as_array() {
                for c in cycles {
                    println!(
                        "    cycle {}: {:+.4} ± {:.4} nm/mC, R² = {:.4}",
                        c["cycle"],
                        c["slope_nm_per_mC"].as_f64().unwrap_or(f64::NAN),
                        c["slope_se_nm_per_mC"].as_f64().unwrap_or(f64::NAN),
                        c["r2"].as_f64().unwrap_or(f64::NAN)
                    );
                }
            }
            print_half_cycles(&dvc["per_half_cycle"]);
            let source = match dvc["C_dl_source"].as_str() {
                Some("eis") => match analysis["cv_steps"][0]["C_dl_eis_step"].as_i64() {
                    Some(step) => format!("from the EIS fit of step {step}"),
                    None => "from EIS".to_string(),
                },
                Some("vertex-jump") => "from the CV's vertex current jumps".to_string(),
                _ => "not removed".to_string(),
            };
            println!(
                "    C_dl = {:.1} µF ({source})",
                1e6 * dvc["C_dl_F"].as_f64().unwrap_or(f64::NAN)
            );
        }
        print_nonlinearity(&analysis["cv_steps"][0]);
        let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
        if let Some(fits) = analysis["eis_fits"].as_array() {
            for s in fits {
                println!(
                    "  EIS step {} at {:.2} K: tau = {:.3} ± {:.3} s, R_s + R_ct = {:.2} ohm ({})",
                    s["step"],
                    f(&s["T_K"]),
                    f(&s["tau_s"]),
                    f(&s["tau_se_s"]),
                    f(&s["R_series_ohm"]),
                    s["fit"]["circuit"].as_str().unwrap_or("")
                );
            }
        }
        if let Some(fits) = analysis["esm_fits"].as_array() {
            for s in fits {
                println!(
                    "  ESM step {} at {:.2} K: tau = {:.3} ± {:.3} s{}",
                    s["step"],
                    f(&s["T_K"]),
                    f(&s["fit"]["tau_s"]),
                    f(&s["fit"]["tau_se_s"]),
                    if s["eis_step"].is_null() {
                        " (not corrected for R_s + R_ct)"
                    } else {
                        ""
                    }
                );
            }
        }
        let arr = &analysis["arrhenius"];
        for method in ["eis", "esm"] {
            let a = &arr[method];
            if !a.is_null() {
                let ci = match a["ea_ci95_eV"].as_array().map(|v| v.as_slice()) {
                    Some([lo, hi]) => format!("95 % CI [{:.4}, {:.4}] eV", f(lo), f(hi)),
                    _ => "no interval (two temperatures)".to_string(),
                };
                println!(
                    "  Arrhenius ({}): Ea = {:.4} ± {:.4} eV ({:.1} kJ/mol), {ci}",
                    method.to_uppercase(),
                    f(&a["ea_eV"]),
                    f(&a["ea_se_eV"]),
                    f(&a["ea_kJ_per_mol"]),
                );
            }
        }
        let d = &arr["difference"];
        if !d.is_null() {
            println!(
                "  Ea(ESM) - Ea(EIS) = {:+.4} ± {:.4} eV",
                f(&d["diff_eV"]),
                f(&d["se_eV"])
            );
        }
        if let Some(errs) = analysis["analysis_errors"].as_array() {
            for e in errs {
                println!("  error: {}", e.as_str().unwrap_or(""));
            }
        }
        if let Some(warns) = analysis["analysis_warnings"].as_array() {
            for w in warns {
                println!("  warning: {}", w.as_str().unwrap_or(""));
            }
        }
        println!("  written: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `vegard report`: build the report document once and print it in the
/// chosen format.
fn cmd_report(
    path: &Path,
    format: ReportFormatArg,
    out: Option<PathBuf>,
    spec: Option<&Path>,
) -> Result<ExitCode> {
    use vegard_report::{Format, ReportError, ReportKind, ReportSpec, ReportStatus};
    let spec = match spec {
        Some(p) => ReportSpec::load(p).map_err(|e| match e {
            ReportError::Spec(msg) => anyhow::Error::new(BadInput(msg)),
            other => anyhow::Error::new(BadInput(other.to_string())),
        })?,
        None => ReportSpec::default(),
    };
    let format = match format {
        ReportFormatArg::Html => Format::Html,
        ReportFormatArg::Md => Format::Markdown,
        ReportFormatArg::Json => Format::Json,
    };
    if !path.exists() {
        return Err(BadInput(format!("{}: no such folder", path.display())).into());
    }
    let (kind, runs) = vegard_report::build::run_folders(path)?;
    eprintln!(
        "vegard report: analysing {} run(s) in {}",
        runs.len(),
        path.display()
    );
    let now = vegard_core::UtcStamp::now().rfc3339();
    let report = vegard_report::build_report(path, &spec, &now)?;
    let out = out.unwrap_or_else(|| {
        let stem = match kind {
            ReportKind::Run => "report",
            ReportKind::Campaign => "campaign-report",
        };
        path.join(format!("{stem}.{}", format.extension()))
    });
    let files = vegard_report::write_report(&report, format, &out)
        .with_context(|| format!("writing {}", out.display()))?;
    let n_fig: usize = report.sections.iter().map(|s| s.figures.len()).sum();
    let n_tab: usize = report.sections.iter().map(|s| s.tables.len()).sum();
    println!(
        "report: {} ({} sections, {} tables, {} figures{})",
        out.display(),
        report.sections.len(),
        n_tab,
        n_fig,
        if files.len() > 1 {
            format!(", {} figure files beside it", files.len() - 1)
        } else {
            String::new()
        }
    );
    if report.status == ReportStatus::AnalysisFailed {
        for f in &report.failures {
            eprintln!("vegard report: analysis failed: {f}");
        }
        return Ok(ExitCode::from(5));
    }
    Ok(ExitCode::SUCCESS)
}

/// `vegard export`: the aligned table as CSV or Parquet.
fn cmd_export(run: &Path, format: ExportFormatArg, out: Option<PathBuf>) -> Result<ExitCode> {
    use vegard_report::ExportFormat;
    let (format, ext) = match format {
        ExportFormatArg::Csv => (ExportFormat::Csv, "csv"),
        ExportFormatArg::Parquet => (ExportFormat::Parquet, "parquet"),
    };
    let out = out.unwrap_or_else(|| PathBuf::from(format!("aligned.{ext}")));
    let rows = vegard_report::export_aligned(run, format, &out)?;
    println!(
        "exported {rows} rows of {} -> {}",
        run.display(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Anodic and cathodic sweep slopes of `vegard analyze`, summarised: mean
/// and spread per direction (the full list is in analysis.json).
fn print_half_cycles(halves: &serde_json::Value) {
    let Some(halves) = halves.as_array() else {
        return;
    };
    for dir in ["anodic", "cathodic"] {
        let slopes: Vec<f64> = halves
            .iter()
            .filter(|h| h["direction"] == dir)
            .filter_map(|h| h["slope_nm_per_mC"].as_f64())
            .collect();
        if slopes.is_empty() {
            continue;
        }
        let mean = slopes.iter().sum::<f64>() / slopes.len() as f64;
        let (lo, hi) = slopes
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        println!(
            "    {dir} sweeps: {mean:+.4} nm/mC (mean of {}, range {lo:+.4} .. {hi:+.4})",
            slopes.len()
        );
    }
}

/// The nonlinearity section of one CV step: headline numbers and the
/// verdicts in words.
fn print_nonlinearity(step: &serde_json::Value) {
    let nl = &step["nonlinearity"];
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    if nl.is_null() {
        if let Some(note) = step["nonlinearity_note"].as_str() {
            println!("  nonlinearity: {note}");
        }
        return;
    }
    let g = &nl["regression"];
    println!(
        "  nonlinearity over {} periods of {:.2} s: THD u {:.1} %, Q_F {:.1} %, E {:.1} %; \
         lag of u behind Q_F {:+.1} ms",
        nl["n_periods"],
        f(&nl["period_s"]),
        100.0 * f(&nl["thd_u"]),
        100.0 * f(&nl["thd_Q_F"]),
        100.0 * f(&nl["thd_E"]),
        1e3 * f(&nl["lag_s"]),
    );
    println!(
        "    u = κQ + κ2Q² + βE + γE² + ...: κ = {:+.4} ± {:.4} nm/mC, κ2 = {:+.2e} ± {:.1e} nm/mC², \
         β = {:+.3} ± {:.3} nm/V, γ = {:+.3} ± {:.3} nm/V²",
        f(&g["kappa_nm_per_mC"]),
        f(&g["kappa_se_nm_per_mC"]),
        f(&g["kappa2_nm_per_mC2"]),
        f(&g["kappa2_se_nm_per_mC2"]),
        f(&g["beta_nm_per_V"]),
        f(&g["beta_se_nm_per_V"]),
        f(&g["gamma_nm_per_V2"]),
        f(&g["gamma_se_nm_per_V2"]),
    );
    if let Some(findings) = nl["findings"].as_array() {
        for line in findings {
            println!("    → {}", line.as_str().unwrap_or(""));
        }
    }
}

/// The spectrum of one EIS step of a run folder.
fn run_eis_spectrum(run: &Path, step: Option<i64>) -> Result<vegard_analysis::Spectrum> {
    let path = run.join("data/eis.parquet");
    let t = vegard_store::read_parquet(&path).map_err(bad_input)?;
    let steps = t.i64("step").map_err(bad_input)?;
    let mut available: Vec<i64> = steps.clone();
    available.dedup();
    let want = match step {
        Some(s) => s,
        None if available.len() == 1 => available[0],
        None => {
            return Err(BadInput(format!(
                "{}: {} EIS steps ({available:?}); choose one with --step",
                path.display(),
                available.len()
            ))
            .into());
        }
    };
    let (f, zr, zi) = (
        t.f64("f_Hz").map_err(bad_input)?,
        t.f64("Z_re_ohm").map_err(bad_input)?,
        t.f64("Z_im_ohm").map_err(bad_input)?,
    );
    let rows: Vec<usize> = (0..steps.len()).filter(|&i| steps[i] == want).collect();
    if rows.is_empty() {
        return Err(BadInput(format!(
            "{}: no EIS step {want} (steps with impedance data: {available:?})",
            path.display()
        ))
        .into());
    }
    Ok((
        rows.iter().map(|&i| f[i]).collect(),
        rows.iter().map(|&i| (zr[i], zi[i])).collect(),
    ))
}

#[allow(clippy::too_many_arguments)]
fn cmd_fit_eis(
    input: &Path,
    circuit: &str,
    guess: Option<&[f64]>,
    weight: &str,
    capacitive_only: bool,
    kk: bool,
    step: Option<i64>,
    json: bool,
) -> Result<ExitCode> {
    let circuit = vegard_analysis::Circuit::parse(circuit)
        .map_err(|e| BadInput(format!("--circuit {circuit:?}: {e}")))?;
    let weighting: vegard_analysis::EisWeighting = weight
        .parse()
        .map_err(|e| BadInput(format!("--weight: {e}")))?;
    let (mut f, mut z) = if input.is_dir() {
        run_eis_spectrum(input, step)?
    } else {
        vegard_analysis::read_eis_csv(input).map_err(bad_input)?
    };
    if capacitive_only {
        let keep: Vec<usize> = (0..f.len()).filter(|&i| z[i].1 < 0.0).collect();
        f = keep.iter().map(|&i| f[i]).collect();
        z = keep.iter().map(|&i| z[i]).collect();
    }
    let fit =
        vegard_analysis::fit_circuit(&circuit, &f, &z, guess, weighting).map_err(bad_input)?;
    let lin_kk = if kk {
        Some(vegard_analysis::lin_kk(&f, &z).map_err(bad_input)?)
    } else {
        None
    };
    if json {
        let mut v = serde_json::to_value(&fit)?;
        if let Some(k) = &lin_kk {
            v["kk"] = serde_json::to_value(k)?;
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{}: {} ({} points, {} weighting)",
            input.display(),
            fit.circuit,
            fit.n_points,
            weight
        );
        for ((name, v), (_, se)) in fit.parameters.iter().zip(&fit.stderr) {
            println!("  {name:<8} {v:>12.5e} ± {se:.2e}");
        }
        println!(
            "  rmse {:.3e} ohm, fit time {:.2} ms",
            fit.rmse_ohm,
            fit.fit_time_s * 1e3
        );
        if let Some(k) = &lin_kk {
            println!("  lin-KK: {}", serde_json::to_string(k)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_recover(run: &Path, json: bool) -> Result<ExitCode> {
    let s =
        vegard_engine::recover_run(run).with_context(|| format!("recovering {}", run.display()))?;
    if json {
        println!(
            "{}",
            serde_json::json!({"run_dir": run, "status": s.status, "aligned_rows": s.aligned_rows})
        );
    } else {
        println!(
            "{}: status {}, {} aligned rows",
            run.display(),
            s.status,
            s.aligned_rows
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn cmd_sim(
    bench_path: Option<&Path>,
    truth: bool,
    speed: Option<f64>,
    json: bool,
) -> Result<ExitCode> {
    let (bench, _) = load_bench(bench_path)?;
    let mut params = bench.sim.clone().unwrap_or_default();
    if let Some(s) = speed {
        if !(s.is_finite() && s > 0.0 && s <= 1000.0) {
            return Err(BadInput(format!("--speed {s}: must be > 0 and <= 1000")).into());
        }
        params.time_acceleration = s;
    }
    if truth {
        let t = vegard_sim::truth(&params)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&t)?);
        } else {
            println!("{t:#?}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let vb = vegard_sim::VirtualBench::start(&params)?;
    let p = vb.potentiostat_resource();
    let d = vb.deflection_resource();
    let l = vb.lockin_resource();
    let t = vb.temperature_resource();
    if json {
        println!(
            "{}",
            serde_json::json!({"potentiostat": p, "deflection": d, "lockin": l,
                               "temperature": t, "time_acceleration": vb.speed()})
        );
    } else {
        println!("virtual bench running (Ctrl-C to stop)");
        println!("  potentiostat: {p}");
        println!("  deflection:   {d}");
        println!("  lock-in:      {l}");
        println!("  temperature:  {t}");
        println!("  time acceleration: {}x", vb.speed());
        println!("put these resource strings in a bench config to connect as to real instruments");
    }
    std::io::stdout().flush()?;
    let mut seen = 0usize;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                let log = vb.log();
                let mut o = std::io::stdout().lock();
                for e in log.iter().skip(seen) {
                    if json {
                        writeln!(o, "{}", serde_json::to_string(e)?)?;
                    } else if !(e.direction == vegard_sim::Direction::Sent
                        && (e.line.starts_with('P') || e.line.starts_with('#')))
                    {
                        // Humans get commands and replies, not every data line.
                        writeln!(o, "{e}")?;
                    }
                }
                seen = log.len();
                o.flush()?;
            }
        }
    }
    vb.shutdown();
    Ok(ExitCode::SUCCESS)
}
