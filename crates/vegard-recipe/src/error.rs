//! Errors that name the place (`FILE:LINE:COL: message`) and the source text
//! they are computed from.
//!
//! Positions are kept as 1-based line and column (columns count characters,
//! not bytes) because that is what editors jump to; byte spans from the TOML
//! parser are converted here and nowhere else.

use std::ops::Range;
use std::path::Path;

use vegard_core::limits::{self, MAX_CONFIG_FILE_BYTES, TextLimitError};

/// Everything that can go wrong while loading a recipe or a bench config.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// The file was read but something at `line:col` is wrong: syntax, an
    /// unknown/missing key, a wrong type or a physically impossible value.
    #[error("{file}:{line}:{col}: {message}")]
    At {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
    /// The file could not be read at all. The I/O error is part of the
    /// message (not a `source`) so that error chains do not print it twice.
    #[error("{file}: cannot read: {reason}")]
    Io {
        file: String,
        reason: std::io::Error,
    },
    /// The file is larger than any configuration file may be
    /// ([`vegard_core::limits::MAX_CONFIG_FILE_BYTES`]): refused before it
    /// is read, so there is no position.
    #[error("{file}: {message}")]
    TooLarge { file: String, message: String },
}

impl RecipeError {
    /// File name as given by the caller.
    pub fn file(&self) -> &str {
        match self {
            RecipeError::At { file, .. }
            | RecipeError::Io { file, .. }
            | RecipeError::TooLarge { file, .. } => file,
        }
    }

    /// `(line, col)`, 1-based, when the error has a position.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            RecipeError::At { line, col, .. } => Some((*line, *col)),
            RecipeError::Io { .. } | RecipeError::TooLarge { .. } => None,
        }
    }

    /// The message without the `FILE:LINE:COL: ` prefix.
    pub fn message(&self) -> String {
        match self {
            RecipeError::At { message, .. } => message.clone(),
            RecipeError::Io { reason, .. } => format!("cannot read: {reason}"),
            RecipeError::TooLarge { message, .. } => message.clone(),
        }
    }
}

/// A file's name and text, kept together so that errors found after parsing
/// (e.g. by [`crate::validate_with_bench`]) can still point into the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Name used in error messages (usually the path as the user typed it).
    pub file: String,
    pub text: String,
}

impl Source {
    pub fn new(file: impl Into<String>, text: impl Into<String>) -> Self {
        Source {
            file: file.into(),
            text: text.into(),
        }
    }

    /// Read a configuration file (recipe, bench, report spec): at most
    /// [`MAX_CONFIG_FILE_BYTES`], UTF-8. The size is checked before the
    /// text is read (and the read itself stops past the limit, so a file
    /// growing meanwhile or a device like `/dev/zero` cannot take more);
    /// a non-UTF-8 byte is reported at its line and column. Nesting and
    /// line length are checked when the text is parsed.
    pub fn read(path: &Path) -> Result<Self, RecipeError> {
        let file = path.display().to_string();
        let bytes = read_bounded(path, MAX_CONFIG_FILE_BYTES, "a configuration file").map_err(
            |e| match e {
                Bounded::Io(reason) => RecipeError::Io {
                    file: file.clone(),
                    reason,
                },
                Bounded::TooLarge(message) => RecipeError::TooLarge {
                    file: file.clone(),
                    message,
                },
            },
        )?;
        let text = limits::utf8_string(bytes).map_err(|e| limit_error(&file, e))?;
        Ok(Source { file, text })
    }
}

/// Why [`read_bounded`] failed.
pub(crate) enum Bounded {
    Io(std::io::Error),
    /// The file is over the limit; the message says by how much and why.
    TooLarge(String),
}

/// Read at most `max_bytes` of a file, refusing a larger one: first by its
/// size on disk, then by reading one byte past the limit (a pipe or device
/// has no size). `what` names the kind of file in the message.
pub(crate) fn read_bounded(path: &Path, max_bytes: u64, what: &str) -> Result<Vec<u8>, Bounded> {
    use std::io::Read;
    let too_large = |size: String| {
        Bounded::TooLarge(format!(
            "{size} is larger than {what} may be ({max_bytes} bytes, {} MiB; real ones are a \
             few kB)",
            max_bytes >> 20
        ))
    };
    let f = std::fs::File::open(path).map_err(Bounded::Io)?;
    let meta = f.metadata().map_err(Bounded::Io)?;
    if meta.is_dir() {
        return Err(Bounded::Io(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "is a folder, not a file",
        )));
    }
    if meta.len() > max_bytes {
        return Err(too_large(format!("{} bytes", meta.len())));
    }
    let mut bytes = Vec::new();
    f.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(Bounded::Io)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large("the content".to_owned()));
    }
    Ok(bytes)
}

/// A text limit broken at a position, as a positioned error of `file`.
pub(crate) fn limit_error(file: &str, e: TextLimitError) -> RecipeError {
    RecipeError::At {
        file: file.to_owned(),
        line: e.line,
        col: e.col,
        message: e.message,
    }
}

/// Build a positioned error from a byte span of `text` (also used for the
/// other TOML files vegard reads, e.g. report specs).
pub fn error_at(
    file: &str,
    text: &str,
    span: Range<usize>,
    message: impl Into<String>,
) -> RecipeError {
    let (line, col) = line_col(text, span.start);
    RecipeError::At {
        file: file.to_owned(),
        line,
        col,
        message: message.into(),
    }
}

/// 1-based line and character column of byte `offset` in `text`. Offsets past
/// the end or inside a multi-byte character are clamped to the nearest valid
/// position before them, so a bad span still yields a usable position.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::line_col;

    #[test]
    fn line_col_counts_from_one_and_in_characters() {
        let text = "a = 1\nµ = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 4), (1, 5));
        assert_eq!(line_col(text, 6), (2, 1));
        // 'µ' is two bytes: byte 9 is the '=' in column 3.
        assert_eq!(line_col(text, 9), (2, 3));
        // Inside the multi-byte character: clamped back to its start.
        assert_eq!(line_col(text, 7), (2, 1));
        assert_eq!(line_col(text, 1000), (3, 1));
    }
}
