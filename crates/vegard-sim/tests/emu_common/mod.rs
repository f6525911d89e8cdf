//! A line client for the bench's text instruments on TCP (SR860: replies
//! end with LF; Lake Shore 336: CR LF), and the transcript fixtures under
//! `protocols/transcripts/`: lines `> command` (host to instrument) and
//! `< reply` (instrument to host), `#` comments. A reply belongs to the
//! command above it; a command without one asks for nothing.
#![allow(dead_code)]
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `host:port` inside `TCPIP::<host>::<port>::SOCKET`.
pub fn tcp_addr(resource: &str) -> String {
    let parts: Vec<&str> = resource.split("::").collect();
    assert_eq!(parts.len(), 4, "{resource}");
    assert_eq!(parts[0], "TCPIP");
    assert_eq!(parts[3], "SOCKET");
    format!("{}:{}", parts[1], parts[2])
}

pub struct LineClient {
    stream: TcpStream,
    buf: Vec<u8>,
    /// What the host appends to a command.
    pub send_terminator: &'static str,
    /// What the instrument appends to a reply.
    pub reply_terminator: &'static str,
}

impl LineClient {
    pub fn connect(
        resource: &str,
        send_terminator: &'static str,
        reply_terminator: &'static str,
    ) -> LineClient {
        let stream = TcpStream::connect(tcp_addr(resource)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        LineClient {
            stream,
            buf: Vec::new(),
            send_terminator,
            reply_terminator,
        }
    }

    pub fn write(&mut self, cmd: &str) {
        self.stream
            .write_all(format!("{cmd}{}", self.send_terminator).as_bytes())
            .unwrap();
    }

    /// Next reply without its terminator (which must be exactly the
    /// instrument's), or None after `timeout_s` wall seconds.
    pub fn reply(&mut self, timeout_s: f64) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs_f64(timeout_s);
        let term = self.reply_terminator.as_bytes();
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.buf.drain(..=pos).collect();
                assert!(raw.ends_with(term), "reply {raw:?} must end with {term:?}");
                let body = &raw[..raw.len() - term.len()];
                return Some(String::from_utf8(body.to_vec()).unwrap());
            }
            if Instant::now() > deadline {
                return None;
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("instrument closed the connection"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// A reply within 10 wall seconds: an allowance for a loaded host (the
    /// bench at 100x integrates 1000 s of world per 10 s), not a timing check.
    pub fn query(&mut self, cmd: &str) -> String {
        self.write(cmd);
        self.reply(10.0)
            .unwrap_or_else(|| panic!("no reply to {cmd}"))
    }

    /// Asserts that nothing arrives within `wait_s` wall seconds.
    pub fn assert_silent(&mut self, wait_s: f64) {
        if let Some(r) = self.reply(wait_s) {
            panic!("unexpected reply {r:?}");
        }
    }
}

/// One exchange of a transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub command: String,
    pub reply: Option<String>,
}

pub fn transcript_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../protocols/transcripts")
        .join(name)
}

pub fn parse_transcript(text: &str) -> Vec<Exchange> {
    let mut out: Vec<Exchange> = Vec::new();
    for line in text.lines() {
        if let Some(cmd) = line.strip_prefix("> ") {
            out.push(Exchange {
                command: cmd.to_string(),
                reply: None,
            });
        } else if let Some(reply) = line.strip_prefix("< ") {
            let last = out.last_mut().expect("a reply must follow a command");
            assert!(last.reply.is_none(), "two replies to {}", last.command);
            last.reply = Some(reply.to_string());
        } else {
            assert!(
                line.is_empty() || line.starts_with('#'),
                "bad transcript line {line:?}"
            );
        }
    }
    out
}

/// Runs `commands` against the instrument: a command whose mnemonic ends
/// in `?` waits for a reply, any other is checked to produce none.
pub fn record(client: &mut LineClient, commands: &[&str]) -> Vec<Exchange> {
    commands
        .iter()
        .map(|cmd| {
            let head = cmd.split_whitespace().next().unwrap_or("");
            let reply = if head.ends_with('?') {
                Some(client.query(cmd))
            } else {
                client.write(cmd);
                client.assert_silent(0.05);
                None
            };
            Exchange {
                command: cmd.to_string(),
                reply,
            }
        })
        .collect()
}

pub fn format_transcript(header: &str, exchanges: &[Exchange]) -> String {
    let mut s = String::new();
    for line in header.lines() {
        s.push_str(&format!("# {line}\n"));
    }
    for e in exchanges {
        s.push_str(&format!("> {}\n", e.command));
        if let Some(r) = &e.reply {
            s.push_str(&format!("< {r}\n"));
        }
    }
    s
}

/// The shape of a reply: each comma-separated field is either kept
/// verbatim or, if it is a number, reduced to its format (sign, digits,
/// decimals, exponent; the sign dropped), so a live reading matches a
/// recorded one.
pub fn shape(reply: &str) -> String {
    reply
        .split(',')
        .map(|f| {
            if f.parse::<f64>().is_ok() {
                f.trim_start_matches(['+', '-'])
                    .chars()
                    .map(|c| if c.is_ascii_digit() { 'd' } else { c })
                    .collect()
            } else {
                f.to_string()
            }
        })
        .collect::<Vec<String>>()
        .join(",")
}
