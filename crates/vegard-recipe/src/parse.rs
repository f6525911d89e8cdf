//! Reading recipe and bench files into the typed schema, with every syntax,
//! key and type error positioned at `FILE:LINE:COL`.
//!
//! Steps are deserialized in two stages (read `kind`, then deserialize the
//! rest of the table into that kind's struct) instead of through serde's
//! internally tagged enum: the tagged enum buffers the table and loses every
//! span, so an unknown key inside a step would only point at `[[step]]`.
//! A `sweep` step's nested `[[step.step]]` tables go through the same two
//! stages, so their errors point into the nested tables too.

use std::path::Path;

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::doc::{Doc, Seg, find_key};
use crate::error::{RecipeError, Source};
use crate::schema::{
    BenchConfig, CvStep, EisStep, EsmSweepStep, Limits, LsvStep, MAX_SWEEP_DEPTH, OcpStep,
    ParameterSweep, PotentialSteps, Recipe, RunInfo, SimParams, Step, SweepParameter, SweepStep,
    TemperatureStep, TemperatureSweep, WaitStep,
};
use crate::validate::{validate_bench, validate_recipe};

/// Valid values of a step's `kind`, in the order the docs present them.
pub const STEP_KINDS: &[&str] = &[
    "ocp",
    "cv",
    "steps",
    "wait",
    "lsv",
    "eis",
    "esm_sweep",
    "temperature",
    "sweep",
];

/// Read, parse and validate a recipe file (everything that does not need the
/// bench; see [`crate::validate_with_bench`] for the rest).
pub fn load_recipe(path: &Path) -> Result<Recipe, RecipeError> {
    let src = Source::read(path)?;
    parse_recipe(&src.text, &src.file)
}

/// Parse and validate recipe text; `file_name` is only used in messages.
pub fn parse_recipe(text: &str, file_name: &str) -> Result<Recipe, RecipeError> {
    let doc = Doc::parse(file_name, text)?;
    check_pairs(&doc)?;

    /// Everything but the steps, which [`parse_steps`] reads with spans.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Head {
        run: RunInfo,
        limits: Limits,
        #[serde(rename = "step", default)]
        _steps: Option<IgnoredAny>,
    }
    let head = Head::deserialize(toml::Deserializer::from(doc.root.clone()))
        .map_err(|e| doc.serde_err(&e, ""))?;
    let steps = parse_steps(&doc)?;
    let recipe = Recipe {
        run: head.run,
        limits: head.limits,
        steps,
    };
    validate_recipe(&recipe, &doc)?;
    Ok(recipe)
}

/// Read, parse and validate a bench config. When an instrument uses
/// `resource = "sim"` and the file has no `[sim]` table, `sim` is filled with
/// the default virtual bench, so callers can rely on it being `Some`.
pub fn load_bench(path: &Path) -> Result<BenchConfig, RecipeError> {
    let src = Source::read(path)?;
    parse_bench(&src.text, &src.file)
}

/// Parse and validate bench-config text; `file_name` is only used in messages.
pub fn parse_bench(text: &str, file_name: &str) -> Result<BenchConfig, RecipeError> {
    let doc = Doc::parse(file_name, text)?;
    let mut bench = BenchConfig::deserialize(toml::Deserializer::from(doc.root.clone()))
        .map_err(|e| doc.serde_err(&e, ""))?;
    if bench.sim.is_some() {
        bench.sim = Some(sim_over_defaults(&doc)?);
    }
    validate_bench(&mut bench, &doc)?;
    Ok(bench)
}

/// The file's `[sim]` laid over the default virtual bench, key by key.
///
/// serde's `default` fills a missing key from the default of the innermost
/// struct, so `[sim.clocks.deflection] drift_ppm = 30` alone would reset the
/// deflection clock's offset and jitter to `ClockParams::default()` (a
/// perfect oscillator) instead of keeping the bench's deflection clock. Called
/// after the spanned deserialization succeeded, so every type is already known
/// to fit and errors here are not expected.
fn sim_over_defaults(doc: &Doc<'_>) -> Result<SimParams, RecipeError> {
    let sim_path = [Seg::Key("sim")];
    let internal = |what: &str, e: &dyn std::fmt::Display| {
        doc.err(
            &sim_path,
            format!("[sim]: cannot merge with the defaults ({what}: {e})"),
        )
    };
    let mut merged =
        toml::Table::try_from(SimParams::default()).map_err(|e| internal("defaults", &e))?;
    let file: toml::Table = toml::from_str(doc.text).map_err(|e| internal("file", &e))?;
    if let Some(toml::Value::Table(sim)) = file.get("sim") {
        merge_tables(&mut merged, sim);
    }
    SimParams::deserialize(merged).map_err(|e| internal("merged", &e))
}

