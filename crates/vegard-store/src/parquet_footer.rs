//! A check of a Parquet file's footer and page headers before polars
//! reads it.
//!
//! polars-parquet 0.55 sizes vectors from the counts a file's Thrift
//! metadata declares before it has read the elements: a 4 kB file whose
//! footer claims a list of 10^9 row groups makes it allocate 100 GB, and
//! the process aborts (found by the `parquet` fuzz target; the input is in
//! `fuzz/regressions/parquet/`). So the footer is walked here first, in
//! the Thrift compact protocol it is written in, without building
//! anything: every list, set, map and binary must fit in the bytes that
//! remain, and the walk must end where the footer ends. A footer that
//! passes cannot declare more elements than it has bytes, which bounds
//! what the real decoder allocates by the footer's size, itself bounded
//! here by [`MAX_FOOTER_BYTES`]. The same holds inside the data: a page
//! header declaring a 1.7 GB string or page was allocated before it was
//! read, so every page header of every column chunk is walked too (only
//! the headers are read), and row, value and page sizes are bounded
//! ([`MAX_ROWS_PER_GROUP`], [`MAX_PAGE_BYTES`]).
//!
//! The walk reads what polars reads. polars' Thrift decoders (the
//! handwritten footer decoder and the generated page-header one) dispatch
//! on a field's id and read it as Parquet's schema types it, whatever type
//! the field header declares; only unknown ids are skipped by their
//! declared type. A walk that followed the declared types would see a
//! different structure than the decoder (a row-group list declared a
//! struct hid a page declaring a 1.7 GB string). So every field polars
//! knows must carry the type Parquet's schema gives it ([`FILE_METADATA`],
//! [`PAGE_HEADER`]; a mismatch is refused), and the walk descends by the
//! schema. Where declared and schema types agree, both readings are one.

/// Largest footer (file metadata) accepted, bytes: 4 MiB. vegard's own
/// tables have one row group per 512 Ki rows and a few hundred bytes of
/// metadata per row group, so a day-long 1 kS/s run's footer is ~50 kB;
/// at the bound the decoder's vectors stay under a few hundred MB.
pub const MAX_FOOTER_BYTES: usize = 4 << 20;

/// Most rows a row group or a page may declare: 2^26. polars writes
/// 512 Ki rows per row group; the decoder sizes its output by these
/// counts, so the bound keeps one column's buffer under 512 MB.
pub const MAX_ROWS_PER_GROUP: i64 = 1 << 26;

/// Largest page (compressed or not) accepted, bytes: 256 MiB. polars
/// writes 1 MiB pages; the decoder allocates a page's declared
/// uncompressed size before decompressing it.
pub const MAX_PAGE_BYTES: i64 = 256 << 20;

/// Longest page header read, bytes (statistics included; vegard's are
/// under 100 bytes).
const MAX_PAGE_HEADER_BYTES: u64 = 1 << 20;

/// Deepest nesting of structs and containers accepted. Parquet's own
/// schema nests 5 deep; this only keeps the walk's recursion bounded.
const MAX_DEPTH: usize = 64;

const MAGIC: &[u8; 4] = b"PAR1";

/// [`check_footer`] on an open file, reading only its footer (and
/// leaving the position at the start for the decoder). The outer error is
/// an I/O failure, the inner one a footer the decoder must not be given.
pub(crate) fn check_file(file: &mut std::fs::File) -> std::io::Result<Result<(), String>> {
    use std::io::{Read, Seek, SeekFrom};
    let n = file.metadata()?.len();
    let result = if n < 12 {
        Ok(())
    } else {
        let mut tail = [0u8; 8];
        file.seek(SeekFrom::End(-8))?;
        file.read_exact(&mut tail)?;
        let mut len_bytes = [0u8; 4];
        len_bytes.copy_from_slice(&tail[..4]);
        let footer_len = u64::from(u32::from_le_bytes(len_bytes));
        if &tail[4..] != MAGIC || footer_len > n - 8 {
            Ok(()) // not Parquet, or a length the decoder refuses itself
        } else if footer_len > MAX_FOOTER_BYTES as u64 {
            Err(too_big(footer_len))
        } else {
            // The footer and the 8 bytes after it; a 4-byte stand-in for the
            // leading magic keeps the layout check_footer expects.
            let mut buf = vec![0u8; footer_len as usize + 8];
            file.seek(SeekFrom::End(-(footer_len as i64) - 8))?;
            file.read_exact(&mut buf)?;
            let mut whole = MAGIC.to_vec();
            whole.extend_from_slice(&buf);
            match check_footer(&whole) {
                Ok(()) => {
                    let footer = &buf[..footer_len as usize];
                    let data_end = n - 8 - footer_len;
                    check_pages(file, footer, data_end)?
                }
                Err(why) => Err(why),
            }
        }
    };
    file.seek(SeekFrom::Start(0))?;
    Ok(result)
}

