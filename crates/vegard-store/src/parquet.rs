//! Parquet: the finished format of a run (`data/<stream>.parquet`,
//! `aligned.parquet`). The only place the store touches polars, so the rest
//! of vegard passes plain [`Table`]s around.

use std::fs::File;
use std::path::{Path, PathBuf};

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use polars_core::prelude::{
    Column as PlColumn, DataFrame, DataType, Float64Chunked, Int64Chunked, IntoSeries,
    NewChunkedArray, Schema as PlSchema,
};
use polars_error::PolarsError;
use polars_io::SerReader;
use polars_io::parquet::read::ParquetReader;
use polars_io::parquet::write::KeyValueMetadata;
use polars_io::parquet::write::{BatchedWriter, ParquetWriter};

use crate::meta::sync_parent;
use crate::raw::{RawBatches, find_raw, list_raw_streams};
use crate::{Column, DATA_DIR, MISSING_I64, StoreError, Table};

/// Write `table` to `path` as Parquet. Written to `<path>.tmp` and renamed,
/// so re-running a finalisation after a crash never leaves a truncated file
/// under the real name.
pub fn write_parquet(path: &Path, table: &Table) -> Result<(), StoreError> {
    table.check()?;
    let pl_err = |error| StoreError::Parquet {
        path: path.to_owned(),
        error,
    };
    let mut df = frame(table).map_err(pl_err)?;

    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut file = File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
    ParquetWriter::new(&mut file)
        .with_key_value_metadata(Some(file_metadata(path, &table.names())))
        .finish(&mut df)
        .map_err(pl_err)?;
    file.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))?;
    sync_parent(path);
    Ok(())
}

/// The unit of a column, read off its name's suffix (the schema's
/// convention: `t_s`, `E_V`, `Z_re_ohm`, `response_nm_per_V`); empty for
/// counts and labels (`step`, `cycle`, `status`) and `1` for ratios.
pub fn unit_of(name: &str) -> &'static str {
    const SUFFIXES: &[(&str, &str)] = &[
        ("_nm_per_V", "nm/V"),
        ("_V_per_s", "V/s"),
        ("_V_rms", "V rms"),
        ("_nm_rms", "nm rms"),
        ("_ratio", "1"),
        ("_ohm", "ohm"),
        ("_deg", "deg"),
        ("_Hz", "Hz"),
        ("_ns", "ns"),
        ("_nm", "nm"),
        ("_s", "s"),
        ("_V", "V"),
        ("_A", "A"),
        ("_K", "K"),
    ];
    if name == "V" {
        return "V";
    }
    SUFFIXES
        .iter()
        .find(|(suffix, _)| name.ends_with(suffix))
        .map_or("", |(_, unit)| unit)
}