/// Recursively overwrite `base` with `over`; tables merge, values replace.
fn merge_tables(base: &mut toml::Table, over: &toml::Table) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// `[f64; 2]` fields: serde (through toml) silently ignores extra elements,
/// so `vertex_V = [0.9, -0.1, 0.5]` would lose its last vertex. Reject any
/// length but two before serde sees them. This checks `[limits]`; the pairs
/// of each step kind are checked in [`parse_step`], where the kind is known
/// (`freq_Hz` is a pair in `eis` but a list in `esm_sweep`).
fn check_pairs(doc: &Doc<'_>) -> Result<(), RecipeError> {
    let root = doc.root.get_ref();
    if let Some((_, limits)) = find_key(root, "limits")
        && let Some(limits) = limits.get_ref().as_table()
    {
        check_pair(doc, limits, "potential_window_V", "[low, high]")?;
    }
    Ok(())
}

/// The `[f64; 2]` keys of a step kind and the shape shown in the message.
fn step_pairs(kind: &str) -> &'static [(&'static str, &'static str)] {
    match kind {
        "cv" => &[("vertex_V", "[first vertex, second vertex]")],
        "eis" => &[("freq_Hz", "[high, low]")],
        "esm_sweep" => &[("freq_range_Hz", "[high, low]")],
        _ => &[],
    }
}

fn check_pair(
    doc: &Doc<'_>,
    table: &DeTable<'_>,
    key: &str,
    shape: &str,
) -> Result<(), RecipeError> {
    if let Some((_, value)) = find_key(table, key)
        && let Some(items) = value.get_ref().as_array()
        && items.len() != 2
    {
        return Err(doc.err_span(
            value.span(),
            format!(
                "{key} must have exactly 2 elements {shape} (got {})",
                items.len()
            ),
        ));
    }
    Ok(())
}

fn kinds_list() -> String {
    STEP_KINDS.join(", ")
}

fn parse_steps(doc: &Doc<'_>) -> Result<Vec<Step>, RecipeError> {
    let Some((_, value)) = find_key(doc.root.get_ref(), "step") else {
        return Err(doc.err(
            &[Seg::Key("step")],
            format!(
                "the recipe has no steps: add at least one [[step]] with kind = one of {}",
                kinds_list()
            ),
        ));
    };
    let Some(items) = value.get_ref().as_array() else {
        return Err(doc.err_span(
            value.span(),
            format!(
                "`step` must be an array of tables: write each step as [[step]] (got a {})",
                value.get_ref().type_str()
            ),
        ));
    };
    if items.is_empty() {
        return Err(doc.err_span(
            value.span(),
            "the recipe has no steps: add at least one [[step]]",
        ));
    }
    items
        .iter()
        .map(|item| parse_step(doc, item, &Enclosing::default()))
        .collect()
}

/// What encloses a step being parsed: the sweeps around it.
#[derive(Clone, Default)]
struct Enclosing<'s> {
    /// Sweeps around the step (0 at the top level).
    depth: usize,
    /// Whether one of them is a temperature sweep.
    in_temperature_sweep: bool,
    /// The parameter sweeps around it: the parameter, its `parameter = ...`
    /// value's span (for messages) and the first of its `values` (filled
    /// into the nested steps that take the parameter; [`Recipe::plan`]
    /// substitutes each value).
    swept: Vec<(SweepParameter, std::ops::Range<usize>, Spanned<DeValue<'s>>)>,
}

