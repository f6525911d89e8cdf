//! Equivalent circuits in impedance.py syntax: parsing, impedance and its
//! analytic parameter derivatives.
//!
//! Grammar (whitespace ignored):
//!
//! ```text
//! circuit  := series
//! series   := term ('-' term)*
//! term     := 'p(' series (',' series)* ')' | element
//! element  := ('R' | 'C' | 'L' | 'W' | 'Wo' | 'Ws' | 'CPE') index
//! index    := [0-9_]+
//! ```
//!
//! Limits: at most [`MAX_CIRCUIT_DEPTH`] nested `p(...)` blocks and
//! [`MAX_CIRCUIT_ELEMENTS`] elements; past either the parse stops with an
//! error at the column where the limit was crossed. The parser looks at
//! every character a bounded number of times (element names are checked
//! for duplicates through a hash set), so its time is linear in the length
//! of any string, and its recursion is at most two frames per level.
//!
//! Parameter names follow impedance.py so that results can be compared line
//! by line: one-parameter elements give their own name (`R0`, `C1`),
//! multi-parameter elements append `_k` (`Wo1_0` = Z0, `Wo1_1` = tau), in
//! order of appearance in the string.
//!
//! Derivatives are analytic (reverse-mode through the tree: an element's
//! sensitivity is the product of `(Z_parallel / Z_branch)^2` factors on the
//! way up), so the Jacobian costs about two impedance evaluations per point
//! and never allocates.

use std::collections::HashSet;

use serde::Serialize;

use crate::AnalysisError;

/// Deepest nesting of `p(...)` blocks: 32. Real circuits nest 1-3 deep
/// (a ladder of a transmission line written out, ~10); every evaluation of
/// the impedance and its gradient walks the tree, and the gradient of a
/// block re-evaluates its branches, so the cost of a fit grows with the
/// square of the depth (2000 levels took over 2 minutes on 66 points,
/// issue 16), and the parser's recursion with the depth.
pub const MAX_CIRCUIT_DEPTH: usize = 32;

/// Most elements in a circuit: 64 (up to 128 parameters). Real circuits
/// have fewer than 15; the fit's Jacobian and normal matrix grow with the
/// parameters (quadratically for the latter), and no spectrum determines
/// more than a few dozen.
pub const MAX_CIRCUIT_ELEMENTS: usize = 64;

/// Longest piece of the input quoted in a syntax error, in characters.
const MAX_QUOTED_CHARS: usize = 24;

/// Complex number used for impedances: the crate's one complex type (the
/// same `num_complex::Complex64` that nalgebra and rustfft use).
pub type C64 = num_complex::Complex64;

/// The circuit elements understood by [`Circuit::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ElementKind {
    /// Resistor, `R` (ohm).
    R,
    /// Capacitor, `C` (F): `1 / (j w C)`.
    C,
    /// Inductor, `L` (H): `j w L`.
    L,
    /// Semi-infinite Warburg, `W`, one parameter `A_W` (ohm s^-1/2):
    /// `A_W (1 - j) / sqrt(w)` as in impedance.py.
    W,
    /// Open (reflective, finite-space) Warburg, `Wo`: parameters Z0 (ohm),
    /// tau (s); `Z0 coth(sqrt(j w tau)) / sqrt(j w tau)`. Capacitive at low
    /// frequency (PHYSICS.md §4).
    Wo,
    /// Short (transmissive, finite-length) Warburg, `Ws`: Z0 (ohm), tau (s);
    /// `Z0 tanh(sqrt(j w tau)) / sqrt(j w tau)`. Resistive at low frequency.
    Ws,
    /// Constant-phase element, `CPE`: Q (F s^(alpha-1)), alpha in (0, 1];
    /// `1 / (Q (j w)^alpha)`.
    Cpe,
}

impl ElementKind {
    /// Number of parameters of the element.
    pub fn n_params(self) -> usize {
        match self {
            ElementKind::R | ElementKind::C | ElementKind::L | ElementKind::W => 1,
            ElementKind::Wo | ElementKind::Ws | ElementKind::Cpe => 2,
        }
    }

