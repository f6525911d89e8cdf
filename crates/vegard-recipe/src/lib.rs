//! vegard-recipe
