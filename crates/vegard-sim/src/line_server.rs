//! A loopback TCP server for instruments that speak one text command per
//! line (the SR860 lock-in and the Lake Shore 336 controller).
//!
//! Owns: the listener, one thread per connection, the framing (a program
//! line ends with LF, an optional CR before it is dropped; replies get the
//! instrument's own terminator) and the journal entries of every line. The
//! instrument itself only maps a received line to an optional reply.

use crate::SimError;
use crate::bench::Shared;
use crate::journal::{Device, Direction, lock};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Poll period of the accept loop and the connection reads, wall time:
/// bounds how long a shutdown waits for them.
const POLL: Duration = Duration::from_millis(20);
/// Longest line an instrument buffers; a longer one is discarded (a real
/// instrument's input buffer overflows too).
const MAX_LINE: usize = 4096;

/// An instrument that answers one program line at a time.
pub(crate) trait LineInstrument: Send + 'static {
    /// Handles one received line (terminator stripped). Returns the reply
    /// text without terminator, or None when the line asks for nothing.
    fn handle_line(&mut self, line: &str) -> Option<String>;

    /// Wall time to hold `line` before handling it: an injected fault (a
    /// host too busy to send on time). Asked with the instrument locked;
    /// the wait itself runs unlocked, so the bench and the other
    /// instruments go on meanwhile.
    fn hold_before(&mut self, _line: &str) -> Option<Duration> {
        None
    }
}

/// How a server frames and names its traffic.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Framing {
    pub device: Device,
    /// Appended to every reply (`\n` for the SR860, `\r\n` for the 336).
    pub reply_terminator: &'static str,
    /// Thread and error names.
    pub name: &'static str,
}

/// A running server.
pub(crate) struct Server {
    pub addr: SocketAddr,
    pub thread: JoinHandle<()>,
}

pub(crate) fn start<I: LineInstrument>(
    shared: Arc<Shared>,
    instrument: Arc<Mutex<I>>,
    framing: Framing,
) -> Result<Server, SimError> {
    let io = |source| SimError::Io {
        what: framing.name,
        source,
    };
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    listener.set_nonblocking(true).map_err(io)?;
    let thread = std::thread::Builder::new()
        .name(format!("vegard-sim-{}", framing.name))
        .spawn(move || accept_loop(&listener, &instrument, &shared, framing))
        .map_err(io)?;
    Ok(Server { addr, thread })
}

fn accept_loop<I: LineInstrument>(
    listener: &TcpListener,
    instrument: &Arc<Mutex<I>>,
    shared: &Arc<Shared>,
    framing: Framing,
) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !shared.shutdown.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (instrument, shared) = (instrument.clone(), shared.clone());
                match std::thread::Builder::new()
                    .name(format!("vegard-sim-{}-conn", framing.name))
                    .spawn(move || serve(stream, &instrument, &shared, framing))
                {
                    Ok(handle) => connections.push(handle),
                    Err(e) => tracing::warn!("{} connection thread: {e}", framing.name),
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) => {
                tracing::warn!("{} accept: {e}", framing.name);
                std::thread::sleep(POLL);
            }
        }
        connections.retain(|h| !h.is_finished());
    }
    for handle in connections {
        let _ = handle.join();
    }
}

fn serve<I: LineInstrument>(
    mut stream: TcpStream,
    instrument: &Mutex<I>,
    shared: &Shared,
    framing: Framing,
) {
    if let Err(e) = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(POLL)))
        .and_then(|()| stream.set_write_timeout(Some(POLL)))
        .and_then(|()| stream.set_nodelay(true))
    {
        tracing::warn!("{} connection setup: {e}", framing.name);
        return;
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    while !shared.shutdown.load(Ordering::Relaxed) {
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(_) => return,
        }
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = buf.drain(..=pos).collect();
            let body = &raw[..raw.len() - 1];
            let body = body.strip_suffix(b"\r").unwrap_or(body);
            let line = String::from_utf8_lossy(body).into_owned();
            shared.journal.line(
                framing.device,
                Direction::Received,
                line.clone(),
                shared.clock.now_s(),
            );
            let hold = lock(instrument).hold_before(&line);
            if let Some(hold) = hold {
                let until = std::time::Instant::now() + hold;
                while std::time::Instant::now() < until {
                    if shared.shutdown.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(POLL.min(until - std::time::Instant::now()));
                }
            }
            let reply = lock(instrument).handle_line(&line);
            let Some(reply) = reply else { continue };
            let bytes = format!("{reply}{}", framing.reply_terminator);
            if !write_patiently(&mut stream, bytes.as_bytes(), shared) {
                return;
            }
            shared
                .journal
                .line(framing.device, Direction::Sent, reply, shared.clock.now_s());
        }
        if buf.len() > MAX_LINE {
            buf.clear();
        }
    }
}

/// Writes all of `bytes` however slowly the client reads, giving up only on
/// a broken connection or a bench shutdown (a blocking `write_all` to a
/// client that stopped reading would hang the shutdown). Shared by every
/// TCP emulator.
pub(crate) fn write_patiently(stream: &mut TcpStream, bytes: &[u8], shared: &Shared) -> bool {
    let mut sent = 0;
    while sent < bytes.len() {
        match stream.write(&bytes[sent..]) {
            Ok(0) => return false,
            Ok(n) => sent += n,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                if shared.shutdown.load(Ordering::Relaxed) {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}

/// Splits a program line into its commands (`;`-separated), each as an
/// upper-cased mnemonic (with a trailing `?` for queries) and its
/// comma-separated, trimmed arguments. Empty commands are skipped.
pub(crate) fn split_commands(line: &str) -> Vec<(String, Vec<String>)> {
    line.split(';')
        .filter_map(|cmd| {
            let cmd = cmd.trim();
            if cmd.is_empty() {
                return None;
            }
            let (head, rest) = match cmd.find(|c: char| c.is_ascii_whitespace()) {
                Some(i) => (&cmd[..i], cmd[i..].trim()),
                None => (cmd, ""),
            };
            let args = if rest.is_empty() {
                Vec::new()
            } else {
                rest.split(',').map(|a| a.trim().to_string()).collect()
            };
            Some((head.to_ascii_uppercase(), args))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_into_mnemonic_and_arguments() {
        assert_eq!(
            split_commands("snap? 0, 1,15 ; *IDN?;;FREQ 1e3"),
            vec![
                (
                    "SNAP?".to_string(),
                    vec!["0".into(), "1".into(), "15".into()]
                ),
                ("*IDN?".to_string(), vec![]),
                ("FREQ".to_string(), vec!["1e3".into()]),
            ]
        );
        assert!(split_commands("  ").is_empty());
    }
}
