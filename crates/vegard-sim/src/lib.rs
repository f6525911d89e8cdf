//! The virtual bench: an insertion electrode and a cantilever (the physics in
//! [`model`]) behind protocol-true instrument emulators, a MethodSCRIPT
//! potentiostat on a pseudo-terminal, a SCPI digitizing multimeter, an SR860
//! lock-in and a Lake Shore 336 temperature controller on loopback TCP, so
//! every vegard driver is exercised over a real byte stream.
//!
//! [`VirtualBench::start`] builds it from the `[sim]` table of a bench
//! config; the drivers connect to [`VirtualBench::potentiostat_resource`],
//! [`VirtualBench::deflection_resource`], [`VirtualBench::lockin_resource`]
//! and [`VirtualBench::temperature_resource`] as they would to hardware. Time on
//! the bench is simulated ("true") time, running
//! [`VirtualBench::speed`] times faster than the wall clock; the
//! [`TruthLog`] records the true instant of every trigger and sample.

mod bench;
mod clock;
mod dmm;
mod error;
mod ieee488;
mod journal;
mod line_server;
mod ls336;
mod methodscript;
pub mod model;
mod sr860;
mod world;

pub use bench::VirtualBench;
pub use clock::DeviceClock;
pub use error::SimError;
pub use journal::{Device, Direction, ImpedanceTruth, LogEntry, SampleTruth, TruthLog};
pub use model::{Truth, truth};
