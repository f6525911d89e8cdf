//! `vegard watch`: the dashboard on a run folder.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::dashboard;
use crate::input::BadInput;

/// `vegard watch RUN`: the dashboard on a run folder, live while another
/// process records into it, or a replay of a finished run.
pub async fn cmd_watch(run: &Path) -> Result<ExitCode> {
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
