//! The spanned view of a TOML file: every key and value keeps its byte span,
//! so checks that run after serde (physical validation) can still point at
//! `step[2].scan_rate_V_per_s` in the file.

use std::cell::RefCell;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use vegard_core::limits;

use crate::error::{RecipeError, error_at, limit_error};
use crate::schema::SweepParameter;

/// One step of a path into the document: a table key or an array index.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Seg<'a> {
    Key(&'a str),
    Idx(usize),
}

/// A parsed document together with its file name, for positioned errors.
pub(crate) struct Doc<'s> {
    pub(crate) file: &'s str,
    pub(crate) text: &'s str,
    pub(crate) root: Spanned<DeTable<'s>>,
    /// The parameter-sweep values in force while validation checks a
    /// substituted step (innermost last); see [`Doc::with_sweep_value`].
    sweep_values: RefCell<Vec<SweepValueAt>>,
}

/// One value of a parameter sweep being validated: the sweep's path, the
/// parameter, and which of its `values` (0-based) with what value.
#[derive(Debug, Clone)]
pub(crate) struct SweepValueAt {
    pub(crate) sweep: Vec<Seg<'static>>,
    pub(crate) parameter: SweepParameter,
    pub(crate) index: usize,
    pub(crate) value: f64,
}

impl<'s> Doc<'s> {
    /// Parse TOML syntax only; type checks are serde's job. The text's
    /// line lengths and nesting are checked first, in one linear pass
    /// (`vegard_core::limits`), so no input reaches the parser that could
    /// make it allocate per nesting level.
    pub(crate) fn parse(file: &'s str, text: &'s str) -> Result<Self, RecipeError> {
        limits::check_line_lengths(text.as_bytes(), limits::MAX_CONFIG_LINE_BYTES)
            .and_then(|()| limits::check_toml_depth(text.as_bytes(), limits::MAX_TOML_DEPTH))
            .map_err(|e| limit_error(file, e))?;
        match DeTable::parse(text) {
            Ok(root) => Ok(Doc {
                file,
                text,
                root,
                sweep_values: RefCell::new(Vec::new()),
            }),
            Err(e) => Err(error_at(
                file,
                text,
                e.span().unwrap_or(0..0),
                e.message().to_owned(),
            )),
        }
    }

