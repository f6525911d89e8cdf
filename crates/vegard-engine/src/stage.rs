//! The temperature stage during a run: one task owns the controller, polls
//! its reading for the whole run (so every step has the temperature that was
//! actually measured while it ran), records each reading, and carries out
//! setpoint / heater commands. The temperature step waits on its readings.
//!
//! Why a task of its own: the controller is slow (tens of ms per query on a
//! real LAN/serial link) and must be read during every other step too; the
//! supervisor loops must never wait on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use vegard_core::HostClock;

use crate::abort::StopRx;
use vegard_instruments::{InstrumentError, TemperatureStage};
use vegard_store::schema::TemperatureRow;
use vegard_store::{RawStream, StoreError};

/// What can go wrong with the stage during a run. Cloneable (errors shared
/// behind `Arc`) because the polling task publishes its latest failure on a
/// watch channel that every waiting step reads.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StageError {
    #[error("temperature stage task has stopped")]
    TaskStopped,
    #[error("temperature stage did not answer within 10 s")]
    NoAnswer,
    /// A command (setpoint, heater off) failed on the instrument.
    #[error("{0}")]
    Command(Arc<InstrumentError>),
    /// Reading the temperature failed.
    #[error("temperature stage: {0}")]
    Reading(Arc<InstrumentError>),
    /// Recording a reading failed.
    #[error("store: {0}")]
    Store(Arc<StoreError>),
    #[error("stop requested (Ctrl-C, SIGTERM/SIGHUP or the dashboard)")]
    StopRequested,
    #[error(
        "temperature not stable within {timeout_s} s: setpoint {setpoint_K:.2} K \
         +/- {tolerance_K} K for {hold_s} s, last reading {last_T_K:.3} K"
    )]
    NotStable {
        timeout_s: f64,
        setpoint_K: f64,
        tolerance_K: f64,
        hold_s: f64,
        last_T_K: f64,
    },
}

/// The newest reading: host receive time and temperature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Reading {
    pub host_ns: i64,
    pub T_K: f64,
}

type Reply = oneshot::Sender<Result<(), StageError>>;

enum Cmd {
    Setpoint(f64, Reply),
    HeaterOff(Reply),
}

/// Handle the engine keeps; the task owns the instrument.
pub(crate) struct StageHandle {
    cmds: mpsc::UnboundedSender<Cmd>,
    pub readings: watch::Receiver<Option<Reading>>,
    /// Set by the task when reading fails; the temperature step reports it.
    pub error: watch::Receiver<Option<StageError>>,
    task: tokio::task::JoinHandle<()>,
}

/// Wall-clock interval between readings. Short enough that at 100x speed a
/// 20 s thermal time constant is still sampled ~ every 5 s of experiment.
fn poll_interval(speed: f64) -> Duration {
    Duration::from_secs_f64((0.5 / speed).clamp(0.02, 0.5))
}

impl StageHandle {
    /// Start the task. `current_step` is the plan index the engine is in
    /// (recorded with every reading, -1 between steps).
    pub(crate) fn start(
        stage: Box<dyn TemperatureStage>,
        raw: RawStream,
        clock: HostClock,
        speed: f64,
        current_step: Arc<AtomicI64>,
    ) -> StageHandle {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (r_tx, r_rx) = watch::channel(None);
        let (e_tx, e_rx) = watch::channel(None);
        let task = tokio::spawn(stage_task(
            stage,
            raw,
            cmd_rx,
            r_tx,
            e_tx,
            clock,
            poll_interval(speed),
            current_step,
        ));
        StageHandle {
            cmds: cmd_tx,
            readings: r_rx,
            error: e_rx,
            task,
        }
    }

    async fn call(&self, make: impl FnOnce(Reply) -> Cmd) -> Result<(), StageError> {
        let (tx, rx) = oneshot::channel();
        self.cmds
            .send(make(tx))
            .map_err(|_| StageError::TaskStopped)?;
        match tokio::time::timeout(Duration::from_secs(10), rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(StageError::TaskStopped),
            Err(_) => Err(StageError::NoAnswer),
        }
    }

    pub(crate) async fn set_setpoint_K(&self, setpoint_K: f64) -> Result<(), StageError> {
        self.call(|tx| Cmd::Setpoint(setpoint_K, tx)).await
    }

    pub(crate) async fn heater_off(&self) -> Result<(), StageError> {
        self.call(Cmd::HeaterOff).await
    }

    /// Stop polling, flush the raw stream. Waits at most 5 s.
    pub(crate) async fn stop(self) {
        drop(self.cmds);
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn stage_task(
    mut stage: Box<dyn TemperatureStage>,
    mut raw: RawStream,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    readings: watch::Sender<Option<Reading>>,
    errors: watch::Sender<Option<StageError>>,
    clock: HostClock,
    every: Duration,
    current_step: Arc<AtomicI64>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq: i64 = 0;
    let mut setpoint_K = f64::NAN;
    loop {
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                None => break,
                Some(Cmd::Setpoint(k, reply)) => {
                    let r = stage.set_setpoint_K(k).await.map_err(|e| StageError::Command(Arc::new(e)));
                    if r.is_ok() { setpoint_K = k; }
                    let _ = reply.send(r);
                }
                Some(Cmd::HeaterOff(reply)) => {
                    let r = stage.heater_off().await.map_err(|e| StageError::Command(Arc::new(e)));
                    if r.is_ok() { setpoint_K = f64::NAN; }
                    let _ = reply.send(r);
                }
            },
            _ = tick.tick() => match stage.read_K().await {
                Ok(T_K) => {
                    let host_ns = clock.now_ns();
                    let row = TemperatureRow {
                        seq,
                        step: current_step.load(Ordering::SeqCst),
                        host_ns,
                        T_K,
                        setpoint_K,
                    };
                    seq += 1;
                    if let Err(e) = raw.append(&row.cells()).and_then(|()| raw.flush_if_due()) {
                        let _ = errors.send(Some(StageError::Store(Arc::new(e))));
                    }
                    let _ = readings.send(Some(Reading { host_ns, T_K }));
                }
                Err(e) => {
                    let _ = errors.send(Some(StageError::Reading(Arc::new(e))));
                }
            },
        }
    }
    let _ = raw.flush();
}

