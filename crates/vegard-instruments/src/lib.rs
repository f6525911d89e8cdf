//! vegard-instruments: everything between the engine and the wire.
//!
//! Owns: byte links
//! ([`transport`]), the SCPI and MethodSCRIPT protocol clients ([`scpi`],
//! [`methodscript`]), the device traits the engine programs against
//! ([`device`]), the drivers implementing them ([`mod@drivers`]) and the
//! name-to-opener table ([`registry`]). Resource strings ([`Resource`]) and
//! the drivers' names and limits ([`DriverSpec`]) are bench-config schema and
//! live in `vegard-recipe`; they are re-exported here. The wire contracts are described in
//! `protocols/methodscript.md`, `protocols/scpi-dmm.md`, `protocols/sr860.md`
//! and `protocols/ls336.md`.

pub mod device;
pub mod drivers;
pub mod error;
pub mod methodscript;
pub mod registry;
pub mod scpi;
pub mod transport;

pub use device::{
    BoxFut, CellSafety, DeflectionProbe, DigitizerSetup, DigitizerTrigger, LockIn, LockInReading,
    Potentiostat, PstatEvent, Technique, TemperatureStage,
};
pub use drivers::{Ls336, MethodScriptPotentiostat, ScpiDmm, Sr860};
pub use error::{Fault, InstrumentError};
pub use registry::{drivers, open_deflection, open_lockin, open_potentiostat, open_temperature};
pub use vegard_recipe::{DriverSpec, Resource, Role};