    /// Span of the deepest element of `path` that exists in the file. A
    /// `Key` resolves to the key itself (that is where a reader looks for
    /// `scan_rate_V_per_s = -0.1`), an `Idx` to the array element (for
    /// `[[step]]` entries: their header). A key that is absent because a
    /// default filled it in resolves to its enclosing table; an absent
    /// top-level key to the start of the file.
    pub(crate) fn span_of(&self, path: &[Seg<'_>]) -> Range<usize> {
        let mut best = 0..0;
        let mut table: Option<&DeTable<'s>> = Some(self.root.get_ref());
        let mut array: Option<&[Spanned<DeValue<'s>>]> = None;
        for seg in path {
            let next = match (*seg, table, array) {
                (Seg::Key(k), Some(t), _) => match find_key(t, k) {
                    Some((key, value)) => {
                        best = key.span();
                        value
                    }
                    None => return best,
                },
                (Seg::Idx(i), _, Some(a)) => match a.get(i) {
                    Some(value) => {
                        best = value.span();
                        value
                    }
                    None => return best,
                },
                _ => return best,
            };
            table = next.get_ref().as_table();
            array = next.get_ref().as_array().map(|a| &a[..]);
        }
        best
    }

    /// Error at the element `path` points to (see [`Doc::span_of`]).
    ///
    /// While a substituted step is checked ([`Doc::with_sweep_value`]), an
    /// error at a key the sweep filled in (absent from the file) points at
    /// the sweep's `values` entry instead, and any error in a step that
    /// takes a swept parameter says which value it was checked with: the
    /// physical checks then report a swept value as they report a literal.
    pub(crate) fn err(&self, path: &[Seg<'_>], message: impl Into<String>) -> RecipeError {
        let mut message = message.into();
        let mut span = self.span_of(path);
        let swept = self.sweep_values.borrow();
        let mut notes = Vec::new();
        for at in swept.iter().rev() {
            let Some((leaf, key)) = nested_leaf(&at.sweep, path) else {
                continue;
            };
            let kind = self
                .value_at(&[leaf, &[Seg::Key("kind")]].concat())
                .and_then(|v| v.get_ref().as_str().map(str::to_owned))
                .unwrap_or_default();
            let keys = at.parameter.keys_in(&kind);
            if keys.is_empty() {
                continue;
            }
            let values_path = [
                at.sweep.as_slice(),
                &[Seg::Key("values"), Seg::Idx(at.index)],
            ]
            .concat();
            let which = format!(
                "{} = {} {}, value {} of the sweep's values",
                at.parameter.name(),
                at.value,
                at.parameter.unit(),
                at.index + 1
            );
            let filled_in = key.is_some_and(|k| keys.contains(&k))
                && self.value_at(&path[..leaf.len() + 1]).is_none();
            if filled_in {
                span = self.span_of(&values_path);
                notes.insert(0, format!("{which}, set in the {kind} step"));
            } else {
                let (line, col) = self
                    .err_span(self.span_of(&values_path), "")
                    .position()
                    .unwrap_or((0, 0));
                notes.push(format!("with {which} at {line}:{col}"));
            }
        }
        drop(swept);
        if !notes.is_empty() {
            message = format!("{message} ({})", notes.join("; "));
        }
        self.err_span(span, message)
    }

    /// Run `check` with a sweep value in force for [`Doc::err`].
    pub(crate) fn with_sweep_value<T>(&self, at: SweepValueAt, check: impl FnOnce() -> T) -> T {
        self.sweep_values.borrow_mut().push(at);
        let out = check();
        self.sweep_values.borrow_mut().pop();
        out
    }

    /// The value at `path`, if the file has it.
    pub(crate) fn value_at(&self, path: &[Seg<'_>]) -> Option<&Spanned<DeValue<'s>>> {
        let mut table: Option<&DeTable<'s>> = Some(self.root.get_ref());
        let mut array: Option<&[Spanned<DeValue<'s>>]> = None;
        let mut found = None;
        for seg in path {
            let next = match (*seg, table, array) {
                (Seg::Key(k), Some(t), _) => find_key(t, k).map(|(_, v)| v)?,
                (Seg::Idx(i), _, Some(a)) => a.get(i)?,
                _ => return None,
            };
            table = next.get_ref().as_table();
            array = next.get_ref().as_array().map(|a| &a[..]);
            found = Some(next);
        }
        found
    }

    pub(crate) fn err_span(&self, span: Range<usize>, message: impl Into<String>) -> RecipeError {
        error_at(self.file, self.text, span, message)
    }

    /// Convert a serde error from deserializing (part of) this document.
    /// `context` is prepended to the message (e.g. `"cv step: "`).
    pub(crate) fn serde_err(&self, e: &toml::de::Error, context: &str) -> RecipeError {
        let message = format!("{context}{}", humanize(e.message()));
        self.err_span(e.span().unwrap_or(0..0), message)
    }
}

/// For `path` inside the nested steps of the sweep at `sweep`: the path of
/// the innermost step it is in (`sweep.step[i].step[j]`) and the key right
/// after it, if any.
fn nested_leaf<'p, 'a>(
    sweep: &[Seg<'_>],
    path: &'p [Seg<'a>],
) -> Option<(&'p [Seg<'a>], Option<&'a str>)> {
    if path.len() <= sweep.len() || !same_path(&path[..sweep.len()], sweep) {
        return None;
    }
    let mut end = sweep.len();
    while let (Some(Seg::Key("step")), Some(Seg::Idx(_))) = (path.get(end), path.get(end + 1)) {
        end += 2;
    }
    if end == sweep.len() {
        return None;
    }
    let key = match path.get(end) {
        Some(Seg::Key(k)) => Some(*k),
        _ => None,
    };
    Some((&path[..end], key))
}

fn same_path(a: &[Seg<'_>], b: &[Seg<'_>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Seg::Key(x), Seg::Key(y)) => x == y,
            (Seg::Idx(x), Seg::Idx(y)) => x == y,
            _ => false,
        })
}

/// Look up `name` in a spanned table, returning the spanned key and value.
pub(crate) fn find_key<'t, 's>(
    table: &'t DeTable<'s>,
    name: &str,
) -> Option<(
    &'t Spanned<std::borrow::Cow<'s, str>>,
    &'t Spanned<DeValue<'s>>,
)> {
    table.iter().find(|(key, _)| key.get_ref().as_ref() == name)
}

/// serde speaks of "fields"; a TOML file has keys. Say it in the reader's
/// words so the message matches what they see in the file, and name the
/// key that was probably meant.
fn humanize(message: &str) -> String {
    let mut out = message
        .replace("unknown field", "unknown key")
        .replace("missing field", "missing key")
        .replace("unknown variant", "unknown value");
    if let Some(meant) = meant_in_serde_message(message) {
        out.push_str(&format!(" (did you mean `{meant}`?)"));
    }
    out
}

/// In serde's "unknown field `x`, expected one of `a`, `b`" (or "unknown
/// variant ..."): the expected name closest to `x`, if close enough.
fn meant_in_serde_message(message: &str) -> Option<String> {
    let start = ["unknown field `", "unknown variant `"]
        .iter()
        .find_map(|p| message.find(p).map(|at| at + p.len()))?;
    let end = start + message[start..].find('`')?;
    let word = &message[start..end];
    let candidates: Vec<&str> = message[end + 1..].split('`').skip(1).step_by(2).collect();
    did_you_mean(word, &candidates).map(str::to_owned)
}

/// The candidate a mistyped `word` most likely meant: the same ignoring
/// case, a candidate that extends it (the unit left off: `scan_rate` for
/// `scan_rate_V_per_s`), or the nearest by edit distance within a third of
/// the longer name's length. `None` when nothing is that close.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let w = word.to_lowercase();
    if w.is_empty() {
        return None;
    }
    let lower: Vec<String> = candidates.iter().map(|c| c.to_lowercase()).collect();
    if let Some(k) = lower.iter().position(|c| *c == w) {
        return Some(candidates[k]);
    }
    if w.chars().count() >= 3 {
        let extending: Vec<usize> = (0..lower.len())
            .filter(|&k| lower[k].starts_with(&w) && lower[k][w.len()..].starts_with('_'))
            .collect();
        if let [k] = extending[..] {
            return Some(candidates[k]);
        }
    }
    let (d, k) = lower
        .iter()
        .enumerate()
        .map(|(k, c)| (edit_distance(&w, c), k))
        .min()?;
    // A third of the length: nothing for one- and two-letter words (`x`
    // is not a typo of `z`).
    let limit = w.chars().count().max(lower[k].chars().count()) / 3;
    (d <= limit).then(|| candidates[k])
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{Doc, Seg, did_you_mean, edit_distance};

    #[test]
    fn did_you_mean_names_the_close_candidate_only() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
        let keys = [
            "begin_V",
            "vertex_V",
            "scan_rate_V_per_s",
            "step_V",
            "cycles",
        ];
        assert_eq!(did_you_mean("scan_rate", &keys), Some("scan_rate_V_per_s"));
        assert_eq!(
            did_you_mean("scan_rate_mV_per_s", &keys),
            Some("scan_rate_V_per_s")
        );
        assert_eq!(did_you_mean("cylces", &keys), Some("cycles"));
        assert_eq!(did_you_mean("BEGIN_V", &keys), Some("begin_V"));
        assert_eq!(did_you_mean("colour", &keys), None);
        assert_eq!(did_you_mean("CV", &["ocp", "cv", "eis"]), Some("cv"));
        assert_eq!(
            did_you_mean("esm", &["eis", "esm_sweep"]),
            Some("esm_sweep")
        );
        assert_eq!(did_you_mean("x", &["ocp", "cv"]), None);
        assert_eq!(did_you_mean("x", &["thickness_m", "z"]), None);
    }

    const TEXT: &str = "[a]\nx = 1\nv = [1, 2]\n\n[[s]]\ny = 2\n[[s]]\nz = 3\n";

    fn at(path: &[Seg<'_>]) -> (usize, usize) {
        let doc = Doc::parse("t.toml", TEXT).unwrap();
        doc.err(path, "m").position().unwrap()
    }

    #[test]
    fn span_of_points_at_keys_elements_and_falls_back_to_parents() {
        assert_eq!(at(&[Seg::Key("a"), Seg::Key("x")]), (2, 1));
        assert_eq!(at(&[Seg::Key("a"), Seg::Key("v"), Seg::Idx(1)]), (3, 9));
        assert_eq!(at(&[Seg::Key("s"), Seg::Idx(1), Seg::Key("z")]), (8, 1));
        // Absent key: the enclosing [[s]] header.
        assert_eq!(at(&[Seg::Key("s"), Seg::Idx(1), Seg::Key("w")]), (7, 1));
        // Absent top-level key: start of file.
        assert_eq!(at(&[Seg::Key("nope"), Seg::Key("x")]), (1, 1));
    }
}
