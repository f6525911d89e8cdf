//! Plan rows and step labels: computed by `vegard-recipe` (the engine
//! announces the same rows when a run starts), re-exported for the tailer.

pub use vegard_recipe::{plan_rows, step_cycles, step_label};
