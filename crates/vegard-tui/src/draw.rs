//! The panels. [`draw`] reads [`DashState`] and [`UiState`] and changes
//! neither; everything a frame needs that is costly (decimation) is computed
//! here from the summaries the state keeps, sized to the cells on screen.
//!
//! Layout ([`layout`], pure, so tests can check it): header, the numeric
//! readout (one line, two on 80 columns), E/I/u traces on the left, the
//! panels of the running technique on the right ([`Focus`]: loops and kappa
//! for CV-like steps, Nyquist and |Z| for EIS, amplitude and phase for ESM,
//! T for a temperature step), events and clocks below. Below 120 × 36 cells
//! ("compact", down to 80 × 24) panels have only a top border and a blank
//! column between the halves; the plan list, instrument IDNs and the second
//! row of right-hand panels only appear in the full layout. Text that does
//! not fit is elided with "…", never cut mid-word.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Chart, Clear, Dataset, GraphType, LineGauge, Paragraph, Wrap,
};

use crate::input::{InputMode, SpectrumChoice, TimeWindow, UiState};
use crate::readout::{MISSING, Readout, sig4};
use crate::series::axis_bounds;
use crate::series::{stride_points, x_range, y_range};
use crate::state::DashState;
use crate::{LogLevel, Mode};

/// Alignment error above which the clock row turns red, s.
pub const ALIGNMENT_WARN_S: f64 = 1e-3;
/// |drift| above which the clock row turns yellow, ppm (a quartz timebase is
/// within about 100 ppm of nominal; more means something is off).
pub const DRIFT_WARN_PPM: f64 = 100.0;
/// Most points drawn per loop (x-y) series.
const LOOP_MAX_POINTS: usize = 2000;

const C_E: Color = Color::Yellow;
const C_I: Color = Color::LightCyan;
const C_U: Color = Color::LightGreen;
const C_PREV: Color = Color::DarkGray;
const C_SET: Color = Color::LightMagenta;
const C_T: Color = Color::LightRed;

/// One panel of the dashboard; [`layout`] places them, [`draw`] fills them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    Header,
    Readout,
    /// Potential vs time.
    TraceE,
    /// Current vs time.
    TraceI,
    /// Deflection vs time.
    TraceU,
    IvLoop,
    /// u vs Q of the current cycle, with the running kappa.
    UqLoop,
    Nyquist,
    /// |Z| vs frequency.
    Bode,
    EsmAmplitude,
    EsmPhase,
    Temperature,
    Events,
    Plan,
    Clocks,
    Footer,
}

/// What the right-hand panels show: chosen by the running technique (or by
/// the user's `s`), so a panel never shows a quantity that does not apply,
/// e.g. a kappa fitted to the oscillating charge of an EIS or ESM step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// CV, LSV, potential steps, OCP (and before the first step): I–E and
    /// u–Q loops with the kappa.
    Loops,
    /// EIS: Nyquist and |Z| vs f.
    Impedance,
    /// ESM sweep: amplitude and phase vs f.
    Esm,
    /// Temperature step: T and setpoint, large.
    Temperature,
}

/// The focus for the running step and the user's spectrum choice.
pub fn focus(state: &DashState, ui: &UiState) -> Focus {
    match ui.spectrum {
        SpectrumChoice::Nyquist => Focus::Impedance,
        SpectrumChoice::Esm => Focus::Esm,
        SpectrumChoice::Temperature => Focus::Temperature,
        SpectrumChoice::Auto => match state.current_kind() {
            Some("eis") => Focus::Impedance,
            Some("esm_sweep") => Focus::Esm,
            Some("temperature") => Focus::Temperature,
            _ => Focus::Loops,
        },
    }
}

/// Below this width or height the compact layout is used (down to 80 × 24).
pub const FULL_MIN_W: u16 = 120;
pub const FULL_MIN_H: u16 = 36;

/// Where every panel goes in `area`. Panels never overlap, and two panels
/// side by side either both have borders or are one blank column apart, so
/// no tick label or trace of one runs into the next (checked by the
/// snapshot tests at 80 × 24, 120 × 40 and 200 × 60).
pub fn layout(area: Rect, state: &DashState, ui: &UiState) -> Vec<(Panel, Rect)> {
    let mut out = Vec::new();
    if area.width < 20 || area.height < 6 {
        return out;
    }
    let compact = area.width < FULL_MIN_W || area.height < FULL_MIN_H;
    let readout_rows = readout_lines(&Readout::of(state), area.width).len() as u16;
    let bottom_rows = match (compact, area.height) {
        (false, _) => 10,
        (true, h) if h >= 30 => 6,
        (true, h) if h >= 20 => 5,
        _ => 0,
    };
    let [header, readout, main, bottom, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(readout_rows),
        Constraint::Min(0),
        Constraint::Length(bottom_rows),
        Constraint::Length(1),
    ])
    .areas(area);
    out.push((Panel::Header, header));
    out.push((Panel::Readout, readout));
    // Compact panels have only a top border: a blank column between the two
    // halves keeps the left traces off the right panels' y labels.
    let gap = u16::from(compact);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .spacing(gap)
            .areas(main);
    let [a_e, a_i, a_u] = Layout::vertical([Constraint::Ratio(1, 3); 3]).areas(left);
    out.extend([
        (Panel::TraceE, a_e),
        (Panel::TraceI, a_i),
        (Panel::TraceU, a_u),
    ]);
    let f = focus(state, ui);
    let pair = |f: Focus| match f {
        Focus::Loops => [Some(Panel::IvLoop), Some(Panel::UqLoop)],
        Focus::Impedance => [Some(Panel::Nyquist), Some(Panel::Bode)],
        Focus::Esm => [Some(Panel::EsmAmplitude), Some(Panel::EsmPhase)],
        Focus::Temperature => [Some(Panel::Temperature), None],
    };
    let split =
        |a: Rect, vertical: bool, panels: [Option<Panel>; 2], out: &mut Vec<(Panel, Rect)>| {
            match panels {
                [Some(p), Some(q)] => {
                    let [x, y] = if vertical {
                        Layout::vertical([Constraint::Percentage(50); 2]).areas(a)
                    } else {
                        Layout::horizontal([Constraint::Percentage(50); 2]).areas(a)
                    };
                    out.extend([(p, x), (q, y)]);
                }
                [Some(p), None] | [None, Some(p)] => out.push((p, a)),
                [None, None] => {}
            }
        };
    if compact {
        split(right, true, pair(f), &mut out);
        if bottom_rows > 0 {
            let [ev, clk] =
                Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
                    .spacing(1)
                    .areas(bottom);
            out.extend([(Panel::Events, ev), (Panel::Clocks, clk)]);
        }
    } else {
        match context(state, f) {
            Some(c) => {
                let [top, low] =
                    Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)])
                        .areas(right);
                split(top, false, pair(f), &mut out);
                split(low, false, pair(c), &mut out);
            }
            None => split(right, true, pair(f), &mut out),
        }
        let [ev, plan, clk] = Layout::horizontal([
            Constraint::Percentage(40),
            Constraint::Percentage(30),
            Constraint::Percentage(30),
        ])
        .areas(bottom);
        out.extend([
            (Panel::Events, ev),
            (Panel::Plan, plan),
            (Panel::Clocks, clk),
        ]);
    }
    out.push((Panel::Footer, footer));
    out
}