    /// Units of the element's parameters, in parameter order (for tables).
    pub fn param_units(self) -> &'static [&'static str] {
        match self {
            ElementKind::R => &["Ω"],
            ElementKind::C => &["F"],
            ElementKind::L => &["H"],
            ElementKind::W => &["Ω s^-1/2"],
            ElementKind::Wo | ElementKind::Ws => &["Ω", "s"],
            ElementKind::Cpe => &["F s^(α-1)", ""],
        }
    }

    /// The letters that name the element in a circuit string.
    pub fn prefix(self) -> &'static str {
        match self {
            ElementKind::R => "R",
            ElementKind::C => "C",
            ElementKind::L => "L",
            ElementKind::W => "W",
            ElementKind::Wo => "Wo",
            ElementKind::Ws => "Ws",
            ElementKind::Cpe => "CPE",
        }
    }

    fn from_prefix(s: &str) -> Option<ElementKind> {
        Some(match s {
            "R" => ElementKind::R,
            "C" => ElementKind::C,
            "L" => ElementKind::L,
            "W" => ElementKind::W,
            "Wo" => ElementKind::Wo,
            "Ws" => ElementKind::Ws,
            "CPE" => ElementKind::Cpe,
            _ => return None,
        })
    }
}

/// One element of a parsed circuit, in order of appearance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CircuitElement {
    /// Name as written, e.g. `Wo1`.
    pub name: String,
    pub kind: ElementKind,
    /// Index of the element's first parameter in the parameter vector.
    pub first_param: usize,
    /// Nesting depth in `p(...)` blocks: 0 for elements in the outer series
    /// chain. Used by the initial-guess heuristic (a series R is the
    /// high-frequency intercept, a parallel R an arc width).
    pub parallel_depth: usize,
}

/// The parsed tree: what the canonical relabelling (`canonical.rs`) and
/// the multi-start generator (`global.rs`) walk.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Element { kind: ElementKind, first: usize },
    Series(Vec<Node>),
    Parallel(Vec<Node>),
}

/// A parsed equivalent circuit.
#[derive(Debug, Clone, PartialEq)]
pub struct Circuit {
    text: String,
    root: Node,
    elements: Vec<CircuitElement>,
    names: Vec<String>,
}

impl std::fmt::Display for Circuit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Circuit {
    type Err = AnalysisError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Circuit::parse(s)
    }
}

impl Circuit {
    /// Parse an impedance.py circuit string such as `R0-p(R1-Wo1,C1)`:
    /// linear time in the string's length, with the limits
    /// [`MAX_CIRCUIT_DEPTH`] and [`MAX_CIRCUIT_ELEMENTS`].
    pub fn parse(text: &str) -> Result<Circuit, AnalysisError> {
        parse_counted(text).0
    }
}

/// [`Circuit::parse`] and the parser's work in steps (one per character
/// looked at and per grammar rule entered), for the linear-time tests.
pub(crate) fn parse_counted(text: &str) -> (Result<Circuit, AnalysisError>, usize) {
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
        elements: Vec::new(),
        names: HashSet::new(),
        n_params: 0,
        depth: 0,
        steps: 0,
    };
    let root = p.series().and_then(|root| {
        p.skip_ws();
        if p.pos < p.chars.len() {
            Err(p.error("'-' or the end of the string"))
        } else {
            Ok(root)
        }
    });
    let steps = p.steps;
    (root.map(|root| Circuit::from_parser(text, p, root)), steps)
}

impl Circuit {
    /// The circuit from a parser that has consumed the whole string.
    fn from_parser(text: &str, p: Parser, root: Node) -> Circuit {
        let mut names = Vec::with_capacity(p.n_params);
        for e in &p.elements {
            if e.kind.n_params() == 1 {
                names.push(e.name.clone());
            } else {
                names.extend((0..e.kind.n_params()).map(|k| format!("{}_{k}", e.name)));
            }
        }
        Circuit {
            text: text.to_string(),
            root,
            elements: p.elements,
            names,
        }
    }

    /// Parameter names in parameter-vector order (`R0`, `Wo1_0`, ...).
    pub fn param_names(&self) -> &[String] {
        &self.names
    }

    pub fn n_params(&self) -> usize {
        self.names.len()
    }

    /// Elements in order of appearance.
    pub fn elements(&self) -> &[CircuitElement] {
        &self.elements
    }

    /// The circuit string as given to [`Circuit::parse`].
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Impedance in ohm at `f_Hz` for the parameter vector `params`.
    pub fn impedance(&self, params: &[f64], f_Hz: f64) -> Result<C64, AnalysisError> {
        self.check_len(params)?;
        Ok(self.z_at(params, std::f64::consts::TAU * f_Hz))
    }

