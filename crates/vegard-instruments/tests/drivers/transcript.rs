//! Transcript files: `> ` host lines, `< ` device lines, `#` comments.

/// Host lines the fake must receive, then device lines it sends back.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    pub host: Vec<String>,
    pub device: Vec<String>,
}

/// A host line matching a whole script (lines up to the empty line).
pub const ANY_SCRIPT: &str = "<script>";

pub fn parse(text: &str) -> Vec<Exchange> {
    let mut out: Vec<Exchange> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (dir, body) = line.split_at(1);
        let body = body.strip_prefix(' ').unwrap_or(body).to_string();
        match dir {
            ">" => {
                if out.last().is_none_or(|e| !e.device.is_empty()) {
                    out.push(Exchange::default());
                }
                out.last_mut().unwrap().host.push(body);
            }
            "<" => {
                if out.is_empty() {
                    out.push(Exchange::default());
                }
                out.last_mut().unwrap().device.push(body);
            }
            _ => panic!("bad transcript line {line:?}"),
        }
    }
    out
}

pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
