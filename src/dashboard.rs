//! Glue between the engine and the terminal dashboard (vegard-tui): what
//! the engine reports becomes dashboard events, what the user presses
//! becomes engine controls, and the run folder's tailer supplies the data
//! traces, so `vegard run` and `vegard watch` show the same thing.
//!
//! Who says what, so nothing shows twice: in a live run the engine owns the
//! run's structure (start, step starts, progress, pause state, end); the
//! folder tailer contributes everything recorded (samples, impedance and
//! ESM points, temperatures, clock fits, events.jsonl lines).

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use vegard_engine::{Progress, RunControl};
use vegard_recipe::Recipe;
use vegard_tui::{Command, DashEvent, plan_rows};

/// How often the tailer looks for new lines. The engine flushes raw streams
/// at least once a second; a quarter of that keeps the traces fluid.
pub const TAIL_POLL: Duration = Duration::from_millis(250);

/// The engine's report as dashboard events (the structure of the run; the
/// data comes from the tailer). `Marker` is left to the tailer, which reads
/// it back from events.jsonl.
pub fn from_progress(p: &Progress, recipe: &Recipe) -> Vec<DashEvent> {
    match p {
        Progress::Started {
            run_dir,
            total_s,
            speed,
            potentiostat,
            deflection,
        } => vec![DashEvent::Started {
            run_dir: run_dir.clone(),
            total_s: *total_s,
            speed: *speed,
            plan: plan_rows(recipe),
            instruments: vec![
                ("potentiostat".into(), potentiostat.clone()),
                ("deflection".into(), deflection.clone()),
            ],
        }],
        Progress::StepStarted {
            index,
            count,
            kind,
            duration_s,
        } => vec![DashEvent::StepStarted {
            index: *index,
            count: *count,
            kind: (*kind).to_string(),
            duration_s: *duration_s,
        }],
        Progress::Tick {
            step,
            count,
            kind,
            cycle,
            cycles,
            elapsed_s,
            eta_s,
            ..
        } => vec![DashEvent::Progress {
            step: *step,
            count: *count,
            kind: (*kind).to_string(),
            cycle: *cycle,
            cycles: *cycles,
            elapsed_s: *elapsed_s,
            eta_s: *eta_s,
        }],
        Progress::Temperature {
            step,
            count,
            elapsed_s,
            ..
        } => vec![DashEvent::Progress {
            step: *step,
            count: *count,
            kind: "temperature".into(),
            cycle: 0,
            cycles: 0,
            elapsed_s: *elapsed_s,
            eta_s: f64::NAN,
        }],
        Progress::Paused { paused, .. } => vec![DashEvent::Paused(*paused)],
        Progress::Aborting { .. }
        | Progress::Finalizing
        | Progress::PauseRequested { .. }
        | Progress::Marker { .. } => Vec::new(),
    }
}

/// In a live run, keeps from the tailer only what the engine does not
/// report itself.
pub fn from_tailer_in_run(ev: &DashEvent) -> bool {
    !matches!(
        ev,
        DashEvent::Started { .. }
            | DashEvent::StepStarted { .. }
            | DashEvent::Progress { .. }
            | DashEvent::Paused(_)
            | DashEvent::Finished { .. }
    )
}

/// Forwards the dashboard's commands: pause and markers to the engine's
/// control channel, abort to the same stop signal as Ctrl-C.
pub fn spawn_command_forwarder(
    mut commands: tokio::sync::mpsc::UnboundedReceiver<Command>,
    control: UnboundedSender<RunControl>,
    cancel: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
) {
    tokio::spawn(async move {
        while let Some(c) = commands.recv().await {
            match c {
                Command::TogglePause => {
                    let _ = control.send(RunControl::TogglePause);
                }
                Command::Marker(note) => {
                    let _ = control.send(RunControl::Marker(note));
                }
                Command::Abort => {
                    cancel.send_replace(true);
                }
            }
        }
    });
}

/// Starts the folder tailer for a live run, filtered to the data it owns.
pub fn spawn_run_tailer(run_dir: PathBuf, dash: UnboundedSender<DashEvent>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _ = vegard_tui::tail_run_folder(run_dir, tx, TAIL_POLL).await;
    });
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            if from_tailer_in_run(&ev) && dash.send(ev).is_err() {
                break;
            }
        }
    });
}
