//! `vegard`: the command line. Thin by design: it parses arguments once,
//! turns them into checked requests, and hands them to the library crates.
//!
//! Exit status: 0 success, 1 runtime failure, 2 bad input (recipe, bench
//! config or arguments: message `FILE:LINE:COL: ...` on stderr), 3 a run that
//! ended `aborted` (cell switched off, data saved), 4 the switch-off sequence
//! could not be sent (the cell may be on), 5 a report was written but an
//! analysis it needs failed (the reasons are printed and in the report), or
//! `vegard fit-eis` printed a fit that failed or is unidentifiable,
//! 130 stopped by Ctrl-C before the run started (nothing recorded).

mod cli;
mod cmd;
mod dashboard;
mod input;
mod progress;
mod terminal;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use vegard_engine::EngineFault;

use cli::{Cli, Cmd};
use input::BadInput;

fn main() -> ExitCode {
    // Which standard streams are terminals, before any could be lost.
    terminal::Ttys::detect_initial();
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
            say(format_args!("vegard: cannot start the async runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            if let Some(b) = e.downcast_ref::<BadInput>() {
                say(format_args!("{b}"));
                ExitCode::from(2)
            } else if matches!(
                e.downcast_ref::<vegard_engine::EngineError>(),
                Some(vegard_engine::EngineError::Cancelled)
            ) {
                say(format_args!("vegard: {e}"));
                ExitCode::from(130)
            } else {
                say(format_args!("vegard: error: {e:#}"));
                ExitCode::from(1)
            }
        }
    }
}

/// One line on stderr that never panics: `eprintln!` does when stderr is
/// gone (a closed terminal gives EIO), which would turn any ending into exit
/// 101.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// `vegard run` opens the dashboard only for a person at a terminal:
/// stdin and stdout both terminals, and neither `--json` nor `--no-tui`.
pub fn dashboard_wanted(json: bool, no_tui: bool) -> bool {
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
            cmd::run::cmd_run(recipe, bench, out, speed, json, tui, fault).await
        }
        Cmd::Watch { run } => cmd::watch::cmd_watch(&run).await,
        Cmd::Validate { recipe, bench } => cmd::validate::cmd_validate(&recipe, bench.as_deref()),
        Cmd::Sim {
            bench,
            truth,
            speed,
            json,
        } => cmd::sim::cmd_sim(bench.as_deref(), truth, speed, json).await,
        Cmd::Analyze {
            run,
            json,
            include_partial_sweeps,
        } => cmd::analyze::cmd_analyze(&run, json, include_partial_sweeps),
        Cmd::Report {
            run_or_folder,
            format,
            out,
            spec,
        } => cmd::report::cmd_report(&run_or_folder, format, out, spec.as_deref()),
        Cmd::Export {
            run,
            format,
            out,
            raw,
        } => cmd::report::cmd_export(&run, format, out, raw.as_deref()),
        Cmd::Recover { run, json } => cmd::recover::cmd_recover(&run, json),
        Cmd::Import(args) => cmd::import::cmd_import(&args),
        Cmd::FitEis(args) => cmd::fit_eis::cmd_fit_eis(&args),
    }
}