/// Key-value metadata of every Parquet file vegard writes, so a file says
/// what it holds without the README beside it: `vegard.units` (a JSON
/// object, column -> unit, [`unit_of`]), `vegard.version`, and
/// `vegard.run_id` (the run folder's name) when the file lies in a run
/// folder (beside its run.toml or in its `data/`).
fn file_metadata(path: &Path, names: &[&str]) -> KeyValueMetadata {
    let units: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .map(|n| ((*n).to_owned(), unit_of(n).into()))
        .collect();
    let mut kv = vec![
        (
            "vegard.units".to_owned(),
            serde_json::Value::Object(units).to_string(),
        ),
        (
            "vegard.version".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
    ];
    let run = path
        .ancestors()
        .skip(1)
        .take(2)
        .find(|dir| dir.join(crate::RUN_META_FILE).is_file());
    if let Some(id) = run.and_then(|dir| dir.file_name()) {
        kv.push((
            "vegard.run_id".to_owned(),
            id.to_string_lossy().into_owned(),
        ));
    }
    KeyValueMetadata::from_static(kv)
}

/// The columns of `table` as a polars frame (no copy of the table kept).
/// A missing value (NaN or [`MISSING_I64`] in a [`Table`]) is written as a Parquet null, as
/// the CSV export leaves it empty: polars, pandas and pyarrow then count
/// it as missing in both (`null_count`, `isna`), which a NaN is not.
fn frame(table: &Table) -> Result<DataFrame, PolarsError> {
    let columns: Vec<PlColumn> = table
        .columns
        .iter()
        .map(|(name, col)| match col {
            Column::I64(v) if v.contains(&MISSING_I64) => Int64Chunked::from_iter_options(
                name.as_str().into(),
                v.iter().map(|&x| (x != MISSING_I64).then_some(x)),
            )
            .into_series()
            .into(),
            Column::I64(v) => PlColumn::new(name.as_str().into(), v.as_slice()),
            Column::F64(v) => Float64Chunked::from_iter_options(
                name.as_str().into(),
                v.iter().map(|&x| (!x.is_nan()).then_some(x)),
            )
            .into_series()
            .into(),
        })
        .collect();
    DataFrame::new(table.len(), columns)
}

/// A Parquet file written a row group at a time, so a table of any length
/// is written with one batch in memory (finalisation of long runs). Like
/// [`write_parquet`] it writes `<path>.tmp` and renames it on
/// [`ParquetTableWriter::finish`]; dropped unfinished, the `.tmp` is
/// removed and the real name is never touched.
pub struct ParquetTableWriter {
    path: PathBuf,
    tmp: PathBuf,
    columns: Vec<crate::ColumnSpec>,
    writer: Option<BatchedWriter<File>>,
    /// Rows not yet written: raw batches are a second of data (a hundred
    /// rows of potentiostat), and each written batch becomes a row group
    /// with its own footer entry, so small batches are gathered up to
    /// [`ROW_GROUP_ROWS`] first (a day of them would otherwise outgrow the
    /// footer bound of `parquet_footer`).
    pending: Table,
    rows: u64,
}

/// Rows gathered into one row group by [`ParquetTableWriter`]: 256 Ki,
/// a few MB per column group in memory, a few hundred row groups for a
/// day at 1 kS/s.
pub const ROW_GROUP_ROWS: usize = 1 << 18;

impl std::fmt::Debug for ParquetTableWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetTableWriter")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .finish()
    }
}

impl ParquetTableWriter {
    /// Start `path` (as `<path>.tmp`) with these columns.
    pub fn create(path: &Path, columns: &[crate::ColumnSpec]) -> Result<Self, StoreError> {
        let pl_err = |error| StoreError::Parquet {
            path: path.to_owned(),
            error,
        };
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let file = File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        let schema: PlSchema = columns
            .iter()
            .map(|c| {
                let dtype = match c.kind {
                    crate::ColKind::I64 => DataType::Int64,
                    crate::ColKind::F64 => DataType::Float64,
                };
                (c.name.as_ref().into(), dtype)
            })
            .collect();
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_ref()).collect();
        let writer = ParquetWriter::new(file)
            .with_key_value_metadata(Some(file_metadata(path, &names)))
            .batched(&schema)
            .map_err(pl_err)?;
        Ok(Self {
            path: path.to_owned(),
            tmp,
            columns: columns.to_vec(),
            writer: Some(writer),
            pending: Table::empty(columns),
            rows: 0,
        })
    }

    /// Append `table` (the writer's columns, in order); written out in row
    /// groups of about [`ROW_GROUP_ROWS`].
    pub fn write(&mut self, table: &Table) -> Result<(), StoreError> {
        table.check()?;
        let names: Vec<&str> = table.names();
        let want: Vec<&str> = self.columns.iter().map(|c| c.name.as_ref()).collect();
        if names != want {
            return Err(StoreError::Table {
                msg: format!(
                    "{}: batch columns {names:?}, the file's are {want:?}",
                    self.path.display()
                ),
            });
        }
        if self.writer.is_none() {
            return Err(StoreError::Run {
                path: self.path.clone(),
                msg: "write after finish".into(),
            });
        }
        if table.is_empty() {
            return Ok(());
        }
        if self.pending.is_empty() && table.len() >= ROW_GROUP_ROWS {
            return self.write_now(table);
        }
        self.pending.append(table)?;
        if self.pending.len() >= ROW_GROUP_ROWS {
            self.flush_pending()?;
        }
        Ok(())
    }

    fn flush_pending(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.pending, Table::empty(&self.columns));
        self.write_now(&full)
    }

    fn write_now(&mut self, table: &Table) -> Result<(), StoreError> {
        let pl_err = |error| StoreError::Parquet {
            path: self.path.clone(),
            error,
        };
        let df = frame(table).map_err(pl_err)?;
        let Some(w) = self.writer.as_mut() else {
            return Err(StoreError::Run {
                path: self.path.clone(),
                msg: "write after finish".into(),
            });
        };
        w.write_batch(&df).map_err(pl_err)?;
        self.rows += table.len() as u64;
        Ok(())
    }

    /// Rows given so far (written or gathered for the next row group).
    pub fn rows(&self) -> u64 {
        self.rows + self.pending.len() as u64
    }

    /// Write the footer, make the file durable and give it its real name.
    pub fn finish(mut self) -> Result<u64, StoreError> {
        self.flush_pending()?;
        let pl_err = |error| StoreError::Parquet {
            path: self.path.clone(),
            error,
        };
        if let Some(w) = self.writer.take() {
            w.finish().map_err(pl_err)?;
        }
        let file = File::options()
            .write(true)
            .open(&self.tmp)
            .map_err(|e| StoreError::io(&self.tmp, e))?;
        file.sync_all().map_err(|e| StoreError::io(&self.tmp, e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| StoreError::io(&self.path, e))?;
        sync_parent(&self.path);
        Ok(self.rows)
    }
}

