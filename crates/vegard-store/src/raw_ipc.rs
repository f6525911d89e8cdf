//! The binary raw-stream format: an Arrow IPC *stream* (`raw/<stream>.arrows`),
//! one schema message, then one record batch per flush, ZSTD-compressed
//! buffers, and the end-of-stream marker when the writer closes.
//!
//! Why Arrow IPC: it is the standard columnar stream any Arrow reader opens
//! (`pyarrow.ipc.open_stream`, `polars.read_ipc_stream`), it costs no text
//! formatting on the hot path (a deflection row is a handful of `Vec`
//! pushes; ZSTD on whole columns then brings it to about a quarter of its
//! 56 bytes), and it is framed: every message says how long it is, so a
//! reader knows exactly where the last complete batch ends.
//!
//! Writing goes through polars-arrow's IPC encoder (the standard producer).
//! Reading does not: polars-arrow's stream reader indexes and allocates
//! from lengths in the file before checking them, so a corrupt file could
//! panic or exhaust memory. Our raw streams use a small subset of Arrow
//! (non-null `Int64`/`Float64` columns, uncompressed or ZSTD), and this
//! module reads exactly that subset with every length checked against the
//! file and the batch before anything is allocated.
//!
//! Crash safety: a batch is written with one `write_all` and then
//! `sync_data`'d. A crash can leave a last message cut short (or, after a
//! power loss, a run of zero bytes): the scanner stops at the last complete
//! message and reports how many bytes it dropped, the binary analogue of
//! the torn last CSV line. A complete message that does not decode is
//! corruption and an error naming the byte offset.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fb::planus::ReadAsRoot;
use polars_arrow::datatypes::{ArrowDataType, ArrowSchema, Field};
use polars_arrow::io::ipc::format::ipc as fb;
use polars_arrow::io::ipc::write::{
    Compression, EncodedData, WriteOptions, commit_encoded_arrays, common_sync::write_message,
    default_ipc_fields, schema_to_bytes,
};
use polars_utils::compression::ZstdLevel;

use crate::{ColKind, Column, ColumnSpec, StoreError, Table};

/// First four bytes of every message (Arrow's continuation marker), so a
/// file that starts with them is an Arrow stream, not legacy CSV text.
pub(crate) const CONTINUATION: [u8; 4] = [0xFF; 4];

/// The end-of-stream marker: a continuation with a zero-length message.
const END_OF_STREAM: [u8; 8] = [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0];

/// ZSTD level 3 (zstd's default): on deflection rows in 1 s batches it
/// writes 14.6 bytes/row where level 1 writes 18.1, for the same CPU once
/// the compression context is reused (README "Raw streams").
const ZSTD_LEVEL: i32 = 3;

/// Largest metadata flatbuffer we accept (ours are a few hundred bytes).
const MAX_METADATA_BYTES: u64 = 1 << 20;
/// Largest batch we accept, rows; the writer cuts batches at
/// [`crate::raw::MAX_BATCH_ROWS`], far below this.
const MAX_BATCH_ROWS: i64 = 1 << 24;
/// Largest message body we accept, bytes (one batch of the widest stream,
/// uncompressed, is far below this).
const MAX_BODY_BYTES: u64 = 1 << 31;

/// Encodes batches of a raw stream into IPC messages.
///
/// The message metadata and framing come from polars-arrow's IPC writer;
/// the buffers are laid out and compressed here so one ZSTD context serves
/// every buffer of the run (polars-arrow creates one per buffer, which cost
/// more CPU than the compressing itself at one-second batches).
pub(crate) struct Encoder {
    schema: Arc<ArrowSchema>,
    options: WriteOptions,
    encoded: EncodedData,
    /// `None` only if zstd could not set up a context (out of memory):
    /// batches are then written uncompressed, which every reader takes.
    zstd: Option<zstd::bulk::Compressor<'static>>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("columns", &self.schema.len())
            .field("compressed", &self.options.compression.is_some())
            .finish()
    }
}