/// `Err(why)` when the file ends like a Parquet file (footer length and
/// `PAR1`) but its footer is one the decoder must not be given. A file
/// that does not end like Parquet is left to the decoder, which refuses it
/// with its own message.
pub(crate) fn check_footer(file: &[u8]) -> Result<(), String> {
    let n = file.len();
    if n < 12 || &file[n - 4..] != MAGIC {
        return Ok(());
    }
    let mut len_bytes = [0u8; 4];
    len_bytes.copy_from_slice(&file[n - 8..n - 4]);
    let footer_len = u32::from_le_bytes(len_bytes) as usize;
    if footer_len > MAX_FOOTER_BYTES {
        return Err(too_big(footer_len as u64));
    }
    if footer_len > n - 8 {
        return Ok(()); // the decoder names this one itself
    }
    let footer = &file[n - 8 - footer_len..n - 8];
    let mut w = Walker { b: footer, at: 0 };
    w.typed(&Ty::Struct(&FILE_METADATA), 0)
        .map_err(|why| format!("malformed footer metadata at its byte {}: {why}", w.at))?;
    Ok(())
}

/// A field's type in Parquet's Thrift schema, as polars reads it.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Bool,
    I8,
    I16,
    I32,
    I64,
    /// `binary` and `string`.
    Bin,
    List(&'static Ty),
    /// A struct or a union (read alike: by field id).
    Struct(&'static Schema),
}

impl Ty {
    /// Whether a field header's or list header's compact type is this.
    fn declared_as(self, compact: u8) -> bool {
        match self {
            Ty::Bool => matches!(compact, BOOL_TRUE | BOOL_FALSE),
            Ty::I8 => compact == BYTE,
            Ty::I16 => compact == I16,
            Ty::I32 => compact == I32,
            Ty::I64 => compact == I64,
            Ty::Bin => compact == BINARY,
            Ty::List(_) => compact == LIST,
            Ty::Struct(_) => compact == STRUCT,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Ty::Bool => "bool",
            Ty::I8 => "i8",
            Ty::I16 => "i16",
            Ty::I32 => "i32",
            Ty::I64 => "i64",
            Ty::Bin => "binary",
            Ty::List(_) => "list",
            Ty::Struct(s) => s.name,
        }
    }
}

/// The fields of one Thrift struct that polars reads (by id); others it
/// skips by their declared type, and so does the walk.
#[derive(Debug)]
struct Schema {
    name: &'static str,
    fields: &'static [(i16, Ty)],
}

/// A struct of which polars reads no field (the empty structs of unions).
const EMPTY: Schema = Schema {
    name: "empty struct",
    fields: &[],
};

/// Parquet's `FileMetaData` as polars-parquet 0.55 decodes it
/// (`handwritten_thrift/file_metadata_thrift.rs`); field ids and types from
/// parquet-format's `parquet.thrift`.
const FILE_METADATA: Schema = Schema {
    name: "FileMetaData",
    fields: &[
        (1, Ty::I32),
        (2, Ty::List(&Ty::Struct(&SCHEMA_ELEMENT))),
        (3, Ty::I64),
        (4, Ty::List(&Ty::Struct(&ROW_GROUP))),
        (5, Ty::List(&Ty::Struct(&KEY_VALUE))),
        (6, Ty::Bin),
        (7, Ty::List(&Ty::Struct(&COLUMN_ORDER))),
    ],
};

const SCHEMA_ELEMENT: Schema = Schema {
    name: "SchemaElement",
    fields: &[
        (1, Ty::I32),
        (2, Ty::I32),
        (3, Ty::I32),
        (4, Ty::Bin),
        (5, Ty::I32),
        (6, Ty::I32),
        (7, Ty::I32),
        (8, Ty::I32),
        (9, Ty::I32),
        (10, Ty::Struct(&LOGICAL_TYPE)),
    ],
};

const LOGICAL_TYPE: Schema = Schema {
    name: "LogicalType",
    fields: &[
        (1, Ty::Struct(&EMPTY)),
        (2, Ty::Struct(&EMPTY)),
        (3, Ty::Struct(&EMPTY)),
        (4, Ty::Struct(&EMPTY)),
        (5, Ty::Struct(&DECIMAL_TYPE)),
        (6, Ty::Struct(&EMPTY)),
        (7, Ty::Struct(&TIME_TYPE)),
        (8, Ty::Struct(&TIME_TYPE)),
        (10, Ty::Struct(&INT_TYPE)),
        (11, Ty::Struct(&EMPTY)),
        (12, Ty::Struct(&EMPTY)),
        (13, Ty::Struct(&EMPTY)),
        (14, Ty::Struct(&EMPTY)),
        (15, Ty::Struct(&EMPTY)),
    ],
};

const DECIMAL_TYPE: Schema = Schema {
    name: "DecimalType",
    fields: &[(1, Ty::I32), (2, Ty::I32)],
};

/// `TimeType` and `TimestampType` (the same fields).
const TIME_TYPE: Schema = Schema {
    name: "TimeType",
    fields: &[(1, Ty::Bool), (2, Ty::Struct(&TIME_UNIT))],
};

const TIME_UNIT: Schema = Schema {
    name: "TimeUnit",
    fields: &[
        (1, Ty::Struct(&EMPTY)),
        (2, Ty::Struct(&EMPTY)),
        (3, Ty::Struct(&EMPTY)),
    ],
};

const INT_TYPE: Schema = Schema {
    name: "IntType",
    fields: &[(1, Ty::I8), (2, Ty::Bool)],
};

const ROW_GROUP: Schema = Schema {
    name: "RowGroup",
    fields: &[
        (1, Ty::List(&Ty::Struct(&COLUMN_CHUNK))),
        (2, Ty::I64),
        (3, Ty::I64),
        (4, Ty::List(&Ty::Struct(&SORTING_COLUMN))),
        (5, Ty::I64),
        (6, Ty::I64),
        (7, Ty::I16),
    ],
};

const COLUMN_CHUNK: Schema = Schema {
    name: "ColumnChunk",
    fields: &[
        (1, Ty::Bin),
        (2, Ty::I64),
        (3, Ty::Struct(&COLUMN_META_DATA)),
        (4, Ty::I64),
        (5, Ty::I32),
        (6, Ty::I64),
        (7, Ty::I32),
    ],
};

const COLUMN_META_DATA: Schema = Schema {
    name: "ColumnMetaData",
    fields: &[
        (1, Ty::I32),
        (2, Ty::List(&Ty::I32)),
        (3, Ty::List(&Ty::Bin)),
        (4, Ty::I32),
        (5, Ty::I64),
        (6, Ty::I64),
        (7, Ty::I64),
        (9, Ty::I64),
        (10, Ty::I64),
        (11, Ty::I64),
        (12, Ty::Struct(&STATISTICS)),
        (14, Ty::I64),
        (15, Ty::I32),
    ],
};

const STATISTICS: Schema = Schema {
    name: "Statistics",
    fields: &[
        (1, Ty::Bin),
        (2, Ty::Bin),
        (3, Ty::I64),
        (4, Ty::I64),
        (5, Ty::Bin),
        (6, Ty::Bin),
        (7, Ty::Bool),
        (8, Ty::Bool),
    ],
};

const KEY_VALUE: Schema = Schema {
    name: "KeyValue",
    fields: &[(1, Ty::Bin), (2, Ty::Bin)],
};

const SORTING_COLUMN: Schema = Schema {
    name: "SortingColumn",
    fields: &[(1, Ty::I32), (2, Ty::Bool), (3, Ty::Bool)],
};

const COLUMN_ORDER: Schema = Schema {
    name: "ColumnOrder",
    fields: &[(1, Ty::Struct(&EMPTY)), (2, Ty::Struct(&EMPTY))],
};

/// Parquet's `PageHeader` as polars-parquet-format 0.1 decodes it
/// (generated Thrift code, same dispatch by id).
const PAGE_HEADER: Schema = Schema {
    name: "PageHeader",
    fields: &[
        (1, Ty::I32),
        (2, Ty::I32),
        (3, Ty::I32),
        (4, Ty::I32),
        (5, Ty::Struct(&DATA_PAGE_HEADER)),
        (6, Ty::Struct(&EMPTY)),
        (7, Ty::Struct(&DICTIONARY_PAGE_HEADER)),
        (8, Ty::Struct(&DATA_PAGE_HEADER_V2)),
    ],
};

const DATA_PAGE_HEADER: Schema = Schema {
    name: "DataPageHeader",
    fields: &[
        (1, Ty::I32),
        (2, Ty::I32),
        (3, Ty::I32),
        (4, Ty::I32),
        (5, Ty::Struct(&STATISTICS)),
    ],
};

const DICTIONARY_PAGE_HEADER: Schema = Schema {
    name: "DictionaryPageHeader",
    fields: &[(1, Ty::I32), (2, Ty::I32), (3, Ty::Bool)],
};

const DATA_PAGE_HEADER_V2: Schema = Schema {
    name: "DataPageHeaderV2",
    fields: &[
        (1, Ty::I32),
        (2, Ty::I32),
        (3, Ty::I32),
        (4, Ty::I32),
        (5, Ty::I32),
        (6, Ty::I32),
        (7, Ty::Bool),
        (8, Ty::Struct(&STATISTICS)),
    ],
};

/// Where a column chunk's pages are, bytes from the file's start.
struct Chunk {
    start: u64,
    len: u64,
}

/// The column chunks a (walked, well-formed) footer declares, with the
/// row counts of its row groups checked.
fn chunks(footer: &[u8]) -> Result<Vec<Chunk>, String> {
    let mut out = Vec::new();
    let mut w = Walker { b: footer, at: 0 };
    // FileMetaData field 4: list<RowGroup>.
    w.each_field(0, &mut |w, id, ty| {
        if id != 4 || ty != LIST {
            return Ok(false);
        }
        w.each_element(&mut |w, et| {
            if et != STRUCT {
                return w.value(et, 1);
            }
            // RowGroup field 1: list<ColumnChunk>; field 3: num_rows.
            w.each_field(1, &mut |w, id, ty| match (id, ty) {
                (1, LIST) => {
                    w.each_element(&mut |w, et| {
                        if et != STRUCT {
                            return w.value(et, 2);
                        }
                        column_chunk(w, &mut out)
                    })?;
                    Ok(true)
                }
                (3, I16 | I32 | I64) => {
                    let rows = w.int(ty)?;
                    if !(0..=MAX_ROWS_PER_GROUP).contains(&rows) {
                        return Err(format!(
                            "a row group of {rows} rows (at most {MAX_ROWS_PER_GROUP})"
                        ));
                    }
                    Ok(true)
                }
                _ => Ok(false),
            })
        })?;
        Ok(true)
    })?;
    Ok(out)
}

/// ColumnChunk field 3 (ColumnMetaData): total_compressed_size (7),
/// data_page_offset (9), dictionary_page_offset (11); the chunk starts at
/// the dictionary page when there is one, as the decoder reads it.
fn column_chunk(w: &mut Walker<'_>, out: &mut Vec<Chunk>) -> Result<(), String> {
    let (mut total, mut data, mut dict) = (None, None, None);
    w.each_field(3, &mut |w, id, ty| {
        if id != 3 || ty != STRUCT {
            return Ok(false);
        }
        w.each_field(4, &mut |w, id, ty| {
            let slot = match (id, ty) {
                (7, I16 | I32 | I64) => &mut total,
                (9, I16 | I32 | I64) => &mut data,
                (11, I16 | I32 | I64) => &mut dict,
                _ => return Ok(false),
            };
            *slot = Some(w.int(ty)?);
            Ok(true)
        })?;
        Ok(true)
    })?;
    let (Some(total), Some(data)) = (total, data) else {
        return Ok(()); // no metadata: the decoder refuses the chunk itself
    };
    let start = dict.unwrap_or(data);
    match (u64::try_from(start), u64::try_from(total)) {
        (Ok(start), Ok(len)) => {
            out.push(Chunk { start, len });
            Ok(())
        }
        _ => Err(format!("a column chunk at offset {start} of {total} bytes")),
    }
}

/// Every page header of every column chunk: inside the file's data, and
/// declaring sizes and counts within the bounds above. Reads only the
/// headers.
fn check_pages(
    file: &mut std::fs::File,
    footer: &[u8],
    data_end: u64,
) -> std::io::Result<Result<(), String>> {
    use std::io::{Read, Seek, SeekFrom};
    let chunks = match chunks(footer) {
        Ok(c) => c,
        Err(why) => return Ok(Err(format!("malformed footer metadata: {why}"))),
    };
    let mut buf = Vec::new();
    for c in chunks {
        let end = match c.start.checked_add(c.len) {
            Some(end) if c.start >= 4 && end <= data_end => end,
            _ => {
                return Ok(Err(format!(
                    "a column chunk at bytes {}+{} outside the data (bytes 4..{data_end})",
                    c.start, c.len
                )));
            }
        };
        let mut pos = c.start;
        while pos < end {
            let take = (end - pos).min(MAX_PAGE_HEADER_BYTES);
            buf.resize(take as usize, 0);
            file.seek(SeekFrom::Start(pos))?;
            file.read_exact(&mut buf)?;
            let mut w = Walker { b: &buf, at: 0 };
            let compressed = match page_header(&mut w) {
                Ok(c) => c,
                Err(why) => {
                    return Ok(Err(format!("malformed page header at byte {pos}: {why}")));
                }
            };
            pos += w.at as u64 + compressed;
            if pos > end {
                return Ok(Err(format!(
                    "a page running past its column chunk (ends at byte {pos}, the chunk at {end})"
                )));
            }
        }
    }
    Ok(Ok(()))
}

/// A PageHeader: uncompressed (2) and compressed (3) sizes, and the value
/// and row counts of its data / dictionary / data-v2 header (5, 7, 8).
/// Returns the compressed size, the bytes that follow the header.
fn page_header(w: &mut Walker<'_>) -> Result<u64, String> {
    // As the decoder reads it (by the schema), then the sizes in it.
    let mut typed = Walker { b: w.b, at: w.at };
    typed.typed(&Ty::Struct(&PAGE_HEADER), 0)?;
    let mut compressed = None;
    w.each_field(0, &mut |w, id, ty| match (id, ty) {
        (2 | 3, I16 | I32 | I64) => {
            let size = w.int(ty)?;
            if !(0..=MAX_PAGE_BYTES).contains(&size) {
                return Err(format!("a page of {size} bytes (at most {MAX_PAGE_BYTES})"));
            }
            if id == 3 {
                compressed = Some(size as u64);
            }
            Ok(true)
        }
        (5 | 7 | 8, STRUCT) => {
            w.each_field(1, &mut |w, id, ty| match (id, ty) {
                (1 | 3, I16 | I32 | I64) => {
                    let count = w.int(ty)?;
                    if !(0..=MAX_ROWS_PER_GROUP).contains(&count) {
                        return Err(format!(
                            "a page of {count} values (at most {MAX_ROWS_PER_GROUP})"
                        ));
                    }
                    Ok(true)
                }
                _ => Ok(false),
            })?;
            Ok(true)
        }
        _ => Ok(false),
    })?;
    compressed.ok_or_else(|| "no compressed page size".to_string())
}

fn too_big(footer_len: u64) -> String {
    format!(
        "its footer declares {footer_len} bytes of metadata, more than the \
         {MAX_FOOTER_BYTES} any table vegard reads has"
    )
}

const BOOL_TRUE: u8 = 1;
const BOOL_FALSE: u8 = 2;
const BYTE: u8 = 3;
const I16: u8 = 4;
const I32: u8 = 5;
const I64: u8 = 6;
const DOUBLE: u8 = 7;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const SET: u8 = 10;
const MAP: u8 = 11;
const STRUCT: u8 = 12;
const UUID: u8 = 13;

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

struct Walker<'a> {
    b: &'a [u8],
    at: usize,
}

