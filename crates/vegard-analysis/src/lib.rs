//! vegard-analysis
