//! The virtual bench: one physical world, a MethodSCRIPT potentiostat on a
//! pseudo-terminal, a SCPI digitizer, an SR860 lock-in and a Lake Shore 336
//! temperature controller on loopback TCP, wired together by a trigger cable
//! (potentiostat -> digitizer) and the lock-in's sine out (-> potentiostat's
//! external input), all running on one accelerated true timeline.
//!
//! Owns: the bench's threads and their shutdown, the resource strings the
//! drivers connect to, and the read-only views (line log, truth log, cell
//! state) tests and the engine inspect.

use crate::SimError;
use crate::clock::BenchClock;
use crate::dmm;
use crate::journal::{Device, Journal, LogEntry, TruthLog, lock};
use crate::methodscript;
use crate::world::World;
use crate::{ls336, sr860};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use vegard_recipe::{Resource, SimParams};

/// Wall-clock period of the bench tick, which keeps the world integrated up
/// to now and lets the digitizer take its due readings even when nobody
/// asks, so the history an emulator reads from stays short.
const TICK: Duration = Duration::from_millis(10);

/// What every emulator thread shares.
pub(crate) struct Shared {
    pub clock: BenchClock,
    pub world: Mutex<World>,
    pub journal: Journal,
    pub shutdown: AtomicBool,
}

/// A running virtual bench. Dropping it shuts it down.
pub struct VirtualBench {
    shared: Arc<Shared>,
    potentiostat_resource: Resource,
    deflection_resource: Resource,
    lockin_resource: Resource,
    temperature_resource: Resource,
    threads: Vec<JoinHandle<()>>,
    /// Keeps the pty's slave side open for the bench's lifetime.
    _potentiostat: methodscript::Potentiostat,
}

impl VirtualBench {
    /// Builds the world from `params` and starts the instruments. The clock
    /// starts now: true time 0 is this call.
    pub fn start(params: &SimParams) -> Result<VirtualBench, SimError> {
        let speed = params.time_acceleration;
        if !(speed.is_finite() && speed > 0.0) {
            return Err(SimError::InvalidParam {
                name: "time_acceleration",
                reason: format!("must be a finite number > 0, got {speed}"),
            });
        }
        validate_faults(params)?;
        let clock = BenchClock::start(speed);
        let shared = Arc::new(Shared {
            clock,
            world: Mutex::new(World::new(params, clock)?),
            journal: Journal::default(),
            shutdown: AtomicBool::new(false),
        });
        // From here on, a failure must stop what already runs: build the
        // bench value early so its Drop does that.
        let mut bench = VirtualBench {
            shared: shared.clone(),
            potentiostat_resource: Resource::Sim,
            deflection_resource: Resource::Sim,
            lockin_resource: Resource::Sim,
            temperature_resource: Resource::Sim,
            threads: Vec::new(),
            _potentiostat: methodscript::start(shared.clone(), params)?,
        };
        bench.potentiostat_resource = Resource::Serial {
            path: bench._potentiostat.path.clone(),
        };
        bench.threads.append(&mut bench._potentiostat.threads);
        let meter = dmm::start(shared.clone(), params)?;
        bench.deflection_resource = tcp_resource(meter.addr);
        bench.threads.push(meter.thread);
        let lockin = sr860::start(shared.clone(), params)?;
        bench.lockin_resource = tcp_resource(lockin.server.addr);
        bench.threads.push(lockin.server.thread);
        let controller = ls336::start(shared.clone(), params)?;
        bench.temperature_resource = tcp_resource(controller.server.addr);
        bench.threads.push(controller.server.thread);
        let ticker_dmm = meter.dmm;
        let ticker_lockin = lockin.lockin;
        let ticker = std::thread::Builder::new()
            .name("vegard-sim-tick".into())
            .spawn(move || {
                while !shared.shutdown.load(Ordering::Relaxed) {
                    lock(&shared.world).advance_to_now();
                    lock(&ticker_dmm).update();
                    // Keeps the lock-in's filters fed up to now.
                    lock(&ticker_lockin).update();
                    std::thread::sleep(TICK);
                }
            })
            .map_err(|source| SimError::Io {
                what: "tick thread",
                source,
            })?;
        bench.threads.push(ticker);
        Ok(bench)
    }

    /// VISA resource of the potentiostat, e.g. `ASRL/dev/pts/7::INSTR`.
    pub fn potentiostat_resource(&self) -> Resource {
        self.potentiostat_resource.clone()
    }

    /// VISA resource of the digitizer, e.g. `TCPIP::127.0.0.1::40123::SOCKET`.
    pub fn deflection_resource(&self) -> Resource {
        self.deflection_resource.clone()
    }

    /// VISA resource of the SR860 lock-in, e.g.
    /// `TCPIP::127.0.0.1::40124::SOCKET` (replies end with LF).
    pub fn lockin_resource(&self) -> Resource {
        self.lockin_resource.clone()
    }

    /// VISA resource of the Lake Shore 336 temperature controller, e.g.
    /// `TCPIP::127.0.0.1::40125::SOCKET` (replies end with CR LF).
    pub fn temperature_resource(&self) -> Resource {
        self.temperature_resource.clone()
    }

