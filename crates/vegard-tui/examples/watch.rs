//! Watch (or replay) a run folder in the dashboard: the wiring the CLI's
//! `vegard watch RUN_DIR` needs, in a dozen lines.
//!
//! ```text
//! cargo run -p vegard-tui --example watch -- runs/<run folder>
//! ```

use std::path::PathBuf;
use std::time::Duration;

use vegard_tui::{DashEvent, LogLevel, Mode, run_dashboard, tail_run_folder};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(dir) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: watch RUN_DIR");
        std::process::exit(2);
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    // A folder that cannot be read is shown in the events panel, not lost
    // behind the alternate screen.
    let report = tx.clone();
    tokio::spawn(async move {
        if let Err(e) = tail_run_folder(dir, tx, Duration::from_millis(250)).await {
            let _ = report.send(DashEvent::Log {
                t_s: f64::NAN,
                level: LogLevel::Error,
                text: format!("reading the run folder: {e}"),
            });
        }
    });
    let exit = run_dashboard(Mode::Watch, rx, None).await?;
    println!("dashboard: {exit:?}");
    Ok(())
}
