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
    vegard_tui::run_dashboard(vegard_tui::Mode::Watch, rx, None)
        .await
        .context("dashboard")?;
    Ok(ExitCode::SUCCESS)
}
