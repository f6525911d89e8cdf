//! vegard-sim