impl Encoder {
    pub(crate) fn new(columns: &[ColumnSpec]) -> Self {
        let schema: ArrowSchema = columns
            .iter()
            .map(|c| {
                let dtype = match c.kind {
                    ColKind::I64 => ArrowDataType::Int64,
                    ColKind::F64 => ArrowDataType::Float64,
                };
                Field::new(c.name.as_ref().into(), dtype, false)
            })
            .collect();
        let zstd = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok();
        let compression = match (&zstd, ZstdLevel::try_new(ZSTD_LEVEL)) {
            (Some(_), Ok(level)) => Some(Compression::ZSTD(level)),
            _ => None,
        };
        Self {
            schema: Arc::new(schema),
            options: WriteOptions { compression },
            encoded: EncodedData::default(),
            zstd: compression.and(zstd),
        }
    }

    /// The schema message, framed.
    pub(crate) fn schema_message(&self) -> Vec<u8> {
        let fields = default_ipc_fields(self.schema.iter_values());
        let encoded = EncodedData {
            ipc_message: schema_to_bytes(&self.schema, &fields, None),
            arrow_data: Vec::new(),
        };
        let mut out = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = write_message(&mut out, &encoded);
        out
    }

    /// One record-batch message holding `columns` (all `rows` long),
    /// appended to `out`; the columns are cleared (capacity kept).
    pub(crate) fn batch_message(&mut self, columns: &mut [Column], rows: usize, out: &mut Vec<u8>) {
        let data = &mut self.encoded.arrow_data;
        data.clear();
        let mut buffers = Vec::with_capacity(2 * columns.len());
        let mut nodes = Vec::with_capacity(columns.len());
        let mut raw: Vec<u8> = Vec::with_capacity(rows * 8);
        for c in columns.iter_mut() {
            raw.clear();
            match c {
                Column::I64(v) => {
                    raw.extend(v.iter().flat_map(|x| x.to_le_bytes()));
                    v.clear();
                }
                Column::F64(v) => {
                    raw.extend(v.iter().flat_map(|x| x.to_le_bytes()));
                    v.clear();
                }
            }
            nodes.push(fb::FieldNode {
                length: rows as i64,
                null_count: 0,
            });
            // No nulls: an empty validity buffer.
            buffers.push(fb::Buffer {
                offset: data.len() as i64,
                length: 0,
            });
            let start = data.len();
            match &mut self.zstd {
                Some(z) => {
                    data.extend_from_slice(&(raw.len() as i64).to_le_bytes());
                    let at = data.len();
                    data.resize(at + zstd::zstd_safe::compress_bound(raw.len()), 0);
                    match z.compress_to_buffer(&raw, &mut data[at..]) {
                        Ok(n) => data.truncate(at + n),
                        // Cannot happen with a bound-sized buffer; store the
                        // bytes uncompressed (length -1) rather than lose them.
                        Err(_) => {
                            data.truncate(start);
                            data.extend_from_slice(&(-1i64).to_le_bytes());
                            data.extend_from_slice(&raw);
                        }
                    }
                }
                None => data.extend_from_slice(&raw),
            }
            buffers.push(fb::Buffer {
                offset: start as i64,
                length: (data.len() - start) as i64,
            });
            // Arrow aligns every buffer to 8 bytes.
            data.resize(data.len().next_multiple_of(8), 0);
        }
        // The body as a whole is padded to 64 bytes (polars-arrow's framing
        // pads it on write, so the declared body length must include it).
        data.resize(data.len().next_multiple_of(64), 0);
        commit_encoded_arrays(
            rows,
            &self.options,
            Vec::new(),
            buffers,
            nodes,
            None,
            &mut self.encoded,
        );
        let _ = write_message(out, &self.encoded);
    }

    pub(crate) fn end_of_stream() -> &'static [u8] {
        &END_OF_STREAM
    }
}

