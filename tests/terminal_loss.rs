//! Losing the terminal while `vegard run` is up (issue 16, "Losing the
//! terminal"): the run is stopped through the safe path and its folder
//! finalised (`aborted`, reason "terminal lost"), and no process is left
//! behind, mid-run or after the run. vegard runs in a new session whose
//! controlling terminal is a pseudo-terminal (`setsid -c`), as under sshd or
//! tmux; "closing the terminal" is closing the master side, after which the
//! kernel hangs up the terminal and sends SIGHUP, exactly as when an SSH
//! connection drops.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

#[allow(dead_code)]
mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::tmpdir;

/// A `vegard` process whose controlling terminal is a pty this test holds
/// the master of. The master is owned by the reader thread (which drains
/// the output, so vegard never blocks writing) and closed when asked.
struct Session {
    child: Child,
    screen: Arc<Mutex<Vec<u8>>>,
    close: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
}

impl Session {
    fn start(args: &[&str]) -> Session {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        // Close-on-exec: a master inherited by any other child process (of
        // this or a parallel test) would keep the terminal from closing.
        let master =
            openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let slave_path = ptsname(&master, Vec::new())
            .expect("ptsname")
            .into_string()
            .expect("pts path");
        let tty = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&slave_path)
                .expect("open slave")
        };
        let size = Command::new("stty")
            .args(["cols", "100", "rows", "32"])
            .stdin(tty())
            .status()
            .expect("stty");
        assert!(size.success(), "stty on {slave_path}");
        // setsid -c: a new session with the pty (its stdin) as the
        // controlling terminal; without a fork, so the pid is vegard's.
        let child = Command::new("setsid")
            .arg("-c")
            .arg(env!("CARGO_BIN_EXE_vegard"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("TERM", "xterm-256color")
            .stdin(tty())
            .stdout(tty())
            .stderr(tty())
            .spawn()
            .expect("spawn setsid -c vegard");
        let screen = Arc::new(Mutex::new(Vec::new()));
        let close = Arc::new(AtomicBool::new(false));
        let closed = Arc::new(AtomicBool::new(false));
        let (sink, close_rx, closed_tx) = (screen.clone(), close.clone(), closed.clone());
        std::thread::spawn(move || {
            use rustix::event::{PollFd, PollFlags, Timespec, poll};
            let mut master = std::fs::File::from(master);
            let mut buf = [0u8; 8192];
            let tick = Timespec {
                tv_sec: 0,
                tv_nsec: 50_000_000,
            };
            while !close_rx.load(Ordering::SeqCst) {
                let mut fds = [PollFd::new(&master, PollFlags::IN)];
                if poll(&mut fds, Some(&tick)).unwrap_or(0) == 0 {
                    continue;
                }
                match master.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink.lock().expect("screen").extend_from_slice(&buf[..n]),
                }
            }
            drop(master);
            closed_tx.store(true, Ordering::SeqCst);
        });
        Session {
            child,
            screen,
            close,
            closed,
        }
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().expect("screen")).into_owned()
    }

    fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        poll(timeout, || self.output().contains(needle).then_some(())).is_some()
    }

    /// Closes the terminal: the master side goes away.
    fn close_terminal(&self) {
        self.close.store(true, Ordering::SeqCst);
        assert!(
            poll(Duration::from_secs(5), || self
                .closed
                .load(Ordering::SeqCst)
                .then_some(()))
            .is_some(),
            "master not closed"
        );
    }

    /// The exit status within `timeout`, or the process is killed and the
    /// test fails: a process left behind is the bug under test.
    fn exit_within(&mut self, timeout: Duration, what: &str) -> ExitStatus {
        let pid = self.child.id();
        match poll(timeout, || self.child.try_wait().ok().flatten()) {
            Some(s) => s,
            None => {
                let state =
                    std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{what}: vegard still alive after {timeout:?} (stat: {state}); output:\n{}",
                    self.output()
                )
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if t0.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_dir_in(out: &Path) -> Option<PathBuf> {
    std::fs::read_dir(out)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("run.toml").is_file())
}

fn run_toml(dir: &Path) -> Option<toml::Table> {
    std::fs::read_to_string(dir.join("run.toml"))
        .ok()?
        .parse()
        .ok()
}

fn status_of(dir: &Path) -> Option<String> {
    Some(run_toml(dir)?.get("status")?.as_str()?.to_owned())
}

/// A run folder written by a run that lost its terminal: finalised, aborted
/// for that reason, the cell switched off with the instrument's
/// acknowledgement.
fn assert_finalised_terminal_lost(dir: &Path) {
    let meta = run_toml(dir).expect("run.toml");
    assert_eq!(meta["status"].as_str(), Some("aborted"), "{meta}");
    let reason = meta["reason"].as_str().unwrap_or("");
    assert!(reason.contains("terminal lost"), "reason: {reason}");
    let events = std::fs::read_to_string(dir.join("events.jsonl")).expect("events");
    let cell_off = events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["kind"] == "cell_off")
        .unwrap_or_else(|| panic!("no cell_off event: {events}"));
    assert_eq!(cell_off["ok"], true, "{cell_off}");
    // Finalised: the Parquet tables exist.
    assert!(dir.join("aligned.parquet").is_file(), "not finalised");
    assert!(
        dir.join("data/potentiostat.parquet").is_file(),
        "not finalised"
    );
}

