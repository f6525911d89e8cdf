//! Errors that name the place (`FILE:LINE:COL: message`) and the source text
//! they are computed from.
//!
//! Positions are kept as 1-based line and column (columns count characters,
//! not bytes) because that is what editors jump to; byte spans from the TOML
//! parser are converted here and nowhere else.

use std::ops::Range;
use std::path::Path;

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
}

impl RecipeError {
    /// File name as given by the caller.
    pub fn file(&self) -> &str {
        match self {
            RecipeError::At { file, .. } | RecipeError::Io { file, .. } => file,
        }
    }

    /// `(line, col)`, 1-based, when the error has a position.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            RecipeError::At { line, col, .. } => Some((*line, *col)),
            RecipeError::Io { .. } => None,
        }
    }

    /// The message without the `FILE:LINE:COL: ` prefix.
    pub fn message(&self) -> String {
        match self {
            RecipeError::At { message, .. } => message.clone(),
            RecipeError::Io { reason, .. } => format!("cannot read: {reason}"),
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

    /// Read a UTF-8 file; the error names the path.
    pub fn read(path: &Path) -> Result<Self, RecipeError> {
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Source { file, text }),
            Err(reason) => Err(RecipeError::Io { file, reason }),
        }
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
