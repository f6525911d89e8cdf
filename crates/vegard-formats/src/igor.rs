//! Igor binary waves (.ibw), versions 2 and 5 (Asylum Research writes 5),
//! read from the layout of WaveMetrics' Technical Note TN003.
//!
//! Version 2: BinHeader2 (16 bytes: version i16, wfmSize i32, noteSize
//! i32, pictSize i32, checksum i16), WaveHeader2 (110 bytes before its
//! wData field: type i16 @0, bname @6, dataUnits[4] @34, xUnits[4] @38,
//! npnts i32 @42, hsA f64 @48, hsB f64 @56), the data at byte 126, 16 bytes
//! of padding, the note at 16 + wfmSize.
//! Version 5: BinHeader5 (64 bytes: version, checksum, wfmSize, formulaSize,
//! noteSize, dataEUnitsSize, dimEUnitsSize[4], dimLabelsSize[4],
//! sIndicesSize, optionsSize1/2), WaveHeader5 (320 bytes before wData:
//! npnts @12, type @16, bname @28, nDim[4] @68, sfA[4] @84, sfB[4] @116,
//! dataUnits[4] @148, dimUnits[4][4] @152), the data at byte 384 (first
//! dimension fastest), then formula, note, extended data units, extended
//! dimension units and dimension labels (32 bytes each, the first of a
//! dimension naming the dimension itself).
//! The checksum: the i16 sum over both headers (without wData) is 0.
//! Byte order: the version field read in the file's order is small.
//!
//! Why every size is checked: npnts, wfmSize and the section sizes come
//! from the file; each is checked against the bytes present before any
//! allocation, so a corrupt header is an error, never a large allocation.

use std::collections::BTreeMap;

use crate::{Format, FormatError, Trace};

const BIN2: usize = 16;
const WAVE2: usize = 110;
const BIN5: usize = 64;
const WAVE5: usize = 320;

/// Byte order and version of a wave file.
#[derive(Clone, Copy)]
struct Layout {
    little: bool,
    version: u16,
}

fn u16_at(b: &[u8], off: usize, little: bool) -> Option<u16> {
    let s: [u8; 2] = b.get(off..off + 2)?.try_into().ok()?;
    Some(if little {
        u16::from_le_bytes(s)
    } else {
        u16::from_be_bytes(s)
    })
}

fn i32_at(b: &[u8], off: usize, little: bool) -> Option<i32> {
    let s: [u8; 4] = b.get(off..off + 4)?.try_into().ok()?;
    Some(if little {
        i32::from_le_bytes(s)
    } else {
        i32::from_be_bytes(s)
    })
}

fn f64_at(b: &[u8], off: usize, little: bool) -> Option<f64> {
    let s: [u8; 8] = b.get(off..off + 8)?.try_into().ok()?;
    Some(if little {
        f64::from_le_bytes(s)
    } else {
        f64::from_be_bytes(s)
    })
}

/// The i16 sum (wrapping) over the first `n` bytes.
fn checksum(b: &[u8], n: usize, little: bool) -> Option<u16> {
    let mut sum: u16 = 0;
    for k in (0..n).step_by(2) {
        sum = sum.wrapping_add(u16_at(b, k, little)?);
    }
    Some(sum)
}

fn layout(bytes: &[u8]) -> Option<Layout> {
    for little in [true, false] {
        let version = u16_at(bytes, 0, little)?;
        let header = match version {
            2 => BIN2 + WAVE2,
            5 => BIN5 + WAVE5,
            _ => continue,
        };
        if checksum(bytes, header, little)? == 0 {
            return Some(Layout { little, version });
        }
    }
    None
}

/// Whether the content is this format: version 2 or 5 in the first two
/// bytes (either byte order) and a zero checksum over the headers.
pub fn sniff(bytes: &[u8]) -> bool {
    layout(bytes).is_some()
}

fn err(source: &str, offset: usize, why: impl Into<String>) -> FormatError {
    FormatError::Binary {
        path: source.to_string(),
        offset,
        why: why.into(),
    }
}

