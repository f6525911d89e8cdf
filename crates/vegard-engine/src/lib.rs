//! vegard-engine
