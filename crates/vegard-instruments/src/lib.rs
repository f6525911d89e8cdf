//! vegard-instruments