fn wait_running(out: &Path, s: &Session) -> PathBuf {
    poll(Duration::from_secs(60), || {
        let d = run_dir_in(out)?;
        // Recording for a moment: the potentiostat raw stream has rows.
        let raw = vegard_store::read_raw(&d, "potentiostat").ok()?;
        (raw.len() > 20).then_some(d)
    })
    .unwrap_or_else(|| panic!("run did not start: {}", s.output()))
}

#[test]
fn closing_the_terminal_mid_run_with_the_dashboard_stops_safely_and_finalises() {
    let dir = tmpdir("tl-dash");
    let out = dir.to_str().expect("utf-8 path");
    let mut s = Session::start(&["run", "recipes/demo-cv.toml", "--speed", "1", "--out", out]);
    assert!(
        s.wait_for("\x1b[?1049h", Duration::from_secs(30)),
        "no dashboard: {}",
        s.output()
    );
    let run = wait_running(&dir, &s);
    s.close_terminal();
    let status = s.exit_within(Duration::from_secs(60), "terminal closed mid-run");
    assert_eq!(status.code(), Some(3), "aborted run: exit 3 ({status:?})");
    assert_finalised_terminal_lost(&run);
}

#[test]
fn closing_the_terminal_mid_run_without_the_dashboard_stops_safely_and_finalises() {
    let dir = tmpdir("tl-plain");
    let out = dir.to_str().expect("utf-8 path");
    let mut s = Session::start(&[
        "run",
        "recipes/demo-cv.toml",
        "--speed",
        "1",
        "--no-tui",
        "--out",
        out,
    ]);
    let run = wait_running(&dir, &s);
    s.close_terminal();
    let status = s.exit_within(Duration::from_secs(60), "terminal closed mid-run");
    assert_eq!(status.code(), Some(3), "aborted run: exit 3 ({status:?})");
    assert_finalised_terminal_lost(&run);
}

/// After the run the dashboard waits for `q`; a terminal that goes away
/// then must end the process at once (it used to spin on the dead tty for
/// hours, deaf to SIGTERM).
#[test]
fn closing_the_terminal_after_the_run_ends_the_process() {
    let dir = tmpdir("tl-after");
    let out = dir.to_str().expect("utf-8 path");
    let mut s = Session::start(&["run", "recipes/demo-cv.toml", "--speed", "8", "--out", out]);
    let run = poll(Duration::from_secs(120), || {
        let d = run_dir_in(&dir)?;
        (status_of(&d)? == "complete").then_some(d)
    })
    .unwrap_or_else(|| panic!("run did not complete: {}", s.output()));
    // The view stays up after the run, waiting for q.
    std::thread::sleep(Duration::from_millis(500));
    assert!(s.child.try_wait().ok().flatten().is_none(), "left before q");
    s.close_terminal();
    let status = s.exit_within(Duration::from_secs(10), "terminal closed after the run");
    assert_eq!(status.code(), Some(0), "complete run: exit 0 ({status:?})");
    assert_eq!(status_of(&run).as_deref(), Some("complete"));
}

/// SIGTERM always ends the process: after the run at once (with the run's
/// exit status and the terminal given back), while the view waits for q.
#[test]
fn sigterm_after_the_run_ends_the_process_at_once() {
    let dir = tmpdir("tl-term");
    let out = dir.to_str().expect("utf-8 path");
    let mut s = Session::start(&["run", "recipes/demo-cv.toml", "--speed", "8", "--out", out]);
    poll(Duration::from_secs(120), || {
        let d = run_dir_in(&dir)?;
        (status_of(&d)? == "complete").then_some(d)
    })
    .unwrap_or_else(|| panic!("run did not complete: {}", s.output()));
    std::thread::sleep(Duration::from_millis(500));
    let kill = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .stdout(Stdio::null())
        .status()
        .expect("kill");
    assert!(kill.success());
    let status = s.exit_within(Duration::from_secs(5), "SIGTERM after the run");
    assert_eq!(status.code(), Some(0), "complete run: exit 0 ({status:?})");
    // The terminal was given back: the alternate screen was left last. The
    // reader thread drains the pty every 50 ms; give it time on a loaded
    // machine to see the last bytes written before the exit.
    let left = |o: &str| {
        o.rfind("\x1b[?1049l").unwrap_or(0) > o.rfind("\x1b[?1049h").unwrap_or(usize::MAX)
    };
    let drained = poll(Duration::from_secs(5), || left(&s.output()).then_some(()));
    assert!(drained.is_some(), "alternate screen not left");
}

/// SIGTERM mid-run stops safely, and the process then ends by itself: the
/// view does not wait for a q that a service manager cannot press.
#[test]
fn sigterm_mid_run_with_the_dashboard_stops_safely_and_exits() {
    let dir = tmpdir("tl-term-mid");
    let out = dir.to_str().expect("utf-8 path");
    let mut s = Session::start(&["run", "recipes/demo-cv.toml", "--speed", "1", "--out", out]);
    let run = wait_running(&dir, &s);
    let kill = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let status = s.exit_within(Duration::from_secs(60), "SIGTERM mid-run");
    assert_eq!(status.code(), Some(3), "aborted run: exit 3 ({status:?})");
    let meta = run_toml(&run).expect("run.toml");
    assert_eq!(meta["status"].as_str(), Some("aborted"));
    let reason = meta["reason"].as_str().unwrap_or("");
    assert!(reason.contains("stop requested"), "{reason}");
}
