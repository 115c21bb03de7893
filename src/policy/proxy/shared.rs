//! What every task of the proxy shares: its configuration, the name table, the log, the
//! bound on clients, and the upstream dial (resolve, refuse, connect to exactly what passed).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::names::Table;
use super::record::{Entry, Recorder, Source};
use super::resolve::Upstream;
use super::upstream::{self, Refusal};
use crate::error::Error;
use crate::policy::egress::slot::Slot;
use crate::spec::domains::{Decision, Domains};
use crate::spec::interception::Rule;

/// Client connections served at once (transparent, explicit and DNS over TCP together).
pub const MAX_CLIENTS: usize = 1024;
/// How long a client may take to send a request head, a ClientHello or a SOCKS greeting.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the transparent listener waits for the client's first bytes before taking the
/// protocol for one where the server speaks first (SMTP, SSH's banner, ...).
pub const SERVER_FIRST: Duration = Duration::from_millis(300);
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// What the serving core needs (the daemon's `Plan` less what hardening consumes).
pub struct Config {
    pub id: String,
    pub domains: Domains,
    /// The user's IP rules (`Network::rules()`), for upstream refusals and SOCKS addresses.
    pub rules: Vec<Rule>,
    pub slot: Slot,
    pub upstream: Upstream,
    pub log: OwnedFd,
    pub max_clients: usize,
    /// The container's CA (`None`: nothing is terminated).
    pub ca: Option<crate::policy::proxy::ca::Authority>,
    /// PEM certificates trusted upstream besides the host's store (`--egress-ca`).
    pub extra_roots_pem: Vec<u8>,
    /// Credentials swapped on the way out.
    pub vault: crate::policy::credentials::Vault,
    /// Tests only: their origins listen on loopback, which upstream refusals refuse.
    #[cfg(test)]
    pub allow_loopback: bool,
    #[cfg(test)]
    pub table_limit: Option<usize>,
}

/// State shared by every task.
pub(super) struct Shared {
    pub cfg: Config,
    pub rec: Recorder,
    pub names: Mutex<Table>,
    clients: AtomicUsize,
    /// TLS termination (`None`: no CA; `Err`: the CA is there but the upstream trust could not
    /// be built, said in each refusal).
    pub tls: std::sync::OnceLock<Box<dyn std::any::Any + Send + Sync>>,
    /// Upstream answers kept for their TTL (capped), so that a new connection to a name costs
    /// no lookup: name -> (addresses, until).
    cache: Mutex<HashMap<String, (Vec<IpAddr>, Instant)>>,
}

/// The most names the upstream cache holds (then it starts over), and the longest it keeps one.
const CACHE_NAMES: usize = 4096;
const CACHE_MAX_TTL: u32 = 300;

