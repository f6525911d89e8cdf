//! Scribner ZPlot (.z), in its two text layouts, and the ZView-style
//! "Z60W" export that shares the second one.
//!
//! `ZPLOT2 ASCII`: `Key: value` header lines, then the column names
//! (`Freq(Hz)  Ampl  Bias  Time(Sec)  Z'(a)  Z''(b)  GD  Err  Range`,
//! tab-separated) and `End Comments`, then tab-separated rows.
//! `"ZPlotW Data File: ..."` / `"Z60W Data File: ..."`: a few quoted
//! lines, a line of numbers, a point count, the quoted column names
//! aligned with spaces, then comma-separated rows. ZPlot writes Z'' with
//! its physical sign (negative for a capacitive arc), taken as is.

use std::collections::BTreeMap;

use crate::csv::{Delim, Header, Quantity, impedance_from_header, numbered_lines};
use crate::text::decode;
use crate::{Format, FormatError, ImagSign, ImpedanceData, unrecognised};

/// ZPlot's own column order, which the format fixes (used only when a
/// `ZPLOT2 ASCII` file lacks the names line before `End Comments`).
const ZPLOT_COLUMNS: &str = "Freq(Hz)\tAmpl\tBias\tTime(Sec)\tZ'(a)\tZ''(b)\tGD\tErr\tRange";

fn first_line(bytes: &[u8]) -> String {
    let head = bytes.get(..bytes.len().min(256)).unwrap_or(bytes);
    let text = decode(head);
    text.lines()
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"')
        .trim()
        .to_string()
}

/// Whether the content is this format: `ZPLOT2 ASCII` or a quoted
/// `ZPlotW Data File` first line.
pub fn sniff(bytes: &[u8]) -> bool {
    let l = first_line(bytes);
    l.starts_with("ZPLOT2 ASCII") || l.starts_with("ZPlotW Data File")
}

/// Whether the first line is the ZView `Z60W Data File` layout.
pub(crate) fn sniff_z60w(bytes: &[u8]) -> bool {
    first_line(bytes).starts_with("Z60W Data File")
}

/// Read a ZPlot/ZView text table: the spectrum by column name.
pub(crate) fn zview_impedance(
    bytes: &[u8],
    source: &str,
    format: Format,
) -> Result<ImpedanceData, FormatError> {
    let expected = "a ZPlot/ZView text file with Freq(Hz), Z'(a), Z''(b) columns";
    let text = decode(bytes);
    let lines = numbered_lines(&text);
    let mut meta = BTreeMap::new();
    let end_comments = lines.iter().position(|(_, l)| l.trim() == "End Comments");
    let (header, data_from) = if let Some(end) = end_comments {
        // ZPLOT2 ASCII: `Key: value` header, names just before End Comments.
        for (_, l) in lines.iter().take(end) {
            if let Some((k, v)) = l.split_once(':') {
                let k = k.trim();
                if !k.is_empty() && !k.starts_with("Begin") && !k.starts_with("End") {
                    meta.entry(k.to_string())
                        .or_insert_with(|| v.trim().to_string());
                }
            }
        }
        let names = end
            .checked_sub(1)
            .and_then(|k| lines.get(k))
            .filter(|(_, l)| l.contains("Freq"));
        let header = match names {
            Some(&(n, l)) => Header::parse(n, l, Delim::detect(l)),
            None => {
                meta.insert(
                    "columns_note".to_string(),
                    "no column names before End Comments: ZPlot's fixed column order used"
                        .to_string(),
                );
                let n = lines.get(end).map(|x| x.0).unwrap_or(1);
                Header::parse(n, ZPLOT_COLUMNS, Delim::Tab)
            }
        };
        (header, end + 1)
    } else {
        // ZPlotW / Z60W: quoted names aligned with spaces, comma rows.
        let Some(k) = lines.iter().position(|(_, l)| {
            l.trim_start().starts_with('"') && (l.contains("Freq(Hz)") || l.contains("Freq (Hz)"))
        }) else {
            return Err(unrecognised(
                source,
                "ZPlot/ZView file without a Freq(Hz) column line".to_string(),
                expected,
            ));
        };
        for (_, l) in lines.iter().take(k) {
            let l = l.trim().trim_matches('"').trim();
            if let Some((key, v)) = l.split_once(':') {
                meta.entry(key.trim().to_string())
                    .or_insert_with(|| v.trim().to_string());
            }
        }
        if let Some(count) = k
            .checked_sub(1)
            .and_then(|j| lines.get(j))
            .map(|(_, l)| l.trim())
            .filter(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()))
        {
            meta.insert("declared_points".to_string(), count.to_string());
        }
        let Some(&(n, l)) = lines.get(k) else {
            return Err(unrecognised(source, "no header".to_string(), expected));
        };
        // Merge `(Hz)` into the name before it: `Freq (Hz)` is one column.
        let mut names: Vec<String> = Vec::new();
        for tok in l.trim().trim_matches('"').split_whitespace() {
            match names.last_mut() {
                Some(last) if tok.starts_with('(') => last.push_str(tok),
                _ => names.push(tok.to_string()),
            }
        }
        let delim = lines
            .iter()
            .skip(k + 1)
            .find(|(_, l)| !l.trim().is_empty())
            .map(|(_, l)| Delim::detect(l))
            .unwrap_or(Delim::Comma);
        let mut header = Header::parse(n, &names.join("\t"), Delim::Tab);
        header.delim = delim;
        (header, k + 1)
    };
    if let Some(p) = meta.get("Data Points") {
        meta.insert("declared_points".to_string(), p.clone());
    }
    let data: Vec<(usize, &str)> = lines.get(data_from..).unwrap_or(&[]).to_vec();
    if header.find(Quantity::ZRe).is_none() {
        return Err(unrecognised(
            source,
            format!("ZPlot column line names {}", header.names_joined()),
            expected,
        ));
    }
    let mut z = impedance_from_header(format, &header, &data, source, expected)?;
    if z.imag_sign == ImagSign::AsIs {
        z.sign_note =
            "ZPlot/ZView write Z'' with its physical sign (negative for a capacitive arc); taken as is"
                .to_string();
    }
    if let Some(declared) = meta.get("declared_points") {
        if declared.parse::<usize>().ok() != Some(z.f_Hz.len()) {
            meta.insert(
                "points_note".to_string(),
                format!(
                    "the header declares {declared} points, the file holds {} rows (all read)",
                    z.f_Hz.len()
                ),
            );
        }
    }
    meta.append(&mut z.meta);
    z.meta = meta;
    Ok(z)
}

/// Read an impedance spectrum.
pub fn impedance(bytes: &[u8], source: &str) -> Result<ImpedanceData, FormatError> {
    zview_impedance(bytes, source, Format::Zplot)
}