    /// Impedance in ohm at every frequency of `f_Hz`.
    pub fn impedance_spectrum(
        &self,
        params: &[f64],
        f_Hz: &[f64],
    ) -> Result<Vec<C64>, AnalysisError> {
        self.check_len(params)?;
        Ok(f_Hz
            .iter()
            .map(|&f| self.z_at(params, std::f64::consts::TAU * f))
            .collect())
    }

    fn check_len(&self, params: &[f64]) -> Result<(), AnalysisError> {
        if params.len() != self.n_params() {
            return Err(AnalysisError::GuessLength {
                circuit: self.to_string(),
                names: self.param_names().join(", "),
                expected: self.n_params(),
                got: params.len(),
            });
        }
        Ok(())
    }

    /// The parsed tree.
    pub(crate) fn root(&self) -> &Node {
        &self.root
    }

    /// Impedance at angular frequency `w_rad_s`; `params` must have
    /// `n_params` entries.
    pub(crate) fn z_at(&self, params: &[f64], w_rad_s: f64) -> C64 {
        node_z(&self.root, params, w_rad_s)
    }

    /// Impedance and dZ/dp_k for every parameter into `grad` (length
    /// `n_params`, overwritten).
    pub(crate) fn z_and_grad_at(&self, params: &[f64], w_rad_s: f64, grad: &mut [C64]) -> C64 {
        grad.fill(C64::new(0.0, 0.0));
        node_grad(&self.root, params, w_rad_s, C64::new(1.0, 0.0), grad)
    }
}

pub(crate) fn node_z(node: &Node, p: &[f64], w: f64) -> C64 {
    match node {
        Node::Element { kind, first } => element_z(*kind, &p[*first..], w),
        Node::Series(children) => children.iter().map(|c| node_z(c, p, w)).sum(),
        Node::Parallel(children) => {
            let y: C64 = children.iter().map(|c| node_z(c, p, w).inv()).sum();
            y.inv()
        }
    }
}

/// Adds `sens * dZ_node/dp` into `grad` and returns `Z_node`.
fn node_grad(node: &Node, p: &[f64], w: f64, sens: C64, grad: &mut [C64]) -> C64 {
    match node {
        Node::Element { kind, first } => {
            element_grad(*kind, &p[*first..], w, sens, &mut grad[*first..])
        }
        Node::Series(children) => children
            .iter()
            .map(|c| node_grad(c, p, w, sens, grad))
            .sum(),
        Node::Parallel(children) => {
            // Z = 1 / sum(1/Z_i)  =>  dZ/dZ_i = (Z / Z_i)^2. The branch
            // impedances are evaluated twice rather than stored: no
            // allocation, and circuits are small.
            let y: C64 = children.iter().map(|c| node_z(c, p, w).inv()).sum();
            let z = y.inv();
            for c in children {
                let r = z * node_z(c, p, w).inv();
                node_grad(c, p, w, sens * r * r, grad);
            }
            z
        }
    }
}

/// `exp(-2 s)` for Re s >= 0: the building block of overflow-free tanh and
/// coth (sqrt(j w tau) reaches Re s ~ 1e3 at kHz, where cosh overflows).
fn exp_m2(s: C64) -> C64 {
    (s * -2.0).exp()
}

fn element_z(kind: ElementKind, p: &[f64], w: f64) -> C64 {
    let jw = C64::new(0.0, w);
    match kind {
        ElementKind::R => C64::new(p[0], 0.0),
        ElementKind::C => (jw * p[0]).inv(),
        ElementKind::L => jw * p[0],
        ElementKind::W => C64::new(p[0], -p[0]) / w.sqrt(),
        ElementKind::Wo => {
            let s = (jw * p[1]).sqrt();
            let t = exp_m2(s);
            p[0] * (1.0 + t) / ((1.0 - t) * s)
        }
        ElementKind::Ws => {
            let s = (jw * p[1]).sqrt();
            let t = exp_m2(s);
            p[0] * (1.0 - t) / ((1.0 + t) * s)
        }
        ElementKind::Cpe => (jw.powf(p[1]) * p[0]).inv(),
    }
}

