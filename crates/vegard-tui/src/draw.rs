//! The panels. [`draw`] reads [`DashState`] and [`UiState`] and changes
//! neither; everything a frame needs that is costly (decimation) is computed
//! here from the summaries the state keeps, sized to the cells on screen.
//!
//! Layout: below 120 × 36 cells ("compact", down to 80 × 24) the traces
//! take the left half, the right half holds the I–E loop (or the spectrum
//! slot, when the current step makes it relevant) over the u–Q loop, and one
//! short row holds events and clocks; the plan list and instrument IDNs only
//! appear in the full layout, which also shows loops and spectrum side by side.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Chart, Clear, Dataset, GraphType, LineGauge, Paragraph, Wrap,
};

use crate::input::{InputMode, SpectrumChoice, TimeWindow, UiState};
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

/// Draw the whole dashboard into `frame`.
pub fn draw(frame: &mut Frame, state: &DashState, ui: &UiState) {
    let area = frame.area();
    if area.width < 20 || area.height < 6 {
        frame.render_widget(Paragraph::new("vegard: terminal too small"), area);
        return;
    }
    let compact = area.width < 120 || area.height < 36;
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, header, state, compact);
    let borders = if compact { Borders::TOP } else { Borders::ALL };
    if compact {
        let [main, bottom] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(6)]).areas(body);
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(main);
        draw_traces(frame, left, state, ui, borders, false);
        let [top_r, bot_r] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(right);
        match spectrum_view(state, ui) {
            Some(view) => draw_spectrum(frame, top_r, state, view, borders),
            None => draw_iv_loop(frame, top_r, state, borders),
        }
        draw_uq_loop(frame, bot_r, state, borders);
        let [ev, clk] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
                .areas(bottom);
        draw_events(frame, ev, state, Borders::TOP);
        draw_clocks(frame, clk, state, Borders::TOP, false);
    } else {
        let [main, bottom] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(10)]).areas(body);
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(main);
        draw_traces(frame, left, state, ui, borders, true);
        let [loops, spec] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(right);
        let [iv, uq] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(loops);
        draw_iv_loop(frame, iv, state, borders);
        draw_uq_loop(frame, uq, state, borders);
        let view = spectrum_view(state, ui).unwrap_or_else(|| fallback_view(state));
        draw_spectrum(frame, spec, state, view, borders);
        let [ev, plan, clk] = Layout::horizontal([
            Constraint::Percentage(40),
            Constraint::Percentage(30),
            Constraint::Percentage(30),
        ])
        .areas(bottom);
        draw_events(frame, ev, state, Borders::ALL);
        draw_plan(frame, plan, state);
        draw_clocks(frame, clk, state, Borders::ALL, true);
    }
    draw_footer(frame, footer, state, ui);
    if ui.help {
        draw_help(frame, area, state.mode);
    }
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

