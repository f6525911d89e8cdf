//! Delimited text: named columns (impedance, time series, traces) and the headerless 3-column spectrum.
//! (Reader being written; the stubs refuse every file.)

#[allow(unused_imports)]
use crate::{EcSeries, ImpedanceData, Trace};
use crate::{FormatError, not_yet};

/// Read an impedance spectrum.
pub fn impedance(_bytes: &[u8], source: &str) -> Result<ImpedanceData, FormatError> {
    Err(not_yet(source, "csv"))
}

/// Read a potentiostat time series.
pub fn series(_bytes: &[u8], source: &str) -> Result<EcSeries, FormatError> {
    Err(not_yet(source, "csv"))
}

/// Read a trace.
pub fn trace(_bytes: &[u8], source: &str) -> Result<Trace, FormatError> {
    Err(not_yet(source, "csv"))
}