/// One `[[step]]` (or, inside a sweep, one `[[step.step]]`, at any depth).
fn parse_step<'s>(
    doc: &Doc<'s>,
    item: &Spanned<DeValue<'s>>,
    enclosing: &Enclosing<'s>,
) -> Result<Step, RecipeError> {
    let nested = enclosing.depth > 0;
    let Some(table) = item.get_ref().as_table() else {
        return Err(doc.err_span(
            item.span(),
            format!(
                "a step must be a table with `kind = ...` (got a {})",
                item.get_ref().type_str()
            ),
        ));
    };
    let Some((_, kind_value)) = find_key(table, "kind") else {
        return Err(doc.err_span(
            item.span(),
            format!("missing key `kind` (one of {})", kinds_list()),
        ));
    };
    let Some(kind) = kind_value.get_ref().as_str() else {
        return Err(doc.err_span(
            kind_value.span(),
            format!(
                "`kind` must be a string, one of {} (got a {})",
                kinds_list(),
                kind_value.get_ref().type_str()
            ),
        ));
    };

    if kind == "sweep" && enclosing.depth >= MAX_SWEEP_DEPTH {
        return Err(doc.err_span(
            kind_value.span(),
            format!(
                "sweeps nest at most {MAX_SWEEP_DEPTH} levels deep: this sweep would be \
                 level {} (split the recipe, or list the values in an outer sweep)",
                enclosing.depth + 1
            ),
        ));
    }
    if enclosing.in_temperature_sweep && kind == "temperature" {
        return Err(doc.err_span(
            kind_value.span(),
            "a temperature step cannot be nested in a temperature sweep: the sweep sets \
             the stage temperature itself (temperature_C / temperature_K)",
        ));
    }
    for (key, shape) in step_pairs(kind) {
        check_pair(doc, table, key, shape)?;
    }

    let mut rest = table.clone();
    rest.remove("kind");
    // The keys enclosing parameter sweeps set: given here too is an error,
    // absent they are filled with the sweep's first value.
    for (parameter, parameter_span, first) in &enclosing.swept {
        for &key in parameter.keys_in(kind) {
            if let Some((given, _)) = find_key(table, key) {
                let (line, col) = doc
                    .err_span(parameter_span.clone(), "")
                    .position()
                    .unwrap_or((0, 0));
                return Err(doc.err_span(
                    given.span(),
                    format!(
                        "{kind} step in a sweep: {key} is set by the enclosing sweep \
                         (parameter = \"{}\" at {line}:{col}); remove it here",
                        parameter.name()
                    ),
                ));
            }
        }
        if let Some(&key) = parameter.keys_in(kind).first() {
            let value = if *parameter == SweepParameter::FreqHz {
                let mut list = toml::de::DeArray::new();
                list.push(first.clone());
                Spanned::new(first.span(), DeValue::Array(list))
            } else {
                first.clone()
            };
            rest.insert(Spanned::new(first.span(), key.into()), value);
        }
    }
    let de = ValueDeserializer::from(Spanned::new(item.span(), DeValue::Table(rest)));
    let context = if nested {
        format!("{kind} step in a sweep: ")
    } else {
        format!("{kind} step: ")
    };
    let step = match kind {
        "ocp" => OcpStep::deserialize(de).map(Step::Ocp),
        "cv" => CvStep::deserialize(de).map(Step::Cv),
        "steps" => PotentialSteps::deserialize(de).map(Step::Steps),
        "wait" => WaitStep::deserialize(de).map(Step::Wait),
        "lsv" => LsvStep::deserialize(de).map(Step::Lsv),
        "eis" => EisStep::deserialize(de).map(Step::Eis),
        "esm_sweep" => EsmSweepStep::deserialize(de).map(Step::EsmSweep),
        "temperature" => TemperatureStep::deserialize(de).map(Step::Temperature),
        "sweep" => return parse_sweep(doc, item, table, &context, enclosing),
        other => {
            return Err(doc.err_span(
                kind_value.span(),
                format!(
                    "unknown step kind `{other}`{}; valid kinds: {}",
                    crate::doc::did_you_mean(other, STEP_KINDS)
                        .map(|k| format!(" (did you mean `{k}`?)"))
                        .unwrap_or_default(),
                    kinds_list()
                ),
            ));
        }
    };
    step.map_err(|e| doc.serde_err(&e, &context))
}

