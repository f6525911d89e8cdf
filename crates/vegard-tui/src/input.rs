//! [`UiState`] (what the user is doing with the dashboard: typing a marker,
//! confirming an abort, which view options are on) and [`handle_key`], the
//! pure state machine from a key to at most one [`Command`] or a request to
//! leave. Pure so it is tested without a terminal or an engine.
//!
//! Keys (Run mode; Watch mode is read-only: `p`, `m`, `a` only say so):
//!
//! | key | effect |
//! |---|---|
//! | `p` | pause / resume ([`Command::TogglePause`]) |
//! | `m` | one-line note; Enter sends [`Command::Marker`], Esc cancels |
//! | `a` | "abort the run? (y/n)": `y` sends [`Command::Abort`] and stays until the run finishes |
//! | `q`, Ctrl-C | Watch, or run finished: leave. Running: "abort before leaving? (y/n, Esc stays)": `y` sends [`Command::Abort`] and leaves once `Finished` arrives; `n` leaves and the run goes on (detached: the CLI keeps printing progress) |
//! | `w` | time window of the traces: whole run, last 60 s, last 10 s |
//! | `s` | right-hand panels: auto (by the running technique), EIS (Nyquist, Bode), ESM, temperature |
//! | `?` | help overlay (any key closes it) |

use crate::state::DashState;
use crate::{Command, KeyCode, KeyEvent, KeyModifiers, Mode};

/// Longest marker note accepted from the keyboard, characters.
pub const MARKER_MAX_CHARS: usize = 200;

/// What the keyboard is doing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum InputMode {
    #[default]
    Normal,
    /// Typing a marker note.
    Marker(String),
    /// "abort the run? (y/n)".
    ConfirmAbort,
    /// "abort before leaving? (y = abort, n = leave it running, Esc = stay)".
    ConfirmQuit,
}

/// Time window shown by the E(t), I(t), u(t) traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeWindow {
    #[default]
    All,
    /// The last this many experiment seconds.
    Last(u32),
}

impl TimeWindow {
    fn next(self) -> Self {
        match self {
            TimeWindow::All => TimeWindow::Last(60),
            TimeWindow::Last(60) => TimeWindow::Last(10),
            TimeWindow::Last(_) => TimeWindow::All,
        }
    }
}

/// What the right-hand panels show (`draw::focus`): auto follows the technique.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpectrumChoice {
    /// By the current step: Nyquist in EIS, ESM in sweeps, temperature in
    /// temperature steps; otherwise the latest of those with data.
    #[default]
    Auto,
    Nyquist,
    Esm,
    Temperature,
}

impl SpectrumChoice {
    fn next(self) -> Self {
        match self {
            SpectrumChoice::Auto => SpectrumChoice::Nyquist,
            SpectrumChoice::Nyquist => SpectrumChoice::Esm,
            SpectrumChoice::Esm => SpectrumChoice::Temperature,
            SpectrumChoice::Temperature => SpectrumChoice::Auto,
        }
    }
}

/// The user's side of the dashboard; changed only by [`handle_key`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UiState {
    pub input: InputMode,
    pub help: bool,
    pub window: TimeWindow,
    pub spectrum: SpectrumChoice,
    /// One-line feedback in the footer ("abort sent", "read-only", ...).
    pub notice: Option<String>,
    /// Set when the user chose "abort, then leave": the loop leaves when the
    /// run reports `Finished`.
    pub leave_when_finished: bool,
    /// An abort was sent from this view: the run is stopping, so leaving
    /// needs no second question.
    pub abort_sent: bool,
}

/// What a key asks of the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOutcome {
    Nothing,
    /// Send this to the engine.
    Command(Command),
    /// Leave the dashboard now.
    Quit,
}