/// The full layout's second row of right-hand panels: what was measured
/// most recently besides the focus (the last spectrum, else temperature),
/// never the loops outside a CV-like step (their kappa would not apply).
fn context(state: &DashState, f: Focus) -> Option<Focus> {
    let last_eis = state.eis.last().map(|p| p.step);
    let last_esm = state.esm.last().map(|p| p.step);
    let has_t = !state.temp.t_s.is_empty();
    let mut order: Vec<Focus> = match (last_eis, last_esm) {
        (Some(e), Some(m)) if m > e => vec![Focus::Esm, Focus::Impedance],
        (Some(_), Some(_)) => vec![Focus::Impedance, Focus::Esm],
        (Some(_), None) => vec![Focus::Impedance],
        (None, Some(_)) => vec![Focus::Esm],
        (None, None) => vec![],
    };
    // A temperature stage matters most while a spectrum is measured at T.
    if has_t {
        let at = if matches!(f, Focus::Impedance | Focus::Esm) {
            0
        } else {
            order.len()
        };
        order.insert(at, Focus::Temperature);
    }
    order.into_iter().find(|&c| c != f)
}

/// Draw the whole dashboard into `frame`.
pub fn draw(frame: &mut Frame, state: &DashState, ui: &UiState) {
    let area = frame.area();
    let panels = layout(area, state, ui);
    if panels.is_empty() {
        frame.render_widget(Paragraph::new("vegard: terminal too small"), area);
        return;
    }
    let compact = area.width < FULL_MIN_W || area.height < FULL_MIN_H;
    let borders = if compact { Borders::TOP } else { Borders::ALL };
    let x_window = time_bounds(state, ui.window);
    for (panel, r) in panels {
        match panel {
            Panel::Header => draw_header(frame, r, state, compact),
            Panel::Readout => draw_readout(frame, r, state, focus(state, ui)),
            Panel::TraceE | Panel::TraceI | Panel::TraceU => {
                draw_trace(frame, r, state, ui, panel, x_window, borders, !compact)
            }
            Panel::IvLoop => draw_iv_loop(frame, r, state, borders),
            Panel::UqLoop => draw_uq_loop(frame, r, state, borders),
            Panel::Nyquist => draw_nyquist(frame, r, state, borders),
            Panel::Bode => draw_bode(frame, r, state, borders),
            Panel::EsmAmplitude => draw_esm(frame, r, state, borders, true),
            Panel::EsmPhase => draw_esm(frame, r, state, borders, false),
            Panel::Temperature => draw_temperature(frame, r, state, borders),
            Panel::Events => draw_events(
                frame,
                r,
                state,
                if compact { Borders::TOP } else { Borders::ALL },
            ),
            Panel::Plan => draw_plan(frame, r, state),
            Panel::Clocks => draw_clocks(
                frame,
                r,
                state,
                if compact { Borders::TOP } else { Borders::ALL },
                !compact,
            ),
            Panel::Footer => draw_footer(frame, r, state, ui),
        }
    }
    if ui.help {
        draw_help(frame, area, state.mode);
    }
}

// ---------------------------------------------------------------- readout

