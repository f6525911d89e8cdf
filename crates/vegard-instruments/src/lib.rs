//! vegard-instruments: everything between the engine and the wire.
//!
//! Owns: VISA-style resource strings ([`resource`]), byte links
//! ([`transport`]), the SCPI and MethodSCRIPT protocol clients ([`scpi`],
//! [`methodscript`]), the device traits the engine programs against
//! ([`device`]), the drivers implementing them ([`mod@drivers`]) and the
//! name-to-driver table ([`registry`]). The wire contracts are described in
//! `protocols/methodscript.md`, `protocols/scpi-dmm.md`, `protocols/sr860.md`
//! and `protocols/ls336.md`.

pub mod device;
pub mod drivers;
pub mod error;
pub mod methodscript;
pub mod registry;
pub mod resource;
pub mod scpi;
pub mod transport;

pub use device::{
    BoxFut, CellSafety, DeflectionProbe, DigitizerSetup, DigitizerTrigger, LockIn, LockInReading,
    Potentiostat, PstatEvent, Technique, TemperatureStage,
};
pub use drivers::{Ls336, MethodScriptPotentiostat, ScpiDmm, Sr860};
pub use error::{Fault, InstrumentError};
pub use registry::{
    DriverInfo, Role, drivers, open_deflection, open_lockin, open_potentiostat, open_temperature,
};
pub use resource::Resource;