/// Adds `sens * dZ/dp_k` into `g[k]` for the element's parameters and
/// returns Z.
fn element_grad(kind: ElementKind, p: &[f64], w: f64, sens: C64, g: &mut [C64]) -> C64 {
    let jw = C64::new(0.0, w);
    match kind {
        ElementKind::R => {
            g[0] += sens;
            C64::new(p[0], 0.0)
        }
        ElementKind::C => {
            let z = (jw * p[0]).inv();
            g[0] += sens * (-z / p[0]);
            z
        }
        ElementKind::L => {
            g[0] += sens * jw;
            jw * p[0]
        }
        ElementKind::W => {
            let d = C64::new(1.0, -1.0) / w.sqrt();
            g[0] += sens * d;
            d * p[0]
        }
        ElementKind::Wo => {
            // g(s) = coth(s)/s, ds/dtau = s/(2 tau):
            // dZ/dtau = Z0/(2 tau) (-csch^2 s - coth(s)/s).
            let (z0, tau) = (p[0], p[1]);
            let s = (jw * tau).sqrt();
            let t = exp_m2(s);
            let coth = (1.0 + t) / (1.0 - t);
            let csch2 = 4.0 * t / ((1.0 - t) * (1.0 - t));
            let g0 = coth / s;
            g[0] += sens * g0;
            g[1] += sens * (z0 / (2.0 * tau)) * (-csch2 - g0);
            z0 * g0
        }
        ElementKind::Ws => {
            // g(s) = tanh(s)/s: dZ/dtau = Z0/(2 tau) (sech^2 s - tanh(s)/s).
            let (z0, tau) = (p[0], p[1]);
            let s = (jw * tau).sqrt();
            let t = exp_m2(s);
            let tanh = (1.0 - t) / (1.0 + t);
            let sech2 = 4.0 * t / ((1.0 + t) * (1.0 + t));
            let g0 = tanh / s;
            g[0] += sens * g0;
            g[1] += sens * (z0 / (2.0 * tau)) * (sech2 - g0);
            z0 * g0
        }
        ElementKind::Cpe => {
            // Z = 1/(Q (jw)^a): dZ/dQ = -Z/Q, dZ/da = -Z ln(jw).
            let (q, a) = (p[0], p[1]);
            let ln_jw = C64::new(w.ln(), std::f64::consts::FRAC_PI_2);
            let z = (ln_jw * a).exp().inv() / q;
            g[0] += sens * (-z / q);
            g[1] += sens * (-z * ln_jw);
            z
        }
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    elements: Vec<CircuitElement>,
    /// Names seen so far: the duplicate check is O(1) per element (a scan
    /// of `elements` made the parse quadratic in the element count).
    names: HashSet<String>,
    n_params: usize,
    depth: usize,
    /// Work done: one per character looked at, one per rule entered.
    steps: usize,
}

/// At most [`MAX_QUOTED_CHARS`] of `s`, quoted, `...` marking a cut.
fn quoted(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_QUOTED_CHARS).collect();
    if s.chars().nth(MAX_QUOTED_CHARS).is_some() {
        out.push_str("...");
    }
    format!("'{out}'")
}

impl Parser {
    fn skip_ws(&mut self) {
        self.steps += 1;
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.steps += 1;
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.chars.get(self.pos).copied()
    }

    fn found(&self) -> String {
        match self.chars.get(self.pos) {
            Some(c) => format!("'{c}'"),
            None => "the end of the string".to_string(),
        }
    }

    fn error(&self, expected: &str) -> AnalysisError {
        AnalysisError::CircuitSyntax {
            column: self.pos + 1,
            expected: expected.to_string(),
            found: self.found(),
        }
    }

