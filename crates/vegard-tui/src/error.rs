//! The crate's one error type: what can stop the dashboard or the folder
//! tailer. Drawing itself cannot fail; only the terminal and files can.

use std::path::PathBuf;

/// Why the dashboard or the run-folder tailer stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    /// The terminal could not be set up, drawn to, read from or restored.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),

    /// A run-folder file could not be read (names the file).
    #[error("{}: {error}", .path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    /// A complete line of a run-folder file that does not parse (names the
    /// file and line; torn last lines are not errors, they are waited for).
    #[error("{}:{line}: {msg}", .path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        msg: String,
    },

    /// run.toml could not be read, or the folder is not a run folder.
    #[error(transparent)]
    Store(#[from] vegard_store::StoreError),
}
