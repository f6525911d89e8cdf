//! Driver tests against small fake peers over real byte streams: a
//! pseudo-terminal for the serial potentiostat, loopback TCP for the DMM,
//! the lock-in and the temperature controller.
//! The fakes replay transcripts (tests/fixtures/*.txt, also shown in
//! protocols/*.md) and fail on any host line that differs from it.

// Helpers outside #[test] fns are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ls336;
mod methodscript;
mod scpi_dmm;
mod sr860;
mod tcp_fake;
mod transcript;