    /// Simulated seconds per wall-clock second.
    pub fn speed(&self) -> f64 {
        self.shared.clock.speed()
    }

    /// Every line received and sent so far, in the order handled.
    pub fn log(&self) -> Vec<LogEntry> {
        self.shared.journal.lines()
    }

    /// Whether `device` received any line containing `needle`.
    pub fn received(&self, device: Device, needle: &str) -> bool {
        self.shared.journal.received(device, needle)
    }

    /// Whether the potentiostat drives the cell right now.
    pub fn cell_is_on(&self) -> bool {
        lock(&self.shared.world).cell_is_on()
    }

    /// Why the data the bench served is not the model's, if it is not: it
    /// fell so far behind (emulator threads starved of CPU at a high
    /// `--speed`) that instants were asked for after they had left the
    /// model's history. `None` while it kept up.
    pub fn overrun(&self) -> Option<String> {
        self.overrun_probe()()
    }

    /// A handle on [`VirtualBench::overrun`] that outlives the borrow (the
    /// engine asks at the end of a run, the CLI owns the bench).
    pub fn overrun_probe(&self) -> impl Fn() -> Option<String> + Send + Sync + 'static {
        let shared = self.shared.clone();
        let speed = self.speed();
        move || {
            let stale = lock(&shared.world).stale;
            (stale.count > 0).then(|| overrun_message(speed, &stale))
        }
    }

    /// A handle that empties the bench's journal (wire lines and sample
    /// truths, [`VirtualBench::log`], [`VirtualBench::truth_log`]) and
    /// frees its memory. `vegard run` calls it once recording is over and
    /// before finalising, whose analysis of a day-long step wants that
    /// memory (the journal holds up to ~110 MB); tests that compare a run
    /// with the truth afterwards do not.
    pub fn journal_release(&self) -> impl Fn() + Send + Sync + 'static {
        let shared = self.shared.clone();
        move || shared.journal.release()
    }

    /// True instants of the trigger edges and of every emitted sample.
    pub fn truth_log(&self) -> TruthLog {
        let triggers_s = lock(&self.shared.world).trigger.rising_s.clone();
        self.shared.journal.truth(triggers_s)
    }

    /// Stops every thread and closes the pty and the listener. Returns
    /// within a few tens of milliseconds.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
        for handle in self.threads.drain(..) {
            if handle.join().is_err() {
                tracing::error!("a virtual bench thread panicked");
            }
        }
    }
}

impl Drop for VirtualBench {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tcp_resource(addr: std::net::SocketAddr) -> Resource {
    Resource::Tcp {
        host: addr.ip().to_string(),
        port: addr.port(),
    }
}

fn validate_faults(p: &SimParams) -> Result<(), SimError> {
    let f = &p.faults;
    for (name, v) in [
        (
            "faults.potentiostat_error_after_s",
            f.potentiostat_error_after_s,
        ),
        ("faults.current_spike_after_s", f.current_spike_after_s),
        ("faults.lockin_switch_delay_s", f.lockin_switch_delay_s),
        ("faults.digitizer_stall_after_s", f.digitizer_stall_after_s),
        ("faults.digitizer_stall_s", Some(f.digitizer_stall_s)),
    ] {
        if let Some(v) = v
            && !(v.is_finite() && v >= 0.0)
        {
            return Err(SimError::InvalidParam {
                name,
                reason: format!("must be a finite number >= 0, got {v}"),
            });
        }
    }
    if f.lockin_switch_delay_every == Some(0) {
        return Err(SimError::InvalidParam {
            name: "faults.lockin_switch_delay_every",
            reason: "must be >= 1 (1 = every FREQ command)".into(),
        });
    }
    if !f.current_spike_A.is_finite() {
        return Err(SimError::InvalidParam {
            name: "faults.current_spike_A",
            reason: format!("must be finite, got {}", f.current_spike_A),
        });
    }
    Ok(())
}

/// What [`VirtualBench::overrun`] says.
fn overrun_message(speed: f64, stale: &crate::world::StaleReads) -> String {
    format!(
        "the virtual bench could not keep up at {speed}x: {} readings were taken up to \
         {:.1} s of experiment time late, beyond the {} s of model history it keeps \
         (first at t = {:.1} s), so their values are not the model's; run at a lower --speed",
        stale.count,
        stale.worst_lag_s,
        crate::world::HISTORY_S,
        stale.first_t_true_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<VirtualBench>();
    }

    #[test]
    fn unphysical_bench_parameters_are_refused() {
        let mut p = SimParams {
            time_acceleration: 0.0,
            ..SimParams::default()
        };
        assert!(matches!(
            VirtualBench::start(&p),
            Err(SimError::InvalidParam {
                name: "time_acceleration",
                ..
            })
        ));
        p.time_acceleration = 10.0;
        p.faults.potentiostat_error_after_s = Some(f64::NAN);
        assert!(VirtualBench::start(&p).is_err());
        p.faults.potentiostat_error_after_s = None;
        p.clocks.deflection.jitter_s = -1.0;
        assert!(matches!(
            VirtualBench::start(&p),
            Err(SimError::InvalidParam {
                name: "clocks.deflection",
                ..
            })
        ));
    }
}
