//! Igor binary waves (.ibw) as Asylum Research software writes them.
//! (Reader being written; the stubs refuse every file.)

#[allow(unused_imports)]
use crate::{EcSeries, ImpedanceData, Trace};
use crate::{FormatError, not_yet};

/// Whether the content is this format.
pub fn sniff(_bytes: &[u8]) -> bool {
    false
}

/// Read a trace.
pub fn trace(_bytes: &[u8], source: &str) -> Result<Trace, FormatError> {
    Err(not_yet(source, "igor"))
}
