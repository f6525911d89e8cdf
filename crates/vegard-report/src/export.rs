//! `vegard export`: the aligned table of a run for people who continue in
//! Python, Origin or a spreadsheet. CSV is written here (plain header of
//! the column names, which carry their units, one row per sample, empty
//! fields for missing values); Parquet is the run's own `aligned.parquet`.

use std::io::Write;
use std::path::Path;

use vegard_store::{Column, MISSING_I64, Table};

use crate::ReportError;

/// Write `table` as CSV. Floats use Rust's shortest round-trip form (with
/// an exponent where that is shorter), so no digit recorded is lost; a
/// missing value (NaN, [`MISSING_I64`]) becomes an empty field, as it is a
/// null in the Parquet files.
pub fn write_csv(table: &Table, out: &mut impl Write) -> std::io::Result<()> {
    let names: Vec<&str> = table.names();
    writeln!(out, "{}", names.join(","))?;
    for i in 0..table.len() {
        for (k, (_, col)) in table.columns.iter().enumerate() {
            if k > 0 {
                out.write_all(b",")?;
            }
            match col {
                Column::I64(v) if v[i] != MISSING_I64 => write!(out, "{}", v[i])?,
                Column::I64(_) => {}
                // Debug: shortest round-trip digits, exponent for tiny or
                // huge values (`1e-20`, not 22 characters of zeros).
                Column::F64(v) if v[i].is_finite() => write!(out, "{:?}", v[i])?,
                Column::F64(_) => {}
            }
        }
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Parquet,
}

/// Export `run_dir/aligned.parquet` to `out` (a file path). Returns the rows
/// written.
pub fn export_aligned(
    run_dir: &Path,
    format: ExportFormat,
    out: &Path,
) -> Result<usize, ReportError> {
    let src = vegard_store::schema::aligned_path(run_dir);
    if !src.is_file() {
        return Err(ReportError::Input {
            path: run_dir.display().to_string(),
            msg: "no aligned.parquet: not a finished run folder (run `vegard recover` on an \
                  interrupted run)"
                .to_owned(),
        });
    }
    let io = |source| ReportError::Io {
        path: out.display().to_string(),
        source,
    };
    let table = vegard_store::read_parquet(&src)?;
    match format {
        ExportFormat::Csv => {
            // Written beside the target and renamed, so a failed export never
            // leaves a truncated file under the requested name.
            let tmp = out.with_extension("csv.partial");
            let file = std::fs::File::create(&tmp).map_err(io)?;
            let mut w = std::io::BufWriter::new(file);
            write_csv(&table, &mut w).map_err(io)?;
            w.into_inner()
                .map_err(|e| io(e.into_error()))?
                .sync_all()
                .map_err(io)?;
            std::fs::rename(&tmp, out).map_err(io)?;
        }
        ExportFormat::Parquet => {
            vegard_store::write_parquet(out, &table)?;
        }
    }
    Ok(table.len())
}

/// Export one raw stream of a run folder (`raw/<stream>.arrows`, or a
/// legacy `.csv`) to `out` as text: header `name:kind`, floats exact
/// (`NaN` spelled out), the format vegard itself reads back as a raw
/// stream. Streams batch by batch, so a day-long stream needs no more
/// memory than a second of it. A torn last batch (a crashed run) is left
/// out, as every reader does. Returns the rows written.
pub fn export_raw_csv(run_dir: &Path, stream: &str, out: &Path) -> Result<u64, ReportError> {
    let Some(src) = vegard_store::find_raw(run_dir, stream) else {
        let have = vegard_store::list_raw_streams(run_dir).unwrap_or_default();
        return Err(ReportError::Input {
            path: run_dir.display().to_string(),
            msg: format!(
                "no raw stream {stream:?} (this run has: {})",
                if have.is_empty() {
                    "none".to_owned()
                } else {
                    have.join(", ")
                }
            ),
        });
    };
    let io = |source| ReportError::Io {
        path: out.display().to_string(),
        source,
    };
    let mut batches = vegard_store::RawBatches::open(&src)?;
    let tmp = out.with_extension("csv.partial");
    let file = std::fs::File::create(&tmp).map_err(io)?;
    let mut w = std::io::BufWriter::new(file);
    let mut rows = 0u64;
    let header = Table::empty(batches.columns());
    vegard_store::write_raw_csv(&header, true, &mut w).map_err(io)?;
    let written = (|| {
        while let Some(batch) = batches.next_batch()? {
            vegard_store::write_raw_csv(&batch, false, &mut w).map_err(io)?;
            rows += batch.len() as u64;
        }
        w.into_inner()
            .map_err(|e| io(e.into_error()))?
            .sync_all()
            .map_err(io)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, out).map_err(io)?;
    Ok(rows)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_header_and_round_trips_floats() {
        let t = Table::new()
            .with("t_s", Column::F64(vec![0.1, 0.2 + 0.1]))
            .with("E_V", Column::F64(vec![f64::NAN, -1.0e-7]))
            .with("step", Column::I64(vec![1, 2]))
            .with("sweep_iteration", Column::I64(vec![MISSING_I64, 0]));
        let mut out = Vec::new();
        write_csv(&t, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "t_s,E_V,step,sweep_iteration\n0.1,,1,\n0.30000000000000004,-1e-7,2,0\n"
        );
        let back: f64 = "0.30000000000000004".parse().unwrap();
        assert_eq!(back, 0.2 + 0.1);
    }
}
