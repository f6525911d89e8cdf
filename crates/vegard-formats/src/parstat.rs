//! Princeton Applied Research exports: the Parstat/VersaStudio text
//! export (one tab-separated header row: `Potential (V)`, `Current (A)`,
//! `Elapsed Time (s)`, `Frequency (Hz)`, `Zre (ohms)`, `Zim (ohms)`, ...)
//! and the VersaStudio .par file (XML-like sections; `<SegmentN>` holds a
//! `Definition=` line naming the comma-separated columns, e.g.
//! `Frequency(Hz)`, `Z Real`, `Z Imag`).
//!
//! Why by name: these files carry potential, current and time before the
//! impedance columns, and a run may start with a DC part whose rows have
//! frequency 0. Those rows are skipped (their count is in `meta`); Z'' is
//! written with its physical sign and taken as is.

use std::collections::BTreeMap;

use crate::csv::{Delim, Header, Quantity, impedance_from_header, numbered_lines};
use crate::text::{decode, number};
use crate::{Format, FormatError, ImagSign, ImpedanceData, unrecognised};

const EXPECTED: &str = "a Parstat/VersaStudio export with Frequency (Hz), Zre, Zim columns";

fn head(bytes: &[u8]) -> String {
    decode(bytes.get(..bytes.len().min(4096)).unwrap_or(bytes)).into_owned()
}

fn is_versastudio(bytes: &[u8]) -> bool {
    let h = head(bytes);
    h.lines()
        .next()
        .is_some_and(|l| l.trim() == "<Application>")
        && bytes.windows(11).any(|w| w == b"Definition=")
}

fn is_parstat_text(bytes: &[u8]) -> bool {
    let h = head(bytes);
    h.lines().next().is_some_and(|l| {
        l.contains("Frequency")
            && (l.contains("Zre (ohms)") || l.contains("Zim (ohms)") || l.contains("Segment#"))
    })
}

/// Whether the content is this format.
pub fn sniff(bytes: &[u8]) -> bool {
    is_versastudio(bytes) || is_parstat_text(bytes)
}

/// Drop the rows whose frequency field is exactly 0 (a DC part of the run).
fn drop_dc<'a>(header: &Header, data: &[(usize, &'a str)]) -> (Vec<(usize, &'a str)>, usize) {
    let Some(f) = header.find(Quantity::Freq) else {
        return (data.to_vec(), 0);
    };
    let mut kept = Vec::with_capacity(data.len());
    let mut dropped = 0;
    for &(n, l) in data {
        let fields = header.delim.split(l);
        if fields.get(f.index).and_then(|v| number(v)) == Some(0.0) {
            dropped += 1;
        } else if !l.trim().is_empty() {
            kept.push((n, l));
        }
    }
    (kept, dropped)
}

fn finish(
    mut z: ImpedanceData,
    dropped: usize,
    mut meta: BTreeMap<String, String>,
) -> ImpedanceData {
    if dropped > 0 {
        meta.insert(
            "dc_rows_skipped".to_string(),
            format!("{dropped} rows with frequency 0 (the DC part of the run) skipped"),
        );
    }
    if z.imag_sign == ImagSign::AsIs {
        z.sign_note =
            "PAR writes Zim with its physical sign (negative for a capacitive arc); taken as is"
                .to_string();
    }
    meta.append(&mut z.meta);
    z.meta = meta;
    z
}

/// Read an impedance spectrum.
pub fn impedance(bytes: &[u8], source: &str) -> Result<ImpedanceData, FormatError> {
    let text = decode(bytes);
    let lines = numbered_lines(&text);
    if is_versastudio(bytes) {
        return versastudio(&lines, source);
    }
    let Some(&(n, first)) = lines.first() else {
        return Err(unrecognised(source, "empty".to_string(), EXPECTED));
    };
    let header = Header::parse(n, first, Delim::detect(first));
    let (data, dropped) = drop_dc(&header, lines.get(1..).unwrap_or(&[]));
    let z = impedance_from_header(Format::ParstatText, &header, &data, source, EXPECTED)?;
    let mut meta = BTreeMap::new();
    meta.insert("layout".to_string(), "Parstat text export".to_string());
    Ok(finish(z, dropped, meta))
}

/// The `<SegmentN>` blocks whose `Definition=` names a frequency column.
fn versastudio(lines: &[(usize, &str)], source: &str) -> Result<ImpedanceData, FormatError> {
    let mut meta = BTreeMap::new();
    let mut header: Option<Header> = None;
    let mut definition = String::new();
    let mut data: Vec<(usize, &str)> = Vec::new();
    let mut segments = Vec::new();
    let mut in_segment: Option<String> = None;
    let mut take = false;
    for &(n, l) in lines {
        let t = l.trim();
        if let Some(name) = t.strip_prefix("<Segment").and_then(|r| r.strip_suffix('>')) {
            if name.chars().all(|c| c.is_ascii_digit()) && !name.is_empty() {
                in_segment = Some(name.to_string());
                take = false;
                continue;
            }
        }
        if t.starts_with("</Segment") {
            in_segment = None;
            take = false;
            continue;
        }
        let Some(seg) = &in_segment else {
            for key in ["Name", "Type", "DateAcquired", "TimeAcquired", "Version"] {
                if let Some(v) = t.strip_prefix(key).and_then(|r| r.strip_prefix('=')) {
                    meta.entry(key.to_string()).or_insert_with(|| v.to_string());
                }
            }
            continue;
        };
        if let Some(def) = t.strip_prefix("Definition=") {
            let h = Header::parse(n, def, Delim::Comma);
            match &header {
                None if h.find(Quantity::Freq).is_some() => {
                    definition = def.to_string();
                    header = Some(h);
                    take = true;
                    segments.push(seg.clone());
                }
                Some(_) if def == definition => {
                    take = true;
                    segments.push(seg.clone());
                }
                _ => take = false,
            }
            continue;
        }
        if take && !t.is_empty() && !t.contains('=') {
            data.push((n, l));
        }
    }
    let Some(header) = header else {
        return Err(unrecognised(
            source,
            "VersaStudio file without a segment whose Definition names a frequency".to_string(),
            EXPECTED,
        ));
    };
    let (data, dropped) = drop_dc(&header, &data);
    let z = impedance_from_header(Format::ParstatText, &header, &data, source, EXPECTED)?;
    meta.insert("layout".to_string(), "VersaStudio .par".to_string());
    meta.insert("segments".to_string(), segments.join(", "));
    Ok(finish(z, dropped, meta))
}