impl Drop for ParquetTableWriter {
    fn drop(&mut self) {
        if self.writer.is_some() {
            // Not finished: no half file under either name.
            self.writer = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Read a Parquet file with only i64 and f64 columns (what vegard writes)
/// into a [`Table`]. Nulls and other column types are errors naming the
/// column, since silently filling them would invent data.
///
/// polars-parquet panics on some malformed files instead of returning an
/// error (0.55: an `expect` in its Thrift metadata decoder, found by the
/// `parquet` fuzz target); such a panic is caught here and returned as a
/// [`StoreError::Parquet`] naming the file, so no file can crash vegard.
/// It also allocates from counts in the footer before checking them; the
/// footer is walked first (`parquet_footer`), so those counts are bounded
/// by the footer's size.
pub fn read_parquet(path: &Path) -> Result<Table, StoreError> {
    read_parquet_part(path, None, None)
}

/// Rows of a Parquet file, from its footer (checked as [`read_parquet`]
/// checks it).
pub fn parquet_rows(path: &Path) -> Result<usize, StoreError> {
    let pl_err = |error| StoreError::Parquet {
        path: path.to_owned(),
        error,
    };
    let file = open_checked(path)?;
    contain_panics(|| ParquetReader::new(file).num_rows())
        .unwrap_or_else(|why| {
            Err(PolarsError::ComputeError(
                format!("not a readable Parquet file (the Parquet reader failed: {why})").into(),
            ))
        })
        .map_err(pl_err)
}

/// Part of a Parquet file: only `columns` (all when `None`, in file
/// order; else in the file's order too), and only the `len` rows from
/// `offset` (`rows`; all when `None`). Only the row groups that hold
/// those rows are decoded, so a day-long table is read a step at a time
/// in memory bounded by the step (see [`read_parquet`] for the checks).
pub fn read_parquet_part(
    path: &Path,
    columns: Option<&[&str]>,
    rows: Option<(usize, usize)>,
) -> Result<Table, StoreError> {
    let pl_err = |error| StoreError::Parquet {
        path: path.to_owned(),
        error,
    };
    let file = open_checked(path)?;
    let df = contain_panics(|| {
        ParquetReader::new(file)
            .with_columns(columns.map(|c| c.iter().map(|s| (*s).to_owned()).collect()))
            .with_slice(rows)
            .finish()
    })
    .unwrap_or_else(|why| {
        Err(PolarsError::ComputeError(
            format!("not a readable Parquet file (the Parquet reader failed: {why})").into(),
        ))
    })
    .map_err(pl_err)?;
    let bad = |name: &str, msg: String| StoreError::Parse {
        path: path.to_owned(),
        line: 0,
        msg: format!("column {name:?}: {msg}"),
    };
    let mut table = Table::new();
    for c in df.columns() {
        let name = c.name().as_str();
        let col = match c.dtype() {
            DataType::Int64 => {
                // A null is a missing integer label ([`MISSING_I64`]).
                let ca = c.i64().map_err(pl_err)?;
                Column::I64(ca.iter().map(|x| x.unwrap_or(MISSING_I64)).collect())
            }
            // A null is a missing value: NaN in memory ([`frame`]).
            DataType::Float64 => {
                let ca = c.f64().map_err(pl_err)?;
                Column::F64(ca.iter().map(|x| x.unwrap_or(f64::NAN)).collect())
            }
            other => return Err(bad(name, format!("unsupported type {other}"))),
        };
        table.columns.push((name.to_owned(), col));
    }
    Ok(table)
}

/// The file, opened after its footer passed [`crate::parquet_footer`].
fn open_checked(path: &Path) -> Result<File, StoreError> {
    let mut file = File::open(path).map_err(|e| StoreError::io(path, e))?;
    crate::parquet_footer::check_file(&mut file)
        .map_err(|e| StoreError::io(path, e))?
        .map_err(|why| StoreError::Parquet {
            path: path.to_owned(),
            error: PolarsError::ComputeError(format!("not a readable Parquet file ({why})").into()),
        })?;
    Ok(file)
}

thread_local! {
    /// Set while [`contain_panics`] runs on this thread: the panic hook then
    /// stays quiet, because the panic becomes an error.
    static CONTAINING: Cell<bool> = const { Cell::new(false) };
}

/// How many [`contain_panics`] calls are running, on any thread. polars
/// decodes columns on its rayon pool (threads named `polars-N`), and rayon
/// carries a worker's panic back to the caller, where it is caught; the
/// message is printed by the hook on the worker, though, which knows
/// nothing of the caller. While a containment runs, panics on polars'
/// own threads are kept quiet too (found by the `parquet` fuzz target:
/// polars-parquet 0.55 panics in its dictionary decoder on a worker).
static CONTAINING_ANYWHERE: AtomicUsize = AtomicUsize::new(0);

/// A panic on this thread that [`contain_panics`] will turn into an error.
fn contained_here() -> bool {
    CONTAINING.with(Cell::get)
        || (CONTAINING_ANYWHERE.load(Ordering::SeqCst) > 0
            && std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("polars")))
}

/// Run `f`, turning a panic inside it into `Err(its message)`. The panic
/// message is kept off stderr for panics on this thread and on polars'
/// worker threads meanwhile (the caller reports the error instead); a panic
/// hook that stays quiet only then is installed, around the existing one,
/// on first use.
fn contain_panics<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static QUIET_HOOK: Once = Once::new();
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !contained_here() {
                previous(info);
            }
        }));
    });
    let outer = CONTAINING.with(|c| c.replace(true));
    CONTAINING_ANYWHERE.fetch_add(1, Ordering::SeqCst);
    let result = catch_unwind(AssertUnwindSafe(f));
    CONTAINING_ANYWHERE.fetch_sub(1, Ordering::SeqCst);
    CONTAINING.with(|c| c.set(outer));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned())
    })
}

