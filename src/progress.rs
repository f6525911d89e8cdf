//! Progress lines of `vegard run --no-tui`: at most one per second, on
//! stderr, never allowed to stop a run.

use std::io::Write;
use std::time::Instant;

use vegard_core::RunEvent;

/// What the lines need from earlier events: the engine sends the newest
/// values (`Latest`) right before each `Progress`, and a pause happens
/// before the step after the last one started.
pub struct ProgressPrinter {
    started: Instant,
    last: Option<Instant>,
    /// (E_V, I_A, deflection_nm) of the running step.
    latest: (f64, f64, f64),
    next_step: usize,
    /// Writing to stderr failed the way a lost terminal fails (EIO, EPIPE).
    terminal_lost: bool,
}

impl ProgressPrinter {
    pub fn new(started: Instant) -> Self {
        ProgressPrinter {
            started,
            last: None,
            latest: (f64::NAN, f64::NAN, f64::NAN),
            next_step: 0,
            terminal_lost: false,
        }
    }

    /// Whether a line could not be written because the terminal (or the
    /// reader of a pipe) is gone: the run is then stopped like for SIGHUP.
    pub fn terminal_lost(&self) -> bool {
        self.terminal_lost
    }

    pub fn print(&mut self, p: &RunEvent) {
        match p {
            RunEvent::Latest {
                E_V,
                I_A,
                deflection_nm,
            } => self.latest = (*E_V, *I_A, *deflection_nm),
            RunEvent::StepStarted { index, .. } => {
                self.next_step = index + 1;
                self.latest = (f64::NAN, f64::NAN, f64::NAN);
            }
            _ => {}
        }
        print_progress(p, self);
    }
}

fn print_progress(p: &RunEvent, st: &mut ProgressPrinter) {
    let (started, last) = (st.started, &mut st.last);
    // Lines are put together first and written in one go, so a failed
    // write is seen once. A stderr that is closed or full never stops a run;
    // one whose terminal is gone does (`terminal_lost`), like SIGHUP.
    let mut err: Vec<u8> = Vec::new();
    match p {
        RunEvent::Started {
            run_dir,
            total_s,
            speed,
            instruments,
            ..
        } => {
            let _ = writeln!(err, "vegard run -> {}", run_dir.display());
            for (role, resource) in instruments {
                let _ = writeln!(err, "  {role:<12} {resource}");
            }
            let _ = writeln!(
                err,
                "  {:.1} s of experiment at {}x speed (~{:.0} s wall)",
                total_s,
                speed,
                total_s / speed
            );
        }
        RunEvent::StepStarted {
            index,
            count,
            kind,
            duration_s,
            sweep,
        } => {
            // The enclosing parameter sweeps' values, as the plan label
            // gives them: `step 7/40 esm_sweep (dc_V = 0.3 V): 22.5 s`.
            let values = if sweep.is_empty() {
                String::new()
            } else {
                format!(" ({sweep})")
            };
            let _ = writeln!(
                err,
                "step {}/{} {kind}{values}: {duration_s:.1} s",
                index + 1,
                count
            );
        }
        // A temperature step's line is its `TemperatureWait`.
        RunEvent::Progress { kind, .. } if kind == "temperature" => {}
        RunEvent::Progress {
            step,
            count,
            kind,
            cycle,
            cycles,
            elapsed_s,
            eta_s,
        } => {
            let (E_V, I_A, deflection_nm) = st.latest;
            // EIS reports impedance points, no potential samples.
            let quiet = E_V.is_nan() && *kind != "eis";
            if quiet || last.is_some_and(|l| l.elapsed().as_secs_f64() < 1.0) {
                return;
            }
            *last = Some(Instant::now());
            let cyc = vegard_recipe::counter_name(kind)
                .map_or(String::new(), |n| format!("{n} {cycle}/{cycles}  "));
            // At open circuit there is no current to show.
            let current = if I_A.is_finite() {
                format!("I = {:+.3} mA", I_A * 1e3)
            } else {
                "I = (open circuit)".to_string()
            };
            let elec = if E_V.is_finite() {
                format!("E = {E_V:+.3} V  {current}  ")
            } else {
                String::new()
            };
            let _ = writeln!(
                err,
                "  [{:>5.1} s wall] step {}/{} {kind} {cyc}elapsed {:.1} s  ETA {:.1} s  {elec}deflection = {:+.2} nm",
                started.elapsed().as_secs_f64(),
                step + 1,
                count,
                elapsed_s,
                eta_s,
                deflection_nm
            );
        }
        RunEvent::TemperatureWait {
            step,
            count,
            setpoint_K,
            T_K,
            stable_s,
            hold_s,
            elapsed_s,
            timeout_s,
        } => {
            if last.is_some_and(|l| l.elapsed().as_secs_f64() < 1.0) {
                return;
            }
            *last = Some(Instant::now());
            let _ = writeln!(
                err,
                "  [{:>5.1} s wall] step {}/{} temperature: {:.3} K -> setpoint {:.2} K, stable {:.0}/{:.0} s (waited {:.0} s of {:.0} s allowed)",
                started.elapsed().as_secs_f64(),
                step + 1,
                count,
                T_K,
                setpoint_K,
                stable_s,
                hold_s,
                elapsed_s,
                timeout_s
            );
        }
        RunEvent::Aborting { reason } => {
            let _ = writeln!(err, "ABORT: {reason} — cell switched off, saving data");
        }
        RunEvent::Finalizing => {
            let _ = writeln!(err, "finalising: clock alignment, Parquet, analysis");
        }
        RunEvent::Paused(true) => {
            let _ = writeln!(
                err,
                "paused before step {} (cell off); resume from the dashboard",
                st.next_step + 1
            );
        }
        RunEvent::Paused(false) => {
            let _ = writeln!(err, "resumed");
        }
        RunEvent::PauseRequested(requested) => {
            let _ = writeln!(
                err,
                "{}",
                if *requested {
                    "pause requested: the run pauses when the current step ends"
                } else {
                    "pause request withdrawn"
                }
            );
        }
        RunEvent::Marker { note, step } => {
            let at = step.map_or(String::new(), |s| format!(" (step {})", s + 1));
            let _ = writeln!(err, "marker{at}: {note}");
        }
        // Kept for the line that follows, or the dashboard's alone.
        RunEvent::Latest { .. }
        | RunEvent::Potentiostat { .. }
        | RunEvent::Deflection { .. }
        | RunEvent::Impedance { .. }
        | RunEvent::EsmPoint { .. }
        | RunEvent::Temperature { .. }
        | RunEvent::Clock { .. }
        | RunEvent::Log { .. }
        | RunEvent::Finished { .. } => {}
    }
    if !err.is_empty()
        && let Err(e) = std::io::stderr().lock().write_all(&err)
        && crate::terminal::is_terminal_gone(&e)
    {
        st.terminal_lost = true;
    }
}
