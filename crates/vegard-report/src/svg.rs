//! Figures to SVG with plotters' SVG backend.
//!
//! The output is one `<svg>` element without an XML prolog, so the same
//! string can be inlined in the HTML report and written as a `.svg` file
//! beside the Markdown. Text stays `<text>` (plotters is built without its
//! `ttf` feature): the browser lays it out with its own sans-serif font, so
//! no font has to be installed where the report is generated.
//!
//! Both axes go through one coordinate type, `AxisCoord`, in "plotting
//! space": the value itself on a linear axis, `log10` of it on a log axis.
//! That is why the four linear/log combinations (Arrhenius, Bode magnitude,
//! Bode phase, harmonic amplitudes), reversed axes and equal aspect are one
//! code path, and why the tick positions and labels are ours rather than
//! plotters' defaults (which print `0.30000000000000004`-style floats and
//! know nothing of decades).

use std::ops::Range;

use plotters::backend::SVGBackend;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::model::{Axis, Legend, Panel, Scale, Series, SeriesKind};
use crate::{Figure, ReportError};

/// Okabe-Ito: distinguishable with the common colour-vision deficiencies
/// and in greyscale print; `Series::color` indexes it modulo its length so
/// a method keeps its colour across panels and figures.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0x00, 0x00, 0x00),
    RGBColor(0xF0, 0xE4, 0x42),
];

/// Ends of the continuous colour scale of overlays (cold blue to hot red,
/// the two ends of ColorBrewer's RdBu): interpolated in Oklab's polar
/// form (lightness, chroma, hue) so equal steps of the quantity look like
/// equal steps of colour, and the middle stays a saturated violet and
/// magenta rather than the grey of an sRGB or Oklab straight-line blend.
const SCALE_COLD: RGBColor = RGBColor(0x21, 0x66, 0xAC);
const SCALE_HOT: RGBColor = RGBColor(0xB2, 0x18, 0x2B);

/// The colour at `pos` (0 cold .. 1 hot; clamped, NaN is the middle) on
/// the overlays' blue-to-red scale.
pub fn scale_color(pos: f64) -> RGBColor {
    let t = if pos.is_nan() {
        0.5
    } else {
        pos.clamp(0.0, 1.0)
    };
    let polar = |[l, a, b]: [f64; 3]| (l, a.hypot(b), b.atan2(a));
    let (l0, c0, h0) = polar(oklab(SCALE_COLD));
    let (l1, c1, h1) = polar(oklab(SCALE_HOT));
    // The shorter way round the hue circle (blue, violet, magenta, red).
    let mut dh = h1 - h0;
    if dh > std::f64::consts::PI {
        dh -= std::f64::consts::TAU;
    } else if dh < -std::f64::consts::PI {
        dh += std::f64::consts::TAU;
    }
    let (l, c, h) = (l0 + t * (l1 - l0), c0 + t * (c1 - c0), h0 + t * dh);
    from_oklab([l, c * h.cos(), c * h.sin()])
}

/// `#RRGGBB` of [`scale_color`], as the SVG writes it.
pub fn scale_color_hex(pos: f64) -> String {
    let RGBColor(r, g, b) = scale_color(pos);
    format!("#{r:02X}{g:02X}{b:02X}")
}

