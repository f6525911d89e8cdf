//! The report as data. Every renderer (HTML, Markdown, JSON) works from one
//! [`Report`], so the three formats cannot disagree: the JSON is this
//! structure serialised, and the HTML and Markdown print the same tables
//! and draw the same figure series.
//!
//! Non-finite numbers (a parameter the data did not determine, a gap in a
//! trace) are written as JSON `null` and read back as NaN.

use serde::{Deserialize, Serialize};

/// Identifies the JSON layout; bumped when a field changes meaning.
pub const SCHEMA: &str = "vegard-report/1";

/// A whole report: one run or a campaign of runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    pub generator: Generator,
    pub title: String,
    pub kind: ReportKind,
    /// When the report was generated, UTC, RFC 3339.
    pub created_utc: String,
    /// Run folders the report covers, in order.
    pub sources: Vec<String>,
    /// The report spec file, when one was given.
    pub spec_file: Option<String>,
    /// `ok`, or `analysis_failed` when an analysis failed: a fit, a section
    /// the spec lists without data, or a warning under `fail_on_warnings`
    /// (the reasons are in `failures`).
    pub status: ReportStatus,
    pub failures: Vec<String>,
    pub sections: Vec<Section>,
    /// The analysis results behind the tables, per run (the same layout as
    /// `vegard analyze --json`), and for a campaign the cross-run Arrhenius.
    pub analysis: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generator {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    Run,
    Campaign,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    Ok,
    AnalysisFailed,
}

/// One section (metadata, clocks, CV, EIS, ...). `id` is stable and is what
/// a report spec names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    pub id: String,
    pub title: String,
    /// Paragraphs of plain text (findings, notes).
    pub text: Vec<String>,
    pub tables: Vec<DataTable>,
    pub figures: Vec<Figure>,
}

/// A table: column heads with units, rows of cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataTable {
    pub id: String,
    pub title: String,
    pub columns: Vec<ColumnHead>,
    pub rows: Vec<Vec<Cell>>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnHead {
    pub name: String,
    /// Unit of every number in the column (`""` for none).
    pub unit: String,
}

/// A table cell: text, or a number with an optional standard error in the
/// column's unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cell {
    Num {
        #[serde(with = "finite")]
        value: f64,
        #[serde(with = "finite_opt", default, skip_serializing_if = "Option::is_none")]
        se: Option<f64>,
    },
    Text(String),
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }
    pub fn num(value: f64) -> Cell {
        Cell::Num { value, se: None }
    }
    pub fn num_se(value: f64, se: f64) -> Cell {
        Cell::Num {
            value,
            se: Some(se),
        }
    }
    /// An optional number; `None` becomes an empty text cell.
    pub fn opt(value: Option<f64>) -> Cell {
        value.map_or(Cell::text(""), Cell::num)
    }
}

/// A figure: one or more panels stacked vertically (E, I and u share the
/// time axis; Bode magnitude and phase share frequency).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub id: String,
    pub title: String,
    pub caption: Option<String>,
    pub panels: Vec<Panel>,
    /// Size of the SVG, px (CSS pixels; the HTML scales it to the page).
    pub width_px: u32,
    pub height_px: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Panel {
    pub title: Option<String>,
    pub x: Axis,
    pub y: Axis,
    /// Same length per unit on both axes (Nyquist plots).
    pub equal_aspect: bool,
    /// Where the legend goes: the corner the data leave free.
    #[serde(default)]
    pub legend: Legend,
    pub series: Vec<Series>,
    /// A second x scale along the top of the frame (°C over 1000 K / T):
    /// the same positions read in another unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_axis: Option<TopAxis>,
}

/// Ticks of a secondary x axis drawn along the top of a panel. Positions
/// are in the panel's x units, so the renderer needs no conversion and the
/// JSON says exactly where each label sits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopAxis {
    pub label: String,
    pub unit: String,
    pub ticks: Vec<Tick>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    /// Position on the panel's x axis.
    pub at: f64,
    pub label: String,
}

