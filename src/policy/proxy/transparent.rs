//! The transparent listener: every TCP connection to one of the slot's name addresses (any
//! port) is steered to it, and the accepted socket's local address and port say which name
//! (the DNS's table) and port the client dialled.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;

use super::conn::Target;
use super::record::{Entry, Source};
use super::session;
use super::shared::{accept, Shared};
use crate::error::Result;

pub(super) async fn serve(sh: Arc<Shared>, l: TcpListener) -> Result<()> {
    loop {
        let (conn, _) = accept(&l).await;
        let Some(admitted) = sh.admit(Source::Transparent) else {
            continue;
        };
        let Ok(local) = conn.local_addr() else {
            continue;
        };
        let Some(name) = name_of(&sh, local) else {
            sh.rec.record(&Entry {
                source: Source::Transparent,
                name: "",
                port: Some(local.port()),
                destination: Some(local),
                rule: "name table",
                denied: Some("an address the proxy's DNS never handed out"),
                method: None,
                path: None,
            });
            continue;
        };
        let _ = conn.set_nodelay(true);
        let t = Target {
            source: Source::Transparent,
            name,
            port: local.port(),
            check_names: true,
        };
        let sh = Arc::clone(&sh);
        tokio::spawn(async move {
            let _admitted = admitted;
            session::judge(sh, t, conn, Vec::new(), None).await;
        });
    }
}

fn name_of(sh: &Shared, local: SocketAddr) -> Option<String> {
    let v4 = match local.ip() {
        IpAddr::V4(a) => a,
        IpAddr::V6(a) => a.to_ipv4_mapped()?,
    };
    let table = sh.names.lock().unwrap_or_else(|p| p.into_inner());
    table.name_of(v4).map(str::to_string)
}