/// Advance the key state machine by one key press.
pub fn handle_key(ui: &mut UiState, state: &DashState, key: KeyEvent) -> KeyOutcome {
    let ctrl_c = key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
    if ui.help {
        ui.help = false;
        return KeyOutcome::Nothing;
    }
    let live = state.mode == Mode::Run && state.finished.is_none();
    match std::mem::take(&mut ui.input) {
        InputMode::Marker(mut text) => {
            match key.code {
                _ if ctrl_c => {}
                KeyCode::Enter => {
                    let note = text.trim().to_string();
                    if note.is_empty() {
                        return KeyOutcome::Nothing;
                    }
                    ui.notice = Some(format!("marker sent: {note}"));
                    return KeyOutcome::Command(Command::Marker(note));
                }
                KeyCode::Esc => ui.notice = Some("marker cancelled".into()),
                KeyCode::Backspace => {
                    text.pop();
                    ui.input = InputMode::Marker(text);
                }
                KeyCode::Char(c) if !c.is_control() => {
                    if text.chars().count() < MARKER_MAX_CHARS {
                        text.push(c);
                    }
                    ui.input = InputMode::Marker(text);
                }
                _ => ui.input = InputMode::Marker(text),
            }
            KeyOutcome::Nothing
        }
        InputMode::ConfirmAbort => match key.code {
            KeyCode::Char('y' | 'Y') if live => {
                ui.abort_sent = true;
                ui.notice = Some("abort sent: the run stops through the safe path".into());
                KeyOutcome::Command(Command::Abort)
            }
            _ => {
                ui.notice = Some("not aborted".into());
                KeyOutcome::Nothing
            }
        },
        InputMode::ConfirmQuit => match key.code {
            KeyCode::Char('y' | 'Y') => {
                if !live {
                    return KeyOutcome::Quit;
                }
                ui.leave_when_finished = true;
                ui.abort_sent = true;
                ui.notice = Some("abort sent: leaving when the run has stopped".into());
                KeyOutcome::Command(Command::Abort)
            }
            KeyCode::Char('n' | 'N') => KeyOutcome::Quit,
            _ => {
                ui.notice = None;
                KeyOutcome::Nothing
            }
        },
        InputMode::Normal => {
            if ctrl_c {
                return quit(ui, state, live);
            }
            match key.code {
                KeyCode::Char('q' | 'Q') => quit(ui, state, live),
                KeyCode::Char('?' | 'h') => {
                    ui.help = true;
                    KeyOutcome::Nothing
                }
                KeyCode::Char('w') => {
                    ui.window = ui.window.next();
                    KeyOutcome::Nothing
                }
                KeyCode::Char('s') => {
                    ui.spectrum = ui.spectrum.next();
                    KeyOutcome::Nothing
                }
                KeyCode::Char(c @ ('p' | 'm' | 'a')) if !live => {
                    ui.notice = Some(match state.mode {
                        Mode::Watch => format!("'{c}': watching a folder is read-only"),
                        Mode::Run => format!("'{c}': the run has ended"),
                    });
                    KeyOutcome::Nothing
                }
                KeyCode::Char('p') => {
                    ui.notice = Some(
                        if state.paused {
                            "resume sent"
                        } else {
                            "pause sent"
                        }
                        .into(),
                    );
                    KeyOutcome::Command(Command::TogglePause)
                }
                KeyCode::Char('m') => {
                    ui.notice = None;
                    ui.input = InputMode::Marker(String::new());
                    KeyOutcome::Nothing
                }
                KeyCode::Char('a') => {
                    ui.notice = None;
                    ui.input = InputMode::ConfirmAbort;
                    KeyOutcome::Nothing
                }
                KeyCode::Esc => {
                    ui.notice = None;
                    KeyOutcome::Nothing
                }
                _ => KeyOutcome::Nothing,
            }
        }
    }
}

