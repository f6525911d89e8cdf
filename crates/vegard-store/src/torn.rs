//! Setting aside a torn last line before a line file is appended to.
//!
//! A process killed mid-`write` can leave the last line of a line file
//! (`events.jsonl`) without its `\n`. Appending a new line after it would
//! glue the two into one corrupt line, and the reader would have to reject
//! both; recovery would have made the folder worse. So before anything is
//! appended to a file that may have been left by a dead process, the file
//! is cut back to its last `\n`. The cut bytes are recorded data (half an
//! event, say which step started), so they are not thrown away: they are
//! appended to a sibling `<file>.torn` first, and only when that copy is
//! durable is the original shortened. A crash between the two leaves the
//! fragment in both files, never in neither.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::StoreError;

/// Bytes read per step while looking backwards for the last `\n`.
const SCAN_CHUNK_BYTES: u64 = 64 * 1024;

/// If `path` exists and does not end with `\n`, move everything after its
/// last `\n` (the whole file if it has none) to the end of `keep_in`,
/// followed by one `\n` so fragments set aside at different times stay on
/// separate lines, and truncate `path` to end at that `\n`. Returns how many
/// bytes were set aside (`None`: nothing to do, including a missing or empty
/// file). The caller must own the file exclusively (a live run's writer, or
/// a recovery holding the run's lock): a writer appending at the same time
/// could lose its line to the truncation.
pub(crate) fn set_aside_torn_tail(path: &Path, keep_in: &Path) -> Result<Option<u64>, StoreError> {
    let io = |e| StoreError::io(path, e);
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let len = file.metadata().map_err(io)?.len();
    if len == 0 {
        return Ok(None);
    }
    let cut = match last_newline_end(&mut file, len).map_err(io)? {
        Some(end) if end == len => return Ok(None),
        Some(end) => end,
        None => 0,
    };
    let torn_bytes = len - cut;

    // Copy the fragment out and make the copy durable before cutting.
    let mut keep = OpenOptions::new()
        .create(true)
        .append(true)
        .open(keep_in)
        .map_err(|e| StoreError::io(keep_in, e))?;
    file.seek(SeekFrom::Start(cut)).map_err(io)?;
    let copied = std::io::copy(&mut (&file).take(torn_bytes), &mut keep)
        .map_err(|e| StoreError::io(keep_in, e))?;
    if copied != torn_bytes {
        return Err(StoreError::Run {
            path: path.to_owned(),
            msg: format!(
                "the file changed while its torn last line was set aside \
                 ({copied} of {torn_bytes} bytes copied to {}); nothing was cut",
                keep_in.display()
            ),
        });
    }
    keep.write_all(b"\n")
        .and_then(|()| keep.sync_data())
        .map_err(|e| StoreError::io(keep_in, e))?;

    file.set_len(cut).map_err(io)?;
    file.sync_data().map_err(io)?;
    Ok(Some(torn_bytes))
}

/// Offset just past the last `\n` of the first `len` bytes of `file`, or
/// `None` when there is no `\n` at all. Reads backwards in chunks so a long
/// file costs only its tail.
fn last_newline_end(file: &mut File, len: u64) -> std::io::Result<Option<u64>> {
    let mut end = len;
    let mut buf = vec![0u8; SCAN_CHUNK_BYTES as usize];
    while end > 0 {
        let start = end.saturating_sub(SCAN_CHUNK_BYTES);
        // Both fit in usize: the chunk is at most SCAN_CHUNK_BYTES long.
        let n = (end - start) as usize;
        let chunk = &mut buf[..n];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(start + i as u64 + 1));
        }
        end = start;
    }
    Ok(None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is a failure
mod tests {
    use super::*;

    fn tmp(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("vegard-torn-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_torn_tail_is_moved_to_the_keep_file_and_the_file_ends_at_its_last_newline() {
        let d = tmp("cut");
        let (f, keep) = (d.join("e.jsonl"), d.join("e.jsonl.torn"));
        std::fs::write(&f, "{\"a\":1}\n{\"b\":2}\n{\"c\":").unwrap();
        assert_eq!(set_aside_torn_tail(&f, &keep).unwrap(), Some(5));
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n"
        );
        assert_eq!(std::fs::read_to_string(&keep).unwrap(), "{\"c\":\n");
        // A second fragment goes onto its own line of the keep file.
        std::fs::write(&f, "{\"a\":1}\n{\"d").unwrap();
        assert_eq!(set_aside_torn_tail(&f, &keep).unwrap(), Some(3));
        assert_eq!(std::fs::read_to_string(&keep).unwrap(), "{\"c\":\n{\"d\n");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "{\"a\":1}\n");
    }

    #[test]
    fn complete_empty_and_missing_files_are_left_alone() {
        let d = tmp("alone");
        let keep = d.join("k");
        let f = d.join("complete");
        std::fs::write(&f, "x\ny\n").unwrap();
        assert_eq!(set_aside_torn_tail(&f, &keep).unwrap(), None);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "x\ny\n");
        let e = d.join("empty");
        std::fs::write(&e, "").unwrap();
        assert_eq!(set_aside_torn_tail(&e, &keep).unwrap(), None);
        assert_eq!(
            set_aside_torn_tail(&d.join("missing"), &keep).unwrap(),
            None
        );
        assert!(!keep.exists(), "nothing to keep, no keep file");
    }

    #[test]
    fn a_file_without_any_newline_longer_than_a_scan_chunk_is_set_aside_whole() {
        let d = tmp("long");
        let (f, keep) = (d.join("f"), d.join("k"));
        let mut text = "z".repeat(SCAN_CHUNK_BYTES as usize * 2 + 17);
        std::fs::write(&f, &text).unwrap();
        assert_eq!(
            set_aside_torn_tail(&f, &keep).unwrap(),
            Some(text.len() as u64)
        );
        assert_eq!(std::fs::metadata(&f).unwrap().len(), 0);
        text.push('\n');
        assert_eq!(std::fs::read_to_string(&keep).unwrap(), text);
        // A newline just before a chunk boundary is found from the end.
        let mut text = "a\n".to_owned();
        text.push_str(&"b".repeat(SCAN_CHUNK_BYTES as usize + 3));
        std::fs::write(&f, &text).unwrap();
        assert_eq!(
            set_aside_torn_tail(&f, &keep).unwrap(),
            Some(SCAN_CHUNK_BYTES + 3)
        );
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "a\n");
    }
}