/// One raw stream converted by [`finalize_streams`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalizedStream {
    pub name: String,
    pub rows: usize,
    pub parquet_path: PathBuf,
}

/// Convert every raw stream (`raw/<stream>.arrows`, or a legacy `.csv`)
/// into `data/<stream>.parquet`. Raw files
/// are kept (they are the primary record). Safe to run again, e.g. during
/// recovery: Parquet files are rewritten from the raw files. Streams whose
/// header never reached the disk hold no rows and are skipped. Close or
/// flush open [`crate::RawStream`]s first, or their unflushed rows are missed.
pub fn finalize_streams(run_dir: &Path) -> Result<Vec<FinalizedStream>, StoreError> {
    let data = run_dir.join(DATA_DIR);
    std::fs::create_dir_all(&data).map_err(|e| StoreError::io(&data, e))?;
    let mut done = Vec::new();
    for name in list_raw_streams(run_dir)? {
        let Some(raw) = find_raw(run_dir, &name) else {
            continue;
        };
        // Batch by batch: memory holds one batch however long the stream.
        let mut batches = match RawBatches::open(&raw) {
            Ok(b) => b,
            Err(StoreError::NoHeader { .. }) => continue,
            Err(e) => return Err(e),
        };
        let parquet_path = data.join(format!("{name}.parquet"));
        let mut out = ParquetTableWriter::create(&parquet_path, batches.columns())?;
        while let Some(batch) = batches.next_batch()? {
            out.write(&batch)?;
        }
        let rows = out.finish()?;
        done.push(FinalizedStream {
            name,
            rows: usize::try_from(rows).unwrap_or(usize::MAX),
            parquet_path,
        });
    }
    Ok(done)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn units_come_from_the_column_names() {
        for (name, unit) in [
            ("t_s", "s"),
            ("host_ns", "ns"),
            ("E_V", "V"),
            ("V", "V"),
            ("I_amp_A", "A"),
            ("Z_re_ohm", "ohm"),
            ("response_nm_per_V", "nm/V"),
            ("sweep_scan_rate_V_per_s", "V/s"),
            ("sweep_dc_V", "V"),
            ("sweep_freq_Hz", "Hz"),
            ("lockin_x_V_rms", "V rms"),
            ("deflection_residual_nm_rms", "nm rms"),
            ("deflection_h2_ratio", "1"),
            ("response_phase_deg", "deg"),
            ("setpoint_K", "K"),
            ("f_Hz", "Hz"),
            ("cycle", ""),
            ("sweep_iteration", ""),
        ] {
            assert_eq!(unit_of(name), unit, "{name}");
        }
    }

    /// A missing value is a null in the file (what other readers count as
    /// missing, as they do an empty CSV cell) and NaN again when read back.
    #[test]
    fn missing_values_are_parquet_nulls_and_nan_in_memory() {
        let dir = std::env::temp_dir().join(format!("vegard-nulls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.parquet");
        let table = Table::new()
            .with("t_s", Column::F64(vec![0.0, 1.0, 2.0]))
            .with("I_A", Column::F64(vec![f64::NAN, 1e-3, f64::NAN]))
            .with("step", Column::I64(vec![1, 1, 2]))
            .with("sweep_iteration", Column::I64(vec![MISSING_I64, 0, 1]));
        write_parquet(&path, &table).unwrap();
        let df = ParquetReader::new(File::open(&path).unwrap())
            .finish()
            .unwrap();
        let nulls: Vec<usize> = df.columns().iter().map(|c| c.null_count()).collect();
        assert_eq!(nulls, vec![0, 2, 0, 1]);
        assert_eq!(
            df.column("sweep_iteration").unwrap().dtype(),
            &DataType::Int64
        );
        // The file says what it holds: units per column and the version.
        let meta = |path: &Path, key: &str| -> String {
            let mut reader = ParquetReader::new(File::open(path).unwrap());
            let kv = reader.get_metadata().unwrap().key_value_metadata().clone();
            kv.unwrap_or_default()
                .into_iter()
                .find(|e| e.key == key)
                .and_then(|e| e.value)
                .unwrap_or_default()
        };
        assert_eq!(
            meta(&path, "vegard.units"),
            r#"{"I_A":"A","step":"","sweep_iteration":"","t_s":"s"}"#
        );
        assert_eq!(meta(&path, "vegard.version"), env!("CARGO_PKG_VERSION"));
        assert_eq!(meta(&path, "vegard.run_id"), "", "not in a run folder");
        // In a run folder's data/: the run's id (its folder name).
        let run = dir.join("20261204T120000Z_demo");
        std::fs::create_dir_all(run.join(crate::DATA_DIR)).unwrap();
        std::fs::write(run.join(crate::RUN_META_FILE), "").unwrap();
        let in_run = run.join(crate::DATA_DIR).join("x.parquet");
        write_parquet(&in_run, &table).unwrap();
        assert_eq!(meta(&in_run, "vegard.run_id"), "20261204T120000Z_demo");
        let back = read_parquet(&path).unwrap();
        let i = back.f64("I_A").unwrap();
        assert!(i[0].is_nan() && i[2].is_nan() && i[1] == 1e-3, "{i:?}");
        assert_eq!(back.f64("t_s").unwrap(), vec![0.0, 1.0, 2.0]);
        assert_eq!(
            back.i64("sweep_iteration").unwrap(),
            vec![MISSING_I64, 0, 1]
        );
        // The streaming writer writes the same nulls.
        let streamed = dir.join("s.parquet");
        let specs = [
            crate::ColumnSpec::new("step", crate::ColKind::I64),
            crate::ColumnSpec::new("sweep_iteration", crate::ColKind::I64),
        ];
        let mut w = ParquetTableWriter::create(&streamed, &specs).unwrap();
        w.write(
            &Table::new()
                .with("step", Column::I64(vec![0, 1]))
                .with("sweep_iteration", Column::I64(vec![MISSING_I64, 3])),
        )
        .unwrap();
        assert_eq!(w.finish().unwrap(), 2);
        let s = read_parquet(&streamed).unwrap();
        assert_eq!(s.i64("sweep_iteration").unwrap(), vec![MISSING_I64, 3]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
