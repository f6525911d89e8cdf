//! Driver tests against small fake peers over real byte streams: a
//! pseudo-terminal for the serial potentiostat, loopback TCP for the DMM.
//! The fakes replay transcripts (tests/fixtures/*.txt, also shown in
//! protocols/*.md) and fail on any host line that differs from it.

// Helpers outside #[test] fns are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod methodscript;
mod scpi_dmm;
mod transcript;
