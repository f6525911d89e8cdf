//! vegard-store
