//! One module per command; each turns checked arguments into a library call
//! and prints its result.

pub mod analyze;
pub mod fit_eis;
pub mod import;
pub mod recover;
pub mod report;
pub mod run;
pub mod sim;
pub mod validate;
pub mod watch;