fn srgb_to_linear(c: u8) -> f64 {
    let c = f64::from(c) / 255.0;
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

fn linear_to_srgb(c: f64) -> u8 {
    let c = c.clamp(0.0, 1.0);
    let v = if c <= 0.003_130_8 {
        12.92 * c
    } else {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    };
    (v * 255.0).round().clamp(0.0, 255.0) as u8
}

/// sRGB to Oklab (Björn Ottosson's matrices).
fn oklab(RGBColor(r, g, b): RGBColor) -> [f64; 3] {
    let (r, g, b) = (srgb_to_linear(r), srgb_to_linear(g), srgb_to_linear(b));
    let l = (0.412_221_470_8 * r + 0.536_332_536_3 * g + 0.051_445_992_9 * b).cbrt();
    let m = (0.211_903_498_2 * r + 0.680_699_545_1 * g + 0.107_396_956_6 * b).cbrt();
    let s = (0.088_302_461_9 * r + 0.281_718_837_6 * g + 0.629_978_700_5 * b).cbrt();
    [
        0.210_454_255_3 * l + 0.793_617_785 * m - 0.004_072_046_8 * s,
        1.977_998_495_1 * l - 2.428_592_205 * m + 0.450_593_709_9 * s,
        0.025_904_037_1 * l + 0.782_771_766_2 * m - 0.808_675_766 * s,
    ]
}

fn from_oklab([l, a, b]: [f64; 3]) -> RGBColor {
    let l_ = (l + 0.396_337_777_4 * a + 0.215_803_757_3 * b).powi(3);
    let m_ = (l - 0.105_561_345_8 * a - 0.063_854_172_8 * b).powi(3);
    let s_ = (l - 0.089_484_177_5 * a - 1.291_485_548 * b).powi(3);
    RGBColor(
        linear_to_srgb(4.076_741_662_1 * l_ - 3.307_711_591_3 * m_ + 0.230_969_929_2 * s_),
        linear_to_srgb(-1.268_438_004_6 * l_ + 2.609_757_401_1 * m_ - 0.341_319_396_5 * s_),
        linear_to_srgb(-0.004_196_086_3 * l_ - 0.703_418_614_7 * m_ + 1.707_614_701 * s_),
    )
}

/// plotters' SVG backend writes `font-size = size / 1.24`; sizes below are
/// the px the reader gets, multiplied by this before they go to plotters.
const PLOTTERS_FONT_SCALE: f64 = 1.24;
const TICK_FONT_PX: f64 = 12.0;
const AXIS_LABEL_FONT_PX: f64 = 14.0;
const PANEL_TITLE_FONT_PX: f64 = 14.0;
const FIGURE_TITLE_FONT_PX: f64 = 16.0;
const LEGEND_FONT_PX: f64 = 12.0;
const NO_DATA_FONT_PX: f64 = 14.0;

/// Data strokes: thick enough to survive printing and scaling down.
const LINE_WIDTH_PX: u32 = 2;
const MARKER_RADIUS_PX: u32 = 3;
const ERROR_CAP_HALF_WIDTH_PX: i32 = 3;
const DASH_PX: u32 = 8;
const DASH_GAP_PX: u32 = 5;
/// Bands (confidence intervals) must not hide the lines drawn over them.
const BAND_OPACITY: f64 = 0.2;

/// Layout, px. The y label area is computed from the tick labels.
const FIGURE_TITLE_BAND_PX: u32 = 28;
const MARGIN_LEFT_PX: u32 = 6;
/// Half of the last x tick label sticks out to the right of the frame.
const MARGIN_RIGHT_PX: u32 = 22;
const MARGIN_TOP_PX: u32 = 10;
const MARGIN_TOP_TITLED_PX: u32 = 26;
const MARGIN_BOTTOM_PX: u32 = 4;
/// Tick mark + gap + tick labels + gap + axis label.
const X_LABEL_AREA_PX: u32 = 48;
/// Upper panels of a shared-x stack show no x tick labels, just a gap.
const X_LABEL_AREA_SHARED_PX: u32 = 6;
const TICK_MARK_PX: i32 = 5;
/// Rough advance of one tick label character at [`TICK_FONT_PX`] in a
/// sans-serif font (digits are ~0.55-0.6 em).
const TICK_CHAR_PX: f64 = 7.2;
/// Tick marks, labels and title of a secondary x axis above the frame.
const TOP_AXIS_PX: u32 = 40;
/// Point labels (Nyquist frequencies): small, beside the marker.
const POINT_LABEL_FONT_PX: f64 = 10.0;
const POINT_LABEL_OFFSET_PX: i32 = 6;
/// Below this the layout cannot hold axes and labels.
const MIN_WIDTH_PX: u32 = 160;
const MIN_PANEL_HEIGHT_PX: u32 = 100;

/// Values beyond this are treated like non-finite ones: the span of a
/// range must stay finite for the padding arithmetic.
const MAX_ABS_VALUE: f64 = 1e300;

/// Render a figure as an SVG element (no XML prolog) for inlining in HTML
/// or writing as a file: panels stacked vertically, `width_px` x
/// `height_px`, with `viewBox`, `role="img"` and a `<title>` so the HTML
/// can scale it with CSS and screen readers can name it.
///
/// Data that cannot be drawn (NaN, infinities, non-positive values on a
/// log axis) is skipped rather than reported: a panel with nothing left
/// says "no data". The only errors are a figure too small to lay out and
/// plotters failing.
pub fn render_svg(fig: &Figure) -> Result<String, ReportError> {
    let plot_err = |msg: String| ReportError::Plot {
        figure: fig.id.clone(),
        msg,
    };
    let plan = plan_figure(fig).map_err(|e| plot_err(e.to_string()))?;
    let mut buf = String::new();
    {
        let root =
            SVGBackend::with_string(&mut buf, (fig.width_px, fig.height_px)).into_drawing_area();
        draw_figure(&root, fig, &plan).map_err(|e| plot_err(e.to_string()))?;
        root.present().map_err(|e| plot_err(e.to_string()))?;
    }
    finish_svg(&buf, &fig.title).map_err(|e| plot_err(e.to_string()))
}

/// The widest vertical extent, px, of each `Band` series of panel `panel`
/// when `fig` is drawn, as `(series name, px)` (empty: no band, or a
/// figure that cannot be laid out). A caption can then say when a
/// confidence band is thinner than the line it surrounds instead of
/// implying it is shown.
pub fn band_widths_px(fig: &Figure, panel: usize) -> Vec<(String, f64)> {
    let Ok(plan) = plan_figure(fig) else {
        return Vec::new();
    };
    let (Some(p), Some(pp)) = (fig.panels.get(panel), plan.panels.get(panel)) else {
        return Vec::new();
    };
    let px_per_unit = f64::from(pp.plot_h_px) / (pp.y.hi - pp.y.lo);
    p.series
        .iter()
        .filter(|s| s.kind == SeriesKind::Band)
        .filter_map(|s| {
            let upper = s.y_upper.as_deref().unwrap_or(&[]);
            let px =
                s.y.iter()
                    .zip(upper)
                    .filter_map(|(&lo, &hi)| {
                        let (lo, hi) = (to_plot(lo, p.y.scale)?, to_plot(hi, p.y.scale)?);
                        Some((hi - lo).abs() * px_per_unit)
                    })
                    .reduce(f64::max)?;
            Some((s.name.clone(), px))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Planning: ranges, ticks and pixel layout, decided before anything is drawn
// (equal aspect needs the plotting-area size, and the y label area width
// needs the tick labels).

/// Everything about a figure's geometry; kept separate from drawing so the
/// tests can check the arithmetic (equal aspect, shared x) directly.
#[derive(Debug, Clone)]
struct FigurePlan {
    title_band_px: u32,
    y_label_area_px: u32,
    panels: Vec<PanelPlan>,
}

#[derive(Debug, Clone)]
struct PanelPlan {
    /// Top of the panel's area in the SVG, px.
    top_px: u32,
    height_px: u32,
    margin_top_px: u32,
    x_label_area_px: u32,
    /// Size of the plotting area (inside the frame), px.
    plot_w_px: u32,
    plot_h_px: u32,
    /// Whether the x tick labels and axis label are drawn (not on the
    /// upper panels of a shared-x stack).
    x_labelled: bool,
    /// `false`: nothing drawable, the panel says "no data".
    has_data: bool,
    /// The x range comes from data (this panel's or, in a shared-x stack,
    /// the other panels'), so its ticks and grid mean something even when
    /// this panel has no data.
    x_from_data: bool,
    x: AxisCoord,
    y: AxisCoord,
}

/// Why a figure could not be laid out or its SVG finished.
#[derive(Debug, thiserror::Error)]
enum LayoutError {
    #[error(
        "{width_px}x{height_px} px is too small for {panels} panel(s) (need at least \
         {MIN_WIDTH_PX} px wide and {MIN_PANEL_HEIGHT_PX} px per panel)"
    )]
    TooSmall {
        width_px: u32,
        height_px: u32,
        panels: usize,
    },
    #[error("plotters produced no <svg> element")]
    NoSvg,
    #[error("plotters produced an unterminated <svg> tag")]
    UnterminatedSvg,
}

fn plan_figure(fig: &Figure) -> Result<FigurePlan, LayoutError> {
    let n = fig.panels.len().max(1) as u32;
    let title_band_px = if fig.title.trim().is_empty() {
        0
    } else {
        FIGURE_TITLE_BAND_PX
    };
    let avail_h_px = fig.height_px.saturating_sub(title_band_px);
    if fig.width_px < MIN_WIDTH_PX || avail_h_px / n < MIN_PANEL_HEIGHT_PX {
        return Err(LayoutError::TooSmall {
            width_px: fig.width_px,
            height_px: fig.height_px,
            panels: fig.panels.len(),
        });
    }

    // Panels whose x axes are identical are a stack over one quantity (E, I
    // and u over time; Bode magnitude and phase over frequency): one x range
    // for all, so the grids line up, and tick labels only at the bottom.
    let shared_x = fig.panels.len() > 1 && fig.panels.iter().all(|p| p.x == fig.panels[0].x);
    let extents: Vec<(Span, Span)> = fig.panels.iter().map(panel_extents).collect();
    let shared_x_extent = if shared_x {
        extents
            .iter()
            .filter_map(|e| e.0)
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
    } else {
        None
    };

    // Up to three passes: the y label area width depends on the y tick
    // labels; the y ticks depend only on the panel height (and, with equal
    // aspect, a little on the width). The first pass uses a typical width.
    let mut y_label_area_px = y_label_area_for(6);
    let mut panels = Vec::new();
    for pass in 0..3 {
        panels.clear();
        let mut widest_label = 0usize;
        for (i, (panel, ext)) in fig.panels.iter().zip(&extents).enumerate() {
            let i = i as u32;
            let top_px = title_band_px + i * avail_h_px / n;
            let bottom_px = title_band_px + (i + 1) * avail_h_px / n;
            let height_px = bottom_px - top_px;
            let x_labelled = !shared_x || i + 1 == n;
            let margin_top_px = if panel.title.as_deref().is_some_and(|t| !t.trim().is_empty()) {
                MARGIN_TOP_TITLED_PX
            } else {
                MARGIN_TOP_PX
            } + if panel.top_axis.is_some() {
                TOP_AXIS_PX
            } else {
                0
            };
            let x_label_area_px = if x_labelled {
                X_LABEL_AREA_PX
            } else {
                X_LABEL_AREA_SHARED_PX
            };
            let plot_w_px = fig
                .width_px
                .saturating_sub(MARGIN_LEFT_PX + MARGIN_RIGHT_PX + y_label_area_px)
                .max(2);
            let plot_h_px = height_px
                .saturating_sub(margin_top_px + MARGIN_BOTTOM_PX + x_label_area_px)
                .max(2);
            let x_ext = if shared_x { shared_x_extent } else { ext.0 };
            let has_data = ext.0.is_some() && ext.1.is_some();
            let mut xr =
                fixed_range(&panel.x).unwrap_or_else(|| padded_range(x_ext, panel.x.scale));
            let mut yr =
                fixed_range(&panel.y).unwrap_or_else(|| padded_range(ext.1, panel.y.scale));
            if panel.equal_aspect && has_data {
                // plotters maps onto [start, end - 1]: one px less than the area.
                equalize(&mut xr, &mut yr, plot_w_px - 1, plot_h_px - 1);
            }
            let x = AxisCoord::new(&panel.x, xr, plot_w_px, true);
            let y = AxisCoord::new(&panel.y, yr, plot_h_px, false);
            if has_data {
                widest_label = widest_label.max(
                    y.major
                        .iter()
                        .map(|v| y.label(*v).chars().count())
                        .max()
                        .unwrap_or(0),
                );
            }
            panels.push(PanelPlan {
                top_px,
                height_px,
                margin_top_px,
                x_label_area_px,
                plot_w_px,
                plot_h_px,
                x_labelled,
                has_data,
                x_from_data: x_ext.is_some(),
                x,
                y,
            });
        }
        let needed = y_label_area_for(widest_label);
        // The last pass keeps its width, so the plan matches the drawing
        // even if the labels would want a slightly different one.
        if needed == y_label_area_px || pass == 2 {
            break;
        }
        y_label_area_px = needed;
    }
    Ok(FigurePlan {
        title_band_px,
        y_label_area_px,
        panels,
    })
}

/// Width of the y label area for tick labels of `chars` characters: tick
/// mark and plotters' label distance (2 x tick), the labels, a gap, and
/// the rotated axis label.
fn y_label_area_for(chars: usize) -> u32 {
    let ticks_px = 2.0 * TICK_MARK_PX as f64 + chars.max(1) as f64 * TICK_CHAR_PX;
    (ticks_px + 8.0 + AXIS_LABEL_FONT_PX * 1.3).ceil() as u32
}

/// A value in plotting space, or `None` when it cannot be drawn on this
/// scale (NaN, infinite, absurdly large, or non-positive on a log axis).
fn to_plot(v: f64, scale: Scale) -> Option<f64> {
    if !v.is_finite() || v.abs() > MAX_ABS_VALUE {
        return None;
    }
    match scale {
        Scale::Linear => Some(v),
        Scale::Log => (v > 0.0).then(|| v.log10()),
    }
}

/// The drawable points of a series in plotting space, `None` where a
/// coordinate cannot be drawn (which breaks lines and bands).
fn plot_points(s: &Series, x: &Axis, y: &Axis) -> Vec<Option<(f64, f64)>> {
    s.x.iter()
        .zip(&s.y)
        .map(|(&xv, &yv)| Some((to_plot(xv, x.scale)?, to_plot(yv, y.scale)?)))
        .collect()
}

/// Lowest and highest value of something, `None` when there was nothing.
type Span = Option<(f64, f64)>;

/// Extent of all drawable data of a panel in plotting space, `(x, y)`;
/// includes error bar ends and band upper edges so they are not clipped.
fn panel_extents(panel: &Panel) -> (Span, Span) {
    let mut xs = Extent::default();
    let mut ys = Extent::default();
    for s in &panel.series {
        for (i, p) in plot_points(s, &panel.x, &panel.y).into_iter().enumerate() {
            let Some((px, py)) = p else { continue };
            xs.add(px);
            ys.add(py);
            let raw_y = s.y[i];
            let at = |v: &Option<Vec<f64>>| v.as_ref().and_then(|v| v.get(i)).copied();
            let edges = match s.kind {
                SeriesKind::Points => at(&s.y_err)
                    .filter(|e| e.is_finite())
                    .map_or(vec![], |e| vec![raw_y - e.abs(), raw_y + e.abs()]),
                SeriesKind::Band => at(&s.y_upper).into_iter().collect(),
                SeriesKind::Line | SeriesKind::Dashed => vec![],
            };
            for v in edges.into_iter().filter_map(|v| to_plot(v, panel.y.scale)) {
                ys.add(v);
            }
        }
    }
    (xs.get(), ys.get())
}

#[derive(Default)]
struct Extent(Option<(f64, f64)>);

impl Extent {
    fn add(&mut self, v: f64) {
        self.0 = Some(match self.0 {
            None => (v, v),
            Some((lo, hi)) => (lo.min(v), hi.max(v)),
        });
    }
    fn get(&self) -> Option<(f64, f64)> {
        self.0
    }
}

/// An axis' fixed range in plotting space, when it has a usable one.
fn fixed_range(axis: &Axis) -> Option<(f64, f64)> {
    let [lo, hi] = axis.range?;
    let (lo, hi) = (to_plot(lo, axis.scale)?, to_plot(hi, axis.scale)?);
    (hi > lo).then_some((lo, hi))
}

/// Axis range in plotting space with room around the data: 5 % of the span
/// on a linear axis and 5 % of the decades (at least 0.05 decade) on a log
/// axis, so markers at the extremes are not cut by the frame. Degenerate
/// data (one value) gets a range around it; no data gets a unit range.
fn padded_range(ext: Option<(f64, f64)>, scale: Scale) -> (f64, f64) {
    match (ext, scale) {
        (None, Scale::Linear) => (0.0, 1.0),
        (None, Scale::Log) => (0.0, 1.0),
        (Some((lo, hi)), Scale::Linear) => {
            let span = hi - lo;
            if span > 0.0 && span.is_finite() {
                (lo - 0.05 * span, hi + 0.05 * span)
            } else {
                let half = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
                (lo - half, hi + half)
            }
        }
        (Some((lo, hi)), Scale::Log) => {
            let span = hi - lo;
            if span > 1e-9 {
                let pad = (0.05 * span).max(0.05);
                (lo - pad, hi + pad)
            } else {
                (lo - 0.5, hi + 0.5)
            }
        }
    }
}

/// Widen the shorter range (in units per px) around its centre so that one
/// unit is as long on x as on y: a semicircle in a Nyquist plot must look
/// like one.
fn equalize(x: &mut (f64, f64), y: &mut (f64, f64), w_px: u32, h_px: u32) {
    let (w, h) = (f64::from(w_px.max(1)), f64::from(h_px.max(1)));
    let units_per_px_x = (x.1 - x.0) / w;
    let units_per_px_y = (y.1 - y.0) / h;
    if units_per_px_x < units_per_px_y {
        let c = 0.5 * (x.0 + x.1);
        let half = 0.5 * units_per_px_y * w;
        *x = (c - half, c + half);
    } else {
        let c = 0.5 * (y.0 + y.1);
        let half = 0.5 * units_per_px_x * h;
        *y = (c - half, c + half);
    }
}

// ---------------------------------------------------------------------------
// The coordinate type.

/// How tick values become text; chosen per axis so all labels of an axis
/// look alike (same decimals, same notation).
#[derive(Debug, Clone, Copy, PartialEq)]
enum TickFmt {
    /// Fixed point with this many decimals (from the tick step).
    Fixed { decimals: usize },
    /// `1.5e-5`: values too small or large for fixed point; mantissa
    /// decimals come from the step's exponent.
    Sci { step_exp: i32 },
    /// Log axis at whole decades: `0.01 … 1000` when all fit, else `10⁻⁵`.
    Decade { superscript: bool },
    /// Log axis between decades: up to 4 significant digits.
    LogSig,
    /// Linear axis, up to 4 significant digits (a fallback).
    Sig,
}

/// One axis in plotting space, with our own ticks and labels. Implements
/// plotters' [`Ranged`] so the mesh, the labels and every element are
/// mapped by it; `reversed` is handled in [`Ranged::map`].
#[derive(Debug, Clone)]
struct AxisCoord {
    lo: f64,
    hi: f64,
    reversed: bool,
    major: Vec<f64>,
    minor: Vec<f64>,
    fmt: TickFmt,
}

impl AxisCoord {
    fn new(axis: &Axis, (lo, hi): (f64, f64), len_px: u32, horizontal: bool) -> AxisCoord {
        // Labels need more room side by side than stacked.
        let px_per_tick = if horizontal { 90.0 } else { 45.0 };
        let max_ticks = ((f64::from(len_px) / px_per_tick).floor() as usize).clamp(2, 10);
        let (major, minor, fmt) = match (&axis.ticks, axis.scale) {
            (Some(ticks), _) => explicit_ticks(ticks, axis.scale, (lo, hi)),
            (None, Scale::Linear) => {
                let (major, fmt) = linear_ticks(lo, hi, max_ticks);
                (major, Vec::new(), fmt)
            }
            (None, Scale::Log) => log_ticks(lo, hi, max_ticks, len_px),
        };
        AxisCoord {
            lo,
            hi,
            reversed: axis.reversed,
            major,
            minor,
            fmt,
        }
    }

    /// The tick label for a value in plotting space.
    fn label(&self, v: f64) -> String {
        match self.fmt {
            TickFmt::Fixed { decimals } => vegard_core::format::fixed(v, decimals),
            TickFmt::Sci { step_exp } => vegard_core::format::sci(v, step_exp),
            TickFmt::Decade { superscript } => {
                let k = v.round() as i32;
                if superscript {
                    pow10_superscript(k)
                } else {
                    vegard_core::format::fixed(10f64.powi(k), (-k).max(0) as usize)
                }
            }
            TickFmt::LogSig => vegard_core::format::sig(10f64.powf(v), 4),
            TickFmt::Sig => vegard_core::format::sig(v, 4),
        }
    }

    /// Pixel of a plotting-space value along `[start, end]` (as plotters
    /// passes them: `end < start` for y, which grows downwards).
    fn px(&self, v: f64, (start, end): (i32, i32)) -> i32 {
        let (a, b) = if self.reversed {
            (end, start)
        } else {
            (start, end)
        };
        let f = (v - self.lo) / (self.hi - self.lo);
        let p = f64::from(a) + f * f64::from(b - a);
        if p.is_finite() { p.round() as i32 } else { a }
    }
}

impl Ranged for AxisCoord {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.px(*value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // plotters asks twice: "any" weight for the light grid, "bold" for
        // the labelled ticks.
        if hint.weight().allow_light_points() {
            self.minor.clone()
        } else {
            self.major.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for AxisCoord {
    fn format(value: &f64) -> String {
        vegard_core::format::sig(*value, 4)
    }
    fn format_ext(&self, value: &f64) -> String {
        self.label(*value)
    }
}

/// The axis' own ticks (an order such as harmonic number n), those inside
/// the range: integers print without decimals, anything else with up to 4
/// significant digits.
fn explicit_ticks(
    ticks: &[f64],
    scale: Scale,
    (lo, hi): (f64, f64),
) -> (Vec<f64>, Vec<f64>, TickFmt) {
    let major: Vec<f64> = ticks
        .iter()
        .filter_map(|&v| to_plot(v, scale))
        .filter(|v| *v >= lo - 1e-9 && *v <= hi + 1e-9)
        .collect();
    let integers = ticks.iter().all(|v| v.fract() == 0.0);
    let fmt = match (scale, integers) {
        (Scale::Linear, true) => TickFmt::Fixed { decimals: 0 },
        (Scale::Linear, false) => TickFmt::Sig,
        (Scale::Log, _) => TickFmt::LogSig,
    };
    (major, Vec::new(), fmt)
}

/// Ticks at multiples of a 1-2-2.5-5 step, at most `max_ticks` of them.
/// They are computed as `k * step` with integer `k`, so there is no
/// accumulated floating error, and formatted with the step's decimals.
fn linear_ticks(lo: f64, hi: f64, max_ticks: usize) -> (Vec<f64>, TickFmt) {
    let span = hi - lo;
    // Only for ranges the planning never produces; labels the ends.
    let fallback = || (vec![lo, hi], TickFmt::Sig);
    if !(span > 0.0 && span.is_finite()) {
        return fallback();
    }
    let raw = span / max_ticks.max(1) as f64;
    let exp = raw.log10().floor();
    let mag = 10f64.powf(exp);
    let norm = raw / mag;
    let mant = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|m| *m >= norm * (1.0 - 1e-9))
        .unwrap_or(10.0);
    let step = mant * mag;
    let k0 = (lo / step - 1e-9).ceil();
    let k1 = (hi / step + 1e-9).floor();
    if !(k0.is_finite() && k1.is_finite()) || k1 - k0 > 1000.0 {
        return fallback();
    }
    let ticks: Vec<f64> = (k0 as i64..=k1 as i64)
        .map(|k| {
            let v = k as f64 * step;
            if v.abs() < step * 1e-9 { 0.0 } else { v }
        })
        .collect();
    // The step's exponent, one more digit for 2.5 x 10^n steps.
    let (step_exp, mant) = if mant >= 10.0 {
        (exp as i32 + 1, 1.0)
    } else {
        (exp as i32, mant)
    };
    let step_exp = step_exp - i32::from(mant == 2.5);
    let max_abs = ticks.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let fmt = if max_abs >= 1e5 || (max_abs > 0.0 && max_abs < 1e-3) {
        TickFmt::Sci { step_exp }
    } else {
        TickFmt::Fixed {
            decimals: (-step_exp).clamp(0, 12) as usize,
        }
    };
    (ticks, fmt)
}

/// Log-axis ticks in plotting space (log10). Over two or more decades:
/// whole decades (every n-th when crowded) with the 2…9 multiples as light
/// grid. Within about a decade: 1-2-5 or 1…9 multiples, so there are at
/// least two labels.
fn log_ticks(lo: f64, hi: f64, max_ticks: usize, len_px: u32) -> (Vec<f64>, Vec<f64>, TickFmt) {
    let d0 = (lo - 1e-9).ceil() as i32;
    let d1 = (hi + 1e-9).floor() as i32;
    let decades: Vec<i32> = if d1 >= d0 {
        (d0..=d1).collect()
    } else {
        Vec::new()
    };
    let px_per_decade = f64::from(len_px) / (hi - lo).max(1e-12);
    let inside = |v: f64| v >= lo - 1e-9 && v <= hi + 1e-9;
    let multiples = |ms: &[f64]| -> Vec<f64> {
        let mut out = Vec::new();
        for d in (lo.floor() as i32)..=(hi.floor() as i32) {
            for m in ms {
                let v = (m * 10f64.powi(d)).log10();
                if inside(v) {
                    out.push(v);
                }
            }
        }
        out
    };
    // Two decade lines alone say little (|Z| from 20 to 1000 Ω): label
    // 1-2-5 multiples when they fit.
    if decades.len() <= 2 {
        let one_two_five = multiples(&[1.0, 2.0, 5.0]);
        // Short labels: a couple more than `max_ticks` still fit.
        if one_two_five.len() >= 3 && one_two_five.len() <= max_ticks + 2 {
            let minor = multiples(&[3.0, 4.0, 6.0, 7.0, 8.0, 9.0]);
            return (one_two_five, minor, TickFmt::LogSig);
        }
    }
    if decades.len() >= 2 {
        let stride = decades.len().div_ceil(max_ticks.max(1)).max(1) as i32;
        let major: Vec<f64> = decades
            .iter()
            .filter(|d| d.rem_euclid(stride) == 0)
            .map(|&d| f64::from(d))
            .collect();
        let major = if major.len() >= 2 {
            major
        } else {
            decades.iter().map(|&d| f64::from(d)).collect()
        };
        let minor: Vec<f64> = if major.len() == decades.len() {
            if px_per_decade >= 60.0 {
                multiples(&[2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
            } else {
                Vec::new()
            }
        } else {
            decades
                .iter()
                .map(|&d| f64::from(d))
                .filter(|d| !major.contains(d))
                .collect()
        };
        let superscript = major.iter().any(|&d| !(-2.0..=3.0).contains(&d));
        return (major, minor, TickFmt::Decade { superscript });
    }
    let one_two_five = multiples(&[1.0, 2.0, 5.0]);
    if one_two_five.len() >= 2 && one_two_five.len() <= max_ticks.max(3) {
        let minor = multiples(&[3.0, 4.0, 6.0, 7.0, 8.0, 9.0]);
        return (one_two_five, minor, TickFmt::LogSig);
    }
    let all = multiples(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    if all.len() >= 2 {
        return (all, Vec::new(), TickFmt::LogSig);
    }
    // Less than a factor of ~1.3: linear ticks on the values themselves.
    let (vals, _) = linear_ticks(10f64.powf(lo), 10f64.powf(hi), max_ticks);
    let major = vals
        .into_iter()
        .filter(|v| *v > 0.0)
        .map(f64::log10)
        .collect();
    (major, Vec::new(), TickFmt::LogSig)
}

fn pow10_superscript(k: i32) -> String {
    let sup: String = k
        .to_string()
        .chars()
        .map(|c| match c {
            '-' => '⁻',
            '0' => '⁰',
            '1' => '¹',
            '2' => '²',
            '3' => '³',
            '4' => '⁴',
            '5' => '⁵',
            '6' => '⁶',
            '7' => '⁷',
            '8' => '⁸',
            _ => '⁹',
        })
        .collect();
    format!("10{sup}")
}

/// The physics convention "quantity / unit"; a bare quantity when
/// dimensionless.
fn axis_title(axis: &Axis) -> String {
    if axis.unit.trim().is_empty() {
        axis.label.clone()
    } else {
        format!("{} / {}", axis.label, axis.unit)
    }
}

// ---------------------------------------------------------------------------
// Drawing.

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn font(px: f64, style: FontStyle) -> TextStyle<'static> {
    TextStyle::from(FontDesc::new(
        FontFamily::SansSerif,
        px * PLOTTERS_FONT_SCALE,
        style,
    ))
}

fn draw_figure(root: &Area, fig: &Figure, plan: &FigurePlan) -> DrawResult {
    root.fill(&WHITE)?;
    if plan.title_band_px > 0 {
        let style =
            font(FIGURE_TITLE_FONT_PX, FontStyle::Bold).pos(Pos::new(HPos::Center, VPos::Top));
        root.draw_text(fig.title.trim(), &style, ((fig.width_px / 2) as i32, 6))?;
    }
    for (panel, pp) in fig.panels.iter().zip(&plan.panels) {
        let area = root
            .clone()
            .shrink((0, pp.top_px), (fig.width_px, pp.height_px));
        draw_panel(&area, panel, pp, plan.y_label_area_px)?;
    }
    Ok(())
}

fn draw_panel(area: &Area, panel: &Panel, pp: &PanelPlan, y_label_area_px: u32) -> DrawResult {
    let mut chart = ChartBuilder::on(area)
        .margin_top(pp.margin_top_px)
        .margin_bottom(MARGIN_BOTTOM_PX)
        .margin_left(MARGIN_LEFT_PX)
        .margin_right(MARGIN_RIGHT_PX)
        .x_label_area_size(pp.x_label_area_px)
        .y_label_area_size(y_label_area_px)
        .build_cartesian_2d(pp.x.clone(), pp.y.clone())?;

    let tick_style = font(TICK_FONT_PX, FontStyle::Normal);
    let desc_style = font(AXIS_LABEL_FONT_PX, FontStyle::Normal);
    {
        let mut mesh = chart.configure_mesh();
        mesh.set_all_tick_mark_size(TICK_MARK_PX)
            .bold_line_style(BLACK.mix(0.15).stroke_width(1))
            .light_line_style(BLACK.mix(0.05).stroke_width(1))
            .axis_style(BLACK.stroke_width(1))
            .label_style(tick_style)
            .axis_desc_style(desc_style)
            .y_desc(axis_title(&panel.y));
        if pp.x_labelled {
            mesh.x_desc(axis_title(&panel.x));
        } else {
            mesh.disable_x_axis();
        }
        // A grid and ticks over a made-up range would look like data.
        if !pp.has_data {
            mesh.disable_y_mesh().disable_y_axis();
        }
        if !pp.x_from_data {
            mesh.disable_x_mesh().disable_x_axis();
        }
        mesh.draw()?;
    }

    // Frame in pixels: left and bottom sides on plotters' axis lines, which
    // lie just outside the plotting area. Drawn on the panel area because
    // plotters clamps every element point into the area it is drawn on.
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let plot = chart.plotting_area().strip_coord_spec();
    let (x0, y0) = (xr.start, yr.start);
    let (ax, ay) = (
        area.get_pixel_range().0.start,
        area.get_pixel_range().1.start,
    );
    let frame = Rectangle::new(
        [(x0 - 1 - ax, y0 - ay), (xr.end - 1 - ax, yr.end - ay)],
        BLACK.stroke_width(1),
    );

    if let Some(title) = panel
        .title
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let style =
            font(PANEL_TITLE_FONT_PX, FontStyle::Normal).pos(Pos::new(HPos::Center, VPos::Bottom));
        let above = if panel.top_axis.is_some() {
            TOP_AXIS_PX as i32
        } else {
            0
        };
        plot.draw_text(title, &style, ((pp.plot_w_px / 2) as i32, -6 - above))?;
    }

    if !pp.has_data {
        area.draw(&frame)?;
        let style = font(NO_DATA_FONT_PX, FontStyle::Normal)
            .color(&RGBColor(0x66, 0x66, 0x66))
            .pos(Pos::new(HPos::Center, VPos::Center));
        plot.draw_text(
            "no data",
            &style,
            ((pp.plot_w_px / 2) as i32, (pp.plot_h_px / 2) as i32),
        )?;
        return Ok(());
    }

    // Bands first so they shade what is drawn over them instead of
    // veiling it; the legend keeps the order of the series.
    let color = series_color;
    let (bands, others): (Vec<&Series>, Vec<&Series>) = panel
        .series
        .iter()
        .partition(|s| s.kind == SeriesKind::Band);
    for s in bands.into_iter().chain(others) {
        draw_series(&mut chart, panel, pp, s, color(s))?;
    }
    let mut placed = Vec::new();
    for s in &panel.series {
        draw_point_labels(&mut chart, panel, s, color(s), &mut placed)?;
    }
    let mut named = 0usize;
    for s in panel.series.iter().filter(|s| !s.name.trim().is_empty()) {
        named += 1;
        add_legend_entry(&mut chart, s, color(s))?;
    }
    area.draw(&frame)?;
    draw_top_axis(area, panel, pp, (x0 - ax, y0 - ay))?;
    if named > 0 {
        chart
            .configure_series_labels()
            .position(match panel.legend {
                Legend::UpperRight => SeriesLabelPosition::UpperRight,
                Legend::UpperLeft => SeriesLabelPosition::UpperLeft,
                Legend::LowerLeft => SeriesLabelPosition::LowerLeft,
                Legend::LowerRight => SeriesLabelPosition::LowerRight,
            })
            .background_style(WHITE.mix(0.85).filled())
            .border_style(RGBColor(0x99, 0x99, 0x99).stroke_width(1))
            .label_font(font(LEGEND_FONT_PX, FontStyle::Normal))
            .legend_area_size(28)
            .margin(8)
            .draw()?;
    }
    Ok(())
}

/// A series' colour: its place on the continuous scale when it has one,
/// else its palette slot.
fn series_color(s: &Series) -> RGBColor {
    match s.color_scale {
        Some(pos) => scale_color(pos),
        None => PALETTE[usize::from(s.color) % PALETTE.len()],
    }
}

/// Small text beside the points a series labels (`""` for none), in the
/// series' colour so an overlay's labels read with their curve. Each label
/// goes to the first free corner of its point (upper right, upper left,
/// lower right, lower left); one that would overlap a label already placed
/// in the panel is left out: dense points at high frequency would
/// otherwise stack their labels into an unreadable smear.
fn draw_point_labels(
    chart: &mut Chart,
    panel: &Panel,
    s: &Series,
    color: RGBColor,
    placed: &mut Vec<(i32, i32, i32, i32)>,
) -> DrawResult {
    let Some(labels) = &s.labels else {
        return Ok(());
    };
    let pts = plot_points(s, &panel.x, &panel.y);
    let h = (POINT_LABEL_FONT_PX * 1.2).ceil() as i32;
    let d = POINT_LABEL_OFFSET_PX;
    for (p, label) in pts.iter().zip(labels) {
        let (Some(p), label) = (p, label.trim()) else {
            continue;
        };
        if label.is_empty() {
            continue;
        }
        let (px, py) = chart.backend_coord(p);
        let w = (label.chars().count() as f64 * POINT_LABEL_FONT_PX * 0.6).ceil() as i32;
        let corners = [
            (
                HPos::Left,
                VPos::Bottom,
                (px + d, py - d / 2),
                (px + d, py - d / 2 - h),
            ),
            (
                HPos::Right,
                VPos::Bottom,
                (px - d, py - d / 2),
                (px - d - w, py - d / 2 - h),
            ),
            (
                HPos::Left,
                VPos::Top,
                (px + d, py + d / 2),
                (px + d, py + d / 2),
            ),
            (
                HPos::Right,
                VPos::Top,
                (px - d, py + d / 2),
                (px - d - w, py + d / 2),
            ),
        ];
        let free = |(x, y): (i32, i32)| {
            placed
                .iter()
                .all(|&(x0, y0, x1, y1)| x + w <= x0 || x >= x1 || y + h <= y0 || y >= y1)
        };
        let Some(&(hpos, vpos, at, top_left)) = corners.iter().find(|c| free(c.3)) else {
            continue;
        };
        placed.push((top_left.0, top_left.1, top_left.0 + w, top_left.1 + h));
        let style = font(POINT_LABEL_FONT_PX, FontStyle::Normal)
            .color(&color)
            .pos(Pos::new(hpos, vpos));
        let offset = (at.0 - px, at.1 - py);
        chart.draw_series(std::iter::once(
            EmptyElement::at(*p) + Text::new(label.to_owned(), offset, style),
        ))?;
    }
    Ok(())
}

/// The secondary x axis along the top of the frame: a tick and a label at
/// each of its positions inside the range, and its title above them.
/// Drawn on the panel's area (plotters clips to the area drawn on);
/// `(x0, y0)` is the plotting area's top left in that area's pixels.
fn draw_top_axis(area: &Area, panel: &Panel, pp: &PanelPlan, (x0, y0): (i32, i32)) -> DrawResult {
    let Some(top) = &panel.top_axis else {
        return Ok(());
    };
    let tick_style =
        font(TICK_FONT_PX, FontStyle::Normal).pos(Pos::new(HPos::Center, VPos::Bottom));
    let w = pp.plot_w_px as i32;
    for t in &top.ticks {
        let Some(v) = to_plot(t.at, panel.x.scale) else {
            continue;
        };
        let (lo, hi) = (pp.x.lo.min(pp.x.hi), pp.x.lo.max(pp.x.hi));
        if !(lo..=hi).contains(&v) {
            continue;
        }
        let x = x0 + pp.x.px(v, (0, w - 1));
        area.draw(&PathElement::new(
            vec![(x, y0), (x, y0 - TICK_MARK_PX)],
            BLACK.stroke_width(1),
        ))?;
        area.draw_text(&t.label, &tick_style, (x, y0 - TICK_MARK_PX - 3))?;
    }
    let title_style =
        font(AXIS_LABEL_FONT_PX, FontStyle::Normal).pos(Pos::new(HPos::Center, VPos::Bottom));
    let title = if top.unit.trim().is_empty() {
        top.label.clone()
    } else {
        format!("{} / {}", top.label, top.unit)
    };
    area.draw_text(&title, &title_style, (x0 + w / 2, y0 - TICK_MARK_PX - 20))?;
    Ok(())
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<AxisCoord, AxisCoord>>;

/// Runs of consecutive drawable points: a NaN (or an undrawable value) in
/// the data is a gap in the line, not a jump to zero.
fn runs<T: Copy>(pts: &[Option<T>]) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut cur = Vec::new();
    for p in pts {
        match p {
            Some(p) => cur.push(*p),
            None if !cur.is_empty() => out.push(std::mem::take(&mut cur)),
            None => {}
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn draw_series(
    chart: &mut Chart,
    panel: &Panel,
    pp: &PanelPlan,
    s: &Series,
    color: RGBColor,
) -> DrawResult {
    let pts = plot_points(s, &panel.x, &panel.y);
    let line = color.stroke_width(LINE_WIDTH_PX);
    let band_edges_missing = s.kind == SeriesKind::Band && s.y_upper.is_none();
    match s.kind {
        SeriesKind::Line | SeriesKind::Dashed => {
            for run in runs(&pts) {
                if run.len() == 1 {
                    // A lone point between gaps would be invisible as a line.
                    chart.draw_series(std::iter::once(Circle::new(run[0], 2, color.filled())))?;
                } else if s.kind == SeriesKind::Line {
                    chart.draw_series(LineSeries::new(run, line))?;
                } else {
                    chart.draw_series(DashedLineSeries::new(run, DASH_PX, DASH_GAP_PX, line))?;
                }
            }
        }
        SeriesKind::Points => {
            if let Some(err) = &s.y_err {
                let mut bars = Vec::new();
                for (i, p) in pts.iter().enumerate() {
                    let (Some((px, _)), Some(&e)) = (p, err.get(i)) else {
                        continue;
                    };
                    if !e.is_finite() || e == 0.0 {
                        continue;
                    }
                    let yv = s.y[i];
                    let top = to_plot(yv + e.abs(), panel.y.scale);
                    // Below zero on a log axis: the bar runs off the bottom.
                    let (bottom, capped) = match to_plot(yv - e.abs(), panel.y.scale) {
                        Some(b) => (b, true),
                        None => (pp.y.lo, false),
                    };
                    let Some(top) = top else { continue };
                    bars.push((*px, bottom, top, capped));
                }
                let stroke = color.stroke_width(1);
                for (px, bottom, top, capped) in bars {
                    chart.draw_series(std::iter::once(PathElement::new(
                        vec![(px, bottom), (px, top)],
                        stroke,
                    )))?;
                    let cap = |y: f64| {
                        EmptyElement::at((px, y))
                            + PathElement::new(
                                vec![(-ERROR_CAP_HALF_WIDTH_PX, 0), (ERROR_CAP_HALF_WIDTH_PX, 0)],
                                stroke,
                            )
                    };
                    chart.draw_series(std::iter::once(cap(top)))?;
                    if capped {
                        chart.draw_series(std::iter::once(cap(bottom)))?;
                    }
                }
            }
            chart.draw_series(
                pts.iter()
                    .flatten()
                    .map(|p| Circle::new(*p, MARKER_RADIUS_PX, color.filled())),
            )?;
        }
        SeriesKind::Band if band_edges_missing => {
            // No upper edge: show the lower edge as a thin line rather than
            // nothing, so the series is not silently lost.
            for run in runs(&pts) {
                chart.draw_series(LineSeries::new(run, color.stroke_width(1)))?;
            }
        }
        SeriesKind::Band => {
            let upper = s.y_upper.as_deref().unwrap_or(&[]);
            let edges: Vec<Option<(f64, f64, f64)>> = pts
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let (px, lo) = (*p)?;
                    let hi = to_plot(*upper.get(i)?, panel.y.scale)?;
                    Some((px, lo, hi))
                })
                .collect();
            for run in runs(&edges) {
                if run.len() < 2 {
                    continue;
                }
                let mut poly: Vec<(f64, f64)> = run.iter().map(|&(x, lo, _)| (x, lo)).collect();
                poly.extend(run.iter().rev().map(|&(x, _, hi)| (x, hi)));
                chart.draw_series(std::iter::once(Polygon::new(
                    poly,
                    color.mix(BAND_OPACITY).filled(),
                )))?;
            }
        }
    }
    Ok(())
}

/// A legend entry drawn like the series: a line, a dashed line, a marker,
/// or a shaded box. Attached to an empty series so the entry exists once
/// however many runs the data was split into.
fn add_legend_entry(chart: &mut Chart, s: &Series, color: RGBColor) -> DrawResult {
    let anno = chart.draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())?;
    anno.label(s.name.trim());
    let line = color.stroke_width(LINE_WIDTH_PX);
    match s.kind {
        SeriesKind::Line => {
            anno.legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line));
        }
        SeriesKind::Dashed => {
            anno.legend(move |(x, y)| {
                DashedPathElement::new(vec![(x, y), (x + 20, y)], 7, 5, line)
            });
        }
        SeriesKind::Points => {
            anno.legend(move |(x, y)| Circle::new((x + 10, y), MARKER_RADIUS_PX, color.filled()));
        }
        SeriesKind::Band => {
            anno.legend(move |(x, y)| {
                Rectangle::new(
                    [(x, y - 5), (x + 20, y + 5)],
                    color.mix(BAND_OPACITY).filled(),
                )
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Output.

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Make plotters' document an element for both uses: `role="img"` and a
/// `<title>` for accessibility, font sizes rounded (plotters divides by
/// 1.24 and prints every float digit), no trailing newline.
fn finish_svg(raw: &str, title: &str) -> Result<String, LayoutError> {
    let raw = raw.trim();
    if !raw.starts_with("<svg ") || !raw.ends_with("</svg>") {
        return Err(LayoutError::NoSvg);
    }
    let Some(open_end) = raw.find('>') else {
        return Err(LayoutError::UnterminatedSvg);
    };
    let mut out = String::with_capacity(raw.len() + 128);
    out.push_str("<svg role=\"img\" ");
    out.push_str(&raw["<svg ".len()..=open_end]);
    out.push('\n');
    if !title.trim().is_empty() {
        out.push_str("<title>");
        out.push_str(&xml_escape(title.trim()));
        out.push_str("</title>\n");
    }
    out.push_str(&round_font_sizes(raw[open_end + 1..].trim_start()));
    Ok(out)
}

fn round_font_sizes(s: &str) -> String {
    const KEY: &str = "font-size=\"";
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(KEY) {
        let (head, tail) = rest.split_at(i + KEY.len());
        out.push_str(head);
        let end = tail.find('"').unwrap_or(tail.len());
        match tail[..end].parse::<f64>() {
            Ok(v) => out.push_str(&vegard_core::format::trim_zeros(format!("{v:.2}"))),
            Err(_) => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Panel, Series};

    fn axis(label: &str, unit: &str, scale: Scale) -> Axis {
        Axis {
            label: label.into(),
            unit: unit.into(),
            scale,
            reversed: false,
            range: None,
            ticks: None,
        }
    }

    fn panel(x: Axis, y: Axis, series: Vec<Series>) -> Panel {
        Panel {
            title: None,
            x,
            y,
            equal_aspect: false,
            legend: Legend::default(),
            series,
            top_axis: None,
        }
    }

    fn figure(panels: Vec<Panel>) -> Figure {
        Figure {
            id: "fig-test".into(),
            title: "Test figure".into(),
            caption: None,
            panels,
            width_px: 640,
            height_px: 420,
        }
    }

    fn cv_figure() -> Figure {
        let t: Vec<f64> = (0..50).map(|i| f64::from(i) * 0.1).collect();
        let e: Vec<f64> = t.iter().map(|t| 0.2 * t - 0.3).collect();
        figure(vec![panel(
            axis("t", "s", Scale::Linear),
            axis("E", "V", Scale::Linear),
            vec![Series::new("E(t)", SeriesKind::Line, 0, t, e)],
        )])
    }

    fn render(fig: &Figure) -> String {
        let svg = render_svg(fig).unwrap();
        assert_well_formed(&svg);
        svg
    }

    /// A small structural check: tags balance, every `&` starts one of the
    /// five XML entities, no prolog, no NaN/inf anywhere.
    fn assert_well_formed(svg: &str) {
        assert!(svg.starts_with("<svg "), "{}", &svg[..svg.len().min(200)]);
        assert!(svg.ends_with("</svg>"));
        assert!(!svg.contains("<?xml"));
        assert!(!svg.contains("NaN"), "NaN in SVG");
        assert!(!svg.contains("inf\""), "infinity in SVG");
        let mut stack: Vec<&str> = Vec::new();
        let mut rest = svg;
        while let Some(i) = rest.find('<') {
            let after = &rest[i + 1..];
            let end = after.find('>').expect("unterminated tag");
            let tag = &after[..end];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name.trim()), "mismatched </{name}>");
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().unwrap();
                stack.push(name);
            }
            rest = &after[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        for (i, _) in svg.match_indices('&') {
            let ent = &svg[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| ent.starts_with(e)),
                "bare & at {}",
                &svg[i..(i + 20).min(svg.len())]
            );
        }
    }

    /// Texts of all `<text>` elements, trimmed.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .map(|s| {
                let start = s.find('>').unwrap() + 1;
                let end = s.find("</text>").unwrap();
                s[start..end].trim().to_string()
            })
            .collect()
    }

    /// The open tags of one element name, e.g. all `<polyline ...>`.
    fn tags<'a>(svg: &'a str, name: &str) -> Vec<&'a str> {
        let open = format!("<{name} ");
        svg.match_indices(&open)
            .map(|(i, _)| {
                let s = &svg[i..];
                &s[..s.find('>').unwrap() + 1]
            })
            .collect()
    }

    fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
        let key = format!(" {name}=\"");
        let i = tag.find(&key)? + key.len();
        let rest = &tag[i..];
        Some(&rest[..rest.find('"')?])
    }

    fn attr_f64(tag: &str, name: &str) -> f64 {
        attr(tag, name).unwrap().parse().unwrap()
    }

    /// The frames drawn around plotting areas (black, unfilled rects; the
    /// legend box is grey).
    fn frames(svg: &str) -> Vec<&str> {
        tags(svg, "rect")
            .into_iter()
            .filter(|t| attr(t, "fill") == Some("none") && attr(t, "stroke") == Some("#000000"))
            .collect()
    }

    #[test]
    fn root_element_is_scalable_and_accessible() {
        let svg = render(&cv_figure());
        let root = &svg[..svg.find('>').unwrap()];
        assert!(root.contains("role=\"img\""), "{root}");
        assert!(root.contains("viewBox=\"0 0 640 420\""), "{root}");
        assert!(root.contains("width=\"640\""), "{root}");
        assert!(root.contains("height=\"420\""), "{root}");
        assert!(
            root.contains("xmlns=\"http://www.w3.org/2000/svg\""),
            "{root}"
        );
        assert!(svg.contains("<title>Test figure</title>"));
        // White background over the whole figure.
        let bg = tags(&svg, "rect")[0];
        assert_eq!(attr(bg, "fill"), Some("#FFFFFF"));
        assert_eq!(attr(bg, "width"), Some("640"));
        // Font sizes are rounded, and ticks are at least 12 px.
        for t in tags(&svg, "text") {
            let fs = attr(t, "font-size").unwrap();
            assert!(fs.len() <= 5, "{fs}");
            assert!(fs.parse::<f64>().unwrap() >= 12.0, "{t}");
        }
    }

    #[test]
    fn axis_titles_are_quantity_slash_unit() {
        let mut fig = cv_figure();
        fig.panels[0].y = axis("ratio", "", Scale::Linear);
        let svg = render(&fig);
        let t = texts(&svg);
        assert!(t.contains(&"t / s".to_string()), "{t:?}");
        assert!(t.contains(&"ratio".to_string()), "{t:?}");
        assert!(!t.iter().any(|s| s.starts_with("ratio /")), "{t:?}");
    }

    #[test]
    fn text_is_xml_escaped_and_unicode_survives() {
        let mut fig = cv_figure();
        fig.title = "Z <fit> & 'model'".into();
        fig.panels[0].x = axis("T", "°C", Scale::Linear);
        fig.panels[0].y = axis("Z' <re> & co", "Ω cm²", Scale::Linear);
        fig.panels[0].title = Some("I / µA".into());
        fig.panels[0].series[0].name = "a<b & c".into();
        let svg = render(&fig);
        assert!(svg.contains("<title>Z &lt;fit&gt; &amp; &apos;model&apos;</title>"));
        assert!(svg.contains("Z&apos; &lt;re&gt; &amp; co / Ω cm²"), "{svg}");
        assert!(svg.contains("T / °C"));
        assert!(svg.contains("I / µA"));
        assert!(svg.contains("a&lt;b &amp; c"));
        assert!(!svg.contains("<re>") && !svg.contains("<fit>") && !svg.contains("a<b"));
    }

    fn scale_figure(xs: Scale, ys: Scale) -> Figure {
        let f: Vec<f64> = (0..40)
            .map(|i| 10f64.powf(-2.0 + f64::from(i) * 0.18))
            .collect();
        let mag: Vec<f64> = f.iter().map(|f| 100.0 / (1.0 + f)).collect();
        figure(vec![panel(
            axis("f", "Hz", xs),
            axis("|Z|", "Ω", ys),
            vec![Series::new("", SeriesKind::Points, 0, f, mag)],
        )])
    }

    #[test]
    fn all_four_scale_combinations_render() {
        for (xs, ys) in [
            (Scale::Linear, Scale::Linear),
            (Scale::Log, Scale::Log),
            (Scale::Log, Scale::Linear),
            (Scale::Linear, Scale::Log),
        ] {
            let svg = render(&scale_figure(xs, ys));
            assert_eq!(tags(&svg, "circle").len(), 40, "{xs:?} {ys:?}");
            let t = texts(&svg);
            assert!(t.contains(&"f / Hz".to_string()));
            assert!(t.contains(&"|Z| / Ω".to_string()));
            // Tick labels are short: no 15-digit floats.
            for s in &t {
                if s.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit() || c == '-')
                {
                    assert!(
                        s.chars().count() <= 8,
                        "long tick label {s:?} for {xs:?} {ys:?}"
                    );
                }
            }
        }
        // Log x over 7 decades: decade labels in powers of ten.
        let svg = render(&scale_figure(Scale::Log, Scale::Linear));
        let t = texts(&svg);
        assert!(
            t.contains(&"10⁻²".to_string()) || t.contains(&"10⁰".to_string()),
            "{t:?}"
        );
        assert!(t.contains(&"10⁴".to_string()), "{t:?}");
    }

    #[test]
    fn log_axis_drops_non_positive_and_non_finite_values() {
        let x = vec![1.0, 10.0, -5.0, 0.0, 100.0, f64::NAN, 1000.0, f64::INFINITY];
        let y = vec![1.0, 2.0, 3.0, 4.0, -1.0, 5.0, 6.0, 7.0];
        let fig = figure(vec![panel(
            axis("f", "Hz", Scale::Log),
            axis("A", "V", Scale::Log),
            vec![
                Series::new("p", SeriesKind::Points, 0, x.clone(), y.clone()),
                Series::new("l", SeriesKind::Line, 1, x, y),
            ],
        )]);
        let svg = render(&fig);
        let circles: Vec<_> = tags(&svg, "circle")
            .into_iter()
            .filter(|c| attr(c, "fill") == Some("#0072B2"))
            .collect();
        // (1,1), (10,2), (1000,6); the legend marker is the fourth.
        assert_eq!(circles.len(), 4, "{circles:?}");
        for c in circles {
            assert!(attr_f64(c, "cx").abs() < 10_000.0 && attr_f64(c, "cy").abs() < 10_000.0);
        }
    }

    fn line_polylines<'a>(svg: &'a str, color: &str) -> Vec<&'a str> {
        tags(svg, "polyline")
            .into_iter()
            .filter(|t| attr(t, "stroke") == Some(color) && attr(t, "stroke-width") == Some("2"))
            .collect()
    }

    #[test]
    fn nan_breaks_a_line_into_separate_polylines() {
        let x: Vec<f64> = (0..10).map(f64::from).collect();
        let mut y: Vec<f64> = x.iter().map(|v| v * v).collect();
        y[4] = f64::NAN;
        let fig = figure(vec![panel(
            axis("t", "s", Scale::Linear),
            axis("u", "nm", Scale::Linear),
            vec![Series::new("", SeriesKind::Line, 2, x, y)],
        )]);
        let svg = render(&fig);
        let lines = line_polylines(&svg, "#009E73");
        assert_eq!(lines.len(), 2, "{lines:?}");
        let n_points: Vec<usize> = lines
            .iter()
            .map(|l| attr(l, "points").unwrap().split_whitespace().count())
            .collect();
        assert_eq!(n_points, vec![4, 5]);
    }

    #[test]
    fn dashed_line_is_drawn_in_dashes() {
        let x: Vec<f64> = (0..100).map(f64::from).collect();
        let y = x.clone();
        let fig = figure(vec![panel(
            axis("t", "s", Scale::Linear),
            axis("u", "nm", Scale::Linear),
            vec![Series::new("fit", SeriesKind::Dashed, 1, x, y)],
        )]);
        let svg = render(&fig);
        // Dozens of short dashes along the diagonal, plus the legend's.
        assert!(line_polylines(&svg, "#D55E00").len() > 20);
    }

    #[test]
    fn legend_lists_exactly_the_named_series() {
        let x = vec![0.0, 1.0, 2.0];
        let fig = figure(vec![panel(
            axis("t", "s", Scale::Linear),
            axis("E", "V", Scale::Linear),
            vec![
                Series::new("EIS", SeriesKind::Points, 0, x.clone(), vec![1.0, 2.0, 3.0]),
                Series::new("", SeriesKind::Line, 1, x.clone(), vec![3.0, 2.0, 1.0]),
                Series::new("ESM fit", SeriesKind::Dashed, 2, x, vec![2.0, 2.0, 2.0]),
            ],
        )]);
        let svg = render(&fig);
        let t = texts(&svg);
        assert_eq!(t.iter().filter(|s| *s == "EIS").count(), 1);
        assert_eq!(t.iter().filter(|s| *s == "ESM fit").count(), 1);
        let legend_texts: Vec<_> = t
            .iter()
            .filter(|s| !s.is_empty() && !s.contains('/') && s.parse::<f64>().is_err())
            .collect();
        assert_eq!(legend_texts.len(), 3, "title + 2 entries: {legend_texts:?}");
        // The legend box: semi-opaque white, grey border.
        let boxes: Vec<_> = tags(&svg, "rect")
            .into_iter()
            .filter(|r| attr(r, "fill") == Some("#FFFFFF") && attr(r, "opacity") == Some("0.85"))
            .collect();
        assert_eq!(boxes.len(), 1);

        // No named series, no legend box.
        let svg = render(&cv_figure_unnamed());
        assert!(!svg.contains("#999999"));
    }

    fn cv_figure_unnamed() -> Figure {
        let mut fig = cv_figure();
        fig.panels[0].series[0].name.clear();
        fig
    }

    #[test]
    fn equal_aspect_gives_equal_px_per_unit() {
        // A Nyquist semicircle, 100 Ω wide and 50 Ω high, in a wide panel.
        let th: Vec<f64> = (0..=30)
            .map(|i| std::f64::consts::PI * f64::from(i) / 30.0)
            .collect();
        let zr: Vec<f64> = th.iter().map(|t| 60.0 - 50.0 * t.cos()).collect();
        let zi: Vec<f64> = th.iter().map(|t| 50.0 * t.sin()).collect();
        for (w, h) in [(800, 400), (400, 700)] {
            let mut fig = figure(vec![Panel {
                equal_aspect: true,
                ..panel(
                    axis("Z'", "Ω", Scale::Linear),
                    axis("-Z''", "Ω", Scale::Linear),
                    vec![Series::new(
                        "",
                        SeriesKind::Points,
                        0,
                        zr.clone(),
                        zi.clone(),
                    )],
                )
            }]);
            fig.width_px = w;
            fig.height_px = h;
            let plan = plan_figure(&fig).unwrap();
            let p = &plan.panels[0];
            let px_per_unit_x = f64::from(p.plot_w_px - 1) / (p.x.hi - p.x.lo);
            let px_per_unit_y = f64::from(p.plot_h_px - 1) / (p.y.hi - p.y.lo);
            assert!(
                (px_per_unit_x / px_per_unit_y - 1.0).abs() < 1e-9,
                "{px_per_unit_x} vs {px_per_unit_y}"
            );
            // The data still fits.
            assert!(p.x.lo <= 10.0 && p.x.hi >= 110.0 && p.y.lo <= 0.0 && p.y.hi >= 50.0);
            // The plan's plotting area is the one plotters drew.
            let svg = render(&fig);
            let frame = frames(&svg)[0];
            assert_eq!(attr_f64(frame, "width"), f64::from(p.plot_w_px));
            assert_eq!(attr_f64(frame, "height"), f64::from(p.plot_h_px));
            // And measured on the drawing: the semicircle is as high as half
            // its width (in px), within rounding.
            let cs: Vec<(f64, f64)> = tags(&svg, "circle")
                .iter()
                .map(|c| (attr_f64(c, "cx"), attr_f64(c, "cy")))
                .collect();
            let width = cs.iter().map(|c| c.0).fold(f64::MIN, f64::max)
                - cs.iter().map(|c| c.0).fold(f64::MAX, f64::min);
            let height = cs.iter().map(|c| c.1).fold(f64::MIN, f64::max)
                - cs.iter().map(|c| c.1).fold(f64::MAX, f64::min);
            assert!((width / height - 2.0).abs() < 0.05, "{width} x {height}");
        }
    }

    #[test]
    fn degenerate_data_renders_without_nan() {
        let nan = f64::NAN;
        let cases: Vec<(&str, Vec<Series>, Scale, bool)> = vec![
            ("empty", vec![], Scale::Linear, false),
            (
                "all NaN",
                vec![Series::new(
                    "a",
                    SeriesKind::Line,
                    0,
                    vec![nan, nan],
                    vec![nan, 1.0],
                )],
                Scale::Linear,
                false,
            ),
            (
                "all negative on log",
                vec![Series::new(
                    "a",
                    SeriesKind::Points,
                    0,
                    vec![1.0, 2.0],
                    vec![-1.0, 0.0],
                )],
                Scale::Log,
                false,
            ),
            (
                "empty vectors",
                vec![Series::new("a", SeriesKind::Band, 0, vec![], vec![])],
                Scale::Linear,
                false,
            ),
            (
                "single point",
                vec![Series::new(
                    "a",
                    SeriesKind::Points,
                    0,
                    vec![3.0],
                    vec![5.0],
                )],
                Scale::Linear,
                true,
            ),
            (
                "single point log",
                vec![Series::new("a", SeriesKind::Line, 0, vec![3.0], vec![5.0])],
                Scale::Log,
                true,
            ),
            (
                "all equal",
                vec![Series::new(
                    "a",
                    SeriesKind::Line,
                    0,
                    vec![2.0; 5],
                    vec![0.0; 5],
                )],
                Scale::Linear,
                true,
            ),
            (
                "huge",
                vec![Series::new(
                    "a",
                    SeriesKind::Line,
                    0,
                    vec![-1e300, 1e300],
                    vec![1e-300, 1e300],
                )],
                Scale::Linear,
                true,
            ),
        ];
        for (what, series, yscale, has_data) in cases {
            let fig = figure(vec![panel(
                axis("t", "s", Scale::Linear),
                axis("y", "", yscale),
                series,
            )]);
            let svg = render_svg(&fig).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_well_formed(&svg);
            let t = texts(&svg);
            assert_eq!(
                t.contains(&"no data".to_string()),
                !has_data,
                "{what}: {t:?}"
            );
            assert_eq!(frames(&svg).len(), 1, "{what}");
        }
    }

    #[test]
    fn band_is_a_translucent_polygon() {
        let x: Vec<f64> = (0..20).map(f64::from).collect();
        let lo: Vec<f64> = x.iter().map(|v| v - 1.0).collect();
        let hi: Vec<f64> = x.iter().map(|v| v + 1.0).collect();
        let band = Series {
            y_upper: Some(hi),
            ..Series::new("95 % CI", SeriesKind::Band, 1, x.clone(), lo)
        };
        let fig = figure(vec![panel(
            axis("t", "s", Scale::Linear),
            axis("u", "pm", Scale::Linear),
            vec![
                band,
                Series::new(
                    "u",
                    SeriesKind::Line,
                    0,
                    x,
                    (0..20).map(f64::from).collect(),
                ),
            ],
        )]);
        let svg = render(&fig);
        let polys = tags(&svg, "polygon");
        assert_eq!(polys.len(), 1, "{polys:?}");
        assert_eq!(attr(polys[0], "fill"), Some("#D55E00"));
        assert_eq!(attr(polys[0], "opacity"), Some("0.2"));
        assert_eq!(
            attr(polys[0], "points").unwrap().split_whitespace().count(),
            40
        );
        // The legend swatch is a translucent box of the same colour.
        assert!(
            tags(&svg, "rect")
                .iter()
                .any(|r| attr(r, "fill") == Some("#D55E00") && attr(r, "opacity") == Some("0.2"))
        );
    }

    #[test]
    fn points_with_error_bars_on_log_axis() {
        let pts = Series {
            y_err: Some(vec![0.5, 5.0, f64::NAN]),
            ..Series::new(
                "k",
                SeriesKind::Points,
                0,
                vec![1.0, 2.0, 3.0],
                vec![1.0, 2.0, 3.0],
            )
        };
        for ys in [Scale::Linear, Scale::Log] {
            let fig = figure(vec![panel(
                axis("1000/T", "1/K", Scale::Linear),
                axis("k", "1/s", ys),
                vec![pts.clone()],
            )]);
            let svg = render(&fig);
            let bars: Vec<_> = tags(&svg, "polyline")
                .into_iter()
                .filter(|t| {
                    attr(t, "stroke") == Some("#0072B2") && attr(t, "stroke-width") == Some("1")
                })
                .collect();
            // Two vertical bars; caps: 2 + 2 on linear, 2 + 1 on log (the
            // second bar runs below zero, off the bottom).
            let expected = if ys == Scale::Linear { 6 } else { 5 };
            assert_eq!(bars.len(), expected, "{ys:?}: {bars:?}");
        }
    }

    #[test]
    fn stacked_panels_share_the_x_axis() {
        let t: Vec<f64> = (0..100).map(|i| f64::from(i) * 0.5).collect();
        let mk = |label: &str, unit: &str, k: f64, tmax: usize| {
            panel(
                axis("t", "s", Scale::Linear),
                axis(label, unit, Scale::Linear),
                vec![Series::new(
                    "",
                    SeriesKind::Line,
                    0,
                    t[..tmax].to_vec(),
                    t[..tmax].iter().map(|v| (v * k).sin()).collect(),
                )],
            )
        };
        let mut fig = figure(vec![
            mk("E", "V", 0.1, 100),
            mk("I", "mA", 0.2, 60),
            mk("u", "pm", 0.3, 100),
        ]);
        fig.height_px = 600;
        fig.panels[1].title = Some("Current".into());
        let plan = plan_figure(&fig).unwrap();
        assert_eq!(plan.panels.len(), 3);
        for p in &plan.panels {
            assert_eq!((p.x.lo, p.x.hi), (plan.panels[0].x.lo, plan.panels[0].x.hi));
        }
        let svg = render(&fig);
        let fr = frames(&svg);
        assert_eq!(fr.len(), 3, "three plotting areas");
        // Aligned: same left edge and width, stacked downwards.
        assert!(
            fr.iter()
                .all(|f| attr(f, "x") == attr(fr[0], "x")
                    && attr(f, "width") == attr(fr[0], "width"))
        );
        assert!(
            attr_f64(fr[0], "y") < attr_f64(fr[1], "y")
                && attr_f64(fr[1], "y") < attr_f64(fr[2], "y")
        );
        let texts = texts(&svg);
        assert_eq!(
            texts.iter().filter(|s| *s == "t / s").count(),
            1,
            "x label only at the bottom"
        );
        for y in ["E / V", "I / mA", "u / pm", "Current"] {
            assert!(texts.contains(&y.to_string()), "{y}");
        }
    }

    #[test]
    fn reversed_axis_runs_right_to_left() {
        let mut fig = figure(vec![panel(
            axis("1000/T", "1/K", Scale::Linear),
            axis("k", "1/s", Scale::Log),
            vec![Series::new(
                "",
                SeriesKind::Points,
                0,
                vec![2.0, 3.0],
                vec![10.0, 1.0],
            )],
        )]);
        let cx = |fig: &Figure| -> Vec<f64> {
            tags(&render(fig), "circle")
                .iter()
                .map(|c| attr_f64(c, "cx"))
                .collect()
        };
        let normal = cx(&fig);
        assert!(normal[0] < normal[1]);
        fig.panels[0].x.reversed = true;
        let reversed = cx(&fig);
        assert!(reversed[0] > reversed[1]);
        fig.panels[0].y.reversed = true;
        let svg = render(&fig);
        let cy: Vec<f64> = tags(&svg, "circle")
            .iter()
            .map(|c| attr_f64(c, "cy"))
            .collect();
        assert!(cy[0] > cy[1], "reversed y: larger k lower");
    }

    #[test]
    fn too_small_figure_is_a_plot_error() {
        let mut fig = cv_figure();
        fig.width_px = 0;
        match render_svg(&fig) {
            Err(ReportError::Plot { figure, msg }) => {
                assert_eq!(figure, "fig-test");
                assert!(msg.contains("too small"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
    }

    fn labels(ticks: &(Vec<f64>, TickFmt)) -> Vec<String> {
        let ax = AxisCoord {
            lo: 0.0,
            hi: 1.0,
            reversed: false,
            major: ticks.0.clone(),
            minor: vec![],
            fmt: ticks.1,
        };
        ticks.0.iter().map(|v| ax.label(*v)).collect()
    }

    #[test]
    fn linear_tick_labels_are_short_and_uniform() {
        assert_eq!(
            labels(&linear_ticks(0.0, 1.0, 5)),
            ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
        );
        assert_eq!(
            labels(&linear_ticks(-0.3, 0.7, 4)),
            ["-0.25", "0.00", "0.25", "0.50"]
        );
        assert_eq!(
            labels(&linear_ticks(0.1, 0.4, 3)),
            ["0.1", "0.2", "0.3", "0.4"]
        );
        assert_eq!(
            labels(&linear_ticks(0.0, 250.0, 5)),
            ["0", "50", "100", "150", "200", "250"]
        );
        assert_eq!(
            labels(&linear_ticks(1e-5, 3e-5, 4)),
            ["1e-5", "1.5e-5", "2e-5", "2.5e-5", "3e-5"]
        );
        assert_eq!(
            labels(&linear_ticks(0.0, 4e6, 4)),
            ["0", "1e6", "2e6", "3e6", "4e6"]
        );
        assert_eq!(
            labels(&linear_ticks(-2e-4, 2e-4, 4)),
            ["-2e-4", "-1e-4", "0", "1e-4", "2e-4"]
        );
        // Fine steps on a large offset keep their decimals.
        assert_eq!(
            labels(&linear_ticks(20.001, 20.004, 3)),
            ["20.001", "20.002", "20.003", "20.004"]
        );
    }

    #[test]
    fn log_ticks_are_decades_or_one_two_five() {
        let (major, minor, fmt) = log_ticks(-2.1, 5.1, 8, 600);
        assert_eq!(major, [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(fmt, TickFmt::Decade { superscript: true });
        assert!(!minor.is_empty() && minor.iter().all(|v| *v > -2.1 && *v < 5.1));
        let ax = AxisCoord {
            lo: -2.1,
            hi: 5.1,
            reversed: false,
            major,
            minor,
            fmt,
        };
        assert_eq!(ax.label(-2.0), "10⁻²");
        assert_eq!(ax.label(5.0), "10⁵");
        // Crowded: every other decade.
        let (major, minor, _) = log_ticks(-6.0, 6.0, 6, 300);
        assert!(major.len() <= 7 && major.len() >= 4, "{major:?}");
        assert!(minor.len() >= 5);
        // Few decades in the plain range print plainly.
        let (major, _, fmt) = log_ticks(-1.05, 2.05, 8, 600);
        let ax = AxisCoord {
            lo: -1.05,
            hi: 2.05,
            reversed: false,
            major: major.clone(),
            minor: vec![],
            fmt,
        };
        let l: Vec<String> = major.iter().map(|v| ax.label(*v)).collect();
        assert_eq!(l, ["0.1", "1", "10", "100"]);
        // Within a decade: 1-2-5.
        let (major, _, fmt) = log_ticks(0.5f64.log10(), 6f64.log10(), 8, 400);
        let ax = AxisCoord {
            lo: 0.0,
            hi: 1.0,
            reversed: false,
            major: major.clone(),
            minor: vec![],
            fmt,
        };
        let l: Vec<String> = major.iter().map(|v| ax.label(*v)).collect();
        assert_eq!(l, ["0.5", "1", "2", "5"]);
        // A factor of 1.1: still at least two ticks.
        let (major, _, _) = log_ticks(100f64.log10(), 110f64.log10(), 8, 400);
        assert!(major.len() >= 2, "{major:?}");
    }

    #[test]
    fn number_formatting() {
        assert_eq!(pow10_superscript(-12), "10⁻¹²");
    }

    /// Writes example figures for a look in a browser or with
    /// `rsvg-convert`: `VEGARD_SVG_EXAMPLES=1 cargo test -p vegard-report
    /// write_examples` puts them in `target/svg-examples/`.
    #[test]
    fn colour_scale_runs_blue_to_red_and_stays_saturated() {
        assert_eq!(scale_color_hex(0.0), "#2166AC");
        assert_eq!(scale_color_hex(1.0), "#B2182B");
        assert_eq!(scale_color_hex(-3.0), "#2166AC", "clamped");
        let mut last_red = 0u8;
        for k in 0..=10 {
            let RGBColor(r, g, b) = scale_color(f64::from(k) / 10.0);
            // Red grows from cold to hot; every step is a saturated colour
            // (the render check tells plot colour from grey text by this).
            assert!(r >= last_red, "{k}: {r} < {last_red}");
            last_red = r;
            assert!(r.max(g).max(b) - r.min(g).min(b) > 60, "{k}: {r} {g} {b}");
        }
        // Distinct temperatures get distinct colours.
        assert_ne!(scale_color_hex(0.25), scale_color_hex(0.5));
    }

    #[test]
    fn overlay_series_are_drawn_in_their_scale_colour() {
        let series: Vec<Series> = [0.0, 0.5, 1.0]
            .into_iter()
            .map(|pos| Series {
                color_scale: Some(pos),
                ..Series::new(
                    format!("{pos}"),
                    SeriesKind::Line,
                    0,
                    vec![0.0, 1.0, 2.0],
                    vec![pos, pos + 1.0, pos],
                )
            })
            .collect();
        let svg = render(&figure(vec![panel(
            axis("E", "V", Scale::Linear),
            axis("I", "mA", Scale::Linear),
            series,
        )]));
        for pos in [0.0, 0.5, 1.0] {
            let hex = scale_color_hex(pos);
            // The curve and its legend swatch.
            assert_eq!(line_polylines(&svg, &hex).len(), 2, "{hex}");
        }
    }

    #[test]
    fn explicit_ticks_label_every_order_and_nothing_else() {
        let n: Vec<f64> = (1..=5).map(f64::from).collect();
        let svg = render(&figure(vec![panel(
            Axis {
                range: Some([0.5, 7.6]),
                ticks: Some(n.clone()),
                ..axis("harmonic n", "", Scale::Linear)
            },
            axis("|X_n| / |X_1|", "", Scale::Log),
            vec![Series::new(
                "",
                SeriesKind::Points,
                0,
                n.clone(),
                vec![1.0, 0.1, 0.01, 0.001, 1e-4],
            )],
        )]));
        let t = texts(&svg);
        for k in ["1", "2", "3", "4", "5"] {
            assert!(t.iter().any(|x| x == k), "tick {k} in {t:?}");
        }
        for k in ["6", "7", "0.5", "2.5"] {
            assert!(!t.iter().any(|x| x == k), "no tick {k} in {t:?}");
        }
    }

    #[test]
    fn point_labels_and_top_axis_are_drawn() {
        let inv_T: Vec<f64> = [300.0, 320.0, 340.0].iter().map(|t| 1000.0 / t).collect();
        let fig = figure(vec![Panel {
            top_axis: Some(crate::model::TopAxis {
                label: "T".into(),
                unit: "°C".into(),
                ticks: [30.0, 50.0, 500.0]
                    .iter()
                    .map(|c: &f64| crate::model::Tick {
                        at: 1000.0 / (c + 273.15),
                        label: format!("{c}"),
                    })
                    .collect(),
            }),
            ..panel(
                axis("1000 K / T", "", Scale::Linear),
                axis("y", "", Scale::Linear),
                vec![Series {
                    labels: Some(vec!["1 kHz".into(), String::new(), "0.1 Hz".into()]),
                    ..Series::new("", SeriesKind::Points, 0, inv_T, vec![1.0, 2.0, 3.0])
                }],
            )
        }]);
        let svg = render(&fig);
        let t = texts(&svg);
        for want in ["1 kHz", "0.1 Hz", "T / °C", "30", "50"] {
            assert!(t.iter().any(|x| x == want), "{want} in {t:?}");
        }
        // 500 °C lies outside the drawn range: no tick.
        assert!(!t.iter().any(|x| x == "500"), "{t:?}");
    }

    #[test]
    fn band_width_in_px_is_reported() {
        let x: Vec<f64> = (0..10).map(f64::from).collect();
        let mk = |half: f64| {
            figure(vec![panel(
                axis("x", "", Scale::Linear),
                axis("y", "", Scale::Linear),
                vec![
                    Series {
                        y_upper: Some(x.iter().map(|v| v + half).collect()),
                        ..Series::new(
                            "",
                            SeriesKind::Band,
                            0,
                            x.clone(),
                            x.iter().map(|v| v - half).collect(),
                        )
                    },
                    Series::new("", SeriesKind::Line, 0, x.clone(), x.clone()),
                ],
            )])
        };
        // y spans about 9 units over roughly 330 px: 0.01 is well below a px.
        let thin = band_widths_px(&mk(0.005), 0);
        let wide = band_widths_px(&mk(1.0), 0);
        assert_eq!(thin.len(), 1);
        assert!(thin[0].1 < 1.0, "{thin:?}");
        assert!(wide[0].1 > 40.0 && wide[0].1 < 100.0, "{wide:?}");
        assert!(band_widths_px(&mk(1.0), 1).is_empty(), "no such panel");
    }

    #[test]
    fn write_examples() {
        if std::env::var_os("VEGARD_SVG_EXAMPLES").is_none() {
            return;
        }
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/svg-examples");
        std::fs::create_dir_all(&dir).unwrap();
        // Bode: log-log magnitude and log-linear phase, a fit dashed.
        let f: Vec<f64> = (0..60)
            .map(|i| 10f64.powf(-2.0 + f64::from(i) * 0.12))
            .collect();
        let z = |f: f64| {
            let w = 2.0 * std::f64::consts::PI * f;
            let (r, c, rs) = (1000.0, 1e-5, 20.0);
            let d = 1.0 + (w * r * c).powi(2);
            (rs + r / d, -w * r * r * c / d)
        };
        let mag: Vec<f64> = f
            .iter()
            .map(|f| {
                let (a, b) = z(*f);
                a.hypot(b)
            })
            .collect();
        let ph: Vec<f64> = f
            .iter()
            .map(|f| {
                let (a, b) = z(*f);
                b.atan2(a).to_degrees()
            })
            .collect();
        let noisy: Vec<f64> = mag
            .iter()
            .enumerate()
            .map(|(i, m)| m * (1.0 + 0.05 * (i as f64).sin()))
            .collect();
        let bode = Figure {
            id: "bode".into(),
            title: "EIS: Bode".into(),
            caption: None,
            width_px: 720,
            height_px: 560,
            panels: vec![
                panel(
                    axis("f", "Hz", Scale::Log),
                    axis("|Z|", "Ω", Scale::Log),
                    vec![
                        Series::new("measured", SeriesKind::Points, 0, f.clone(), noisy),
                        Series::new("R(RC) fit", SeriesKind::Dashed, 1, f.clone(), mag.clone()),
                    ],
                ),
                panel(
                    axis("f", "Hz", Scale::Log),
                    axis("φ", "°", Scale::Linear),
                    vec![Series::new("", SeriesKind::Line, 0, f.clone(), ph)],
                ),
            ],
        };
        let th: Vec<f64> = (0..=40)
            .map(|i| std::f64::consts::PI * f64::from(i) / 40.0)
            .collect();
        let nyquist = Figure {
            id: "nyquist".into(),
            title: "EIS: Nyquist".into(),
            caption: None,
            width_px: 720,
            height_px: 420,
            panels: vec![Panel {
                equal_aspect: true,
                ..panel(
                    axis("Z'", "Ω", Scale::Linear),
                    axis("-Z''", "Ω", Scale::Linear),
                    vec![Series::new(
                        "EIS",
                        SeriesKind::Points,
                        0,
                        th.iter().map(|t| 520.0 - 500.0 * t.cos()).collect(),
                        th.iter().map(|t| 500.0 * t.sin()).collect(),
                    )],
                )
            }],
        };
        let inv_t: Vec<f64> = (0..6).map(|i| 3.0 + 0.1 * f64::from(i)).collect();
        let k: Vec<f64> = inv_t.iter().map(|x| 1e6 * (-4.0 * x).exp()).collect();
        let arr = Figure {
            id: "arrhenius".into(),
            title: "Arrhenius".into(),
            caption: None,
            width_px: 560,
            height_px: 380,
            panels: vec![Panel {
                title: Some("σ from EIS & ESM".into()),
                x: Axis {
                    reversed: true,
                    ..axis("1000/T", "1/K", Scale::Linear)
                },
                y: axis("ln(σT)", "", Scale::Linear),
                equal_aspect: false,
                legend: Legend::default(),
                top_axis: None,
                series: vec![
                    Series {
                        y_err: Some(vec![0.05, 0.08, 0.1, 0.2, 0.1, 0.05]),
                        ..Series::new(
                            "EIS",
                            SeriesKind::Points,
                            0,
                            inv_t.clone(),
                            k.iter().map(|v| v.ln()).collect(),
                        )
                    },
                    Series {
                        y_upper: Some(k.iter().map(|v| v.ln() + 0.3).collect()),
                        ..Series::new(
                            "95 % band",
                            SeriesKind::Band,
                            1,
                            inv_t.clone(),
                            k.iter().map(|v| v.ln() - 0.3).collect(),
                        )
                    },
                ],
            }],
        };
        let t: Vec<f64> = (0..400).map(|i| f64::from(i) * 0.25).collect();
        let mut e: Vec<f64> = t.iter().map(|t| 0.4 * (t * 0.1).sin()).collect();
        e[150] = f64::NAN;
        let stack = Figure {
            id: "run".into(),
            title: "Run: potential, current, displacement".into(),
            caption: None,
            width_px: 720,
            height_px: 640,
            panels: vec![
                panel(
                    axis("t", "s", Scale::Linear),
                    axis("E", "V", Scale::Linear),
                    vec![Series::new("E", SeriesKind::Line, 0, t.clone(), e)],
                ),
                panel(
                    axis("t", "s", Scale::Linear),
                    axis("I", "µA", Scale::Linear),
                    vec![Series::new(
                        "",
                        SeriesKind::Line,
                        1,
                        t.clone(),
                        t.iter().map(|t| 3e-5 * (t * 0.1).cos()).collect(),
                    )],
                ),
                panel(
                    axis("t", "s", Scale::Linear),
                    axis("u", "pm", Scale::Linear),
                    vec![],
                ),
            ],
        };
        let harm = figure(vec![panel(
            axis("n", "", Scale::Linear),
            axis("A_n", "pm", Scale::Log),
            vec![Series::new(
                "harmonics",
                SeriesKind::Points,
                4,
                vec![1.0, 2.0, 3.0, 4.0, 5.0],
                vec![120.0, 8.0, 0.9, 0.05, 0.002],
            )],
        )]);
        for fig in [bode, nyquist, arr, stack, harm] {
            let svg = render(&fig);
            std::fs::write(dir.join(format!("{}.svg", fig.id)), svg).unwrap();
        }
    }
}
