//! BioLogic EC-Lab: text exports (.mpt) and binary files (.mpr).
//! (Reader being written; the stubs refuse every file.)

#[allow(unused_imports)]
use crate::{EcSeries, ImpedanceData, Trace};
use crate::{FormatError, not_yet};

/// Whether the content is this format.
pub fn sniff_mpr(_bytes: &[u8]) -> bool {
    false
}

/// Whether the content is this format.
pub fn sniff_mpt(_bytes: &[u8]) -> bool {
    false
}

/// Read an impedance spectrum.
pub fn mpr_impedance(_bytes: &[u8], source: &str) -> Result<ImpedanceData, FormatError> {
    Err(not_yet(source, "biologic"))
}

/// Read an impedance spectrum.
pub fn mpt_impedance(_bytes: &[u8], source: &str) -> Result<ImpedanceData, FormatError> {
    Err(not_yet(source, "biologic"))
}

/// Read a potentiostat time series.
pub fn mpr_series(_bytes: &[u8], source: &str) -> Result<EcSeries, FormatError> {
    Err(not_yet(source, "biologic"))
}

/// Read a potentiostat time series.
pub fn mpt_series(_bytes: &[u8], source: &str) -> Result<EcSeries, FormatError> {
    Err(not_yet(source, "biologic"))
}
