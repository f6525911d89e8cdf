//! The virtual bench's error type: everything that can fail while building or
//! running the simulated instruments, named so callers can report the place.

/// Errors of the virtual bench.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A `[sim]` parameter cannot describe a physical bench (checked once at
    /// construction so the solver never meets it at run time).
    #[error("sim.{name}: {reason}")]
    InvalidParam { name: &'static str, reason: String },
    /// The pseudo-terminal behind the emulated serial potentiostat could not
    /// be created or configured.
    #[error("virtual potentiostat pseudo-terminal: {0}")]
    Pty(#[from] serialport::Error),
    /// A socket or thread of the bench could not be set up.
    #[error("virtual bench {what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}
