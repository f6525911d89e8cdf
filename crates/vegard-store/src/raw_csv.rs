//! The text raw-stream format of run folders recorded before the binary
//! streams (`raw/<stream>.csv`), still read so older folders (and
//! `tests/golden/`) finalise, recover and replay; and written by
//! `vegard export --raw` for people who want text.
//!
//! ```text
//! t_ns:i64,seq:i64,E_V:f64,I_A:f64
//! 1000000,0,0.4,-1.25e-5
//! 2000000,1,0.402,NaN
//! ```
//!
//! The header names every column and its kind (`i64` or `f64`). Integers
//! are decimal, floats Rust's shortest round-trip formatting (`{:?}`:
//! `0.1`, `1e-7`, `NaN`, `inf`), so parsing a line gives back exactly the
//! bits that were appended.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use crate::{ColKind, Column, ColumnSpec, StoreError, Table};

/// Write `table` as raw-stream CSV text (header `name:kind`, exact floats).
pub fn write_raw_csv(table: &Table, header: bool, out: &mut impl Write) -> std::io::Result<()> {
    let cols = &table.columns;
    if header {
        let names: Vec<String> = cols
            .iter()
            .map(|(n, c)| format!("{n}:{}", c.kind_name()))
            .collect();
        writeln!(out, "{}", names.join(","))?;
    }
    let mut line = String::new();
    for r in 0..table.len() {
        line.clear();
        for (i, (_, c)) in cols.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            match c {
                Column::I64(v) => line.push_str(&v[r].to_string()),
                Column::F64(v) => line.push_str(&format!("{:?}", v[r])),
            }
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// Read a legacy `raw/<stream>.csv` into a [`Table`].
///
/// Tolerates exactly what a crash leaves: a last line without its `\n` is
/// dropped. Any complete line that does not parse is an error naming
/// `path:line`, because that is corruption, not a crash artefact.
pub(crate) fn read_csv_file(path: &Path) -> Result<Table, StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut buf = Vec::new();
    let parse_err = |line: usize, msg: String| StoreError::Parse {
        path: path.to_owned(),
        line,
        msg,
    };

    // Header.
    let n = reader
        .read_until(b'\n', &mut buf)
        .map_err(|e| StoreError::io(path, e))?;
    if n == 0 || buf.last() != Some(&b'\n') {
        return Err(StoreError::NoHeader {
            path: path.to_owned(),
        });
    }
    let header = line_text(&buf).map_err(|e| parse_err(1, format!("not UTF-8: {e}")))?;
    let mut specs = Vec::new();
    for field in header.split(',') {
        let (name, kind) = field
            .rsplit_once(':')
            .ok_or_else(|| parse_err(1, format!("header field {field:?} is not name:kind")))?;
        let kind = ColKind::parse(kind).ok_or_else(|| {
            parse_err(
                1,
                format!("header field {field:?}: kind must be i64 or f64"),
            )
        })?;
        specs.push(ColumnSpec {
            name: Cow::Owned(name.to_owned()),
            kind,
        });
    }
    let mut cols: Vec<Column> = specs
        .iter()
        .map(|s| match s.kind {
            ColKind::I64 => Column::I64(Vec::new()),
            ColKind::F64 => Column::F64(Vec::new()),
        })
        .collect();

    // Rows.
    let mut line_no = 1;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| StoreError::io(path, e))?;
        if n == 0 || buf.last() != Some(&b'\n') {
            // End of file, or a torn last line from a crash: dropped.
            break;
        }
        line_no += 1;
        let text = line_text(&buf).map_err(|e| parse_err(line_no, format!("not UTF-8: {e}")))?;
        let mut fields = text.split(',');
        for (col, spec) in cols.iter_mut().zip(&specs) {
            let field = fields.next().ok_or_else(|| {
                parse_err(
                    line_no,
                    format!("expected {} cells, missing {:?}", specs.len(), spec.name),
                )
            })?;
            let bad = |e: &dyn std::fmt::Display| {
                parse_err(
                    line_no,
                    format!("column {:?}: cannot parse {field:?}: {e}", spec.name),
                )
            };
            match col {
                Column::I64(v) => v.push(field.parse::<i64>().map_err(|e| bad(&e))?),
                Column::F64(v) => v.push(field.parse::<f64>().map_err(|e| bad(&e))?),
            }
        }
        if fields.next().is_some() {
            return Err(parse_err(
                line_no,
                format!("more than {} cells", specs.len()),
            ));
        }
    }

    Ok(Table {
        columns: specs
            .into_iter()
            .map(|s| s.name.into_owned())
            .zip(cols)
            .collect(),
    })
}

/// A complete line without its terminator (`\n`, or `\r\n` if edited on Windows).
fn line_text(buf: &[u8]) -> Result<&str, std::str::Utf8Error> {
    let body = buf.strip_suffix(b"\n").unwrap_or(buf);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    std::str::from_utf8(body)
}
