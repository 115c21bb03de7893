//! The proxy's decisions as lines of the container's violation log (`<state>/violations.jsonl`,
//! opened `O_APPEND` by create and handed over): one JSON object per line, one `write` per line,
//! the supervisor's record shape with `"type": "egress"`.

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where a decision was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Dns,
    Transparent,
    Connect,
    Socks,
    HttpProxy,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Dns => "dns",
            Source::Transparent => "transparent",
            Source::Connect => "connect",
            Source::Socks => "socks",
            Source::HttpProxy => "http-proxy",
        }
    }
}

/// One decision.
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    pub source: Source,
    pub name: &'a str,
    pub port: Option<u16>,
    /// The address dialled (or handed out by the DNS), if any.
    pub destination: Option<SocketAddr>,
    /// The pattern text, `not in allowedDomains`, or the refusal's reason.
    pub rule: &'a str,
    /// `None`: allowed; `Some(why)`: denied.
    pub denied: Option<&'a str>,
    /// An HTTP request's method and normalised path (never its query, which may carry
    /// secrets); only in the lines of HTTP requests.
    pub method: Option<&'a str>,
    pub path: Option<&'a str>,
}

/// The `rule` of a line that refuses a credential's placeholder where its binding does not
/// allow it (`denied` is `Violation::reason()`: the binding's name, never the value).
pub const CREDENTIAL: &str = "credential binding";

pub struct Recorder {
    id: String,
    log: OwnedFd,
    /// When the last "too many connections" line was written (at most one a second).
    overflow: Mutex<Option<Instant>>,
}

impl Recorder {
    pub fn new(id: String, log: OwnedFd) -> Recorder {
        Recorder {
            id,
            log,
            overflow: Mutex::new(None),
        }
    }

    pub fn line(&self, e: &Entry<'_>) -> String {
        let decision = match e.denied {
            None => "allowed".to_string(),
            Some(why) => format!("denied: {why}"),
        };
        let v = serde_json::json!({
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "type": "egress",
            "id": self.id,
            "pid": null,
            "source": e.source.as_str(),
            "name": e.name,
            "port": e.port,
            // The DNS's records carry the address handed out, without a port.
            "destination": e.destination.map(|d| match d.port() {
                0 => d.ip().to_string(),
                _ => d.to_string(),
            }),
            "rule": e.rule,
            "decision": decision,
        });
        let mut v = v;
        if let Some(m) = e.method {
            v["method"] = m.into();
            v["path"] = e.path.into();
        }
        let mut s = v.to_string();
        s.push('\n');
        s
    }

    /// Appends one decision. A log that cannot be written loses the line, never the service.
    pub fn record(&self, e: &Entry<'_>) {
        self.write(self.line(e).as_bytes());
    }

    /// A connection refused because the bound is reached: recorded at most once a second.
    pub fn overflow(&self, source: Source, limit: usize) {
        let mut last = self.overflow.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            return;
        }
        *last = Some(now);
        drop(last);
        let why = format!("more than {limit} client connections at once (refused)");
        self.record(&Entry {
            source,
            name: "",
            port: None,
            destination: None,
            rule: "connection bound",
            denied: Some(&why),
            method: None,
            path: None,
        });
    }

    /// A line about the proxy itself (e.g. a protection the kernel lacks).
    pub fn note(&self, what: &str) {
        let v = serde_json::json!({
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "type": "egress",
            "id": self.id,
            "pid": std::process::id(),
            "source": "proxy",
            "decision": what,
        });
        self.write(format!("{v}\n").as_bytes());
    }

    fn write(&self, mut bytes: &[u8]) {
        // O_APPEND: one write puts the whole line at the end; a short write (a full disk) is
        // continued so that the line is not cut in the middle of a later one.
        while !bytes.is_empty() {
            match nix::unistd::write(self.log.as_fd(), bytes) {
                Ok(0) | Err(_) => return,
                Ok(n) => bytes = &bytes[n..],
            }
        }
    }
}