/// How the scan of a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The writer closed it (end-of-stream marker).
    Closed,
    /// The file ends right after a complete batch (a live run, or a process
    /// that died between flushes).
    Open,
    /// The file ends inside a message (a crash mid-write) or in zero bytes
    /// (a power loss): that many bytes after the last complete batch were
    /// dropped.
    Torn { bytes: u64 },
}

/// One complete message located in the file.
struct Located {
    /// Offset of the metadata flatbuffer.
    meta_at: u64,
    meta_len: u64,
    /// Offset of the body.
    body_at: u64,
    body_len: u64,
    /// Offset just past the message.
    end: u64,
}

/// Reads a raw stream's file message by message, never more than one
/// batch in memory.
pub struct IpcReader {
    path: PathBuf,
    file: File,
    /// Length of the file when it was opened (or last refreshed): a live
    /// writer may add more; what is beyond is read on the next refresh.
    len: u64,
    /// Offset of the next message.
    offset: u64,
    columns: Vec<ColumnSpec>,
    end: Option<StreamEnd>,
    meta_buf: Vec<u8>,
    body_buf: Vec<u8>,
    /// One decompression context for every buffer (made on first use).
    unzstd: Option<zstd::bulk::Decompressor<'static>>,
}

impl std::fmt::Debug for IpcReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpcReader")
            .field("path", &self.path)
            .field("offset", &self.offset)
            .field("end", &self.end)
            .finish()
    }
}