/// A NUL-terminated string of a fixed-size field (latin-1 when not UTF-8).
fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    crate::text::decode(b.get(..end).unwrap_or(&[]))
        .trim()
        .to_string()
}

/// A size field: non-negative, else an error at its offset.
fn size_at(
    bytes: &[u8],
    off: usize,
    little: bool,
    source: &str,
    what: &str,
) -> Result<usize, FormatError> {
    let v = i32_at(bytes, off, little)
        .ok_or_else(|| err(source, off, format!("file ends inside {what}")))?;
    usize::try_from(v).map_err(|_| err(source, off, format!("{what} {v} is negative")))
}

/// Bytes per point and a decoder, for the numeric types of TN003
/// (complex and text waves are refused).
fn point_size(type_code: u16) -> Option<usize> {
    match type_code {
        2 => Some(4),           // NT_FP32
        4 => Some(8),           // NT_FP64
        8 | 0x48 => Some(1),    // NT_I8, unsigned
        0x10 | 0x50 => Some(2), // NT_I16, unsigned
        0x20 | 0x60 => Some(4), // NT_I32, unsigned
        0x80 | 0xC0 => Some(8), // NT_I64 (Igor 7), unsigned
        _ => None,
    }
}

fn type_name(type_code: u16) -> &'static str {
    match type_code {
        2 => "f32",
        4 => "f64",
        8 => "i8",
        0x48 => "u8",
        0x10 => "i16",
        0x50 => "u16",
        0x20 => "i32",
        0x60 => "u32",
        0x80 => "i64",
        0xC0 => "u64",
        _ => "unsupported",
    }
}

fn decode_point(b: &[u8], type_code: u16, little: bool) -> Option<f64> {
    macro_rules! num {
        ($t:ty, $n:expr) => {{
            let s: [u8; $n] = b.try_into().ok()?;
            if little {
                <$t>::from_le_bytes(s) as f64
            } else {
                <$t>::from_be_bytes(s) as f64
            }
        }};
    }
    Some(match type_code {
        2 => num!(f32, 4),
        4 => num!(f64, 8),
        8 => num!(i8, 1),
        0x48 => num!(u8, 1),
        0x10 => num!(i16, 2),
        0x50 => num!(u16, 2),
        0x20 => num!(i32, 4),
        0x60 => num!(u32, 4),
        0x80 => num!(i64, 8),
        0xC0 => num!(u64, 8),
        _ => return None,
    })
}