fn draw_traces(
    frame: &mut Frame,
    area: Rect,
    state: &DashState,
    ui: &UiState,
    borders: Borders,
    full: bool,
) {
    let [a_e, a_i, a_u] = Layout::vertical([
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
    ])
    .areas(area);
    let x = time_bounds(state, ui.window);
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
    let buckets = |a: Rect| usize::from(a.width.saturating_sub(9)).max(1);

    let p = &state.pot;
    let e = p.E_mm.decimate(&p.t_s, &p.E_V, x[0], x[1], buckets(a_e));
    let i_raw = p.I_mm.decimate(&p.t_s, &p.I_A, x[0], x[1], buckets(a_i));
    let (i_scale, i_unit) = si_scale(&i_raw, "A");
    let i: Vec<(f64, f64)> = i_raw.iter().map(|&(t, v)| (t, v * i_scale)).collect();
    let d = &state.defl;
    let u = d.mm.decimate(&d.t_s, &d.nm, x[0], x[1], buckets(a_u));

    let title = |q: &str, unit: &str| {
        if full {
            format!(" {q} ({unit}) ")
        } else {
            format!(" {q} ({unit}) vs t (s) · {span} ")
        }
    };
    plot(
        frame,
        a_e,
        PlotSpec {
            title: title("E", "V").into(),
            series: vec![(&e, Style::new().fg(C_E))],
            x,
            x_labels: false,
            x_title: None,
            borders,
            empty: "no potentiostat data yet",
        },
    );
    plot(
        frame,
        a_i,
        PlotSpec {
            title: title("I", i_unit).into(),
            series: vec![(&i, Style::new().fg(C_I))],
            x,
            x_labels: false,
            x_title: None,
            borders,
            empty: "no current data yet (open circuit)",
        },
    );
    plot(
        frame,
        a_u,
        PlotSpec {
            title: if full {
                format!(" u deflection (nm) · {window} ").into()
            } else {
                title("u", "nm").into()
            },
            series: vec![(&u, Style::new().fg(C_U))],
            x,
            x_labels: full,
            x_title: full.then(|| "t (s)".to_string()),
            borders,
            empty: "no deflection data yet",
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
    let kappa = match state.kappa() {
        Some((_, k, r2, _)) => {
            let r2 = r2.map_or(String::new(), |r| format!(" · R² {r:.3}"));
            format!("κ = {k:.4} nm/mC{r2}")
        }
        None => "κ –".to_string(),
    };
    // The slope gets its own line: it is the number people watch, and the
    // title has no room for it in a narrow panel.
    let block = Block::new().borders(borders).title(" u (nm) vs Q (mC) ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [k_row, chart] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    frame.render_widget(
        Paragraph::new(Line::styled(
            kappa,
            Style::new().fg(C_U).add_modifier(Modifier::BOLD),
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

/// What the spectrum slot draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpectrumView {
    Nyquist,
    Esm,
    Temperature,
}

/// The spectrum view for the current step and the user's choice; None when
/// "auto" and the current step is not a spectrum kind (compact layout then
/// shows the I–E loop instead).
pub fn spectrum_view(state: &DashState, ui: &UiState) -> Option<SpectrumView> {
    match ui.spectrum {
        SpectrumChoice::Nyquist => Some(SpectrumView::Nyquist),
        SpectrumChoice::Esm => Some(SpectrumView::Esm),
        SpectrumChoice::Temperature => Some(SpectrumView::Temperature),
        SpectrumChoice::Auto => {
            let kind = state.step.as_ref().map(|s| s.kind.as_str());
            match kind {
                Some("eis") => Some(SpectrumView::Nyquist),
                Some("esm_sweep") => Some(SpectrumView::Esm),
                Some("temperature") => Some(SpectrumView::Temperature),
                _ => None,
            }
        }
    }
}

/// The full layout always has a spectrum slot: outside spectrum steps it
/// shows the spectrum measured most recently (ESM or EIS, by step index),
/// else temperature readings if there are any.
fn fallback_view(state: &DashState) -> SpectrumView {
    let last_eis = state.eis.last().map(|p| p.step);
    let last_esm = state.esm.last().map(|p| p.step);
    match (last_eis, last_esm) {
        (Some(e), Some(m)) if m > e => SpectrumView::Esm,
        (None, Some(_)) => SpectrumView::Esm,
        (Some(_), _) => SpectrumView::Nyquist,
        (None, None) if !state.temp.t_s.is_empty() => SpectrumView::Temperature,
        (None, None) => SpectrumView::Nyquist,
    }
}

fn draw_spectrum(
    frame: &mut Frame,
    area: Rect,
    state: &DashState,
    view: SpectrumView,
    borders: Borders,
) {
    match view {
        SpectrumView::Nyquist => draw_nyquist(frame, area, state, borders),
        SpectrumView::Esm => draw_esm(frame, area, state, borders),
        SpectrumView::Temperature => draw_temperature(frame, area, state, borders),
    }
}

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
            borders,
            empty: "no impedance points yet",
        },
    );
}

fn draw_esm(frame: &mut Frame, area: Rect, state: &DashState, borders: Borders) {
    let (cur, _) = spectrum_steps(state.esm.iter().map(|p| p.step));
    let pts: Vec<_> = state
        .esm
        .iter()
        .filter(|p| Some(p.step) == cur && p.f_Hz > 0.0)
        .collect();
    let amp: Vec<(f64, f64)> = pts
        .iter()
        .map(|p| (p.f_Hz.log10(), p.amplitude_nm_per_V))
        .filter(|p| p.1.is_finite())
        .collect();
    let phase: Vec<(f64, f64)> = pts
        .iter()
        .map(|p| (p.f_Hz.log10(), p.phase_deg))
        .filter(|p| p.1.is_finite())
        .collect();
    let [a, b] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let x = match x_range(&amp) {
        Some((lo, hi)) if hi > lo => [lo, hi],
        Some((lo, _)) => [lo - 0.5, lo + 0.5],
        None => [-2.0, 0.0],
    };
    plot(
        frame,
        a,
        PlotSpec {
            title: format!(" ESM |u|/V (nm/V) · {} f ", amp.len()).into(),
            series: vec![(&amp, Style::new().fg(C_U))],
            x,
            x_labels: true,
            x_title: Some("log10 f (Hz)".into()),
            borders,
            empty: "no ESM points yet",
        },
    );
    plot(
        frame,
        b,
        PlotSpec {
            title: " phase (°) ".into(),
            series: vec![(&phase, Style::new().fg(C_E))],
            x,
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
    plot(
        frame,
        area,
        PlotSpec {
            title: Line::from(vec![
                Span::styled(" T (K)", Style::new().fg(Color::LightRed)),
                Span::raw(" & "),
                Span::styled("setpoint", Style::new().fg(C_SET)),
                Span::raw(format!(" vs t (s){now} ")),
            ]),
            series: vec![
                (&sp, Style::new().fg(C_SET)),
                (&t, Style::new().fg(Color::LightRed)),
            ],
            x,
            x_labels: true,
            x_title: Some("t (s)".into()),
            borders,
            empty: "no temperature readings yet",
        },
    );
}

// ---------------------------------------------------------------- plan, events, clocks

fn draw_plan(frame: &mut Frame, area: Rect, state: &DashState) {
    let block = Block::new().borders(Borders::ALL).title(" plan ");
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
            Line::styled(text, style)
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
    let block = Block::new().borders(borders).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = usize::from(inner.height);
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
                Span::styled(format!("{tag}{}", l.text), style),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn draw_clocks(frame: &mut Frame, area: Rect, state: &DashState, borders: Borders, full: bool) {
    let block = Block::new().borders(borders).title(if full {
        " clocks "
    } else {
        " clocks: offset s · ppm · err ms "
    });
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
                "{name:<12} {:>10.3} {:>+8.1} {err}{flag}",
                c.offset_s, c.drift_ppm
            )
        } else {
            let name = short_device(&c.device);
            format!(
                "{name:<6}{:>9.3}{:>+7.1}{err}{flag}",
                c.offset_s, c.drift_ppm
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
                format!("{role}: {idn}"),
                Style::new().fg(Color::DarkGray),
            ));
        }
    }
    frame.render_widget(Paragraph::new(lines), inner);
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
            spans.extend([key(" s "), Span::raw(" spectrum ")]);
            spans.extend([key(" ? "), Span::raw(" help ")]);
            if let Some(n) = &ui.notice {
                spans.push(Span::styled(format!(" {n}"), Style::new().fg(Color::Cyan)));
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
        Line::raw("s      spectrum slot: auto / Nyquist / ESM / temperature"),
        Line::raw("?      this help (any key closes it)"),
        Line::raw(""),
        Line::styled("panels", Style::new().add_modifier(Modifier::BOLD)),
        Line::raw("E, I, u vs t: min-max per column, every sample counts"),
        Line::raw("loops: current cycle bright, previous grey"),
        Line::raw("κ: least-squares slope of u vs Q over the current step"),
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
    x_labels: bool,
    x_title: Option<String>,
    borders: Borders,
    empty: &'static str,
}

/// A time-series (or spectrum) chart: y bounds from the data, two or three
/// y labels, x labels only where asked (they cost two rows).
fn plot(frame: &mut Frame, area: Rect, spec: PlotSpec<'_>) {
    let block = Block::new().borders(spec.borders).title(spec.title);
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
    let y = pad(lo, hi);
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
        let block = Block::new().borders(spec.borders).title(spec.title);
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
            x: pad(xr.0, xr.1),
            x_labels: true,
            x_title: Some(spec.x_title.to_string()),
            borders: spec.borders,
            empty: spec.empty,
        },
    );
}

/// Bounds with 5 % margin; a flat series gets a small band around its value.
fn pad(lo: f64, hi: f64) -> [f64; 2] {
    let span = hi - lo;
    if span > 0.0 {
        [lo - 0.05 * span, hi + 0.05 * span]
    } else {
        let h = (lo.abs() * 0.05).max(1e-9);
        [lo - h, hi + h]
    }
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
