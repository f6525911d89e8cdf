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

/// The footer's fields carry Thrift types other than Parquet's schema
/// gives them; polars reads known fields by id as the schema types them,
/// and so reached a page header declaring a 1.7 GB string that a walk by
/// the declared types never saw.
const MISTYPED_FOOTER: &[u8] = include_bytes!(
    "../../../fuzz/regressions/parquet/polars-mistyped-footer-field-1.7GB-allocation.parquet"
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

/// The error of reading `bytes` as a Parquet file: it must be one naming
/// the file.
fn parquet_error(name: &str, bytes: &[u8]) -> String {
    let path = scratch_file(name, bytes);
    let msg = match read_parquet(&path) {
        Err(e @ StoreError::Parquet { .. }) => e.to_string(),
        other => panic!("{name}: expected a Parquet error, got {other:?}"),
    };
    assert!(
        msg.starts_with(&path.display().to_string()),
        "{name}: {msg}"
    );
    let _ = std::fs::remove_file(&path);
    msg
}

#[test]
fn a_file_polars_panics_on_is_an_error_naming_it() {
    for _ in 0..2 {
        // Twice: the first call installs the quiet panic hook, the second
        // must behave the same.
        let msg = parquet_error("thrift-bool.parquet", THRIFT_BOOL_FIELD);
        assert!(msg.contains("not a readable Parquet file"), "{msg}");
    }
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
    // Columns decode in parallel: the panic or another column's Thrift
    // error may come first, either is an error naming the file.
    parquet_error("dictionary-worker.parquet", DICTIONARY_IN_WORKER);
}

#[test]
fn a_footer_declaring_more_row_groups_than_bytes_is_an_error_naming_it() {
    let msg = parquet_error("row-group-count.parquet", ROW_GROUP_COUNT);
    assert!(msg.contains("malformed footer metadata"), "{msg}");
}

#[test]
fn a_fuzzed_page_header_string_of_1_7_gb_is_an_error_naming_the_file() {
    // Its footer is mistyped too, which is what is refused first now.
    let msg = parquet_error("page-header.parquet", PAGE_HEADER_STRING);
    assert!(msg.contains("malformed"), "{msg}");
}

#[test]
fn a_footer_field_whose_type_differs_from_parquets_schema_is_refused() {
    for _ in 0..3 {
        // Several times: polars decoded its columns in parallel, and this
        // file failed only on some runs before the walk refused it.
        let msg = parquet_error("mistyped-footer.parquet", MISTYPED_FOOTER);
        assert!(
            msg.contains("malformed footer metadata")
                && msg.contains("declared with Thrift type")
                && msg.contains("where Parquet's schema has"),
            "{msg}"
        );
    }
}

/// A table vegard wrote, with the first page header's compressed size
/// (field 3, right after the page type and uncompressed size) made as
/// large as its varint's bytes allow: the page then runs past its column
/// chunk (or past the page bound), which the page walk refuses before
/// polars reads the page.
#[test]
fn a_page_header_declaring_more_bytes_than_its_chunk_is_an_error_naming_it() {
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/golden/demo-run/data/potentiostat.parquet");
    let mut bytes = std::fs::read(&golden).unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
    // PAR1, then the first page header: 0x15 type, 0x15 uncompressed, 0x15 compressed.
    let varint_end =
        |b: &[u8], at: usize| at + b[at..].iter().position(|x| x & 0x80 == 0).unwrap() + 1;
    assert_eq!(bytes[4], 0x15, "page header field 1 (i32 page type)");
    let at = varint_end(&bytes, 5);
    assert_eq!(
        bytes[at], 0x15,
        "page header field 2 (i32 uncompressed size)"
    );
    let at = varint_end(&bytes, at + 1);
    assert_eq!(bytes[at], 0x15, "page header field 3 (i32 compressed size)");
    let end = varint_end(&bytes, at + 1);
    for b in &mut bytes[at + 1..end - 1] {
        *b = 0xfe; // zigzag: large and positive
    }
    bytes[end - 1] = 0x7e;
    let msg = parquet_error("page-header-size.parquet", &bytes);
    assert!(
        msg.contains("malformed page header at byte 4")
            || msg.contains("a page running past its column chunk"),
        "{msg}"
    );
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