/// One client connection counted against `max_clients`; released on drop.
pub(super) struct Admitted(Arc<Shared>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shared {
    pub fn new(cfg: Config, rec: Recorder, names: Table) -> Shared {
        Shared {
            tls: std::sync::OnceLock::new(),
            cfg,
            rec,
            names: Mutex::new(names),
            clients: AtomicUsize::new(0),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one more client, or `None` (recorded, at most once a second).
    pub fn admit(self: &Arc<Self>, source: Source) -> Option<Admitted> {
        let n = self.clients.fetch_add(1, Ordering::Relaxed);
        let guard = Admitted(Arc::clone(self));
        if n >= self.cfg.max_clients {
            drop(guard);
            self.rec.overflow(source, self.cfg.max_clients);
            return None;
        }
        Some(guard)
    }

    /// The domain decision for `name:port`; a name holding a credential's placeholder (a
    /// CONNECT, SOCKS or absolute-form target: the DNS refuses such names itself) is refused
    /// as an exfiltration attempt, whatever the rules say.
    pub fn decide(&self, name: &str, port: u16) -> Decision {
        let vault = &self.cfg.vault;
        if !vault.is_empty() {
            if let Some(b) = vault.find_in_name(name.split('.').map(str::as_bytes)) {
                return Decision::Deny {
                    rule: super::record::CREDENTIAL.into(),
                    reason: Some(format!(
                        "placeholder of {} in the host name (exfiltration attempt)",
                        b.name
                    )),
                };
            }
        }
        self.cfg.domains.decide(name, port)
    }

    pub fn record(
        &self,
        source: Source,
        name: &str,
        port: u16,
        destination: Option<SocketAddr>,
        rule: &str,
        denied: Option<&str>,
    ) {
        self.rec.record(&Entry {
            source,
            name,
            port: Some(port),
            destination,
            rule,
            denied,
            method: None,
            path: None,
        });
    }

    /// `record` for an HTTP request: its method and normalised path too.
    #[allow(clippy::too_many_arguments)]
    pub fn record_request(
        &self,
        source: Source,
        name: &str,
        port: u16,
        destination: Option<SocketAddr>,
        rule: &str,
        denied: Option<&str>,
        method: &str,
        path: Option<&str>,
    ) {
        self.rec.record(&Entry {
            source,
            name,
            port: Some(port),
            destination,
            rule,
            denied,
            method: Some(method),
            path,
        });
    }

    /// Resolves `name`, refuses what must not be dialled, and connects to the first address
    /// that passed: exactly the one judged, no second lookup.
    pub async fn dial(&self, name: &str, port: u16) -> std::result::Result<Dialled, DialError> {
        let addrs = self.lookup(name).await.map_err(DialError::Resolve)?;
        let host = upstream::host_addrs().unwrap_or_default();
        let mut refused = None;
        let mut failed = None;
        for a in addrs {
            if let Some(r) = self.refuse(a, &host, port) {
                refused.get_or_insert(r);
                continue;
            }
            let to = SocketAddr::new(a, port);
            match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(to)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    return Ok(Dialled { stream: s, to });
                }
                Ok(Err(e)) => failed = Some(format!("connect {to}: {e}")),
                Err(_) => failed = Some(format!("connect {to}: timed out")),
            }
        }
        match (failed, refused) {
            (Some(f), _) => Err(DialError::Connect(f)),
            (None, Some(r)) => Err(DialError::Refused(r)),
            (None, None) => Err(DialError::Resolve("no address".into())),
        }
    }

    /// The upstream addresses of `name`, from the cache while DNS's TTL lasts.
    async fn lookup(&self, name: &str) -> std::result::Result<Vec<IpAddr>, String> {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        let now = Instant::now();
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((addrs, until)) = cache.get(&key) {
                if *until > now {
                    return Ok(addrs.clone());
                }
            }
        }
        let (addrs, ttl) = self.cfg.upstream.resolve(&key).await?;
        if ttl > 0 {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= CACHE_NAMES {
                cache.clear();
            }
            let until = now + Duration::from_secs(ttl.min(CACHE_MAX_TTL).into());
            cache.insert(key, (addrs.clone(), until));
        }
        Ok(addrs)
    }

    fn refuse(&self, a: IpAddr, host: &upstream::HostAddrs, port: u16) -> Option<Refusal> {
        #[cfg(test)]
        if self.cfg.allow_loopback && a.is_loopback() {
            return None;
        }
        upstream::refuse(a, host, |x| upstream::ip_verdict(&self.cfg.rules, x, port))
    }
}

pub(super) struct Dialled {
    pub stream: TcpStream,
    pub to: SocketAddr,
}

#[derive(Debug)]
pub(super) enum DialError {
    /// Every address the name has is refused; the first refusal.
    Refused(Refusal),
    Resolve(String),
    Connect(String),
}

impl DialError {
    /// The record's rule and why.
    pub fn describe(&self) -> (String, String) {
        match self {
            DialError::Refused(r) => (
                r.to_string(),
                format!("upstream address refused ({})", r.reason.as_str()),
            ),
            DialError::Resolve(e) => ("upstream".into(), format!("cannot resolve: {e}")),
            DialError::Connect(e) => ("upstream".into(), format!("cannot connect: {e}")),
        }
    }
}

/// Accepts forever; a failed accept (EMFILE, ...) waits a little and goes on.
pub(super) async fn accept(l: &tokio::net::TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match l.accept().await {
            Ok(c) => return c,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

pub(super) fn io_err(what: &str, e: std::io::Error) -> Error {
    Error::Init(format!("egress proxy: {what}: {e}"))
}
