//! `vegard recover`: finalise the folder of a run whose process died.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

pub fn cmd_recover(run: &Path, json: bool) -> Result<ExitCode> {
    let s = vegard_pipeline::recover_run(run)
        .with_context(|| format!("recovering {}", run.display()))?;
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
