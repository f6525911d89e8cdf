//! Malformed Parquet files are errors naming the file, never panics: the
//! inputs are the `parquet` fuzz target's findings (`fuzz/regressions/`),
//! on which polars-parquet itself panics.

use std::path::PathBuf;

use vegard_store::{StoreError, read_parquet};

/// polars-parquet 0.55 panics with "thrift bool field" on this file (a
/// `SortingColumn` whose bool field has the wrong Thrift type).
const THRIFT_BOOL_FIELD: &[u8] =
    include_bytes!("../../../fuzz/regressions/parquet/polars-thrift-bool-field-panic.parquet");

/// polars-parquet 0.55 panics on one of its rayon workers (dictionary
/// decoder, `required.rs:85`) on this file: the panic reaches the reader
/// through rayon, and the worker's panic message must stay quiet too.
const DICTIONARY_IN_WORKER: &[u8] = include_bytes!(
    "../../../fuzz/regressions/parquet/polars-dictionary-index-panic-in-worker.parquet"
);

/// The footer of this file declares a list of ~10^9 row groups; polars
/// allocated 100 GB for it before reading one (an abort, not an error).
const ROW_GROUP_COUNT: &[u8] = include_bytes!(
    "../../../fuzz/regressions/parquet/polars-row-group-count-100GB-allocation.parquet"
);

/// A dictionary page header of this file holds a Thrift string declared
/// 1.7 GB long; polars allocated it before reading it.
const PAGE_HEADER_STRING: &[u8] = include_bytes!(
    "../../../fuzz/regressions/parquet/polars-page-header-string-1.7GB-allocation.parquet"
);

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
                        && msg.contains("not a readable Parquet file"),
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

#[test]
fn a_file_polars_panics_on_in_a_worker_thread_is_an_error_naming_it() {
    let path = scratch_file("dictionary-worker.parquet", DICTIONARY_IN_WORKER);
    // Columns decode in parallel: the panic or another column's Thrift
    // error may come first, either is an error naming the file.
    match read_parquet(&path) {
        Err(e @ StoreError::Parquet { .. }) => {
            let msg = e.to_string();
            assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        }
        other => panic!("expected a Parquet error, got {other:?}"),
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_footer_declaring_more_row_groups_than_bytes_is_an_error_naming_it() {
    let path = scratch_file("row-group-count.parquet", ROW_GROUP_COUNT);
    match read_parquet(&path) {
        Err(e @ StoreError::Parquet { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with(&path.display().to_string())
                    && msg.contains("malformed footer metadata"),
                "{msg}"
            );
        }
        other => panic!("expected a Parquet error, got {other:?}"),
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_page_header_declaring_more_bytes_than_its_chunk_is_an_error_naming_it() {
    let path = scratch_file("page-header.parquet", PAGE_HEADER_STRING);
    match read_parquet(&path) {
        Err(e @ StoreError::Parquet { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with(&path.display().to_string())
                    && msg.contains("malformed page header at byte"),
                "{msg}"
            );
        }
        other => panic!("expected a Parquet error, got {other:?}"),
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn tables_vegard_writes_pass_the_footer_and_page_checks() {
    // The golden runs' tables, as written by vegard (several row groups
    // would need more rows than a test should write; the walk is the same).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden");
    let mut n = 0;
    for run in ["demo-run", "campaign-run"] {
        for f in [
            "aligned.parquet",
            "data/potentiostat.parquet",
            "data/deflection.parquet",
        ] {
            let p = root.join(run).join(f);
            if p.is_file() {
                if let Err(e) = read_parquet(&p) {
                    panic!("{}: {e}", p.display());
                }
                n += 1;
            }
        }
    }
    assert!(n >= 3, "golden tables missing: {n}");
}
