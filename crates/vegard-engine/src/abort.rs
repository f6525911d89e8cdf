//! Why a run stopped before its end: the decision the supervisor took, as a
//! value. Its `Display` is the human text recorded in `run.toml` `reason`
//! and in the `abort` line of `events.jsonl` (unchanged from when these were
//! strings, so older run folders and newer ones read the same).

use vegard_instruments::InstrumentError;
use vegard_store::StoreError;

use crate::stage::StageError;

/// Which instrument a fault came from, named as in abort messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Potentiostat,
    /// The deflection probe (an externally triggered DMM).
    Digitizer,
    LockIn,
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Device::Potentiostat => "potentiostat",
            Device::Digitizer => "digitizer",
            Device::LockIn => "lock-in",
        })
    }
}

/// Who asked a run to stop, carried by the engine's `cancel` channel
/// (`None` while nobody has). The engine stops the same safe way for both;
/// the cause only decides what run.toml's `reason` says, so a run that lost
/// its terminal is not mistaken for one a person stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// Ctrl-C, SIGTERM or the dashboard's abort key.
    Requested,
    /// The terminal went away: SIGHUP, EIO/EPIPE writing to it, or a hung-up
    /// controlling terminal (an SSH connection that dropped, a closed tmux
    /// window).
    TerminalLost,
}

/// The receiving end of the stop channel [`crate::run`] watches.
pub type StopRx = tokio::sync::watch::Receiver<Option<StopCause>>;

/// Why the engine ended a run early.
#[derive(Debug, thiserror::Error)]
pub enum AbortReason {
    /// Ctrl-C, SIGTERM/SIGHUP or the dashboard's abort key.
    #[error("stop requested (Ctrl-C, SIGTERM/SIGHUP or the dashboard)")]
    StopRequested,
    /// The terminal was lost ([`StopCause::TerminalLost`]); stopped the same
    /// safe way as Ctrl-C.
    #[error("terminal lost (hangup or the terminal closed): stopped safely")]
    TerminalLost,
    /// `[limits] current_max_A` exceeded.
    #[error(
        "current limit hit: |I| = {I_abs_A:.4e} A > current_max_A = {current_max_A:.4e} A (step {step}, sample {sample})"
    )]
    CurrentLimit {
        step: usize,
        sample: u64,
        I_abs_A: f64,
        current_max_A: f64,
    },
    /// The potential left `[limits] potential_window_V` (plus a 5 % margin).
    #[error(
        "potential limit hit: E = {E_V:.4} V outside potential_window_V [{low_V}, {high_V}] (step {step}, sample {sample})"
    )]
    PotentialLimit {
        step: usize,
        sample: u64,
        E_V: f64,
        low_V: f64,
        high_V: f64,
    },
    /// The potentiostat reported an error line while running a technique.
    #[error("potentiostat device error !{code:04X}: {detail}")]
    PotentiostatError { code: u16, detail: String },
    /// An instrument call failed (the error names the instrument's address).
    #[error("{device}: {error}")]
    DeviceFault {
        device: Device,
        error: InstrumentError,
    },
    /// Parking the lock-in's sine after an ESM sweep failed.
    #[error("lock-in: sine off: {0}")]
    SineOff(InstrumentError),
    /// A temperature step failed: not stable by its timeout, the stage
    /// failed, or a stop was requested while waiting.
    #[error("step {step} (temperature): {cause}")]
    Temperature { step: usize, cause: StageError },
    #[error("temperature step, but the bench has no [instruments.temperature]")]
    NoTemperatureStage,
    #[error("esm_sweep needs the bench's lock-in (its sine out drives the cell)")]
    NoLockIn,
    #[error("lock-in lost")]
    LockInLost,
    #[error("ESM frequency {0} out of range")]
    EsmFrequencyOutOfRange(usize),
    /// Writing the run folder failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The digitizer task panicked (a bug, or the injected test fault).
    #[error("deflection task panicked")]
    DeflectionTaskPanicked,
    #[error("deflection task failed: {0}")]
    DeflectionTaskFailed(tokio::task::JoinError),
    #[error("deflection task stopped early")]
    DeflectionTaskStopped,
    #[error("deflection task ended without returning the instrument")]
    DeflectionProbeLost,
    #[error("digitizer lost in an earlier step")]
    DigitizerLost,
    /// Watchdog: the digitizer task did not end when told to.
    #[error("digitizer did not stop within 5 s")]
    DigitizerStuck,
    #[error("cannot start potentiostat thread: {0}")]
    PotentiostatThreadStart(std::io::Error),
    #[error("potentiostat thread has stopped")]
    PotentiostatThreadStopped,
    #[error("potentiostat task ended unexpectedly")]
    PotentiostatTaskEnded,
    /// Watchdog: the device kept streaming well past the step's planned end.
    #[error("step {step} overran: still running {late_s:.1} s (wall) after its nominal end")]
    StepOverran { step: usize, late_s: f64 },
    /// Watchdog: no message from the potentiostat for longer than it may be quiet.
    #[error("potentiostat silent for {silent_s:.1} s (timeout)")]
    PotentiostatSilent { silent_s: f64 },
}

impl AbortReason {
    /// Whether a person asked for the stop (also while a temperature step
    /// waited), as opposed to a fault or a limit.
    pub fn is_stop_requested(&self) -> bool {
        matches!(
            self,
            AbortReason::StopRequested
                | AbortReason::Temperature {
                    cause: StageError::StopRequested,
                    ..
                }
        )
    }

    /// Whether a safety limit of the recipe ended the run.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            AbortReason::CurrentLimit { .. } | AbortReason::PotentialLimit { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts are what run.toml and events.jsonl have always said.
    #[test]
    fn messages_are_unchanged() {
        assert_eq!(
            AbortReason::StopRequested.to_string(),
            "stop requested (Ctrl-C, SIGTERM/SIGHUP or the dashboard)"
        );
        assert_eq!(
            AbortReason::CurrentLimit {
                step: 1,
                sample: 42,
                I_abs_A: 0.0123,
                current_max_A: 0.01
            }
            .to_string(),
            "current limit hit: |I| = 1.2300e-2 A > current_max_A = 1.0000e-2 A (step 1, sample 42)"
        );
        assert_eq!(
            AbortReason::PotentialLimit {
                step: 0,
                sample: 7,
                E_V: 1.23456,
                low_V: -0.2,
                high_V: 1.0
            }
            .to_string(),
            "potential limit hit: E = 1.2346 V outside potential_window_V [-0.2, 1] (step 0, sample 7)"
        );
        assert_eq!(
            AbortReason::PotentiostatError {
                code: 0x4004,
                detail: "measurement fault".into()
            }
            .to_string(),
            "potentiostat device error !4004: measurement fault"
        );
        let stopped = AbortReason::Temperature {
            step: 3,
            cause: StageError::StopRequested,
        };
        assert_eq!(
            stopped.to_string(),
            "step 3 (temperature): stop requested (Ctrl-C, SIGTERM/SIGHUP or the dashboard)"
        );
        assert!(stopped.is_stop_requested());
        assert!(!AbortReason::DigitizerLost.is_stop_requested());
    }
}