/// The readout's items packed into as few lines of `width` as they fit,
/// most important first; an item wider than a line is elided.
pub fn readout_lines(r: &Readout, width: u16) -> Vec<Vec<(&'static str, String)>> {
    let width = usize::from(width);
    let items = r.items(width >= usize::from(FULL_MIN_W));
    let sep = 3;
    let mut lines: Vec<Vec<(&'static str, String)>> = Vec::new();
    let mut used = 0;
    for (label, value) in items {
        let len = label.chars().count() + 1 + value.chars().count();
        match lines.last_mut() {
            Some(line) if used + sep + len <= width.saturating_sub(1) => {
                used += sep + len;
                line.push((label, value));
            }
            _ => {
                let room = width.saturating_sub(2 + label.chars().count());
                let value = elide(&value, room);
                used = label.chars().count() + 1 + value.chars().count();
                lines.push(vec![(label, value)]);
            }
        }
    }
    lines
}

/// The readout; during a temperature step T is drawn in its colour, the
/// number to watch while the stage settles.
fn draw_readout(frame: &mut Frame, area: Rect, state: &DashState, focus: Focus) {
    let color = |label: &str| match label {
        "E" => C_E,
        "I" => C_I,
        "u" | "κ" => C_U,
        "T" => C_T,
        _ => Color::White,
    };
    let lines: Vec<Line> = readout_lines(&Readout::of(state), area.width)
        .into_iter()
        .map(|items| {
            let mut spans = vec![Span::raw(" ")];
            for (k, (label, value)) in items.into_iter().enumerate() {
                if k > 0 {
                    spans.push(Span::raw("   "));
                }
                spans.push(Span::styled(
                    format!("{label} "),
                    Style::new().fg(color(label)).add_modifier(Modifier::BOLD),
                ));
                let style = if value == MISSING {
                    Style::new().fg(Color::DarkGray)
                } else if label == "T" && focus == Focus::Temperature {
                    Style::new().fg(C_T).add_modifier(Modifier::BOLD)
                } else {
                    Style::new().add_modifier(Modifier::BOLD)
                };
                spans.push(Span::styled(value, style));
            }
            Line::from(spans)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), area);
}

// ---------------------------------------------------------------- header

fn draw_header(frame: &mut Frame, area: Rect, state: &DashState, compact: bool) {
    let [l1, l2] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    let mode = match state.mode {
        Mode::Run => "RUN",
        Mode::Watch => "WATCH",
    };
    let mut spans = vec![
        Span::styled(" vegard ", Style::new().add_modifier(Modifier::BOLD)),
        Span::styled(
            format!("{mode} "),
            Style::new().fg(Color::Black).bg(Color::Cyan),
        ),
        Span::raw(" "),
    ];
    let step_txt = match (&state.progress, &state.step) {
        (Some(p), _) => {
            let mut s = format!("step {}/{} {}", p.step + 1, p.count.max(1), p.kind);
            if p.cycles > 1 {
                s.push_str(&format!(
                    " · {} {}/{}",
                    counter_name(&p.kind),
                    p.cycle,
                    p.cycles
                ));
            }
            s
        }
        (None, Some(st)) => format!("step {}/{} {}", st.index + 1, st.count.max(1), st.kind),
        // Ended before any step (an abort at the start, or a folder the
        // tailer could not read): not "waiting", the status box says why.
        (None, None) if state.finished.is_some() => "no step recorded".to_string(),
        (None, None) => "waiting for the run to start".to_string(),
    };
    spans.push(Span::raw(step_txt));
    // Dropped first when the line is too long (the gauge below shows it).
    let elapsed_at = spans.len();
    if let Some(p) = &state.progress {
        spans.push(Span::raw(format!(
            " · elapsed {} · ETA {}",
            fmt_duration(p.elapsed_s),
            fmt_duration(p.eta_s)
        )));
    }
    if !compact && state.speed != 1.0 {
        spans.push(Span::raw(format!(" · ×{}", state.speed)));
    }
    // A state badge: black bold text on `color`, after a space.
    let mut badge = |text: String, color: Color| {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(
            format!(" {text} "),
            Style::new()
                .fg(Color::Black)
                .bg(color)
                .add_modifier(Modifier::BOLD),
        ));
    };
    if state.paused {
        badge("PAUSED".into(), Color::Yellow);
    }
    if state.stopping && state.finished.is_none() {
        badge("ENDING".into(), Color::Cyan);
    }
    if let Some((status, _)) = &state.finished {
        let color = if status == "complete" {
            Color::Green
        } else {
            Color::Red
        };
        badge(status.to_uppercase(), color);
    }
    if !compact && let Some(dir) = &state.run_dir {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        spans.push(Span::styled(
            format!("  {name}"),
            Style::new().fg(Color::DarkGray),
        ));
    }
    let width = |spans: &[Span]| spans.iter().map(Span::width).sum::<usize>();
    if width(&spans) > usize::from(area.width) && state.progress.is_some() {
        spans.remove(elapsed_at);
    }
    if width(&spans) > usize::from(area.width) {
        let text: String = spans.iter().map(|s| s.content.as_ref()).collect();
        spans = vec![Span::raw(elide(&text, usize::from(area.width)))];
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), l1);

    let ratio = match &state.progress {
        Some(p) if p.elapsed_s + p.eta_s > 0.0 => p.elapsed_s / (p.elapsed_s + p.eta_s),
        _ => 0.0,
    };
    // A run that ended before any progress was reported did none of its plan.
    let ratio = if state.finished.is_some() && state.progress.is_some() {
        1.0
    } else {
        ratio.clamp(0.0, 1.0)
    };
    let label = match &state.finished {
        Some((_, Some(reason))) => format!("{:>3.0} % · {reason}", ratio * 100.0),
        _ => format!(
            "{:>3.0} % of {} planned",
            ratio * 100.0,
            fmt_duration(state.total_s)
        ),
    };
    // A long abort reason is elided, not cut (the events panel has it).
    let label = elide(&label, usize::from(area.width.saturating_sub(4)));
    let color = match &state.finished {
        Some((s, _)) if s != "complete" => Color::Red,
        _ => Color::Green,
    };
    frame.render_widget(
        LineGauge::default()
            .ratio(ratio)
            .label(label)
            .filled_style(Style::new().fg(color))
            .unfilled_style(Style::new().fg(Color::DarkGray)),
        l2,
    );
}

/// What the progress counter counts, by technique.
fn counter_name(kind: &str) -> &'static str {
    vegard_recipe::counter_name(kind).unwrap_or("part")
}

// ---------------------------------------------------------------- traces

/// Experiment-time window of the traces, s.
fn time_bounds(state: &DashState, window: TimeWindow) -> [f64; 2] {
    let first = [state.pot.t_s.first(), state.defl.t_s.first()]
        .into_iter()
        .flatten()
        .copied()
        .filter(|t| t.is_finite())
        .fold(f64::INFINITY, f64::min);
    let hi = state.t_latest_s;
    let lo = match window {
        TimeWindow::All => {
            if first.is_finite() {
                first.min(hi)
            } else {
                0.0
            }
        }
        TimeWindow::Last(s) => hi - f64::from(s),
    };
    if hi > lo { [lo, hi] } else { [lo, lo + 1.0] }
}

/// Smallest span of each trace's y axis. A signal that is only noise would
/// otherwise be autoscaled to fill the panel and read as an oscillation or
/// a drift. Each floor is many times the recorded noise (the virtual bench
/// models the instruments' rms noise: E 50 µV, I 50 nA, u 0.02 nm,
/// T 0.01 K, about 0.02 K peak to peak on a real stage), so
/// noise fills a few percent of the axis and real changes of the size that
/// matters still fill most of it.
///
/// E: 5 mV (±2.5 mV) — 100× the noise; OCP relaxations of a few mV show.
pub const MIN_SPAN_E_V: f64 = 5e-3;
/// I: 1 µA (±0.5 µA) — 20× the noise; a CV of a thin film gives tens of µA.
pub const MIN_SPAN_I_A: f64 = 1e-6;
/// u: 0.5 nm (±0.25 nm) — 25× the noise; Vegard strains of a film give
/// 0.1–10 nm.
pub const MIN_SPAN_U_NM: f64 = 0.5;
/// T: 1 K (±0.5 K) — 50× the noise; a temperature step is 5–50 K, and a
/// stage that holds its setpoint draws as the flat line it is.
pub const MIN_SPAN_T_K: f64 = 1.0;

