//! Value types shared by every vegard crate.
//!
//! Owns: the host timebase (monotonic nanoseconds since run start plus one UTC
//! anchor), UTC formatting without a date crate, number and duration
//! formatting for people (`format`), the physical constants every other
//! crate must agree on, and the one event type a run is reported in
//! ([`RunEvent`]: engine -> CLI and dashboard, run folder -> dashboard),
//! and the limits on configuration text checked before parsing
//! (`limits`), and the documented limits of the deflection digitizer that
//! its driver, emulator and recipe validation share (`keysight_34465a`),
//! and how a recording step is cut into digitizer blocks, each started by
//! its own sync edge (`sync_blocks`).
//! No I/O lives here.

pub mod constants;
pub mod event;
pub mod format;
pub mod keysight_34465a;
pub mod limits;
pub mod sync_blocks;
pub mod time;

pub use event::{LogLevel, PlanRow, RunEvent};
pub use time::{HostClock, UtcStamp};
