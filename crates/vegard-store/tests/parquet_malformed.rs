//! Malformed Parquet files are errors naming the file, never panics: the
//! inputs are the `parquet` fuzz target's findings (`fuzz/regressions/`),
//! on which polars-parquet itself panics.

use std::path::PathBuf;

use vegard_store::{StoreError, read_parquet};

/// polars-parquet 0.55 panics with "thrift bool field" on this file (a
/// `SortingColumn` whose bool field has the wrong Thrift type).
const THRIFT_BOOL_FIELD: &[u8] =
    include_bytes!("../../../fuzz/regressions/parquet/polars-thrift-bool-field-panic.parquet");

fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vegard-store-pq-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("{}: {e}", dir.display());
    }
    let path = dir.join(name);
    if let Err(e) = std::fs::write(&path, bytes) {
        panic!("{}: {e}", path.display());
    }
    path
}

#[test]
fn a_file_polars_panics_on_is_an_error_naming_it() {
    let path = scratch_file("thrift-bool.parquet", THRIFT_BOOL_FIELD);
    for _ in 0..2 {
        // Twice: the first call installs the quiet panic hook, the second
        // must behave the same.
        match read_parquet(&path) {
            Err(e @ StoreError::Parquet { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.starts_with(&path.display().to_string())
                        && msg.contains("not a readable Parquet file")
                        && msg.contains("thrift bool field"),
                    "{msg}"
                );
            }
            other => panic!("expected a Parquet error, got {other:?}"),
        }
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn panics_elsewhere_still_panic() {
    // The containment is scoped to the reader: a panic outside it unwinds
    // as usual (and is caught here only to check that it happened).
    let path = scratch_file("thrift-bool-2.parquet", THRIFT_BOOL_FIELD);
    assert!(read_parquet(&path).is_err());
    let r = std::panic::catch_unwind(|| panic!("outside the reader"));
    assert!(r.is_err());
    let _ = std::fs::remove_file(&path);
}
