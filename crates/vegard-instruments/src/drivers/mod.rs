//! Instrument drivers, one module per protocol family. Each exposes an
//! `open`/`connect` factory; [`crate::registry`] maps config names to them.

pub mod ls336;
pub mod methodscript;
pub mod scpi_dmm;
pub mod sr860;

pub use ls336::Ls336;
pub use methodscript::MethodScriptPotentiostat;
pub use scpi_dmm::ScpiDmm;
pub use sr860::Sr860;
