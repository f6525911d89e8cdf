//! `vegard watch`: the dashboard on a run folder.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::dashboard;
use crate::input::BadInput;

/// `vegard watch RUN`: the dashboard on a run folder, live while another
/// process records into it, or a replay of a finished run.
///
/// The folder is checked before anything else, terminal or not: a run.toml
/// that cannot be read or parsed, or an events.jsonl that cannot be read,
/// is bad input (exit 2) named on stderr with `FILE:LINE:COL` where there is
/// one, instead of a dashboard "waiting for the run to start" forever.
/// events.jsonl lines that are not events are warned about and skipped.
/// Anything that goes wrong later shows in the dashboard (a red event line
/// and the status `UNREADABLE`).
pub async fn cmd_watch(run: &Path) -> Result<ExitCode> {
    if !run.join("run.toml").exists() {
        return Err(BadInput(format!("{}: not a run folder (no run.toml)", run.display())).into());
    }
    let skipped = vegard_tui::tail::check_run_folder(run).map_err(|e| BadInput(e.to_string()))?;
    for line in &skipped {
        eprintln!("vegard watch: warning: {line} (line skipped)");
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
    // A terminal that hangs up closes the view: nobody can press q on it.
    let ttys = crate::terminal::Ttys::detect_initial();
    let hung_up = async move {
        loop {
            tokio::time::sleep(crate::terminal::TERMINAL_POLL).await;
            if ttys.hung_up() {
                return;
            }
        }
    };
    vegard_tui::run_dashboard_until(vegard_tui::Mode::Watch, rx, None, hung_up)
        .await
        .context("dashboard")?;
    Ok(ExitCode::SUCCESS)
}
