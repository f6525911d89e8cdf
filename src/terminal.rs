//! Losing the terminal: an SSH connection that drops or a tmux window that
//! is closed while `vegard run` is up. The run must then stop the same safe
//! way as for Ctrl-C (cell off, folder finalised, reason "terminal lost")
//! and the process must end; a process left behind on a dead terminal keeps
//! a run folder marked `running` or, after the run, spins on a tty that only
//! reports hangups.
//!
//! Three signs are watched, because which one arrives first depends on how
//! the terminal went away: SIGHUP (sent by the kernel to the terminal's
//! foreground process group; handled in `cmd::run`), a hangup seen by
//! poll(2) on a standard stream that was a terminal ([`Ttys::hung_up`],
//! which also covers a process that missed or ignored SIGHUP, e.g. under
//! `nohup` with the dashboard up), and EIO/EPIPE when writing to it
//! ([`is_terminal_gone`]).

use std::io::IsTerminal;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};

/// How often a run looks at its terminal. A hangup is acted on within this,
/// far inside any instrument's timeout; it costs one poll(2) call.
pub const TERMINAL_POLL: Duration = Duration::from_millis(250);

/// The standard streams that were terminals when vegard started: only
/// those can be lost (a stream redirected to a file never hangs up).
#[derive(Debug, Clone, Copy)]
pub struct Ttys {
    stdin: bool,
    stdout: bool,
    stderr: bool,
}

impl Ttys {
    /// The streams as they were when first asked (call it early in
    /// `main`): a terminal that has hung up no longer answers isatty(3),
    /// so asking later would miss exactly the terminals that were lost.
    pub fn detect_initial() -> Self {
        static INITIAL: std::sync::OnceLock<Ttys> = std::sync::OnceLock::new();
        *INITIAL.get_or_init(Ttys::detect)
    }

    fn detect() -> Self {
        Ttys {
            stdin: std::io::stdin().is_terminal(),
            stdout: std::io::stdout().is_terminal(),
            stderr: std::io::stderr().is_terminal(),
        }
    }

    /// Whether any standard stream is a terminal (else there is nothing to
    /// watch).
    pub fn any(&self) -> bool {
        self.stdin || self.stdout || self.stderr
    }

    /// Whether one of the terminals has hung up: after the other end went
    /// away (the pty master closed by sshd, tmux or a terminal emulator),
    /// the kernel reports POLLHUP (or POLLERR/POLLNVAL) on the tty however
    /// often it is asked, without blocking.
    pub fn hung_up(&self) -> bool {
        let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
        let mut fds = Vec::with_capacity(3);
        if self.stdin {
            fds.push(PollFd::new(&stdin, PollFlags::empty()));
        }
        if self.stdout {
            fds.push(PollFd::new(&stdout, PollFlags::empty()));
        }
        if self.stderr {
            fds.push(PollFd::new(&stderr, PollFlags::empty()));
        }
        if fds.is_empty() {
            return false;
        }
        let now = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match poll(&mut fds, Some(&now)) {
            Ok(_) => fds.iter().any(|f| {
                f.revents()
                    .intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL)
            }),
            // EINTR and the like: look again at the next tick.
            Err(_) => false,
        }
    }
}

/// Whether a write or read error means the terminal (or whoever read our
/// output) is gone: EIO on a hung-up tty, EPIPE on a pipe whose reader
/// died with the session, ENXIO on a vanished device.
pub fn is_terminal_gone(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
        || matches!(e.raw_os_error(), Some(code) if code == rustix::io::Errno::IO.raw_os_error()
            || code == rustix::io::Errno::NXIO.raw_os_error())
}
