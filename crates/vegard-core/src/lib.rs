//! Value types shared by every vegard crate.
//!
//! Owns: the host timebase (monotonic nanoseconds since run start plus one UTC
//! anchor), UTC formatting without a date crate, number and duration
//! formatting for people (`format`), and the physical constants every other
//! crate must agree on. No I/O lives here.

pub mod constants;
pub mod format;
pub mod time;

pub use time::{HostClock, UtcStamp};