impl Walker<'_> {
    fn remaining(&self) -> usize {
        self.b.len() - self.at
    }

    fn byte(&mut self) -> Result<u8, String> {
        let v = *self.b.get(self.at).ok_or("ends inside a value")?;
        self.at += 1;
        Ok(v)
    }

    fn skip(&mut self, k: usize) -> Result<(), String> {
        if k > self.remaining() {
            return Err(format!(
                "a value of {k} bytes where {} remain",
                self.remaining()
            ));
        }
        self.at += k;
        Ok(())
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift.min(63);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a variable-length integer over 10 bytes".into())
    }

    /// A count that sizes a container: each element takes at least one
    /// byte, so more elements than bytes left is a lie.
    fn count(&mut self, n: u64) -> Result<usize, String> {
        match usize::try_from(n) {
            Ok(n) if n <= self.remaining() => Ok(n),
            _ => Err(format!(
                "a container of {n} elements where {} bytes remain",
                self.remaining()
            )),
        }
    }

    /// The fields of a struct: `f(walker, field_id, type)` reads the
    /// value itself and returns true, or returns false to have it skipped.
    /// Bool fields carry their value in the header (type 1 or 2) and have
    /// nothing after it.
    fn each_field(
        &mut self,
        depth: usize,
        f: &mut dyn FnMut(&mut Self, i16, u8) -> Result<bool, String>,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested more than {MAX_DEPTH} deep"));
        }
        let mut last_id: i16 = 0;
        loop {
            let h = self.byte()?;
            let ty = h & 0x0f;
            if ty == 0 {
                return Ok(()); // stop
            }
            let id = match h >> 4 {
                0 => unzigzag(self.varint()?) as i16, // long form
                delta => last_id.wrapping_add(i16::from(delta)),
            };
            last_id = id;
            // A bool field's value is its header: nothing more to skip.
            if !f(self, id, ty)? && !matches!(ty, BOOL_TRUE | BOOL_FALSE) {
                self.value(ty, depth + 1)?;
            }
        }
    }

    /// The elements of a list or set: `f(walker, element_type)` per element.
    fn each_element(
        &mut self,
        f: &mut dyn FnMut(&mut Self, u8) -> Result<(), String>,
    ) -> Result<(), String> {
        let h = self.byte()?;
        let elem = h & 0x0f;
        let n = match h >> 4 {
            15 => self.varint()?,
            short => u64::from(short),
        };
        let n = self.count(n)?;
        for _ in 0..n {
            f(self, elem)?;
        }
        Ok(())
    }

    /// An integer field (i16, i32 or i64, zigzag varint) of a struct.
    fn int(&mut self, ty: u8) -> Result<i64, String> {
        match ty {
            I16 | I32 | I64 => Ok(unzigzag(self.varint()?)),
            other => Err(format!("an integer field of Thrift type {other}")),
        }
    }

    /// One value read as the schema's `ty` says, as polars reads it: a
    /// known field must be declared with its schema type, a list's
    /// elements with the schema's element type (an empty list's element
    /// type is not looked at, as polars does not); unknown fields are
    /// skipped by their declared type.
    fn typed(&mut self, ty: &Ty, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested more than {MAX_DEPTH} deep"));
        }
        match ty {
            Ty::Bool => self.skip(1), // only as a list element
            Ty::I8 => self.skip(1),
            Ty::I16 | Ty::I32 | Ty::I64 => self.varint().map(|_| ()),
            Ty::Bin => self.value(BINARY, depth),
            Ty::List(elem) => {
                let start = self.at;
                self.each_element(&mut |w, declared| {
                    if elem.declared_as(declared) {
                        w.typed(elem, depth + 1)
                    } else {
                        Err(format!(
                            "a list of Thrift type {declared} where Parquet has a list of {} \
                             (at byte {start})",
                            elem.name()
                        ))
                    }
                })
            }
            Ty::Struct(schema) => self.each_field(depth, &mut |w, id, declared| {
                let Some((_, want)) = schema.fields.iter().find(|(k, _)| *k == id) else {
                    return Ok(false);
                };
                if !want.declared_as(declared) {
                    return Err(format!(
                        "field {id} of {} declared with Thrift type {declared}, \
                         where Parquet's schema has {}",
                        schema.name,
                        want.name()
                    ));
                }
                if !matches!(want, Ty::Bool) {
                    w.typed(want, depth + 1)?;
                }
                Ok(true)
            }),
        }
    }

    /// One value of compact type `ty`.
    fn value(&mut self, ty: u8, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested more than {MAX_DEPTH} deep"));
        }
        match ty {
            // In a container a bool is a byte; as a field it is in the
            // header (handled by the caller).
            BOOL_TRUE | BOOL_FALSE | BYTE => self.skip(1),
            I16 | I32 | I64 => self.varint().map(|_| ()),
            DOUBLE => self.skip(8),
            UUID => self.skip(16),
            BINARY => {
                let n = self.varint()?;
                let n = usize::try_from(n).map_err(|_| "a binary too long".to_string())?;
                self.skip(n)
            }
            LIST | SET => self.each_element(&mut |w, elem| w.value(elem, depth + 1)),
            MAP => {
                let n = self.varint()?;
                let n = self.count(n)?;
                if n == 0 {
                    return Ok(());
                }
                let kv = self.byte()?;
                for _ in 0..n {
                    self.value(kv >> 4, depth + 1)?;
                    self.value(kv & 0x0f, depth + 1)?;
                }
                Ok(())
            }
            STRUCT => self.each_field(depth, &mut |_, _, _| Ok(false)),
            other => Err(format!("unknown Thrift type {other}")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is a failure
mod tests {
    use super::*;

    fn file_with_footer(footer: &[u8]) -> Vec<u8> {
        let mut f = b"PAR1".to_vec();
        f.extend_from_slice(footer);
        f.extend_from_slice(&(footer.len() as u32).to_le_bytes());
        f.extend_from_slice(b"PAR1");
        f
    }

    #[test]
    fn a_list_longer_than_the_footer_is_refused() {
        // Field 4 (row_groups), a list of structs with 10^9 elements.
        let mut footer = vec![0x49, 0xfc];
        let mut n: u64 = 1_000_000_000;
        while n >= 0x80 {
            footer.push((n as u8) | 0x80);
            n >>= 7;
        }
        footer.push(n as u8);
        footer.push(0x00);
        let err = check_footer(&file_with_footer(&footer)).unwrap_err();
        assert!(err.contains("a container of 1000000000 elements"), "{err}");
    }

    #[test]
    fn fields_polars_does_not_know_are_skipped_by_their_declared_type() {
        // FileMetaData fields 8..12 (polars reads none of them):
        // {8: i32 7, 9: list<binary> ["ab", ""], 10: true, 11: map<i32,i64>{1: 2}, 12: struct {}}
        let footer = [
            0x85, 0x0e, // field 8, i32, zigzag 7
            0x19, 0x28, 0x02, b'a', b'b', 0x00, // field 9, list of 2 binaries
            0x11, // field 10, bool true
            0x1b, 0x01, 0x56, 0x02, 0x04, // field 11, map of 1 (i32 -> i64)
            0x1c, 0x00, // field 12, empty struct
            0x00, // stop
        ];
        check_footer(&file_with_footer(&footer)).unwrap();
    }

    #[test]
    fn known_fields_must_have_the_type_parquets_schema_gives_them() {
        // FileMetaData {1: i32 1, 2: list<SchemaElement> [{4: "t"}], 3: i64 0,
        // 4: list<RowGroup> []}: well typed.
        let good = [
            0x15, 0x02, // 1: version
            0x19, 0x1c, 0x48, 0x01, b't', 0x00, // 2: [SchemaElement {4: "t"}]
            0x16, 0x00, // 3: num_rows
            0x19, 0x0c, // 4: [] (an empty list of structs)
            0x00,
        ];
        check_footer(&file_with_footer(&good)).unwrap();

        // Field 1 (version, i32) declared a binary.
        let err = check_footer(&file_with_footer(&[0x18, 0x01, b'x', 0x00])).unwrap_err();
        assert!(
            err.contains("field 1 of FileMetaData declared with Thrift type 8")
                && err.contains("has i32"),
            "{err}"
        );

        // Field 4 (row groups) declared a struct: polars reads a list there.
        let err = check_footer(&file_with_footer(&[0x4c, 0x00, 0x00])).unwrap_err();
        assert!(err.contains("field 4 of FileMetaData"), "{err}");

        // A list of row groups whose elements are declared i32.
        let err = check_footer(&file_with_footer(&[0x49, 0x15, 0x02, 0x00])).unwrap_err();
        assert!(
            err.contains("a list of Thrift type 5 where Parquet has a list of RowGroup"),
            "{err}"
        );

        // A SchemaElement's name (binary) declared i32, one level down.
        let err =
            check_footer(&file_with_footer(&[0x29, 0x1c, 0x45, 0x02, 0x00, 0x00])).unwrap_err();
        assert!(err.contains("field 4 of SchemaElement"), "{err}");
    }

    #[test]
    fn page_headers_are_read_by_the_schema_too() {
        // PageHeader {1: 2 (dictionary), 2: 10, 3: 10, 7: {1: 3, 2: 0, 3: true}}.
        let good = [
            0x15, 0x04, 0x15, 0x14, 0x15, 0x14, 0x4c, 0x15, 0x06, 0x15, 0x00, 0x11, 0x00, 0x00,
        ];
        let mut w = Walker { b: &good, at: 0 };
        assert_eq!(page_header(&mut w).unwrap(), 10);
        assert_eq!(w.at, good.len());

        // The dictionary header's is_sorted (bool) declared i32: polars'
        // generated reader would take a byte of what follows as the bool.
        let bad = [
            0x15, 0x04, 0x15, 0x14, 0x15, 0x14, 0x4c, 0x15, 0x06, 0x15, 0x00, 0x15, 0x02, 0x00,
            0x00,
        ];
        let err = page_header(&mut Walker { b: &bad, at: 0 }).unwrap_err();
        assert!(
            err.contains("field 3 of DictionaryPageHeader") && err.contains("has bool"),
            "{err}"
        );

        // The compressed size (i32) declared a binary of 1.7 GB.
        let bad = [
            0x15, 0x04, 0x15, 0x14, 0x18, 0x80, 0x80, 0x80, 0xb0, 0x06, 0x00,
        ];
        let err = page_header(&mut Walker { b: &bad, at: 0 }).unwrap_err();
        assert!(err.contains("field 3 of PageHeader"), "{err}");
    }

    #[test]
    fn a_footer_that_ends_inside_a_value_is_refused_and_non_parquet_is_left_alone() {
        let footer = [0x18, 0x05, b'a'];
        assert!(check_footer(&file_with_footer(&footer)).is_err());
        assert!(check_footer(b"not a parquet file at all").is_ok());
        let mut huge = b"PAR1".to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(b"PAR1");
        let err = check_footer(&huge).unwrap_err();
        assert!(err.contains("more than the"), "{err}");
    }
}
