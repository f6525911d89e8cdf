//! Loading user input (recipes, bench configs) and the bad-input error that
//! maps to exit status 2.

use std::path::{Path, PathBuf};

use anyhow::Result;
use vegard_recipe::{BenchConfig, Recipe, RecipeError};

/// The default bench, compiled in so `vegard run` works from any folder.
pub const BUILTIN_SIM_BENCH: &str = include_str!("../configs/sim.toml");
pub const DEFAULT_BENCH: &str = "configs/sim.toml";

/// Bad input: printed as is, exit status 2.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for BadInput {}

/// Any bad-input error (unreadable file, unusable data): exit status 2.
pub fn bad_input(e: impl std::fmt::Display) -> anyhow::Error {
    BadInput(e.to_string()).into()
}

pub fn bad(e: RecipeError) -> anyhow::Error {
    anyhow::Error::new(BadInput(e.to_string()))
}

/// Load the bench: the given file, else configs/sim.toml, else the built-in copy.
pub fn load_bench(path: Option<&Path>) -> Result<(BenchConfig, PathBuf)> {
    match path {
        Some(p) => Ok((vegard_recipe::load_bench(p).map_err(bad)?, p.to_path_buf())),
        None => {
            let p = PathBuf::from(DEFAULT_BENCH);
            if p.exists() {
                Ok((vegard_recipe::load_bench(&p).map_err(bad)?, p))
            } else {
                let b =
                    vegard_recipe::parse_bench(BUILTIN_SIM_BENCH, "<built-in configs/sim.toml>")
                        .map_err(bad)?;
                Ok((b, PathBuf::from("<built-in configs/sim.toml>")))
            }
        }
    }
}

pub fn load_checked(
    recipe_path: &Path,
    bench: Option<&Path>,
) -> Result<(Recipe, BenchConfig, PathBuf)> {
    let src = vegard_recipe::Source::read(recipe_path).map_err(bad)?;
    let recipe = vegard_recipe::parse_recipe(&src.text, &src.file).map_err(bad)?;
    let (bench, bench_path) = load_bench(bench)?;
    vegard_recipe::validate_with_bench(&recipe, &src, &bench).map_err(bad)?;
    Ok((recipe, bench, bench_path))
}
