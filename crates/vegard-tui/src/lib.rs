//! vegard-tui owns the terminal dashboard of a run: live while the engine
//! records it, or attached to a run folder (watch a running one, replay a
//! finished one).
//!
//! The split follows STYLE.md ("bottom"): data collection, application state
//! and drawing are separate modules, and drawing only reads state.
//!
//! ```text
//! engine (CLI) ───RunEvent──┐
//! tail_run_folder ─RunEvent─┤                 ┌── Key ── crossterm EventStream
//!                           ▼                 ▼
//!                  run_dashboard: one channel of AppEvent {Dash, Key, Resize, Tick, InputError}
//!                           │ apply                 │ handle_key -> Command -> engine
//!                           ▼                       ▼
//!                       DashState               UiState
//!                           └──── draw(frame, &DashState, &UiState) ────┘
//! ```
//!
//! - [`event`]: the contract with the outside ([`RunEvent`] from `vegard-core`,
//!   also named [`DashEvent`] here; [`Command`], [`Mode`]).
//! - [`state`]: [`DashState`], everything learnt so far, in columnar history.
//! - [`series`]: min-max summaries and decimation so 10^6 points draw fast.
//! - [`input`]: [`UiState`] and the pure key state machine [`handle_key`].
//! - [`readout`]: the numeric "now" readout (latest E, I, u, T, Q, kappa).
//! - [`draw`]: the panels; reads state, never changes it.
//! - [`app`]: the terminal loop [`run_dashboard`].
//! - [`tail`]: [`tail_run_folder`], the run-folder source of events.
//! - [`plan`]: plan rows and step labels from a recipe (re-exported from `vegard-recipe`).

pub mod app;
pub mod draw;
mod error;
pub mod event;
pub mod input;
pub mod plan;
pub mod readout;
pub mod series;
pub mod state;
pub mod tail;

pub use app::{AppEvent, DashExit, restore_terminal, run_dashboard, run_dashboard_until};
pub use draw::draw;
pub use error::TuiError;
pub use event::{Command, DashEvent, LogLevel, Mode, PlanRow, RunEvent};
pub use input::{KeyOutcome, UiState, handle_key};
pub use plan::{plan_rows, step_cycles, step_label};
pub use state::DashState;
pub use tail::{clock_events_from_alignment, tail_run_folder};

/// Key events as the dashboard takes them (crossterm's, re-exported so callers
/// and tests need no crossterm dependency of their own).
pub use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
