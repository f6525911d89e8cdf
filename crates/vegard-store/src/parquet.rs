//! Parquet: the finished format of a run (`data/<stream>.parquet`,
//! `aligned.parquet`). The only place the store touches polars, so the rest
//! of vegard passes plain [`Table`]s around.

use std::fs::File;
use std::path::{Path, PathBuf};

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use polars::error::PolarsError;
use polars::prelude::{
    Column as PlColumn, DataFrame, DataType, ParquetReader, ParquetWriter, SerReader,
};

use crate::meta::sync_parent;
use crate::raw::{list_raw_streams, read_raw};
use crate::{Column, DATA_DIR, StoreError, Table};

/// Write `table` to `path` as Parquet. Written to `<path>.tmp` and renamed,
/// so re-running a finalisation after a crash never leaves a truncated file
/// under the real name.
pub fn write_parquet(path: &Path, table: &Table) -> Result<(), StoreError> {
    table.check()?;
    let pl_err = |error| StoreError::Parquet {
        path: path.to_owned(),
        error,
    };
    let columns: Vec<PlColumn> = table
        .columns
        .iter()
        .map(|(name, col)| match col {
            Column::I64(v) => PlColumn::new(name.as_str().into(), v.as_slice()),
            Column::F64(v) => PlColumn::new(name.as_str().into(), v.as_slice()),
        })
        .collect();
    let mut df = DataFrame::new(table.len(), columns).map_err(pl_err)?;

    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut file = File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
    ParquetWriter::new(&mut file)
        .finish(&mut df)
        .map_err(pl_err)?;
    file.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))?;
    sync_parent(path);
    Ok(())
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
    let pl_err = |error| StoreError::Parquet {
        path: path.to_owned(),
        error,
    };
    let mut file = File::open(path).map_err(|e| StoreError::io(path, e))?;
    crate::parquet_footer::check_file(&mut file)
        .map_err(|e| StoreError::io(path, e))?
        .map_err(|why| {
            pl_err(PolarsError::ComputeError(
                format!("not a readable Parquet file ({why})").into(),
            ))
        })?;
    let df = contain_panics(|| ParquetReader::new(file).finish())
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
                let ca = c.i64().map_err(pl_err)?;
                if ca.null_count() > 0 {
                    return Err(bad(name, format!("{} null values", ca.null_count())));
                }
                Column::I64(ca.into_no_null_iter().collect())
            }
            DataType::Float64 => {
                let ca = c.f64().map_err(pl_err)?;
                if ca.null_count() > 0 {
                    return Err(bad(name, format!("{} null values", ca.null_count())));
                }
                Column::F64(ca.into_no_null_iter().collect())
            }
            other => return Err(bad(name, format!("unsupported type {other}"))),
        };
        table.columns.push((name.to_owned(), col));
    }
    Ok(table)
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
        let table = match read_raw(run_dir, &name) {
            Ok(t) => t,
            Err(StoreError::NoHeader { .. }) => continue,
            Err(e) => return Err(e),
        };
        let parquet_path = data.join(format!("{name}.parquet"));
        write_parquet(&parquet_path, &table)?;
        done.push(FinalizedStream {
            name,
            rows: table.len(),
            parquet_path,
        });
    }
    Ok(done)
}
