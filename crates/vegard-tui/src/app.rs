//! The terminal loop: owns the terminal for the dashboard's lifetime and the
//! one channel every input arrives on. Run data, key presses, resizes and
//! the frame timer are all [`AppEvent`]s, so the loop is a plain `recv` and
//! the order of what happened is the order it is applied in.

use std::time::Duration;

use futures_util::StreamExt;
use ratatui::crossterm::event::{Event, KeyEventKind};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

use crate::input::{KeyOutcome, UiState, handle_key};
use crate::state::DashState;
use crate::{Command, DashEvent, KeyEvent, Mode, TuiError, draw};

/// Shortest time between two frames: at most 20 frames per second, and only
/// when something changed.
pub const FRAME_INTERVAL: Duration = Duration::from_millis(50);

/// Everything the loop reacts to, on one channel.
#[derive(Debug)]
pub enum AppEvent {
    Dash(DashEvent),
    Key(KeyEvent),
    /// The terminal changed size: redraw.
    Resize,
    /// Frame timer: draw if anything changed since the last frame.
    Tick,
    /// Reading the terminal failed; the loop ends with this error.
    InputError(std::io::Error),
}

/// How the dashboard ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DashExit {
    /// The user left: in Watch mode, or after the run had finished (also
    /// when `q` came while the run was ending and the view waited for it).
    Quit,
    /// Run mode: the user left while the run went on without the dashboard
    /// (answered `n` to "abort the run before leaving?").
    Detached,
    /// Run mode: the user asked to abort and leave; the run has finished.
    Aborted,
    /// The caller's `leave` future completed (a stop signal, a lost
    /// terminal): the view closed without waiting for a key.
    Left,
}

/// Gives the terminal back (main screen, cooked mode, cursor) outside the
/// dashboard's own exits: for a process that must end at once (SIGTERM
/// after the run) while the view is up. Harmless when nothing is to undo or
/// the terminal is gone.
pub fn restore_terminal() {
    restore_quietly();
}

/// `ratatui::restore` and `Terminal`'s drop report failures with
/// `eprintln!`, which panics when stderr is the terminal that went away
/// (EIO after a hangup) and, inside a drop, aborts the process before the
/// run is finalised. Here failures are ignored: there is nobody to tell.
fn restore_quietly() {
    let _ = ratatui::try_restore();
    let _ = crossterm::execute!(std::io::stdout(), crossterm::cursor::Show);
}

/// Restores the terminal when dropped, so every exit of [`run_dashboard`]
/// (return, `?`, panic unwinding) leaves a usable shell; ratatui's own panic
/// hook restores it before the panic message is printed, too.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_quietly();
    }
}

/// Aborts the forwarding tasks when the loop ends, whichever way.
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Open the terminal (alternate screen, raw mode, panic hook), show the run
/// as `events` tell it, send the user's commands to `commands` (Run mode),
/// and restore the terminal on every way out. Returns when the user leaves;
/// in Run mode the view stays after `Finished` until `q`. A closed `events`
/// channel only means no more data: the view stays too.
pub async fn run_dashboard(
    mode: Mode,
    events: UnboundedReceiver<DashEvent>,
    commands: Option<UnboundedSender<Command>>,
) -> Result<DashExit, TuiError> {
    run_dashboard_until(mode, events, commands, std::future::pending()).await
}

/// [`run_dashboard`] that also closes (with [`DashExit::Left`]) as soon as
/// `leave` completes, whatever the view is waiting for: the process that
/// owns it has to end (a stop signal once the run is over, a lost terminal),
/// and a view waiting for a `q` nobody can press would keep it alive.
pub async fn run_dashboard_until(
    mode: Mode,
    events: UnboundedReceiver<DashEvent>,
    commands: Option<UnboundedSender<Command>>,
    leave: impl std::future::Future<Output = ()>,
) -> Result<DashExit, TuiError> {
    let mut leave = std::pin::pin!(leave);
    // Never dropped: `Terminal`'s drop shows the cursor and `eprintln!`s a
    // failure, a panic on a hung-up terminal; the guard restores instead.
    // What is leaked is one screen buffer, once per view.
    let mut terminal = std::mem::ManuallyDrop::new(ratatui::try_init()?);
    let _guard = TerminalGuard;
    let (tx, mut rx) = mpsc::unbounded_channel::<AppEvent>();
    let _tasks = Tasks(vec![
        tokio::spawn(forward_dash(events, tx.clone())),
        tokio::spawn(forward_terminal(tx.clone())),
        tokio::spawn(tick(tx)),
    ]);

    let mut state = DashState::new(mode);
    let mut ui = UiState::default();
    let mut dirty = true;
    loop {
        let ev = tokio::select! {
            ev = rx.recv() => ev,
            () = &mut leave => return Ok(DashExit::Left),
        };
        let Some(ev) = ev else { break };
        match ev {
            AppEvent::Dash(d) => {
                let finished = matches!(d, DashEvent::Finished { .. });
                state.apply(d);
                dirty = true;
                if finished && ui.leave_when_finished {
                    return Ok(if ui.abort_sent {
                        DashExit::Aborted
                    } else {
                        DashExit::Quit
                    });
                }
            }
            AppEvent::Key(key) => {
                dirty = true;
                match handle_key(&mut ui, &state, key) {
                    KeyOutcome::Nothing => {}
                    KeyOutcome::Command(cmd) => {
                        let sent = commands.as_ref().is_some_and(|c| c.send(cmd).is_ok());
                        if !sent {
                            ui.notice = Some("the engine is no longer listening".into());
                            if ui.leave_when_finished {
                                return Ok(DashExit::Aborted);
                            }
                        }
                    }
                    KeyOutcome::Quit => {
                        return Ok(if mode == Mode::Run && state.finished.is_none() {
                            DashExit::Detached
                        } else {
                            DashExit::Quit
                        });
                    }
                }
            }
            AppEvent::Resize => dirty = true,
            AppEvent::Tick => {
                if dirty {
                    terminal.draw(|f| draw(f, &state, &ui))?;
                    dirty = false;
                }
            }
            AppEvent::InputError(e) => return Err(TuiError::Terminal(e)),
        }
    }
    // All senders gone cannot happen while the tick task runs; treat as quit.
    Ok(DashExit::Quit)
}

async fn forward_dash(mut events: UnboundedReceiver<DashEvent>, tx: UnboundedSender<AppEvent>) {
    while let Some(ev) = events.recv().await {
        if tx.send(AppEvent::Dash(ev)).is_err() {
            return;
        }
    }
}

async fn forward_terminal(tx: UnboundedSender<AppEvent>) {
    let mut stream = crossterm::event::EventStream::new();
    while let Some(ev) = stream.next().await {
        let app = match ev {
            // Windows reports releases too; one action per press.
            Ok(Event::Key(k)) if k.kind == KeyEventKind::Press => AppEvent::Key(k),
            Ok(Event::Resize(..)) => AppEvent::Resize,
            Ok(_) => continue,
            Err(e) => AppEvent::InputError(e),
        };
        if tx.send(app).is_err() {
            return;
        }
    }
}

async fn tick(tx: UnboundedSender<AppEvent>) {
    let mut interval = tokio::time::interval(FRAME_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        interval.tick().await;
        if tx.send(AppEvent::Tick).is_err() {
            return;
        }
    }
}