/// `q`: leaves a finished run at once; asks before leaving a running one;
/// and once the run is ending anyway (an abort sent, the engine stopping or
/// writing the folder) leaves as soon as it has finished, without asking
/// whether to abort what is already stopping.
fn quit(ui: &mut UiState, state: &DashState, live: bool) -> KeyOutcome {
    if live && (ui.abort_sent || state.stopping) {
        ui.leave_when_finished = true;
        ui.notice = Some("the run is ending: leaving once its folder is written".into());
        KeyOutcome::Nothing
    } else if live {
        ui.notice = None;
        ui.input = InputMode::ConfirmQuit;
        KeyOutcome::Nothing
    } else {
        KeyOutcome::Quit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DashEvent;

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    fn code(k: KeyCode) -> KeyEvent {
        KeyEvent::new(k, KeyModifiers::NONE)
    }

    fn typed(ui: &mut UiState, s: &DashState, keys: &[KeyEvent]) -> Vec<KeyOutcome> {
        keys.iter().map(|k| handle_key(ui, s, *k)).collect()
    }

    #[test]
    fn marker_text_enter_sends_it() {
        let s = DashState::new(Mode::Run);
        let mut ui = UiState::default();
        let mut keys = vec![key('m')];
        keys.extend("bubble!".chars().map(key));
        keys.push(code(KeyCode::Backspace));
        keys.push(code(KeyCode::Enter));
        let out = typed(&mut ui, &s, &keys);
        assert!(
            out[..out.len() - 1]
                .iter()
                .all(|o| *o == KeyOutcome::Nothing)
        );
        assert_eq!(
            out.last(),
            Some(&KeyOutcome::Command(Command::Marker("bubble".into())))
        );
        assert_eq!(ui.input, InputMode::Normal);
        // 'q' inside the note is text, not quit.
        let out = typed(&mut ui, &s, &[key('m'), key('q'), code(KeyCode::Enter)]);
        assert_eq!(out[2], KeyOutcome::Command(Command::Marker("q".into())));
    }

    #[test]
    fn marker_esc_cancels() {
        let s = DashState::new(Mode::Run);
        let mut ui = UiState::default();
        let out = typed(&mut ui, &s, &[key('m'), key('x'), code(KeyCode::Esc)]);
        assert!(out.iter().all(|o| *o == KeyOutcome::Nothing));
        assert_eq!(ui.input, InputMode::Normal);
    }

    #[test]
    fn abort_needs_y() {
        let s = DashState::new(Mode::Run);
        let mut ui = UiState::default();
        let out = typed(&mut ui, &s, &[key('a'), key('y')]);
        assert_eq!(
            out,
            vec![KeyOutcome::Nothing, KeyOutcome::Command(Command::Abort)]
        );
        let out = typed(&mut ui, &s, &[key('a'), key('n')]);
        assert_eq!(out, vec![KeyOutcome::Nothing, KeyOutcome::Nothing]);
        assert_eq!(ui.input, InputMode::Normal);
        assert!(!ui.leave_when_finished);
    }

    /// A run that is already ending (abort sent here, or the engine
    /// stopping or writing the folder) is not asked about again: `q` waits
    /// for `Finished` and leaves.
    #[test]
    fn q_while_the_run_is_ending_leaves_when_finished_without_asking() {
        // Abort sent from the view; the engine has not reported yet.
        let s = DashState::new(Mode::Run);
        let mut ui = UiState::default();
        let out = typed(&mut ui, &s, &[key('a'), key('y'), key('q')]);
        assert_eq!(out[1], KeyOutcome::Command(Command::Abort));
        assert_eq!(out[2], KeyOutcome::Nothing);
        assert_eq!(ui.input, InputMode::Normal);
        assert!(ui.leave_when_finished);

        // Stopped from elsewhere; the engine is finalising the folder.
        let mut s = DashState::new(Mode::Run);
        let mut ui = UiState::default();
        s.apply(DashEvent::Finalizing);
        assert_eq!(handle_key(&mut ui, &s, key('q')), KeyOutcome::Nothing);
        assert_eq!(ui.input, InputMode::Normal);
        assert!(ui.leave_when_finished && !ui.abort_sent);
        s.apply(DashEvent::Finished {
            status: "complete".into(),
            reason: None,
        });
        assert!(!s.stopping);
        assert_eq!(handle_key(&mut ui, &s, key('q')), KeyOutcome::Quit);

        // Aborting (a device error, a limit): same.
        let mut s = DashState::new(Mode::Run);
        let mut ui = UiState::default();
        s.apply(DashEvent::Aborting {
            reason: "current limit".into(),
        });
        assert_eq!(handle_key(&mut ui, &s, key('q')), KeyOutcome::Nothing);
        assert!(ui.leave_when_finished);
    }

    #[test]
    fn q_in_run_mode_asks_and_watch_mode_leaves() {
        let mut s = DashState::new(Mode::Run);
        let mut ui = UiState::default();
        assert_eq!(handle_key(&mut ui, &s, key('q')), KeyOutcome::Nothing);
        assert_eq!(ui.input, InputMode::ConfirmQuit);
        // Esc: stay.
        assert_eq!(
            handle_key(&mut ui, &s, code(KeyCode::Esc)),
            KeyOutcome::Nothing
        );
        assert_eq!(ui.input, InputMode::Normal);
        // n: detach.
        let out = typed(&mut ui, &s, &[key('q'), key('n')]);
        assert_eq!(out[1], KeyOutcome::Quit);
        // y: abort, and leave once finished.
        let out = typed(&mut ui, &s, &[key('q'), key('y')]);
        assert_eq!(out[1], KeyOutcome::Command(Command::Abort));
        assert!(ui.leave_when_finished);
        // After Finished, q leaves at once.
        s.apply(DashEvent::Finished {
            status: "aborted".into(),
            reason: Some("user abort".into()),
        });
        assert_eq!(handle_key(&mut ui, &s, key('q')), KeyOutcome::Quit);

        let w = DashState::new(Mode::Watch);
        let mut ui = UiState::default();
        assert_eq!(handle_key(&mut ui, &w, key('q')), KeyOutcome::Quit);
        // Watch mode never commands the engine.
        let out = typed(&mut ui, &w, &[key('p'), key('a'), key('y'), key('m')]);
        assert!(out.iter().all(|o| *o == KeyOutcome::Nothing));
    }

    #[test]
    fn p_toggles_pause_and_help_swallows_one_key() {
        let s = DashState::new(Mode::Run);
        let mut ui = UiState::default();
        assert_eq!(
            handle_key(&mut ui, &s, key('p')),
            KeyOutcome::Command(Command::TogglePause)
        );
        let out = typed(&mut ui, &s, &[key('?'), key('p')]);
        assert_eq!(out, vec![KeyOutcome::Nothing, KeyOutcome::Nothing]);
        assert!(!ui.help);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(handle_key(&mut ui, &s, ctrl_c), KeyOutcome::Nothing);
        assert_eq!(ui.input, InputMode::ConfirmQuit);
    }
}