#[allow(clippy::too_many_arguments)] // one call site, in draw
fn draw_trace(
    frame: &mut Frame,
    area: Rect,
    state: &DashState,
    ui: &UiState,
    which: Panel,
    x: [f64; 2],
    borders: Borders,
    full: bool,
) {
    let window = match ui.window {
        TimeWindow::All => "whole run".to_string(),
        TimeWindow::Last(s) => format!("last {s} s"),
    };
    let span = format!(
        "t {}–{} s",
        fmt_num(x[0], x[1] - x[0]),
        fmt_num(x[1], x[1] - x[0])
    );
    // Columns the plot gets: the panel minus y labels and the axis (~9).
    let buckets = usize::from(area.width.saturating_sub(9)).max(1);
    let title = |q: &str, unit: &str| {
        if full {
            format!(" {q} ({unit}) ")
        } else {
            format!(" {q} ({unit}) vs t (s) · {span} ")
        }
    };
    let p = &state.pot;
    let d = &state.defl;
    let (data, title, color, min_span, empty) = match which {
        Panel::TraceE => (
            p.E_mm.decimate(&p.t_s, &p.E_V, x[0], x[1], buckets),
            title("E", "V"),
            C_E,
            MIN_SPAN_E_V,
            "no potentiostat data yet",
        ),
        Panel::TraceI => {
            let raw = p.I_mm.decimate(&p.t_s, &p.I_A, x[0], x[1], buckets);
            let (scale, unit) = si_scale(&raw, "A");
            (
                raw.iter().map(|&(t, v)| (t, v * scale)).collect(),
                title("I", unit),
                C_I,
                MIN_SPAN_I_A * scale,
                "no current (open circuit)",
            )
        }
        _ => (
            d.mm.decimate(&d.t_s, &d.nm, x[0], x[1], buckets),
            if full {
                format!(" u deflection (nm) · {window} ")
            } else {
                title("u", "nm")
            },
            C_U,
            MIN_SPAN_U_NM,
            "no deflection data yet",
        ),
    };
    let last = which == Panel::TraceU;
    plot(
        frame,
        area,
        PlotSpec {
            title: title.into(),
            series: vec![(&data, Style::new().fg(color))],
            x,
            min_span,
            x_labels: full && last,
            x_title: (full && last).then(|| "t (s)".to_string()),
            borders,
            empty,
        },
    );
}

// ---------------------------------------------------------------- loops

fn draw_iv_loop(frame: &mut Frame, area: Rect, state: &DashState, borders: Borders) {
    let (cur, prev) = state.current_cycles();
    let p = &state.pot;
    let pts = |s: Option<crate::state::CycleSpan>| {
        s.map(|s| stride_points(&p.E_V, &p.I_A, s.start, s.end, LOOP_MAX_POINTS))
            .unwrap_or_default()
    };
    let (c_raw, p_raw) = (pts(cur), pts(prev));
    let both: Vec<(f64, f64)> = c_raw.iter().chain(&p_raw).copied().collect();
    let (scale, unit) = si_scale(&both, "A");
    let sc = |v: &[(f64, f64)]| v.iter().map(|&(e, i)| (e, i * scale)).collect::<Vec<_>>();
    let (c, pr) = (sc(&c_raw), sc(&p_raw));
    let which = cur.map_or(String::new(), |s| cycle_words(state, s.step, s.cycle));
    plot_xy(
        frame,
        area,
        XySpec {
            title: format!(" I ({unit}) vs E (V){which} "),
            current: &c,
            previous: &pr,
            color: C_I,
            x_title: "E (V)",
            y_min_span: MIN_SPAN_I_A * scale,
            borders,
            empty: "no I–E data yet",
        },
    );
}

fn draw_uq_loop(frame: &mut Frame, area: Rect, state: &DashState, borders: Borders) {
    let (cur, prev) = state.current_cycles();
    let p = &state.pot;
    let pts = |s: Option<crate::state::CycleSpan>| {
        s.map(|s| stride_points(&p.Q_mC, &p.u_nm, s.start, s.end, LOOP_MAX_POINTS))
            .unwrap_or_default()
    };
    let (c, pr) = (pts(cur), pts(prev));
    // The fit is only over steps it applies to (CV, LSV, steps): shown here
    // only when it is the fit of the step drawn.
    let kappa = match (state.kappa(), cur) {
        (Some((ks, k, r2, _)), Some(c)) if ks == c.step => {
            let r2 = r2.map_or(String::new(), |r| format!(" · R² {r:.3}"));
            (
                format!("κ = {} nm/mC{r2}", sig4(k)),
                Style::new().fg(C_U).add_modifier(Modifier::BOLD),
            )
        }
        _ => (
            "no κ for this step".to_string(),
            Style::new().fg(Color::DarkGray),
        ),
    };
    // The slope gets its own line: it is the number people watch, and the
    // title has no room for it in a narrow panel.
    let block = titled(borders, " u (nm) vs Q (mC) ", area);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [k_row, chart] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    frame.render_widget(
        Paragraph::new(Line::styled(
            elide(&kappa.0, usize::from(k_row.width)),
            kappa.1,
        ))
        .alignment(Alignment::Right),
        k_row,
    );
    plot_xy(
        frame,
        chart,
        XySpec {
            title: String::new(),
            current: &c,
            previous: &pr,
            color: C_U,
            x_title: "Q (mC)",
            y_min_span: MIN_SPAN_U_NM,
            borders: Borders::NONE,
            empty: "no deflection paired with charge yet",
        },
    );
}

/// " · cycle 3" for CV steps (level, frequency in steps and ESM sweeps),
/// " · step 4" otherwise. The previous cycle is the grey one; the help
/// overlay says so, the title has no room.
fn cycle_words(state: &DashState, step: usize, cycle: u32) -> String {
    match state.step_kind(step) {
        Some(kind @ ("cv" | "steps" | "esm_sweep")) => {
            format!(" · {} {cycle}", counter_name(kind))
        }
        _ => format!(" · step {}", step + 1),
    }
}

// ---------------------------------------------------------------- spectrum

/// The step whose spectrum to show: the running one if it has points of
/// this kind, else the latest step that has.
fn spectrum_steps(steps: impl DoubleEndedIterator<Item = usize>) -> (Option<usize>, Option<usize>) {
    let mut seen: Vec<usize> = Vec::new();
    for s in steps.rev() {
        if !seen.contains(&s) {
            seen.push(s);
            if seen.len() == 2 {
                break;
            }
        }
    }
    (seen.first().copied(), seen.get(1).copied())
}