/// Read a trace: the first column (or the one labelled deflection) of the
/// wave, sampled every `sfA[0]` (hsA in version 2) from 0; `sfB[0]` (the
/// x offset), the units and the note's `Key: value` lines go to `meta`.
pub fn trace(bytes: &[u8], source: &str) -> Result<Trace, FormatError> {
    let Some(lay) = layout(bytes) else {
        return Err(err(
            source,
            0,
            "not an Igor binary wave of version 2 or 5 with a valid checksum",
        ));
    };
    let little = lay.little;
    let mut meta = BTreeMap::new();
    meta.insert("igor_version".to_string(), lay.version.to_string());
    meta.insert(
        "byte_order".to_string(),
        if little {
            "little endian"
        } else {
            "big endian"
        }
        .to_string(),
    );
    let u16r = |off: usize| {
        u16_at(bytes, off, little).ok_or_else(|| err(source, off, "file ends inside the header"))
    };
    let f64r = |off: usize| {
        f64_at(bytes, off, little).ok_or_else(|| err(source, off, "file ends inside the header"))
    };

    // Fields common to both versions, by version.
    let (type_code, npnts, dims, dx, x0, data_units, x_units, name, data_at, note_range, labels_at);
    if lay.version == 2 {
        let wfm = size_at(bytes, 2, little, source, "wfmSize")?;
        let note_size = size_at(bytes, 6, little, source, "noteSize")?;
        let w = BIN2;
        type_code = u16r(w)?;
        name = c_string(bytes.get(w + 6..w + 26).unwrap_or(&[]));
        data_units = c_string(bytes.get(w + 34..w + 38).unwrap_or(&[]));
        x_units = c_string(bytes.get(w + 38..w + 42).unwrap_or(&[]));
        npnts = size_at(bytes, w + 42, little, source, "npnts")?;
        dx = f64r(w + 48)?;
        x0 = f64r(w + 56)?;
        dims = [npnts, 0, 0, 0];
        data_at = BIN2 + WAVE2;
        let note_at = BIN2
            .checked_add(wfm)
            .ok_or_else(|| err(source, 2, "wfmSize overflows"))?;
        note_range = (note_at, note_size);
        labels_at = None;
    } else {
        let wfm = size_at(bytes, 4, little, source, "wfmSize")?;
        let formula = size_at(bytes, 8, little, source, "formulaSize")?;
        let note_size = size_at(bytes, 12, little, source, "noteSize")?;
        let data_eunits = size_at(bytes, 16, little, source, "dataEUnitsSize")?;
        let mut dim_eunits = 0usize;
        for k in 0..4 {
            dim_eunits = dim_eunits.saturating_add(size_at(
                bytes,
                20 + 4 * k,
                little,
                source,
                "dimEUnitsSize",
            )?);
        }
        let mut label_sizes = [0usize; 4];
        for (k, s) in label_sizes.iter_mut().enumerate() {
            *s = size_at(bytes, 36 + 4 * k, little, source, "dimLabelsSize")?;
        }
        let w = BIN5;
        npnts = size_at(bytes, w + 12, little, source, "npnts")?;
        type_code = u16r(w + 16)?;
        name = c_string(bytes.get(w + 28..w + 60).unwrap_or(&[]));
        let mut d = [0usize; 4];
        for (k, slot) in d.iter_mut().enumerate() {
            *slot = size_at(bytes, w + 68 + 4 * k, little, source, "nDim")?;
        }
        dims = d;
        dx = f64r(w + 84)?;
        x0 = f64r(w + 116)?;
        let mut du = c_string(bytes.get(w + 148..w + 152).unwrap_or(&[]));
        x_units = c_string(bytes.get(w + 152..w + 156).unwrap_or(&[]));
        data_at = BIN5 + WAVE5;
        let note_at = BIN5
            .checked_add(wfm)
            .and_then(|v| v.checked_add(formula))
            .ok_or_else(|| err(source, 4, "wfmSize overflows"))?;
        note_range = (note_at, note_size);
        // Extended data units (longer than 3 characters) follow the note.
        let eunits_at = note_at.saturating_add(note_size);
        if data_eunits > 0
            && let Some(b) = eunits_at
                .checked_add(data_eunits)
                .and_then(|end| bytes.get(eunits_at..end))
        {
            du = c_string(b);
        }
        data_units = du;
        let l0 = eunits_at
            .saturating_add(data_eunits)
            .saturating_add(dim_eunits);
        labels_at = Some((l0, label_sizes));
    }

    let Some(psize) = point_size(type_code) else {
        return Err(err(
            source,
            if lay.version == 2 { BIN2 } else { BIN5 + 16 },
            format!(
                "wave type 0x{type_code:x} is not a real numeric type (complex or text waves are not traces)"
            ),
        ));
    };
    // Dimensions: nDim[0] rows, nDim[1] columns (channels); 0 = unused.
    let rows = if dims[0] == 0 { npnts } else { dims[0] };
    let used: Vec<usize> = dims.iter().copied().take_while(|d| *d > 0).collect();
    let product = used.iter().try_fold(1usize, |a, d| a.checked_mul(*d));
    if lay.version == 5 && product != Some(npnts) {
        return Err(err(
            source,
            BIN5 + 68,
            format!("nDim {dims:?} does not multiply to npnts {npnts}"),
        ));
    }
    let need = npnts
        .checked_mul(psize)
        .and_then(|n| n.checked_add(data_at))
        .ok_or_else(|| err(source, data_at, "npnts overflows"))?;
    if need > bytes.len() {
        return Err(err(
            source,
            data_at,
            format!(
                "npnts {npnts} of {psize} bytes needs {need} bytes, the file has {}",
                bytes.len()
            ),
        ));
    }
    if rows == 0 {
        return Err(err(source, data_at, "the wave has no points"));
    }
    let columns = dims[1].max(1);
    // Labels of dimension 1 (columns): 32 bytes each, index 0 names the dimension.
    let mut column = 0usize;
    let mut column_note = "first column".to_string();
    if let Some((mut at, sizes)) = labels_at {
        if sizes[0] > 0 {
            at = at.saturating_add(sizes[0]);
        }
        let labels: Vec<String> = bytes
            .get(at..at.saturating_add(sizes[1]))
            .map(|b| b.chunks(32).skip(1).map(c_string).collect())
            .unwrap_or_default();
        if !labels.is_empty() {
            meta.insert("column_labels".to_string(), labels.join(", "));
        }
        if let Some(k) = labels
            .iter()
            .position(|l| l.to_lowercase().starts_with("defl"))
            .filter(|k| *k < columns)
        {
            column = k;
            column_note = format!(
                "column {k} labelled '{}'",
                labels.get(k).cloned().unwrap_or_default()
            );
        }
    }
    if columns > 1 {
        meta.insert(
            "value_column".to_string(),
            format!(
                "{column_note} of {columns} ({} if no column is labelled deflection)",
                "the first"
            ),
        );
    }
    let start = data_at + column * rows * psize;
    let mut value = Vec::with_capacity(rows);
    for k in 0..rows {
        let off = start + k * psize;
        let v = bytes
            .get(off..off + psize)
            .and_then(|b| decode_point(b, type_code, little))
            .ok_or_else(|| err(source, off, "file ends inside the data"))?;
        value.push(v);
    }
    // x scaling: seconds, or a stated time unit; other units are no time.
    let x_scale = match x_units.as_str() {
        "" => {
            meta.insert(
                "t_note".to_string(),
                "the wave has no x units: seconds assumed".to_string(),
            );
            1.0
        }
        "s" | "sec" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        other => {
            return Err(FormatError::Unrecognised {
                path: source.to_string(),
                why: format!("the wave's x units are '{other}', not a time"),
                expected: "a wave scaled in time (s)".to_string(),
            });
        }
    };
    if !(dx.is_finite() && dx > 0.0) {
        return Err(err(
            source,
            if lay.version == 2 {
                BIN2 + 48
            } else {
                BIN5 + 84
            },
            format!("sample interval {dx} is not positive"),
        ));
    }
    let t_s: Vec<f64> = (0..rows).map(|k| k as f64 * dx * x_scale).collect();
    meta.insert("wave_name".to_string(), name);
    meta.insert("data_type".to_string(), type_name(type_code).to_string());
    meta.insert("npnts".to_string(), npnts.to_string());
    meta.insert("dims".to_string(), format!("{:?}", used));
    meta.insert("dx".to_string(), format!("{dx} {x_units}"));
    meta.insert(
        "x0".to_string(),
        format!("{x0} {x_units} (x offset of the first point; t_s starts at 0)"),
    );
    // The note: Asylum writes `Key: value` lines separated by CR.
    let (note_at, note_size) = note_range;
    if note_size > 0 {
        match note_at
            .checked_add(note_size)
            .and_then(|end| bytes.get(note_at..end))
        {
            Some(b) => {
                let note = crate::text::decode(b);
                for line in note.split(['\r', '\n']) {
                    if let Some((k, v)) = line.split_once(':') {
                        let k = k.trim();
                        if !k.is_empty() {
                            meta.insert(format!("note.{k}"), v.trim().to_string());
                        }
                    }
                }
            }
            None => {
                return Err(err(
                    source,
                    note_at,
                    format!("note of {note_size} bytes runs past the end of the file"),
                ));
            }
        }
    }
    Ok(Trace {
        format: Format::IgorIbw,
        t_s,
        value,
        unit: data_units,
        sync: None,
        start_unix_ns: None,
        start_note: None,
        meta,
    })
}
