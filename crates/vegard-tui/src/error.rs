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

    /// run.toml exists but does not parse as a run's metadata: the file,
    /// line and column of the problem (`FILE:LINE:COL`, as every bad input).
    #[error("{}:{line}:{col}: {msg}", .path.display())]
    Toml {
        path: PathBuf,
        line: usize,
        col: usize,
        msg: String,
    },

    /// No run.toml appeared within the bounded wait: the folder is not a
    /// run folder, or the run never started.
    #[error(
        "{}: no run.toml after waiting {waited_s} s: not a run folder, or the run never started",
        .dir.display()
    )]
    NoRunToml { dir: PathBuf, waited_s: u64 },

    /// run.toml could not be read, or the folder is not a run folder.
    #[error(transparent)]
    Store(#[from] vegard_store::StoreError),
}