impl IpcReader {
    /// Open an Arrow stream and read its schema. A file too short to hold
    /// the schema message is [`StoreError::NoHeader`] (the process died
    /// before it reached the disk).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
        let len = file.metadata().map_err(|e| StoreError::io(path, e))?.len();
        let mut r = Self {
            path: path.to_owned(),
            file,
            len,
            offset: 0,
            columns: Vec::new(),
            end: None,
            meta_buf: Vec::new(),
            body_buf: Vec::new(),
            unzstd: None,
        };
        let Some(loc) = r.locate()? else {
            return Err(StoreError::NoHeader {
                path: path.to_owned(),
            });
        };
        r.read_meta(&loc)?;
        let columns = r.parse_schema(&loc)?;
        r.columns = columns;
        r.offset = loc.end;
        Ok(r)
    }

    pub fn columns(&self) -> &[ColumnSpec] {
        &self.columns
    }

    /// How the stream ended, once [`IpcReader::next_batch`] returned `None`.
    pub fn end(&self) -> Option<StreamEnd> {
        self.end
    }

    /// Look again at the file's length, for a reader following a live
    /// stream: batches written since become readable.
    pub fn refresh(&mut self) -> Result<(), StoreError> {
        if self.end == Some(StreamEnd::Closed) {
            return Ok(());
        }
        self.len = self
            .file
            .metadata()
            .map_err(|e| StoreError::io(&self.path, e))?
            .len();
        self.end = None;
        Ok(())
    }

    fn corrupt(&self, at: u64, msg: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            offset: at,
            msg: msg.into(),
        }
    }

    fn read_at(&mut self, at: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        self.file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.read_exact(buf))
            .map_err(|e| StoreError::io(&self.path, e))
    }

    /// Whether every byte from `at` to the end is zero (a power loss can
    /// extend a file with zeros before its data reaches the disk).
    fn zeros_from(&mut self, at: u64) -> Result<bool, StoreError> {
        let mut buf = [0u8; 64 * 1024];
        let mut pos = at;
        while pos < self.len {
            let n = usize::try_from((self.len - pos).min(buf.len() as u64)).unwrap_or(buf.len());
            let chunk = &mut buf[..n];
            self.read_at(pos, chunk)?;
            if chunk.iter().any(|&b| b != 0) {
                return Ok(false);
            }
            pos += n as u64;
        }
        Ok(true)
    }

    /// The message at `self.offset`, if it is complete. Sets `self.end`
    /// when there is none.
    fn locate(&mut self) -> Result<Option<Located>, StoreError> {
        let at = self.offset;
        let left = self.len.saturating_sub(at);
        if left == 0 {
            self.end = Some(StreamEnd::Open);
            return Ok(None);
        }
        let torn = |s: &mut Self| {
            s.end = Some(StreamEnd::Torn { bytes: left });
            Ok(None)
        };
        if left < 8 {
            return torn(self);
        }
        let mut prefix = [0u8; 8];
        self.read_at(at, &mut prefix)?;
        if prefix[..4] != CONTINUATION {
            if self.zeros_from(at)? {
                return torn(self);
            }
            return Err(self.corrupt(at, "expected a message (continuation marker 0xFFFFFFFF)"));
        }
        let meta_len = i32::from_le_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
        if meta_len == 0 {
            self.end = Some(StreamEnd::Closed);
            return Ok(None);
        }
        let meta_len = u64::try_from(meta_len)
            .ok()
            .filter(|&n| n <= MAX_METADATA_BYTES)
            .ok_or_else(|| self.corrupt(at, format!("message length {meta_len} out of range")))?;
        let meta_at = at + 8;
        if self.len < meta_at + meta_len {
            return torn(self);
        }
        self.meta_buf.resize(meta_len as usize, 0);
        let mut meta = std::mem::take(&mut self.meta_buf);
        self.read_at(meta_at, &mut meta)?;
        let body_len = match fb::MessageRef::read_as_root(&meta).and_then(|m| m.body_length()) {
            Ok(n) => n,
            Err(e) => {
                self.meta_buf = meta;
                if self.zeros_from(meta_at)? {
                    return torn(self);
                }
                return Err(self.corrupt(meta_at, format!("message metadata: {e}")));
            }
        };
        self.meta_buf = meta;
        let body_len = u64::try_from(body_len)
            .ok()
            .filter(|&n| n <= MAX_BODY_BYTES)
            .ok_or_else(|| self.corrupt(meta_at, format!("body length {body_len} out of range")))?;
        let body_at = meta_at + meta_len;
        let end = body_at + body_len;
        if self.len < end {
            return torn(self);
        }
        Ok(Some(Located {
            meta_at,
            meta_len,
            body_at,
            body_len,
            end,
        }))
    }

    fn read_meta(&mut self, loc: &Located) -> Result<(), StoreError> {
        self.meta_buf.resize(loc.meta_len as usize, 0);
        let mut meta = std::mem::take(&mut self.meta_buf);
        let r = self.read_at(loc.meta_at, &mut meta);
        self.meta_buf = meta;
        r
    }

    fn parse_schema(&self, loc: &Located) -> Result<Vec<ColumnSpec>, StoreError> {
        let at = loc.meta_at;
        let bad = |e: fb::planus::Error| self.corrupt(at, format!("schema: {e}"));
        let msg = fb::MessageRef::read_as_root(&self.meta_buf).map_err(bad)?;
        let Some(fb::MessageHeaderRef::Schema(schema)) = msg.header().map_err(bad)? else {
            return Err(self.corrupt(at, "the first message is not a schema"));
        };
        if schema.endianness().map_err(bad)? != fb::Endianness::Little {
            return Err(self.corrupt(at, "big-endian streams are not supported"));
        }
        let Some(fields) = schema.fields().map_err(bad)? else {
            return Err(self.corrupt(at, "schema without fields"));
        };
        let mut columns: Vec<ColumnSpec> = Vec::with_capacity(fields.len());
        for field in fields.iter() {
            let field = field.map_err(bad)?;
            let name = field.name().map_err(bad)?.unwrap_or_default();
            crate::raw::validate_name("column", name)?;
            if columns.iter().any(|c| c.name == name) {
                return Err(self.corrupt(at, format!("column {name:?} appears twice")));
            }
            let kind = match field.type_().map_err(bad)? {
                Some(fb::TypeRef::Int(i))
                    if i.bit_width().map_err(bad)? == 64 && i.is_signed().map_err(bad)? =>
                {
                    ColKind::I64
                }
                Some(fb::TypeRef::FloatingPoint(f))
                    if f.precision().map_err(bad)? == fb::Precision::Double =>
                {
                    ColKind::F64
                }
                _ => {
                    return Err(self.corrupt(
                        at,
                        format!(
                            "column {name:?}: only Int64 and Float64 columns are raw-stream columns"
                        ),
                    ));
                }
            };
            if field.dictionary().map_err(bad)?.is_some() {
                return Err(self.corrupt(at, format!("column {name:?}: dictionary encoding")));
            }
            columns.push(ColumnSpec {
                name: name.to_owned().into(),
                kind,
            });
        }
        if columns.is_empty() {
            return Err(self.corrupt(at, "schema without fields"));
        }
        Ok(columns)
    }

    /// The next complete batch as a table (all columns), or `None` at the
    /// end of what the file holds; then [`IpcReader::end`] says how it ended.
    pub fn next_batch(&mut self) -> Result<Option<Table>, StoreError> {
        loop {
            if self.end.is_some() {
                return Ok(None);
            }
            let Some(loc) = self.locate()? else {
                return Ok(None);
            };
            self.read_meta(&loc)?;
            let table = self.decode_batch(&loc)?;
            self.offset = loc.end;
            if let Some(t) = table {
                return Ok(Some(t));
            }
        }
    }

    /// Decode the record batch at `loc` (metadata already in `meta_buf`);
    /// `None` for a message that is not a record batch and carries nothing
    /// we read (none are written; tolerated for other producers).
    fn decode_batch(&mut self, loc: &Located) -> Result<Option<Table>, StoreError> {
        let meta = std::mem::take(&mut self.meta_buf);
        let mut body = std::mem::take(&mut self.body_buf);
        let r = self.decode_with(loc, &meta, &mut body);
        self.meta_buf = meta;
        self.body_buf = body;
        r
    }

    fn decode_with(
        &mut self,
        loc: &Located,
        meta: &[u8],
        body: &mut Vec<u8>,
    ) -> Result<Option<Table>, StoreError> {
        let at = loc.meta_at;
        let bad = |e: fb::planus::Error| StoreError::Corrupt {
            path: self.path.clone(),
            offset: at,
            msg: format!("batch metadata: {e}"),
        };
        let msg = fb::MessageRef::read_as_root(meta).map_err(bad)?;
        let batch = match msg.header().map_err(bad)? {
            Some(fb::MessageHeaderRef::RecordBatch(b)) => b,
            Some(fb::MessageHeaderRef::Schema(_)) => {
                return Err(self.corrupt(at, "a second schema message"));
            }
            Some(fb::MessageHeaderRef::DictionaryBatch(_)) => {
                return Err(self.corrupt(at, "dictionary batches are not raw-stream data"));
            }
            _ => return Ok(None),
        };
        let rows = batch.length().map_err(bad)?;
        if !(0..=MAX_BATCH_ROWS).contains(&rows) {
            return Err(self.corrupt(at, format!("batch length {rows} out of range")));
        }
        let rows = rows as usize;
        let codec = match batch.compression().map_err(bad)? {
            None => None,
            Some(c) => match c.codec().map_err(bad)? {
                fb::CompressionType::Zstd => Some(()),
                fb::CompressionType::Lz4Frame => {
                    return Err(self.corrupt(
                        at,
                        "LZ4-compressed batches are not supported (vegard writes ZSTD)",
                    ));
                }
            },
        };
        let nodes = batch.nodes().map_err(bad)?;
        let buffers = batch.buffers().map_err(bad)?;
        let n_cols = self.columns.len();
        let (Some(nodes), Some(buffers)) = (nodes, buffers) else {
            return Err(self.corrupt(at, "batch without nodes or buffers"));
        };
        if nodes.len() != n_cols || buffers.len() != 2 * n_cols {
            return Err(self.corrupt(
                at,
                format!(
                    "batch has {} nodes and {} buffers for {n_cols} columns",
                    nodes.len(),
                    buffers.len()
                ),
            ));
        }
        for (i, node) in nodes.iter().enumerate() {
            if node.length() != rows as i64 || node.null_count() != 0 {
                return Err(self.corrupt(
                    at,
                    format!(
                        "column {:?}: {} values ({} null) in a batch of {rows}",
                        self.columns[i].name,
                        node.length(),
                        node.null_count()
                    ),
                ));
            }
        }
        // The body, read whole (its length is bounded by the file's).
        body.resize(loc.body_len as usize, 0);
        self.read_at(loc.body_at, body)?;
        let body: &[u8] = body;
        let mut unzstd = self.unzstd.take();
        let result = (|| {
            let mut table = Table::new();
            let mut values = Vec::new();
            for (i, spec) in self.columns.iter().enumerate() {
                let (Some(validity), Some(data)) = (buffers.get(2 * i), buffers.get(2 * i + 1))
                else {
                    return Err(self.corrupt(at, "missing buffer"));
                };
                let slice = |b: fb::BufferRef<'_>| -> Result<&[u8], StoreError> {
                    let (off, len) = (b.offset(), b.length());
                    usize::try_from(off)
                        .ok()
                        .zip(usize::try_from(len).ok())
                        .and_then(|(o, l)| body.get(o..o.checked_add(l)?))
                        .ok_or_else(|| {
                            self.corrupt(
                                loc.body_at,
                                format!(
                                    "column {:?}: buffer {off}+{len} outside the body",
                                    spec.name
                                ),
                            )
                        })
                };
                // No nulls: the validity buffer carries nothing; its bytes
                // are not needed, only that it lies inside the body.
                slice(validity)?;
                let data = slice(data)?;
                column_values(data, rows, codec.is_some(), &mut unzstd, &mut values).map_err(
                    |msg| self.corrupt(loc.body_at, format!("column {:?}: {msg}", spec.name)),
                )?;
                let column = match spec.kind {
                    ColKind::I64 => Column::I64(
                        values
                            .chunks_exact(8)
                            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                            .collect(),
                    ),
                    ColKind::F64 => Column::F64(
                        values
                            .chunks_exact(8)
                            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                            .collect(),
                    ),
                };
                table.push(spec.name.to_string(), column);
            }
            Ok(table)
        })();
        self.unzstd = unzstd;
        result.map(Some)
    }
}