fn draw_nyquist(frame: &mut Frame, area: Rect, state: &DashState, borders: Borders) {
    let (cur, prev) = spectrum_steps(state.eis.iter().map(|p| p.step));
    let pts = |s: Option<usize>| -> Vec<(f64, f64)> {
        state
            .eis
            .iter()
            .filter(|p| Some(p.step) == s)
            .map(|p| (p.Z_re_ohm, -p.Z_im_ohm))
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect()
    };
    let (c, pr) = (pts(cur), pts(prev));
    let last_f = state
        .eis
        .iter()
        .rev()
        .find(|p| Some(p.step) == cur)
        .map_or(String::new(), |p| {
            format!(" · {} pts, {} Hz", c.len(), fmt_sig(p.f_Hz))
        });
    plot_xy(
        frame,
        area,
        XySpec {
            title: format!(" −Z'' vs Z' (Ω){last_f} "),
            current: &c,
            previous: &pr,
            color: Color::LightYellow,
            x_title: "Z' (Ω)",
            y_min_span: 0.0,
            borders,
            empty: "no impedance points yet",
        },
    );
}

/// |Z| against log10 f of the latest EIS step: where the Nyquist plot
/// crowds the high frequencies into a corner, this spreads them out.
fn draw_bode(frame: &mut Frame, area: Rect, state: &DashState, borders: Borders) {
    let (cur, _) = spectrum_steps(state.eis.iter().map(|p| p.step));
    let pts: Vec<(f64, f64)> = state
        .eis
        .iter()
        .filter(|p| Some(p.step) == cur && p.f_Hz > 0.0)
        .map(|p| (p.f_Hz.log10(), p.Z_re_ohm.hypot(p.Z_im_ohm)))
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    let x = log_f_bounds(&pts);
    plot(
        frame,
        area,
        PlotSpec {
            title: " |Z| (Ω) vs f ".into(),
            series: vec![(&pts, Style::new().fg(Color::LightYellow))],
            x,
            min_span: 0.0,
            x_labels: true,
            x_title: Some("log10 f (Hz)".into()),
            borders,
            empty: "no impedance points yet",
        },
    );
}

fn log_f_bounds(pts: &[(f64, f64)]) -> [f64; 2] {
    match x_range(pts) {
        Some((lo, hi)) if hi > lo => [lo, hi],
        Some((lo, _)) => [lo - 0.5, lo + 0.5],
        None => [-2.0, 0.0],
    }
}

/// ESM amplitude (`amplitude`) or phase against log10 f of the latest sweep.
fn draw_esm(frame: &mut Frame, area: Rect, state: &DashState, borders: Borders, amplitude: bool) {
    let (cur, _) = spectrum_steps(state.esm.iter().map(|p| p.step));
    let pts: Vec<(f64, f64)> = state
        .esm
        .iter()
        .filter(|p| Some(p.step) == cur && p.f_Hz > 0.0)
        .map(|p| {
            let y = if amplitude {
                p.amplitude_nm_per_V
            } else {
                p.phase_deg
            };
            (p.f_Hz.log10(), y)
        })
        .filter(|p| p.1.is_finite())
        .collect();
    let x = log_f_bounds(&pts);
    let (title, color) = if amplitude {
        (format!(" ESM |u|/V (nm/V) · {} f ", pts.len()), C_U)
    } else {
        (" ESM phase (°) ".to_string(), C_E)
    };
    plot(
        frame,
        area,
        PlotSpec {
            title: title.into(),
            series: vec![(&pts, Style::new().fg(color))],
            x,
            min_span: 0.0,
            x_labels: true,
            x_title: Some("log10 f (Hz)".into()),
            borders,
            empty: "no ESM points yet",
        },
    );
}

fn draw_temperature(frame: &mut Frame, area: Rect, state: &DashState, borders: Borders) {
    let tp = &state.temp;
    let t: Vec<(f64, f64)> = tp
        .t_s
        .iter()
        .zip(&tp.T_K)
        .map(|(&t, &v)| (t, v))
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    let sp: Vec<(f64, f64)> = tp
        .t_s
        .iter()
        .zip(&tp.setpoint_K)
        .map(|(&t, &v)| (t, v))
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    let x = match x_range(&t) {
        Some((lo, hi)) if hi > lo => [lo, hi],
        Some((lo, _)) => [lo, lo + 1.0],
        None => [0.0, 1.0],
    };
    let now = match (tp.T_K.last(), tp.setpoint_K.last()) {
        (Some(t), Some(s)) if s.is_finite() => format!(" · {t:.2} K → {s:.2} K"),
        (Some(t), _) => format!(" · {t:.2} K"),
        _ => String::new(),
    };
    let title = Line::from(vec![
        Span::styled(" T (K)", Style::new().fg(C_T)),
        Span::raw(" & "),
        Span::styled("setpoint", Style::new().fg(C_SET)),
        Span::raw(format!(" vs t (s){now} ")),
    ]);
    // Drop the "now" part rather than cut it (the readout has T anyway).
    let title = if title.width() + 2 > usize::from(area.width) {
        Line::from(vec![
            Span::styled(" T (K)", Style::new().fg(C_T)),
            Span::raw(" & "),
            Span::styled("setpoint ", Style::new().fg(C_SET)),
        ])
    } else {
        title
    };
    plot(
        frame,
        area,
        PlotSpec {
            title,
            series: vec![(&sp, Style::new().fg(C_SET)), (&t, Style::new().fg(C_T))],
            x,
            min_span: MIN_SPAN_T_K,
            x_labels: true,
            x_title: Some("t (s)".into()),
            borders,
            empty: "no temperature readings yet",
        },
    );
}

// ---------------------------------------------------------------- plan, events, clocks

