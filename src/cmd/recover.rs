//! `vegard recover`: finalise the folder of a run whose process died.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

/// Finalise `run` through `vegard_pipeline::recover_run` (which cuts a torn
/// last line of events.jsonl back before appending, keeping its bytes in
/// events.jsonl.torn) and say what it did, including anything set aside.
pub fn cmd_recover(run: &Path, json: bool) -> Result<ExitCode> {
    let r = vegard_pipeline::recover_run(run)
        .with_context(|| format!("recovering {}", run.display()))?;
    let s = &r.finalize;
    // The data is finalised either way; a failed event line only loses the
    // note that recovery happened, so it is a warning, not a failure.
    if let Some(e) = &r.event_log_error {
        eprintln!("vegard recover: warning: could not log the `recovered` event: {e}");
    }
    if json {
        println!(
            "{}",
            serde_json::json!({
                "run_dir": run,
                "status": s.status,
                "aligned_rows": s.aligned_rows,
                "events_torn_bytes_set_aside": r.events_torn_bytes_set_aside,
            })
        );
    } else {
        println!(
            "{}: status {}, {} aligned rows",
            run.display(),
            s.status,
            s.aligned_rows
        );
        if let Some(n) = r.events_torn_bytes_set_aside {
            println!(
                "  events.jsonl ended in a torn line (a crash mid-write): its {n} bytes \
                 were moved to {} before appending",
                vegard_store::EVENTS_TORN_FILE
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