    /// Advance over characters matching `keep`; the span passed over.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> std::ops::Range<usize> {
        let start = self.pos;
        while self.chars.get(self.pos).is_some_and(|c| keep(*c)) {
            self.steps += 1;
            self.pos += 1;
        }
        start..self.pos
    }

    fn text(&self, span: std::ops::Range<usize>) -> String {
        self.chars.get(span).unwrap_or_default().iter().collect()
    }

    fn series(&mut self) -> Result<Node, AnalysisError> {
        self.steps += 1;
        let mut items = vec![self.term()?];
        while self.peek() == Some('-') {
            self.pos += 1;
            items.push(self.term()?);
        }
        Ok(if items.len() == 1 {
            items.swap_remove(0)
        } else {
            Node::Series(items)
        })
    }

    fn term(&mut self) -> Result<Node, AnalysisError> {
        const EXPECTED: &str = "an element (R, C, L, W, Wo, Ws, CPE followed by an index) or 'p('";
        self.steps += 1;
        self.skip_ws();
        let start = self.pos;
        let letters_span = self.take_while(|c| c.is_ascii_alphabetic());
        if letters_span.is_empty() {
            return Err(self.error(EXPECTED));
        }
        if letters_span.len() == 1 && self.chars.get(start) == Some(&'p') {
            if self.peek() != Some('(') {
                return Err(self.error("'(' after 'p'"));
            }
            if self.depth >= MAX_CIRCUIT_DEPTH {
                return Err(AnalysisError::CircuitSyntax {
                    column: start + 1,
                    expected: format!(
                        "at most {MAX_CIRCUIT_DEPTH} nested p(...) blocks (real circuits nest 1-3)"
                    ),
                    found: format!("block {} inside them", MAX_CIRCUIT_DEPTH + 1),
                });
            }
            self.pos += 1;
            self.depth += 1;
            let mut branches = vec![self.series()?];
            loop {
                match self.peek() {
                    Some(',') => {
                        self.pos += 1;
                        branches.push(self.series()?);
                    }
                    Some(')') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.error("',' or ')' in p(...)")),
                }
            }
            self.depth -= 1;
            return Ok(Node::Parallel(branches));
        }
        let letters = self.text(letters_span);
        let Some(kind) = ElementKind::from_prefix(&letters) else {
            return Err(AnalysisError::CircuitSyntax {
                column: start + 1,
                expected: "an element type R, C, L, W, Wo, Ws or CPE, or 'p('".to_string(),
                found: quoted(&letters),
            });
        };
        let index_span = self.take_while(|c| c.is_ascii_digit() || c == '_');
        if index_span.is_empty() {
            return Err(self.error(&format!("an index after '{letters}' (e.g. {letters}0)")));
        }
        let name = self.text(start..self.pos);
        if self.elements.len() >= MAX_CIRCUIT_ELEMENTS {
            return Err(AnalysisError::CircuitSyntax {
                column: start + 1,
                expected: format!(
                    "at most {MAX_CIRCUIT_ELEMENTS} elements (real circuits have fewer than 15)"
                ),
                found: format!("element {} {}", MAX_CIRCUIT_ELEMENTS + 1, quoted(&name)),
            });
        }
        if !self.names.insert(name.clone()) {
            return Err(AnalysisError::CircuitSyntax {
                column: start + 1,
                expected: "a unique element name".to_string(),
                found: format!("{} a second time", quoted(&name)),
            });
        }
        let first = self.n_params;
        self.n_params += kind.n_params();
        self.elements.push(CircuitElement {
            name,
            kind,
            first_param: first,
            parallel_depth: self.depth,
        });
        Ok(Node::Element { kind, first })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_in_impedance_py_order() {
        let c = Circuit::parse("R0-p(R1-Wo1,C1)").unwrap();
        assert_eq!(c.param_names(), ["R0", "R1", "Wo1_0", "Wo1_1", "C1"]);
        assert_eq!(c.n_params(), 5);
        assert_eq!(c.elements()[0].parallel_depth, 0);
        assert_eq!(c.elements()[1].parallel_depth, 1);
        let c = Circuit::parse(" R_0 - p( CPE1 , R1-p(C2, R2-Ws2) )-L0-W3").unwrap();
        assert_eq!(
            c.param_names(),
            [
                "R_0", "CPE1_0", "CPE1_1", "R1", "C2", "R2", "Ws2_0", "Ws2_1", "L0", "W3"
            ]
        );
        assert_eq!(c.elements()[4].parallel_depth, 2);
    }

    #[test]
    fn parse_errors_name_column_and_expectation() {
        let cases = [
            ("R0-p(R1,C1", 11, "',' or ')'"),
            ("R0-X1", 4, "element type"),
            ("R0-C", 5, "an index after 'C'"),
            ("R0--C1", 4, "an element"),
            ("R0-p R1", 6, "'(' after 'p'"),
            ("R0-C1)", 6, "'-' or the end"),
            ("R0-R0", 4, "unique"),
            ("", 1, "an element"),
        ];
        for (text, col, what) in cases {
            match Circuit::parse(text) {
                Err(AnalysisError::CircuitSyntax {
                    column, expected, ..
                }) => {
                    assert_eq!(column, col, "{text}: {expected}");
                    assert!(expected.contains(what), "{text}: {expected}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    /// A single-branch nest `p(p(...p(R0)...))`, `depth` blocks deep.
    fn nest(depth: usize) -> String {
        format!("{}R0{}", "p(".repeat(depth), ")".repeat(depth))
    }

    /// The parser's work per character is bounded by a constant for any
    /// string, so its time is linear in the length: nests up to the limit,
    /// the issue's 5000-level nest (stopped at block 33), a 1 MB random
    /// string, 1 MB of whitespace, a 1 MB index, a 1 MB series.
    #[test]
    fn nested_circuit_parses_in_linear_time() {
        let per_char = |text: &str| {
            let (_, steps) = parse_counted(text);
            steps as f64 / text.chars().count() as f64
        };
        for depth in [1, 8, 16, MAX_CIRCUIT_DEPTH] {
            let text = nest(depth);
            let (c, steps) = parse_counted(&text);
            assert_eq!(c.unwrap().elements()[0].parallel_depth, depth);
            // 4 characters per level; a constant number of steps each.
            assert!(steps <= 3 * text.len() + 8, "{depth}: {steps} steps");
        }
        // Twice as deep, twice the work (not four times).
        let (_, s16) = parse_counted(&nest(16));
        let (_, s32) = parse_counted(&nest(32));
        assert!(s32 <= 2 * s16 + 8, "{s16} -> {s32}");

        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let alphabet: Vec<char> = "p(),-RCLWosPE0123456789_ ".chars().collect();
        let random: String = (0..1 << 20)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                alphabet[(state % alphabet.len() as u64) as usize]
            })
            .collect();
        let series: String = (0..100_000)
            .map(|k| format!("R{k}"))
            .collect::<Vec<_>>()
            .join("-");
        for text in [
            random,
            format!("R0-{}C1", " ".repeat(1 << 20)),
            format!("R{}", "1".repeat(1 << 20)),
            series,
        ] {
            let r = per_char(&text);
            assert!(r <= 3.0, "{r} steps per character");
        }
        // The whitespace and the index are read to the end, once.
        let text = format!("R0-{}C1", " ".repeat(1 << 20));
        let (c, steps) = parse_counted(&text);
        assert_eq!(c.unwrap().n_params(), 2);
        assert!(((1 << 20)..=(1 << 20) + 32).contains(&steps), "{steps}");
    }

    #[test]
    fn depth_limit_error_at_5000_levels() {
        let text = nest(5000);
        let (result, steps) = parse_counted(&text);
        match result {
            Err(AnalysisError::CircuitSyntax {
                column,
                expected,
                found,
            }) => {
                // Block 33 starts at character 2 * 32 + 1.
                assert_eq!(column, 2 * MAX_CIRCUIT_DEPTH + 1);
                assert_eq!(
                    expected,
                    "at most 32 nested p(...) blocks (real circuits nest 1-3)"
                );
                assert_eq!(found, "block 33 inside them");
            }
            other => panic!("{other:?}"),
        }
        // It stopped there: the rest of the 20 000 characters was not read.
        assert!(steps < 8 * MAX_CIRCUIT_DEPTH, "{steps}");
        // One level less is a circuit.
        assert!(Circuit::parse(&nest(MAX_CIRCUIT_DEPTH)).is_ok());
    }

    #[test]
    fn element_limit_and_long_names_in_errors() {
        let series = |n: usize| {
            (0..n)
                .map(|k| format!("R{k}"))
                .collect::<Vec<_>>()
                .join("-")
        };
        let c = Circuit::parse(&series(MAX_CIRCUIT_ELEMENTS)).unwrap();
        assert_eq!(c.n_params(), 64);
        match Circuit::parse(&series(100_000)) {
            Err(AnalysisError::CircuitSyntax { column, found, .. }) => {
                // R0- .. R9- are 3 characters, R10- .. R63- 4: R64 at 247.
                assert_eq!(column, 247);
                assert_eq!(found, "element 65 'R64'");
            }
            other => panic!("{other:?}"),
        }
        // An unknown 1 MB word is quoted by its first 24 characters.
        let e = Circuit::parse(&"X".repeat(1 << 20))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with(&format!("found '{}...'", "X".repeat(24))),
            "{e}"
        );
        assert!(e.len() < 200, "{e}");
    }

    /// Element formulas against values worked out independently (impedance.py
    /// conventions).
    #[test]
    fn element_impedances() {
        let f = 10.0;
        let w = std::f64::consts::TAU * f;
        let z = |s: &str, p: &[f64]| Circuit::parse(s).unwrap().impedance(p, f).unwrap();
        assert!((z("R0", &[5.0]) - C64::new(5.0, 0.0)).norm() < 1e-15);
        assert!((z("C0", &[1e-3]) - C64::new(0.0, -1.0 / (w * 1e-3))).norm() < 1e-12);
        assert!((z("L0", &[1e-3]) - C64::new(0.0, w * 1e-3)).norm() < 1e-12);
        let zw = z("W0", &[2.0]);
        assert!((zw.re - 2.0 / w.sqrt()).abs() < 1e-14 && (zw.im + 2.0 / w.sqrt()).abs() < 1e-14);
        // CPE with alpha = 1 is a capacitor; alpha = 0.5 has a -45 deg phase.
        assert!((z("CPE0", &[1e-3, 1.0]) - z("C0", &[1e-3])).norm() < 1e-9);
        assert!((z("CPE0", &[1e-3, 0.5]).arg().to_degrees() + 45.0).abs() < 1e-9);
        // Wo: low-frequency limit Z0/3 + 1/(j w C_int), C_int = tau/Z0.
        let (z0, tau, f_lo) = (0.06, 200.0, 1e-6);
        let w_lo = std::f64::consts::TAU * f_lo;
        let wo = Circuit::parse("Wo0")
            .unwrap()
            .impedance(&[z0, tau], f_lo)
            .unwrap();
        let expect = C64::new(z0 / 3.0, -z0 / (w_lo * tau));
        assert!((wo - expect).norm() / expect.norm() < 1e-6, "{wo}");
        // Ws: low-frequency limit Z0; both tend to Z0/sqrt(j w tau) at high f
        // and stay finite where cosh(2 Re s) overflows.
        let ws = Circuit::parse("Ws0")
            .unwrap()
            .impedance(&[z0, tau], f_lo)
            .unwrap();
        assert!((ws - C64::new(z0, 0.0)).norm() < 1e-3 * z0);
        for s in ["Wo0", "Ws0"] {
            let hi = Circuit::parse(s)
                .unwrap()
                .impedance(&[z0, tau], 1e6)
                .unwrap();
            let asym = z0 / (C64::new(0.0, std::f64::consts::TAU * 1e6 * tau)).sqrt();
            assert!((hi - asym).norm() / asym.norm() < 1e-12, "{s} {hi}");
        }
    }

    /// Analytic gradient against central differences for every element kind,
    /// nested in series and parallel.
    #[test]
    fn gradient_matches_finite_differences() {
        let c = Circuit::parse("R0-p(R1-Wo1,C1)-p(CPE2,R2-Ws2)-L3-W4").unwrap();
        let p = [
            0.02, 0.012, 0.06, 220.0, 1.2, 2e-3, 0.8, 0.05, 0.03, 3.0, 1e-6, 0.01,
        ];
        let mut g = vec![C64::new(0.0, 0.0); c.n_params()];
        for f in [1e-3, 0.1, 3.0, 1e3] {
            let w = std::f64::consts::TAU * f;
            let z = c.z_and_grad_at(&p, w, &mut g);
            assert!((z - c.z_at(&p, w)).norm() < 1e-15 * z.norm().max(1.0));
            for k in 0..p.len() {
                // Central differences lose ~eps |Z_branch| / h to rounding
                // (a CPE branch reaches 3e4 ohm at 1 mHz): 1e-4 relative
                // still catches any formula error, which would be O(1).
                let h = 1e-5 * p[k];
                let (mut a, mut b) = (p, p);
                a[k] += h;
                b[k] -= h;
                if g[k].norm() * h < 1e-8 * z.norm() {
                    // The step moves Z by less than ~1e4 ulp: a difference
                    // quotient there measures rounding, not the derivative
                    // (e.g. L = 1 uH at 1 mHz).
                    continue;
                }
                let fd = (c.z_at(&a, w) - c.z_at(&b, w)) / (2.0 * h);
                let scale = fd.norm().max(1e-12);
                assert!(
                    (g[k] - fd).norm() / scale < 1e-4,
                    "f={f} k={k}: {} vs {fd}",
                    g[k]
                );
            }
        }
    }
}