fn draw_plan(frame: &mut Frame, area: Rect, state: &DashState) {
    let block = titled(Borders::ALL, " plan ", area);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let current = state.step.as_ref().map(|s| s.index);
    let done = |i: usize| match (current, &state.finished) {
        (_, Some((s, _))) if s == "complete" => true,
        (Some(c), _) => i < c,
        _ => false,
    };
    let rows = usize::from(inner.height);
    let first = current
        .unwrap_or(0)
        .saturating_sub(rows / 3)
        .min(state.plan.len().saturating_sub(rows));
    let mut lines: Vec<Line> = state
        .plan
        .iter()
        .skip(first)
        .take(rows)
        .map(|r| {
            let (mark, style) = if Some(r.index) == current && !done(r.index) {
                (
                    "▶",
                    Style::new().add_modifier(Modifier::BOLD).fg(Color::White),
                )
            } else if done(r.index) {
                ("✓", Style::new().fg(Color::DarkGray))
            } else {
                (" ", Style::new())
            };
            let mut text = format!("{mark}{:>3} {}", r.index + 1, r.label);
            let dur = format!(" · {}", fmt_duration(r.duration_s));
            if text.chars().count() + dur.chars().count() <= usize::from(inner.width) {
                text.push_str(&dur);
            }
            Line::styled(elide(&text, usize::from(inner.width)), style)
        })
        .collect();
    if lines.is_empty() {
        lines.push(Line::styled(
            "(plan not known)",
            Style::new().fg(Color::DarkGray),
        ));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn draw_events(frame: &mut Frame, area: Rect, state: &DashState, borders: Borders) {
    let title = format!(
        " events · {} warnings · {} errors · {} markers ",
        state.warnings, state.errors, state.markers
    );
    let title = if title.chars().count() + 2 <= usize::from(area.width) {
        title
    } else {
        format!(
            " events · {} warn · {} err · {} mark ",
            state.warnings, state.errors, state.markers
        )
    };
    let block = titled(borders, title, area);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = usize::from(inner.height);
    // Time column (9) and tag (2) come first; the text gets the rest.
    let room = usize::from(inner.width).saturating_sub(11);
    let lines: Vec<Line> = state
        .log
        .iter()
        .rev()
        .take(rows)
        .rev()
        .map(|l| {
            let (tag, style) = match l.level {
                LogLevel::Info => ("  ", Style::new()),
                LogLevel::Warn => ("! ", Style::new().fg(Color::Yellow)),
                LogLevel::Error => (
                    "✖ ",
                    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                ),
                LogLevel::Marker => ("◆ ", Style::new().fg(Color::Cyan)),
            };
            Line::from(vec![
                Span::styled(
                    format!("{:>8} ", fmt_t(l.t_s)),
                    Style::new().fg(Color::DarkGray),
                ),
                Span::styled(format!("{tag}{}", elide(&l.text, room)), style),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn draw_clocks(frame: &mut Frame, area: Rect, state: &DashState, borders: Borders, full: bool) {
    let title = if full {
        " clocks "
    } else if area.width >= 34 {
        " clocks: offset s · ppm · err ms "
    } else {
        " clocks: s · ppm · ms "
    };
    let block = titled(borders, title, area);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // The long form needs 42 columns; narrower panels get short names.
    let wide = inner.width >= 42;
    let mut lines: Vec<Line> = Vec::new();
    if full {
        let header = if wide {
            format!(
                "{:<12} {:>10} {:>8} {:>7}",
                "device", "offset s", "ppm", "err ms"
            )
        } else {
            format!("{:<6}{:>9}{:>7}{:>7}", "", "offset s", "ppm", "err ms")
        };
        lines.push(Line::styled(
            header,
            Style::new().add_modifier(Modifier::BOLD),
        ));
    }
    for c in &state.clocks {
        let err = c
            .alignment_error_s
            .map_or("      –".to_string(), |e| format!("{:>7.3}", e * 1e3));
        let bad_err = c.alignment_error_s.is_some_and(|e| e > ALIGNMENT_WARN_S);
        let bad_drift = c.drift_ppm.abs() > DRIFT_WARN_PPM;
        let style = if bad_err {
            Style::new().fg(Color::Red)
        } else if bad_drift {
            Style::new().fg(Color::Yellow)
        } else {
            Style::new()
        };
        let flag = if bad_err || bad_drift { " !" } else { "" };
        let text = if wide {
            let name: String = c.device.chars().take(12).collect();
            format!(
                "{name:<12} {:>10.3} {:>8} {err}{flag}",
                c.offset_s,
                fmt_ppm(c.drift_ppm)
            )
        } else {
            let name = short_device(&c.device);
            format!(
                "{name:<6}{:>9.3}{:>7}{err}{flag}",
                c.offset_s,
                fmt_ppm(c.drift_ppm)
            )
        };
        lines.push(Line::styled(text, style));
    }
    if state.clocks.is_empty() {
        lines.push(Line::styled(
            "no clock estimate yet",
            Style::new().fg(Color::DarkGray),
        ));
    }
    if full {
        for (role, idn) in &state.instruments {
            lines.push(Line::styled(
                elide(&format!("{role}: {idn}"), usize::from(inner.width)),
                Style::new().fg(Color::DarkGray),
            ));
        }
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// Drift with sign in at most 7 characters: one decimal up to ±9999.9 ppm,
/// an exponent beyond (an overloaded host once gave +17385916.0, which ran
/// into the offset column).
fn fmt_ppm(ppm: f64) -> String {
    if ppm.abs() < 9999.95 {
        format!("{ppm:+.1}")
    } else {
        format!("{ppm:+.1e}")
    }
}

/// Device names cut to fit the compact clocks panel.
fn short_device(name: &str) -> String {
    match name {
        "potentiostat" => "pstat".into(),
        "deflection" => "defl".into(),
        "temperature" => "stage".into(),
        other => other.chars().take(6).collect(),
    }
}

// ---------------------------------------------------------------- footer, help

fn draw_footer(frame: &mut Frame, area: Rect, state: &DashState, ui: &UiState) {
    let key = |k: &'static str| Span::styled(k, Style::new().fg(Color::Black).bg(Color::Gray));
    let line = match &ui.input {
        InputMode::Marker(text) => Line::from(vec![
            Span::styled(" marker: ", Style::new().fg(Color::Cyan)),
            Span::raw(text.clone()),
            Span::styled("█", Style::new().fg(Color::Cyan)),
            Span::styled(
                "  Enter send · Esc cancel",
                Style::new().fg(Color::DarkGray),
            ),
        ]),
        InputMode::ConfirmAbort => Line::styled(
            " abort the run? (y/n) — the cell is switched off, the data kept ",
            Style::new().fg(Color::Black).bg(Color::Red),
        ),
        InputMode::ConfirmQuit => Line::styled(
            " abort the run before leaving? y = abort · n = leave it running · Esc = stay ",
            Style::new().fg(Color::Black).bg(Color::Yellow),
        ),
        InputMode::Normal => {
            let mut spans = Vec::new();
            let live = state.mode == Mode::Run && state.finished.is_none();
            if live {
                spans.extend([
                    key(" p "),
                    Span::raw(if state.paused { " resume " } else { " pause " }),
                ]);
                spans.extend([key(" m "), Span::raw(" marker ")]);
                spans.extend([key(" a "), Span::raw(" abort ")]);
            }
            spans.extend([key(" q "), Span::raw(" quit ")]);
            spans.extend([key(" w "), Span::raw(" window ")]);
            spans.extend([key(" s "), Span::raw(" panels ")]);
            spans.extend([key(" ? "), Span::raw(" help ")]);
            if let Some(n) = &ui.notice {
                let used: usize = spans.iter().map(Span::width).sum();
                let room = usize::from(area.width).saturating_sub(used + 1);
                spans.push(Span::styled(
                    format!(" {}", elide(n, room)),
                    Style::new().fg(Color::Cyan),
                ));
            }
            Line::from(spans)
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn draw_help(frame: &mut Frame, area: Rect, mode: Mode) {
    let mut text = vec![
        Line::styled("keys", Style::new().add_modifier(Modifier::BOLD)),
        Line::raw(""),
    ];
    if mode == Mode::Run {
        text.extend([
            Line::raw("p      pause / resume the run"),
            Line::raw("m      add a marker note (Enter sends, Esc cancels)"),
            Line::raw("a      abort the run (asks y/n; the cell is switched off)"),
            Line::raw("q      leave; while running asks: y abort, n leave it running"),
        ]);
    } else {
        text.push(Line::raw("q      leave (watching is read-only)"));
    }
    text.extend([
        Line::raw("w      traces: whole run / last 60 s / last 10 s"),
        Line::raw("s      right panels: by technique / EIS / ESM / temperature"),
        Line::raw("?      this help (any key closes it)"),
        Line::raw(""),
        Line::styled("panels", Style::new().add_modifier(Modifier::BOLD)),
        Line::raw("top line: latest E, I, u, T, step charge Q; — = none"),
        Line::raw("E, I, u vs t: min-max per column, every sample counts"),
        Line::raw("axes span at least 5 mV, 1 µA, 0.5 nm, 1 K (noise)"),
        Line::raw("loops: current cycle bright, previous grey"),
        Line::raw("κ: slope of u vs Q over the last CV/LSV/steps step"),
        Line::raw(format!(
            "clocks: red when align err > {} ms, yellow when |drift| > {} ppm",
            ALIGNMENT_WARN_S * 1e3,
            DRIFT_WARN_PPM
        )),
    ]);
    let w = area.width.min(68);
    let h = area.height.min(text.len() as u16 + 2);
    let popup = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: false }).block(
            Block::new()
                .borders(Borders::ALL)
                .title(" help ")
                .title_alignment(Alignment::Center),
        ),
        popup,
    );
}

// ---------------------------------------------------------------- chart helpers

struct PlotSpec<'a> {
    title: Line<'static>,
    series: Vec<(&'a [(f64, f64)], Style)>,
    x: [f64; 2],
    /// Smallest y span, in the plotted unit (0: none), see [`MIN_SPAN_T_K`].
    min_span: f64,
    x_labels: bool,
    x_title: Option<String>,
    borders: Borders,
    empty: &'static str,
}

/// A time-series (or spectrum) chart: y bounds from the data, two or three
/// y labels, x labels only where asked (they cost two rows).
fn plot(frame: &mut Frame, area: Rect, spec: PlotSpec<'_>) {
    let block = titled(spec.borders, spec.title, area);
    let inner = block.inner(area);
    let all: Vec<(f64, f64)> = spec
        .series
        .iter()
        .flat_map(|s| s.0.iter().copied())
        .collect();
    let Some((lo, hi)) = y_range(&all) else {
        frame.render_widget(
            Paragraph::new(Line::styled(spec.empty, Style::new().fg(Color::DarkGray))).block(block),
            area,
        );
        return;
    };
    if inner.width < 14 || inner.height < 2 {
        frame.render_widget(block, area);
        return;
    }
    let y = axis_bounds(lo, hi, spec.min_span);
    let datasets = spec
        .series
        .iter()
        .map(|(d, style)| {
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(*style)
                .data(d)
        })
        .collect();
    let y_labels = if inner.height >= 8 {
        vec![
            fmt_num(y[0], y[1] - y[0]),
            fmt_num((y[0] + y[1]) / 2.0, y[1] - y[0]),
            fmt_num(y[1], y[1] - y[0]),
        ]
    } else {
        vec![fmt_num(y[0], y[1] - y[0]), fmt_num(y[1], y[1] - y[0])]
    };
    let mut x_axis = Axis::default()
        .bounds(spec.x)
        .style(Style::new().fg(Color::DarkGray));
    if spec.x_labels && inner.height >= 5 {
        let d = spec.x[1] - spec.x[0];
        x_axis = x_axis.labels(vec![
            fmt_num(spec.x[0], d),
            fmt_num((spec.x[0] + spec.x[1]) / 2.0, d),
            fmt_num(spec.x[1], d),
        ]);
        if let Some(t) = spec.x_title {
            x_axis = x_axis.title(Span::styled(t, Style::new().fg(Color::Gray)));
        }
    }
    let chart = Chart::new(datasets)
        .block(block)
        .legend_position(None)
        .x_axis(x_axis)
        .y_axis(
            Axis::default()
                .bounds(y)
                .labels(y_labels)
                .style(Style::new().fg(Color::DarkGray)),
        );
    frame.render_widget(chart, area);
}

struct XySpec<'a> {
    title: String,
    current: &'a [(f64, f64)],
    previous: &'a [(f64, f64)],
    color: Color,
    x_title: &'static str,
    y_min_span: f64,
    borders: Borders,
    empty: &'static str,
}

/// An x-y loop: both axes from the data (current and previous together, so
/// the two are drawn to one scale), previous in grey under the current.
fn plot_xy(frame: &mut Frame, area: Rect, spec: XySpec<'_>) {
    let all: Vec<(f64, f64)> = spec.current.iter().chain(spec.previous).copied().collect();
    // No spread in x (no charge passed at open circuit, one point) is no loop.
    let xr = x_range(&all).filter(|r| r.1 > r.0);
    let (Some(xr), Some(_)) = (xr, y_range(&all)) else {
        let block = titled(spec.borders, spec.title, area);
        frame.render_widget(
            Paragraph::new(Line::styled(spec.empty, Style::new().fg(Color::DarkGray))).block(block),
            area,
        );
        return;
    };
    plot(
        frame,
        area,
        PlotSpec {
            title: Line::from(spec.title),
            series: vec![
                (spec.previous, Style::new().fg(C_PREV)),
                (spec.current, Style::new().fg(spec.color)),
            ],
            x: axis_bounds(xr.0, xr.1, 0.0),
            min_span: spec.y_min_span,
            x_labels: true,
            x_title: Some(spec.x_title.to_string()),
            borders: spec.borders,
            empty: spec.empty,
        },
    );
}

/// A block with `title`, elided to the block's width so a long title ends
/// in "…" instead of being cut mid-word.
fn titled<'a>(borders: Borders, title: impl Into<Line<'a>>, area: Rect) -> Block<'a> {
    let title: Line = title.into();
    let room = usize::from(area.width.saturating_sub(2));
    let block = Block::new().borders(borders);
    if title.width() <= room {
        block.title(title)
    } else {
        let text: String = title.spans.iter().map(|s| s.content.as_ref()).collect();
        block.title(elide(&text, room))
    }
}

/// `text` cut to at most `width` characters: whole words and "…" when
/// there is a word boundary in the second half, else a hard cut and "…".
pub fn elide(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let keep: String = text.chars().take(width - 1).collect();
    // `keep` ends on a whole word when it ends in a space or the first
    // character dropped is one.
    if keep.ends_with(' ') || text.chars().nth(width - 1) == Some(' ') {
        return format!("{}…", keep.trim_end());
    }
    let cut = match keep.trim_end().rfind(' ') {
        Some(i) if keep[..i].chars().count() * 2 >= width => keep[..i].trim_end().to_string(),
        _ => keep.trim_end().to_string(),
    };
    format!("{cut}…")
}

/// SI prefix for the largest |y| in `points`: (factor to multiply by, unit).
fn si_scale(points: &[(f64, f64)], base: &'static str) -> (f64, &'static str) {
    let m = points
        .iter()
        .map(|p| p.1.abs())
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    match (m, base) {
        (m, "A") if m >= 1.0 => (1.0, "A"),
        (m, "A") if m >= 1e-3 => (1e3, "mA"),
        (m, "A") if m >= 1e-6 || m == 0.0 => (1e6, "µA"),
        (_, "A") => (1e9, "nA"),
        _ => (1.0, base),
    }
}

/// A number with as many decimals as `span` needs to tell neighbours apart.
pub fn fmt_num(v: f64, span: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let span = span.abs();
    let decimals = if span > 0.0 && span.is_finite() {
        (2.0 - span.log10().floor()).clamp(0.0, 6.0) as usize
    } else {
        3
    };
    if v.abs() >= 1e6 || (v != 0.0 && v.abs() < 1e-4 && decimals >= 6) {
        return format!("{v:.2e}");
    }
    vegard_core::format::fixed(v, decimals)
}

/// Three significant digits, no exponent between 1 mHz and 1 MHz (frequencies).
fn fmt_sig(v: f64) -> String {
    if !(1e-3..1e6).contains(&v) {
        return format!("{v:.2e}");
    }
    let decimals = (2.0 - v.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

/// Experiment seconds for the events panel.
fn fmt_t(t_s: f64) -> String {
    if !t_s.is_finite() {
        "–".into()
    } else if t_s < 1000.0 {
        format!("{t_s:.1} s")
    } else {
        format!("{t_s:.0} s")
    }
}

/// A duration in s, min or h ([`vegard_core::format::duration_short`]).
pub fn fmt_duration(s: f64) -> String {
    vegard_core::format::duration_short(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Issue 18: "@ 0.2 V/" and "ASRL/dev/pts/3::INST" were cut by the
    /// panel edge; elided text ends in "…" at a word boundary when there is
    /// one in the second half, and never exceeds the width.
    #[test]
    fn elide_known_answers() {
        assert_eq!(
            elide("cv 0.4->[0.9,-0.1] V @ 0.2 V/s x3", 40),
            "cv 0.4->[0.9,-0.1] V @ 0.2 V/s x3"
        );
        assert_eq!(
            elide("cv 0.4->[0.9,-0.1] V @ 0.2 V/s x3", 28),
            "cv 0.4->[0.9,-0.1] V @ 0.2…"
        );
        assert_eq!(
            elide("potentiostat: ASRL/dev/pts/3::INSTR", 30),
            "potentiostat: ASRL/dev/pts/3:…"
        );
        assert_eq!(elide("abcdefghij", 5), "abcd…");
        assert_eq!(elide("abc", 0), "");
        for w in 1..40 {
            let e = elide("deflection: Keysight Technologies,34465A", w);
            assert!(e.chars().count() <= w, "{w}: {e}");
        }
    }

    #[test]
    fn drift_fits_its_column() {
        assert_eq!(fmt_ppm(19.84), "+19.8");
        assert_eq!(fmt_ppm(-135.0), "-135.0");
        assert_eq!(fmt_ppm(17_385_916.0), "+1.7e7");
    }

    /// Each technique gets its own right-hand panels; the loops (and the
    /// kappa) only in CV-like steps.
    #[test]
    fn focus_follows_the_technique() {
        let mut s = DashState::new(Mode::Run);
        let ui = UiState::default();
        assert_eq!(focus(&s, &ui), Focus::Loops);
        for (kind, want) in [
            ("cv", Focus::Loops),
            ("steps", Focus::Loops),
            ("eis", Focus::Impedance),
            ("esm_sweep", Focus::Esm),
            ("temperature", Focus::Temperature),
        ] {
            s.apply(crate::DashEvent::StepStarted {
                index: 0,
                count: 1,
                kind: kind.into(),
                duration_s: 1.0,
                sweep: String::new(),
            });
            assert_eq!(focus(&s, &ui), want, "{kind}");
            let panels: Vec<Panel> = layout(Rect::new(0, 0, 80, 24), &s, &ui)
                .into_iter()
                .map(|p| p.0)
                .collect();
            assert_eq!(
                panels.contains(&Panel::UqLoop),
                want == Focus::Loops,
                "{kind}"
            );
        }
    }
}
