//! Instrument drivers, one module per protocol family. Each exposes an
//! `open`/`connect` factory; [`crate::registry`] maps config names to them.

pub mod methodscript;
pub mod scpi_dmm;

pub use methodscript::MethodScriptPotentiostat;
pub use scpi_dmm::ScpiDmm;