/// Outcome of waiting for a setpoint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stabilised {
    /// Experiment seconds from the setpoint command to the end of the hold.
    pub waited_s: f64,
    /// Last reading, K.
    pub T_K: f64,
}

/// Progress of a temperature step, for the dashboard / CLI.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Waiting {
    pub T_K: f64,
    /// Experiment seconds the reading has stayed within tolerance.
    pub stable_s: f64,
    pub elapsed_s: f64,
}

/// Set the stage to `setpoint_K` and wait until its reading stays within
/// `tolerance_K` for `hold_s` (experiment seconds) AND has stopped moving:
/// the least-squares slope over that window, times `hold_s`, is under half
/// the tolerance. Without the second test a stage that overshoots is
/// declared stable on its way up, while the overshoot is still coming (a
/// PID-controlled stage with a 20 s time constant spends more than 10 s
/// inside a 0.3 K band before it leaves it again at the peak). Not stable
/// after `timeout_s`: an error (the run aborts, the cell is switched off).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn stabilise(
    stage: &mut StageHandle,
    setpoint_K: f64,
    tolerance_K: f64,
    hold_s: f64,
    timeout_s: f64,
    clock: HostClock,
    speed: f64,
    cancel: &mut StopRx,
    mut progress: impl FnMut(Waiting),
) -> Result<Stabilised, StageError> {
    stage.set_setpoint_K(setpoint_K).await?;
    let start_ns = clock.now_ns();
    let exp_s = |ns: i64| (ns - start_ns) as f64 * 1e-9 * speed;
    // In-band readings of the current stretch: (host ns, K).
    let mut band: std::collections::VecDeque<(i64, f64)> = std::collections::VecDeque::new();
    let mut last_T = f64::NAN;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            changed = stage.readings.changed() => {
                if changed.is_err() {
                    return Err(StageError::TaskStopped);
                }
                let Some(r) = *stage.readings.borrow_and_update() else { continue };
                if r.host_ns < start_ns { continue; } // from before the new setpoint
                last_T = r.T_K;
                if (r.T_K - setpoint_K).abs() <= tolerance_K {
                    band.push_back((r.host_ns, r.T_K));
                    let span_s = |a: i64, b: i64| (b - a) as f64 * 1e-9 * speed;
                    // Keep one hold window (plus the reading that opens it).
                    while band.len() > 2 && span_s(band[1].0, r.host_ns) >= hold_s {
                        band.pop_front();
                    }
                    if span_s(band[0].0, r.host_ns) >= hold_s {
                        let slope_K_per_s = slope(&band, speed);
                        if (slope_K_per_s * hold_s).abs() <= 0.5 * tolerance_K {
                            return Ok(Stabilised { waited_s: exp_s(r.host_ns), T_K: r.T_K });
                        }
                    }
                } else {
                    band.clear();
                }
            }
            _ = cancel.wait_for(Option::is_some) => {
                return Err(StageError::StopRequested);
            }
            _ = tick.tick() => {
                let now = clock.now_ns();
                if let Some(e) = stage.error.borrow().clone() {
                    return Err(e);
                }
                if exp_s(now) > timeout_s {
                    return Err(StageError::NotStable {
                        timeout_s,
                        setpoint_K,
                        tolerance_K,
                        hold_s,
                        last_T_K: last_T,
                    });
                }
                progress(Waiting {
                    T_K: last_T,
                    stable_s: band.front().map_or(0.0, |s| (now - s.0) as f64 * 1e-9 * speed),
                    elapsed_s: exp_s(now),
                });
            }
        }
    }
}

/// Least-squares slope of (host ns, K) readings, K per experiment second.
fn slope(points: &std::collections::VecDeque<(i64, f64)>, speed: f64) -> f64 {
    let n = points.len() as f64;
    let Some(&(t0, _)) = points.front() else {
        return 0.0;
    };
    let t = |ns: i64| (ns - t0) as f64 * 1e-9 * speed;
    let tm = points.iter().map(|p| t(p.0)).sum::<f64>() / n;
    let ym = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for p in points {
        sxx += (t(p.0) - tm).powi(2);
        sxy += (t(p.0) - tm) * (p.1 - ym);
    }
    if sxx > 0.0 { sxy / sxx } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_ramp_in_experiment_seconds() {
        // 0.1 K per wall second at 10x speed = 0.01 K per experiment second.
        let pts: std::collections::VecDeque<(i64, f64)> = (0..20)
            .map(|k| (k * 100_000_000, 300.0 + 0.01 * k as f64))
            .collect();
        assert!((slope(&pts, 10.0) - 0.01).abs() < 1e-12);
        let flat: std::collections::VecDeque<(i64, f64)> = (0..5).map(|k| (k, 300.0)).collect();
        assert_eq!(slope(&flat, 1.0), 0.0);
    }
}
