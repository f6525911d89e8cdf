//! Metrohm Autolab exports: the NOVA text/CSV export of an impedance
//! measurement (header `Frequency (Hz)`, `Z' (Ω)`, `-Z'' (Ω)`, `Z (Ω)`,
//! `-Phase (°)`, `Time (s)`, `;`, `,` or tab separated, decimal commas on
//! European locales) and the ZView-style `Z60W Data File` export of the
//! Autolab FRA software (the layout of impedance.py's exampleDataAutolab).
//!
//! NOVA names its imaginary column -Z'', so it is negated; the columns are
//! found by name, never by position.

use crate::csv::{Delim, Header, impedance_from_header, numbered_lines};
use crate::text::decode;
use crate::{Format, FormatError, ImpedanceData, unrecognised};

const EXPECTED: &str =
    "an Autolab NOVA impedance export (Frequency (Hz), Z' (Ω), -Z'' (Ω), ...) or a Z60W file";

/// The first non-blank line, if it is a NOVA impedance header.
fn nova_header(text: &str) -> Option<(usize, &str)> {
    let (n, l) = numbered_lines(text)
        .into_iter()
        .find(|(_, l)| !l.trim().is_empty())?;
    (l.contains("Frequency (Hz)") && l.contains("-Z''") && l.contains("Z'")).then_some((n, l))
}

/// Whether the content is this format: a `Z60W Data File` first line, or
/// a first line naming `Frequency (Hz)`, `Z'` and `-Z''` as NOVA does.
pub fn sniff(bytes: &[u8]) -> bool {
    if crate::zplot::sniff_z60w(bytes) {
        return true;
    }
    let head = bytes.get(..bytes.len().min(4096)).unwrap_or(bytes);
    nova_header(&decode(head)).is_some()
}

/// Read an impedance spectrum.
pub fn impedance(bytes: &[u8], source: &str) -> Result<ImpedanceData, FormatError> {
    if crate::zplot::sniff_z60w(bytes) {
        let mut z = crate::zplot::zview_impedance(bytes, source, Format::AutolabText)?;
        z.meta
            .insert("layout".to_string(), "Z60W (ZView) export".to_string());
        return Ok(z);
    }
    let text = decode(bytes);
    let Some((n, line)) = nova_header(&text) else {
        return Err(unrecognised(
            source,
            "no NOVA header line".to_string(),
            EXPECTED,
        ));
    };
    let header = Header::parse(n, line, Delim::detect(line));
    let data: Vec<(usize, &str)> = numbered_lines(&text)
        .into_iter()
        .filter(|(k, _)| *k > n)
        .collect();
    let mut z = impedance_from_header(Format::AutolabText, &header, &data, source, EXPECTED)?;
    z.meta
        .insert("layout".to_string(), "NOVA text export".to_string());
    Ok(z)
}
