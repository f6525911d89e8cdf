//! Scribner ZPlot files (.z).
//! (Reader being written; the stubs refuse every file.)

#[allow(unused_imports)]
use crate::{EcSeries, ImpedanceData, Trace};
use crate::{FormatError, not_yet};

/// Whether the content is this format.
pub fn sniff(_bytes: &[u8]) -> bool {
    false
}

/// Read an impedance spectrum.
pub fn impedance(_bytes: &[u8], source: &str) -> Result<ImpedanceData, FormatError> {
    Err(not_yet(source, "zplot"))
}