/// A column's `rows` little-endian 8-byte values from its data buffer,
/// into `out`: as stored, or ZSTD-decompressed into exactly that many
/// bytes (Arrow's framing: an i64 uncompressed length, -1 for "stored").
fn column_values(
    data: &[u8],
    rows: usize,
    compressed: bool,
    unzstd: &mut Option<zstd::bulk::Decompressor<'static>>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let want = rows * 8;
    out.clear();
    if !compressed {
        if data.len() < want {
            return Err(format!("{} bytes for {rows} values", data.len()));
        }
        out.extend_from_slice(&data[..want]);
        return Ok(());
    }
    if rows == 0 && data.is_empty() {
        return Ok(());
    }
    let Some((len, payload)) = data.split_first_chunk::<8>() else {
        return Err(format!("compressed buffer of {} bytes", data.len()));
    };
    let len = i64::from_le_bytes(*len);
    if len == -1 {
        if payload.len() < want {
            return Err(format!("{} bytes for {rows} values", payload.len()));
        }
        out.extend_from_slice(&payload[..want]);
        return Ok(());
    }
    if len != want as i64 {
        return Err(format!(
            "decompressed length {len}, expected {want} for {rows} values"
        ));
    }
    out.reserve(want);
    let d = match unzstd {
        Some(d) => d,
        None => unzstd.insert(zstd::bulk::Decompressor::new().map_err(|e| format!("ZSTD: {e}"))?),
    };
    let n = d
        .decompress_to_buffer(payload, out)
        .map_err(|e| format!("ZSTD: {e}"))?;
    if n != want {
        return Err(format!("ZSTD gave {n} bytes, expected {want}"));
    }
    Ok(())
}
