//! The proxy's serving core: its listeners (DNS over UDP and TCP, the explicit proxy, one or
//! more transparent ones) on one current_thread tokio runtime, until the
//! stop fd (the container init's pidfd) becomes readable. `daemon` builds a `Config` and calls
//! `serve` after hardening; the tests call it in a thread of their own.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use tokio::io::unix::AsyncFd;

use super::names::Table;
use super::record::Recorder;
use super::shared::{io_err, Shared};
pub use super::shared::{Config, HEAD_TIMEOUT, MAX_CLIENTS, SERVER_FIRST};
use crate::error::{Error, Result};
use crate::policy::egress::slot::Listeners;

/// Serves until `stop` is readable (the container's init died) or a listener fails.
pub fn serve(cfg: Config, listeners: Listeners, stop: OwnedFd) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::Init(format!("egress proxy: tokio runtime: {e}")))?;
    rt.block_on(run(cfg, listeners, stop))
}

async fn run(cfg: Config, l: Listeners, stop: OwnedFd) -> Result<()> {
    #[cfg(not(test))]
    let table = Table::new(cfg.slot);
    #[cfg(test)]
    let table = match cfg.table_limit {
        Some(n) => Table::with_limit(cfg.slot, n),
        None => Table::new(cfg.slot),
    };
    let log = cfg
        .log
        .try_clone()
        .map_err(|e| io_err("dup the violation log", e))?;
    let rec = Recorder::new(cfg.id.clone(), log);
    let shared = Arc::new(Shared::new(cfg, rec, table));
    let tcp = |fd: OwnedFd, what: &str| {
        let l = std::net::TcpListener::from(fd);
        l.set_nonblocking(true).map_err(|e| io_err(what, e))?;
        tokio::net::TcpListener::from_std(l).map_err(|e| io_err(what, e))
    };
    let udp = std::net::UdpSocket::from(l.dns_udp);
    udp.set_nonblocking(true)
        .map_err(|e| io_err("dns udp", e))?;
    let udp = tokio::net::UdpSocket::from_std(udp).map_err(|e| io_err("dns udp", e))?;
    let dns_tcp = tcp(l.dns_tcp, "dns tcp")?;
    let explicit = tcp(l.explicit, "explicit listener")?;
    let mut transparent = tokio::task::JoinSet::new();
    for fd in l.transparent {
        let listener = tcp(fd, "transparent listener")?;
        transparent.spawn(super::transparent::serve(Arc::clone(&shared), listener));
    }
    // SAFETY: the OwnedFd is moved into the AsyncFd, which owns it (open, the same fd) until
    // it is dropped at the end of this function.
    let stop = unsafe { AsyncFd::register_with_interest(stop, tokio::io::Interest::READABLE) }
        .map_err(|e| io_err("init pidfd", e.into()))?;
    tokio::select! {
        _ = stop.readable() => Ok(()),
        r = super::dns::serve_udp(Arc::clone(&shared), udp) => r,
        r = super::dns::serve_tcp(Arc::clone(&shared), dns_tcp) => r,
        r = super::explicit::serve(Arc::clone(&shared), explicit) => r,
        Some(r) = transparent.join_next() => match r {
            Ok(r) => r,
            Err(e) => Err(Error::Init(format!("egress proxy: transparent listener: {e}"))),
        },
    }
}

#[cfg(test)]
#[path = "serve_tests.rs"]
mod tests;
#[cfg(test)]
#[path = "serve_tests_clients.rs"]
mod tests_clients;
#[cfg(test)]
#[path = "serve_tests_credentials.rs"]
mod tests_credentials;
#[cfg(test)]
#[path = "serve_tests_http.rs"]
mod tests_http;
#[cfg(test)]
#[path = "serve_tests_netwall.rs"]
mod tests_netwall;
#[cfg(test)]
#[path = "serve_tests_tls.rs"]
mod tests_tls;
#[cfg(test)]
#[path = "serve_tests_tls_lab.rs"]
mod tests_tls_lab;
