//! `ward hook …`: OCI hooks for containers of other runtimes (hooks/README.md).

use std::io::Read;

#[derive(clap::Subcommand, Debug)]
pub enum Hook {
    /// Egress walls and the domain proxy for a runc or crun container: run at createRuntime
    /// and poststop with the container's state on stdin.
    Egress,
}

pub fn run(
    root: &std::path::Path,
    resolver: Option<std::net::SocketAddr>,
    egress_ca: Option<&std::path::Path>,
    hook: &Hook,
) -> ward::Result<i32> {
    let roots = match egress_ca {
        Some(path) => ward::policy::proxy::tls::trust::read_extra_roots(path)?,
        None => Vec::new(),
    };
    let mut text = Vec::new();
    std::io::stdin()
        .take(1 << 20)
        .read_to_end(&mut text)
        .map_err(|e| ward::Error::io("read", "stdin (the container's state)", e))?;
    let state: ward::container::hook::HookState = serde_json::from_slice(&text)
        .map_err(|e| ward::Error::spec("stdin (the container's state)", e.to_string()))?;
    match hook {
        Hook::Egress => ward::container::hook::egress(root, resolver, roots, &state)?,
    }
    Ok(0)
}