/// A sweep: its own keys through serde (with spans), then each nested
/// `[[step.step]]` through [`parse_step`]. With a `parameter` key it is a
/// parameter sweep, else a temperature sweep.
fn parse_sweep<'s>(
    doc: &Doc<'s>,
    item: &Spanned<DeValue<'s>>,
    table: &DeTable<'s>,
    context: &str,
    enclosing: &Enclosing<'s>,
) -> Result<Step, RecipeError> {
    /// The temperature sweep's keys; `step` is read separately so nested
    /// errors keep their positions. Field names match [`TemperatureSweep`],
    /// so serde's "expected one of" lists the keys the user can write.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TemperatureHead {
        #[serde(default)]
        temperature_C: Option<Vec<f64>>,
        #[serde(default)]
        temperature_K: Option<Vec<f64>>,
        tolerance_K: f64,
        hold_s: f64,
        timeout_s: f64,
        #[serde(rename = "step")]
        _steps: IgnoredAny,
    }
    /// The parameter sweep's keys, likewise ([`ParameterSweep`]).
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ParameterHead {
        parameter: SweepParameter,
        values: Vec<f64>,
        #[serde(rename = "step")]
        _steps: IgnoredAny,
    }

    if enclosing.in_temperature_sweep && find_key(table, "parameter").is_none() {
        let at = find_key(table, "kind").map_or(item.span(), |(_, v)| v.span());
        return Err(doc.err_span(
            at,
            "a temperature sweep cannot be nested in another temperature sweep: \
             list every temperature in the outer sweep instead",
        ));
    }
    let Some((_, nested_value)) = find_key(table, "step") else {
        return Err(doc.err_span(
            item.span(),
            format!(
                "{context}no nested steps: add the steps to run at each temperature or value \
                 as [[step.step]] tables after the sweep's keys"
            ),
        ));
    };
    let Some(nested_items) = nested_value.get_ref().as_array() else {
        return Err(doc.err_span(
            nested_value.span(),
            format!(
                "{context}`step` must be an array of tables: write each nested step as \
                 [[step.step]] (got a {})",
                nested_value.get_ref().type_str()
            ),
        ));
    };
    if nested_items.is_empty() {
        return Err(doc.err_span(
            nested_value.span(),
            format!("{context}no nested steps: add at least one [[step.step]]"),
        ));
    }

    let mut rest = table.clone();
    rest.remove("kind");
    let de = ValueDeserializer::from(Spanned::new(item.span(), DeValue::Table(rest)));
    let mut inner = enclosing.clone();
    inner.depth += 1;

    let Some((_, parameter_value)) = find_key(table, "parameter") else {
        let head = TemperatureHead::deserialize(de).map_err(|e| doc.serde_err(&e, context))?;
        inner.in_temperature_sweep = true;
        let steps = nested_items
            .iter()
            .map(|nested| parse_step(doc, nested, &inner))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Step::Sweep(SweepStep::Temperature(TemperatureSweep {
            temperature_C: head.temperature_C,
            temperature_K: head.temperature_K,
            tolerance_K: head.tolerance_K,
            hold_s: head.hold_s,
            timeout_s: head.timeout_s,
            steps,
        })));
    };

    let head = ParameterHead::deserialize(de).map_err(|e| doc.serde_err(&e, context))?;
    let parameter = head.parameter;
    if let Some((_, outer_span, _)) = enclosing.swept.iter().find(|(p, _, _)| *p == parameter) {
        let (line, col) = doc
            .err_span(outer_span.clone(), "")
            .position()
            .unwrap_or((0, 0));
        return Err(doc.err_span(
            parameter_value.span(),
            format!(
                "{context}{} is already swept by an enclosing sweep (parameter at \
                 {line}:{col}): list every value there",
                parameter.name()
            ),
        ));
    }
    let values_item = find_key(table, "values").map(|(_, v)| v);
    let Some(first) = values_item
        .and_then(|v| v.get_ref().as_array())
        .and_then(|a| a.first())
    else {
        let at = values_item.map_or(item.span(), Spanned::span);
        return Err(doc.err_span(
            at,
            format!(
                "{context}values must have at least one value (the {} to run the nested \
                 steps at) (got [])",
                parameter.name()
            ),
        ));
    };
    // Before the nested steps are read: a parameter none of them takes is
    // the likelier mistake than the keys it would have filled in.
    let mut kinds = Vec::new();
    nested_kinds(nested_items, &mut kinds);
    if !kinds.iter().any(|k| parameter.step_kinds().contains(k)) {
        return Err(doc.err_span(
            parameter_value.span(),
            format!(
                "{context}no nested step takes {} (it sets {} of {}); valid parameters: {}",
                parameter.name(),
                parameter.name(),
                parameter.step_kinds().join(", "),
                SweepParameter::valid_list()
            ),
        ));
    }
    inner
        .swept
        .push((parameter, parameter_value.span(), first.clone()));
    let steps = nested_items
        .iter()
        .map(|nested| parse_step(doc, nested, &inner))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Step::Sweep(SweepStep::Parameter(ParameterSweep {
        parameter,
        values: head.values,
        steps,
    })))
}

/// The `kind`s of the steps in `items` and, through nested `step` arrays,
/// of every step below them, as written (unparsed).
fn nested_kinds<'t>(items: &'t [Spanned<DeValue<'_>>], kinds: &mut Vec<&'t str>) {
    for item in items {
        let Some(table) = item.get_ref().as_table() else {
            continue;
        };
        if let Some(kind) = find_key(table, "kind").and_then(|(_, v)| v.get_ref().as_str()) {
            kinds.push(kind);
        }
        if let Some(nested) = find_key(table, "step").and_then(|(_, v)| v.get_ref().as_array()) {
            nested_kinds(nested, kinds);
        }
    }
}
