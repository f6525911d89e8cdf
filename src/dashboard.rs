//! Glue between the engine and the terminal dashboard (vegard-tui): the
//! engine's `RunEvent`s go to the dashboard as they are (one event type, no
//! mapping), what the user presses becomes engine controls, and the run
//! folder's tailer supplies the data traces, so `vegard run` and
//! `vegard watch` show the same thing.
//!
//! Who says what, so nothing shows twice: in a live run the engine owns the
//! run's structure (start, step starts, progress, pause state, end); the
//! folder tailer contributes everything recorded (samples, impedance and
//! ESM points, temperatures, clock fits, events.jsonl lines).

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use vegard_core::RunEvent;
use vegard_engine::RunControl;
use vegard_tui::Command;

/// How often the tailer looks for new lines. The engine flushes raw streams
/// at least once a second; a quarter of that keeps the traces fluid.
pub const TAIL_POLL: Duration = Duration::from_millis(250);

/// In a live run, keeps from the tailer only what the engine does not
/// report itself.
pub fn from_tailer_in_run(ev: &RunEvent) -> bool {
    !matches!(
        ev,
        RunEvent::Started { .. }
            | RunEvent::StepStarted { .. }
            | RunEvent::Progress { .. }
            | RunEvent::Paused(_)
            | RunEvent::Finished { .. }
    )
}

/// Forwards the dashboard's commands: pause and markers to the engine's
/// control channel, abort to the same stop signal as Ctrl-C.
pub fn spawn_command_forwarder(
    mut commands: tokio::sync::mpsc::UnboundedReceiver<Command>,
    control: UnboundedSender<RunControl>,
    stopper: std::sync::Arc<crate::cmd::run::Stopper>,
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
                    stopper.stop(vegard_engine::StopCause::Requested, false);
                }
            }
        }
    });
}

/// Starts the folder tailer for a live run, filtered to the data it owns.
pub fn spawn_run_tailer(run_dir: PathBuf, dash: UnboundedSender<RunEvent>) {
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