/// Legend placement inside the plot area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Legend {
    #[default]
    UpperRight,
    UpperLeft,
    LowerLeft,
    LowerRight,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// Quantity, e.g. `E` or `Z'`.
    pub label: String,
    /// Unit, e.g. `V`; `""` for dimensionless.
    pub unit: String,
    pub scale: Scale,
    /// Draw the axis in reverse (e.g. -Z'' up is done by the data, not this;
    /// this is for 1000/T axes that read hot to cold).
    #[serde(default)]
    pub reversed: bool,
    /// Fixed `[lo, hi]` in data units instead of the range the data span
    /// (e.g. room for a legend beside categorical harmonics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
    /// Labelled ticks at these values instead of computed ones: an axis
    /// that is an order (harmonic number n) must not tick 2, 4, 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticks: Option<Vec<f64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    Linear,
    /// Base 10; non-positive values are not drawn.
    Log,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriesKind {
    /// Connected line; NaN breaks it.
    Line,
    /// Dashed connected line (fits extrapolated, model curves).
    Dashed,
    /// Markers, with error bars when `y_err` is given.
    Points,
    /// Shaded area between `y` (lower) and `y_upper`.
    Band,
}

/// One data series of a panel. `color` indexes a fixed colour-blind-safe
/// palette so a method keeps its colour across panels (EIS 0, ESM 1);
/// `color_scale` instead places it on a continuous blue-to-red scale, for
/// overlays where the colour encodes a quantity (temperature).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Legend entry; empty for no legend entry.
    pub name: String,
    pub kind: SeriesKind,
    pub color: u8,
    #[serde(with = "finite_vec")]
    pub x: Vec<f64>,
    #[serde(with = "finite_vec")]
    pub y: Vec<f64>,
    /// Symmetric error bar half-widths for `Points`.
    #[serde(
        with = "finite_vec_opt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub y_err: Option<Vec<f64>>,
    /// Upper edge for `Band`.
    #[serde(
        with = "finite_vec_opt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub y_upper: Option<Vec<f64>>,
    /// Position 0..=1 on the continuous colour scale (0 blue, cold; 1 red,
    /// hot); overrides `color`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color_scale: Option<f64>,
    /// Short text beside points (the frequency of a Nyquist point at each
    /// decade); `""` for none. Same length as `x` when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
}

impl Series {
    pub fn new(
        name: impl Into<String>,
        kind: SeriesKind,
        color: u8,
        x: Vec<f64>,
        y: Vec<f64>,
    ) -> Self {
        Series {
            name: name.into(),
            kind,
            color,
            x,
            y,
            y_err: None,
            y_upper: None,
            color_scale: None,
            labels: None,
        }
    }
}

fn to_opt(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

mod finite {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        match super::to_opt(*v) {
            Some(x) => s.serialize_f64(x),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

mod finite_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(x) => super::finite::serialize(x, s),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Ok(Some(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN)))
    }
}

mod finite_vec {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|&x| super::to_opt(x)))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Ok(Vec::<Option<f64>>::deserialize(d)?
            .into_iter()
            .map(|x| x.unwrap_or(f64::NAN))
            .collect())
    }
}

mod finite_vec_opt {
    use serde::{Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &Option<Vec<f64>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::finite_vec::serialize(v, s),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<f64>>, D::Error> {
        super::finite_vec::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_numbers_round_trip_as_null() {
        let s = Series {
            y_err: Some(vec![0.1, f64::NAN]),
            ..Series::new(
                "a",
                SeriesKind::Points,
                0,
                vec![1.0, 2.0],
                vec![f64::NAN, 3.0],
            )
        };
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"y\":[null,3.0]"), "{json}");
        let back: Series = serde_json::from_str(&json).unwrap();
        assert!(back.y[0].is_nan() && back.y[1] == 3.0);
        assert!(back.y_err.unwrap()[1].is_nan());
        let cells = vec![
            Cell::num_se(1.5, f64::INFINITY),
            Cell::text("x"),
            Cell::num(2.0),
        ];
        let json = serde_json::to_string(&cells).unwrap();
        assert_eq!(json, r#"[{"value":1.5,"se":null},"x",{"value":2.0}]"#);
        let back: Vec<Cell> = serde_json::from_str(&json).unwrap();
        assert!(
            matches!(back[0], Cell::Num { value, se: Some(se) } if value == 1.5 && se.is_nan())
        );
        assert_eq!(back[1], Cell::text("x"));
        assert_eq!(back[2], Cell::num(2.0));
    }
}
