//! Egress by domain name in a container's life (issue 16): what `create` does for a policy with
//! `allowedDomains`/`deniedDomains`, around the pieces in `policy::egress` (the kernel side) and
//! `policy::proxy` (the proxy process).
//!
//! Before init exists: the slot of the reserved range the container's proxy will own (a fresh
//! network namespace always gets slot 0; a joined one gets its listeners here, so the first
//! free slot is known), the DNS redirect and then the wall on the container's cgroup (default
//! deny, the slot's /20 allowed, plus the user's IP rules), and the proxy variables in the
//! process's env when `proxyEnv` asks. After init is forked (its network namespace exists):
//! the listeners in that namespace, the sk_lookup steering, and the proxy process, which holds
//! the steering link (its death detaches it: connections to names then fail, never bypass).
//!
//! The netns wall (issue 18, `Wall::Netns`): for a new network namespace when ward is not root,
//! has no cgroup v2, or the annotation `org.ward.egress.wall` is `netns`. No cgroup BPF and no
//! supervisor: the namespace (only `lo`) is the wall, the listeners are made in it by
//! `policy::egress::netwall` (every address local on `lo`, a transparent listener per port),
//! and `/etc/resolv.conf` inside names the proxy's DNS. The proxy's death closes the
//! listeners: connections are refused, never let through.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use oci_spec::runtime::LinuxNamespaceType as Ns;

use crate::error::{Error, Result};
use crate::policy::egress::slot::{Listeners, Slot, DNS_PORT, EXPLICIT_PORT, SLOT_PREFIX};
use crate::spec::domains::Domains;
use crate::spec::interception::{Network, Verdict};
use crate::spec::Bundle;

/// The part decided before init is forked.
pub struct Prepared {
    pub domains: Domains,
    /// The user's policy (IP rules and all), as written.
    pub network: Network,
    pub slot: Slot,
    /// The joined network namespace and its listeners (`None`: a new one, made by init's clone).
    pub joined: Option<(OwnedFd, Listeners)>,
    /// Which wall keeps the container to its proxy.
    pub wall: Wall,
    /// The netns wall's transparent ports (`netwall::ports`; empty on the kernel path).
    pub ports: Vec<u16>,
    /// The SOCKMAP the transparent listener goes in: the steering reads it, and the DNS
    /// redirect's connect programs refuse the name addresses while it is empty (proxy dead).
    /// `None` in the netns wall (no BPF).
    pub listener_map: Option<OwnedFd>,
    /// The CA the proxy terminates TLS with (http rules or credentials; `intercept`).
    pub ca: Option<crate::policy::proxy::ca::Authority>,
    /// The credentials' secrets, sealed from init's fork, for the proxy's memory only
    /// (`intercept`; opened in `start`).
    pub vault: crate::container::credentials::Pending,
    /// Init's network and user namespaces, opened while init can still be opened by an
    /// unprivileged caller (`capture_namespaces`; rootless netns wall only).
    pub init_ns: Option<(OwnedFd, OwnedFd)>,
}

/// The annotation that asks for the netns wall (`netns`) even where the kernel path would do.
pub const WALL_ANNOTATION: &str = "org.ward.egress.wall";

/// What keeps a container with domain rules to its proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wall {
    /// cgroup BPF (the wall, the DNS redirect) and sk_lookup steering: root with cgroup v2.
    Kernel,
    /// The container's new network namespace, with only `lo`, is the wall (issue 18).
    Netns,
}

/// The wall for a container whose policy names domains. `new_netns`: the config asks for a new
/// network namespace; `root`: ward's euid is 0; `cgroup_v2`: the container has a v2 cgroup.
pub fn choose_wall(bundle: &Bundle, new_netns: bool, root: bool, cgroup_v2: bool) -> Result<Wall> {
    let asked = bundle
        .spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(WALL_ANNOTATION).cloned());
    let field = format!("annotations.{WALL_ANNOTATION}");
    let netns = match asked.as_deref() {
        None | Some("") => false,
        Some("netns") => true,
        Some(other) => {
            return Err(Error::spec(
                field,
                format!("{other:?}: the only value is \"netns\""),
            ))
        }
    };
    if !new_netns {
        if netns {
            return Err(Error::spec(
                field,
                "the netns wall needs a new network namespace (linux.namespaces: network \
                 without a path)",
            ));
        }
        return Ok(Wall::Kernel);
    }
    Ok(if netns || !root || !cgroup_v2 {
        Wall::Netns
    } else {
        Wall::Kernel
    })
}

/// `None` when the policy names no domains (then nothing here runs: no proxy, no cost).
/// `cgroup_v2`: the container has a cgroup v2 directory (the kernel path's walls go there).
pub fn prepare(bundle: &Bundle, cgroup_v2: bool) -> Result<Option<Prepared>> {
    let Some(network) = bundle.interception.as_ref().and_then(|i| i.network.clone()) else {
        return Ok(None);
    };
    let at = crate::spec::interception::network_field(&bundle.raw);
    let Some(domains) = network.domains(&at)? else {
        return Ok(None);
    };
    let netns = bundle
        .namespaces()
        .into_iter()
        .find(|(t, _)| *t == Ns::Network);
    match netns {
        None => Err(host_netns()),
        Some((_, None)) => {
            let root = nix::unistd::Uid::effective().is_root();
            let wall = choose_wall(bundle, true, root, cgroup_v2)?;
            let (listener_map, ports) = match wall {
                Wall::Kernel => (
                    Some(crate::policy::egress::steer::create_sockmap()?),
                    Vec::new(),
                ),
                Wall::Netns => {
                    refuse_unenforceable(&network)?;
                    (None, crate::policy::egress::netwall::ports(&domains, &at)?)
                }
            };
            tracing::debug!(?wall, "egress: the wall for a new network namespace");
            Ok(Some(Prepared {
                domains,
                network,
                slot: Slot { index: 0 },
                joined: None,
                wall,
                ports,
                listener_map,
                ca: None,
                vault: Default::default(),
                init_ns: None,
            }))
        }
        Some((_, Some(path))) => {
            choose_wall(bundle, false, true, cgroup_v2)?;
            joined(domains, network, open_netns(&path)?).map(Some)
        }
    }
}

/// For a network namespace that exists already (joined by path, or a runc container's for the
/// hook): its listeners now, in the first free slot.
pub fn joined(domains: Domains, network: Network, netns: OwnedFd) -> Result<Prepared> {
    if same_netns(netns.as_fd(), Path::new("/proc/self/ns/net"))? {
        return Err(host_netns());
    }
    let listeners = crate::policy::egress::listeners::open(netns.as_fd())?;
    Ok(Prepared {
        domains,
        network,
        slot: listeners.slot,
        joined: Some((netns, listeners)),
        wall: Wall::Kernel,
        ports: Vec::new(),
        listener_map: Some(crate::policy::egress::steer::create_sockmap()?),
        ca: None,
        vault: Default::default(),
        init_ns: None,
    })
}

/// The DNS redirect, then the wall (the redirected address must be what the wall sees).
/// Returns the wall, whose rules the supervisor's records name.
pub fn install_walls(cgroup: BorrowedFd, p: &Prepared, ring: BorrowedFd) -> Result<Network> {
    let map = p.listener_map.as_ref().ok_or_else(no_map)?;
    crate::policy::egress::redirect::install(cgroup, p.slot, map.as_fd())?;
    let wall = wall(p);
    crate::policy::egress::programs::install(cgroup, &wall, ring)?;
    Ok(wall)
}

/// The network namespace path the config joins, if it joins one.
pub fn joined_path(bundle: &Bundle) -> Option<std::path::PathBuf> {
    bundle
        .namespaces()
        .into_iter()
        .find(|(t, _)| *t == Ns::Network)
        .and_then(|(_, p)| p)
}

/// At delete, once the container's proxy is gone: the range off the joined namespace's `lo`,
/// unless another proxy (a pod's other container) still holds a slot there.
pub fn release(netns: &Path) {
    let done =
        open_netns(netns).and_then(|fd| crate::policy::egress::listeners::remove_range(fd.as_fd()));
    if let Err(e) = done {
        tracing::warn!(
            "egress: the proxy's range stays on lo of {}: {e}",
            netns.display()
        );
    }
}

/// A container with walls (any `interception.network`) gets a cgroup namespace of its own
/// when the config has none: otherwise CAP_SYS_ADMIN mounts cgroup2, sees the host's whole
/// tree and writes its pid to a cgroup.procs outside the walled cgroup, leaving the walls (and
/// the DNS redirect) behind. In its own namespace the walled cgroup is the root it can see.
/// `ward exec` joins it like every namespace of init's that differs from ward's.
pub fn own_cgroup_namespace(bundle: &mut Bundle) {
    if bundle.has_namespace(Ns::Cgroup) {
        return;
    }
    let Some(mut linux) = bundle.spec.linux().clone() else {
        return;
    };
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    let mut cgroup = oci_spec::runtime::LinuxNamespace::default();
    cgroup.set_typ(Ns::Cgroup);
    namespaces.push(cgroup);
    linux.set_namespaces(Some(namespaces));
    bundle.spec.set_linux(Some(linux));
}

/// A walled process with CAP_NET_ADMIN (no user namespace) in a network namespace it joins
/// (a pod's, a CNI's: one that may route out) could take the proxy's range off `lo` and route
/// an address the wall allows to any host, or rewrite it with NAT, tc or a tunnel: the cgroup
/// hooks see the address before the network stack does that. Refused; in a namespace ward
/// makes, only `lo` exists and nothing leads out.
pub fn refuse_net_admin_in_joined_netns(bundle: &Bundle) -> Result<()> {
    refuse_net_admin(
        joined_path(bundle).is_some(),
        bundle.has_namespace(Ns::User),
        bundle.process()?,
    )
}

/// The same rule for a process of a container: `ward exec --cap CAP_NET_ADMIN` too.
pub fn refuse_net_admin(
    joined: bool,
    userns: bool,
    process: &oci_spec::runtime::Process,
) -> Result<()> {
    if !joined || userns {
        return Ok(());
    }
    let net_admin = process
        .capabilities()
        .as_ref()
        .and_then(|c| c.bounding().as_ref())
        .is_some_and(|b| b.contains(&oci_spec::runtime::Capability::NetAdmin));
    if net_admin {
        return Err(Error::spec(
            "process.capabilities.bounding",
            "CAP_NET_ADMIN beside process.interception.network in a joined network namespace: \
             the container could route or rewrite addresses past the wall (drop the \
             capability, use a user namespace, or let ward make the network namespace)",
        ));
    }
    Ok(())
}

fn no_map() -> Error {
    Error::Host("egress: the kernel path's steering map is missing (netns wall?)".into())
}

/// What only the kernel path enforces, refused in the netns wall rather than dropped:
/// `allowUnix` (cgroup hooks on unix connect/sendmsg). IP rules stay: the namespace lets
/// nothing out by itself, and the proxy honours them for what it dials (see README).
fn refuse_unenforceable(network: &Network) -> Result<()> {
    if network.allow_unix.is_some() {
        return Err(Error::spec(
            crate::spec::interception::UNIX_FIELD,
            "not enforceable in the netns wall (no cgroup v2, not root, or the annotation \
             org.ward.egress.wall=netns): unix sockets are restricted by cgroup BPF only",
        ));
    }
    Ok(())
}

/// For the netns wall: `/etc/resolv.conf` inside names the proxy's DNS (no other server is
/// reachable from the namespace). A file ward writes in the state dir, bind-mounted read-only
/// after the config's own mounts, so it is on top of any resolv.conf the config mounts too
/// (an engine's would name a server the container cannot reach). Without a mount namespace of
/// its own, or (rootless) without the file in an image whose /etc it cannot write, the
/// container keeps its resolv.conf (a mount would be the host's), said in the log.
pub fn resolv_conf(bundle: &mut Bundle, p: &Prepared, state_dir: &Path) -> Result<()> {
    const DEST: &str = "/etc/resolv.conf";
    if p.wall != Wall::Netns {
        return Ok(());
    }
    if !bundle.has_new_namespace(Ns::Mount) {
        tracing::warn!(
            "egress: no mount namespace of the container's own: {DEST} is left as it is (point \
             it at nameserver {} for names to resolve)",
            p.slot.proxy()
        );
        return Ok(());
    }
    let path = state_dir.join("resolv.conf");
    let text = format!(
        "# ward: the egress proxy's DNS (process.interception.network)\nnameserver {}\n",
        p.slot.proxy()
    );
    crate::container::trust::write_public(&path, text.as_bytes())?;
    let root = crate::sys::safepath::open_root(&bundle.rootfs)?;
    // Rootless, an image without the file whose /etc is root's cannot get one: the container
    // then resolves nothing through its own resolv.conf (the wall is the same), said in the log.
    if let Err(e) = crate::sys::safepath::ensure(root.as_fd(), Path::new(DEST), false) {
        tracing::warn!(
            "egress: no mount point {DEST} for ward's resolv.conf ({e}): the container's \
             resolver is not pointed at the proxy's DNS ({})",
            p.slot.proxy()
        );
        return Ok(());
    }
    crate::container::credentials::add_mounts(
        bundle,
        vec![crate::container::credentials::read_only_bind(
            &path,
            Path::new(DEST),
        )],
    );
    Ok(())
}

fn host_netns() -> Error {
    Error::spec(
        "linux.namespaces",
        "egress by domain name needs a network namespace of the container's own (a new one, \
         or a path to one): ward does not put its proxy's addresses on the host's network",
    )
}

pub fn open_netns(path: &Path) -> Result<OwnedFd> {
    let f = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    Ok(f.into())
}

fn same_netns(fd: BorrowedFd, other: &Path) -> Result<bool> {
    let a = nix::sys::stat::fstat(fd.as_raw_fd())
        .map_err(|e| Error::sys("fstat", "network namespace", e))?;
    let b = nix::sys::stat::stat(other)
        .map_err(|e| Error::sys("stat", other.display().to_string(), e))?;
    Ok((a.st_dev, a.st_ino) == (b.st_dev, b.st_ino))
}

/// The wall on the container's cgroup: everything denied but the slot (where the proxy
/// listens) and what the user's IP rules allow. The proxy's own address only on its DNS and
/// explicit ports: the whole range is local on `lo`, so its other ports reach whatever else
/// listens on every address of the namespace (a pod's sidecar on 0.0.0.0), around the proxy.
pub fn wall(p: &Prepared) -> Network {
    let mut n = p.network.clone();
    n.default = Verdict::Deny;
    n.allow.push(format!("{}/{SLOT_PREFIX}", p.slot.base()));
    let proxy = p.slot.proxy();
    let (dns, explicit) = (DNS_PORT, EXPLICIT_PORT);
    n.deny.push(format!("{proxy}:0-{}", dns - 1));
    n.deny.push(format!("{proxy}:{}-{}", dns + 1, explicit - 1));
    n.deny.push(format!("{proxy}:{}-65535", explicit + 1));
    n
}

/// The proxy variables `proxyEnv` puts in the container's env (upper and lower case, as
/// clients disagree on which they read), replacing any the config had.
pub fn proxy_env(bundle: &mut Bundle, p: &Prepared) -> Result<()> {
    if !p.domains.proxy_env {
        return Ok(());
    }
    let http = p.slot.proxy_url("http");
    let socks = p.slot.proxy_url("socks5h");
    let vars = [
        ("HTTP_PROXY", &http),
        ("HTTPS_PROXY", &http),
        ("ALL_PROXY", &socks),
    ];
    let mut env: Vec<String> = bundle.process()?.env().clone().unwrap_or_default();
    env.retain(|kv| {
        let name = kv.split('=').next().unwrap_or_default();
        !vars
            .iter()
            .any(|(v, _)| v.eq_ignore_ascii_case(name) && (name == *v || name == v.to_lowercase()))
    });
    for (name, value) in vars {
        env.push(format!("{name}={value}"));
        env.push(format!("{}={value}", name.to_lowercase()));
    }
    // The stored config gets them too: `ward exec` without --process starts from it.
    crate::container::credentials::set_env(bundle, env)
}

/// Before init is forked, for a policy with credentials or http rules: the credentials read
/// and masked (`container::credentials`), the CA made and trusted inside (`container::trust`),
/// `<state>/credentials.json` for `ward exec`. The CA and the secrets stay in `p`, in memory,
/// until `start` hands them to the proxy.
pub fn intercept(bundle: &mut Bundle, p: &mut Prepared, id: &str, state_dir: &Path) -> Result<()> {
    let compiled = match &bundle.interception {
        Some(i) => i.compiled_credentials(&bundle.raw)?,
        None => None,
    };
    let (vault, mut record) = match &compiled {
        Some(c) => {
            let prepared = crate::container::credentials::prepare(bundle, c, state_dir);
            crate::container::credentials::scrub_stack();
            prepared?
        }
        None => Default::default(),
    };
    if !p.domains.http.entries.is_empty() || !vault.is_empty() {
        let ca = crate::policy::proxy::ca::Authority::generate(id)?;
        let set = crate::container::trust::install(bundle, &ca.cert_pem, state_dir)?;
        record.defaults.extend(set);
        p.ca = Some(ca);
        tracing::debug!(
            bindings = vault.bindings.len(),
            "create: egress CA made and trusted inside"
        );
    }
    if !record.is_empty() {
        record.save(state_dir)?;
    }
    p.vault = vault;
    Ok(())
}

/// Rootless, for the netns wall: init's network and user namespaces, opened right after its id
/// maps are written (it turns itself undumpable next, and then only root could open them).
pub fn capture_namespaces(p: &mut Prepared, init: i32) -> Result<()> {
    if p.wall != Wall::Netns || p.joined.is_some() || nix::unistd::Uid::effective().is_root() {
        return Ok(());
    }
    let net = open_netns(Path::new(&format!("/proc/{init}/ns/net")))?;
    let user = open_netns(Path::new(&format!("/proc/{init}/ns/user")))?;
    p.init_ns = Some((net, user));
    Ok(())
}

/// After init is forked: the listeners (for a new namespace), the steering, the proxy.
/// Returns the proxy's pid.
pub fn start(
    p: Prepared,
    id: &str,
    state_dir: &Path,
    init: i32,
    init_pidfd: BorrowedFd,
    resolver: Option<std::net::SocketAddr>,
    extra_roots_pem: Vec<u8>,
) -> Result<i32> {
    let (netns, listeners) = match p.joined {
        Some(j) => j,
        None if p.wall == Wall::Netns => {
            // Root enters the namespace itself; anyone else through init's user namespace.
            let (fd, userns) = match p.init_ns {
                Some((net, user)) => (net, Some(user)),
                None => {
                    let path = format!("/proc/{init}/ns/net");
                    (open_netns(Path::new(&path))?, None)
                }
            };
            let l = crate::policy::egress::netwall::open(
                fd.as_fd(),
                userns.as_ref().map(|u| u.as_fd()),
                &p.ports,
            )?;
            tracing::debug!(ports = ?p.ports, "egress: netns wall listeners made");
            (fd, l)
        }
        None => {
            let path = format!("/proc/{init}/ns/net");
            let fd = open_netns(Path::new(&path))?;
            let l = crate::policy::egress::listeners::open(fd.as_fd())?;
            if l.slot != p.slot {
                return Err(Error::Init(format!(
                    "the container's new network namespace already had a ward proxy (slot {})",
                    l.slot.index
                )));
            }
            (fd, l)
        }
    };
    let mut keep = Vec::new();
    if let Some(map) = &p.listener_map {
        let first = listeners.transparent.first().ok_or_else(no_map)?;
        keep.push(crate::policy::egress::steer::attach(
            netns.as_fd(),
            listeners.slot,
            map.as_fd(),
            first.as_fd(),
        )?);
    }
    let log_path = state_dir.join(crate::policy::supervisor::LOG);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&log_path)
        .map_err(|e| Error::io("open", &log_path, e))?;
    let init_pidfd = init_pidfd
        .try_clone_to_owned()
        .map_err(|e| Error::io("dup", "init pidfd", e))?;
    // Upstream sockets leave from the container's namespace when it has a way out (an
    // engine's bridge, a CNI namespace: its network policy then applies to them too), else
    // from the namespace ward runs in.
    let upstream_netns =
        (routed(init) && resolver_reachable_from_container(resolver)).then_some(netns);
    let plan = crate::policy::proxy::daemon::Plan {
        id: id.to_string(),
        domains: p.domains,
        network: p.network,
        slot: listeners.slot,
        resolver,
        log: log.into(),
        upstream_netns,
        init_pidfd,
        keep,
        ca: p.ca,
        extra_roots_pem,
        vault: p.vault.open(),
    };
    crate::policy::proxy::daemon::spawn(plan, listeners)
}

/// A loopback nameserver of the host (systemd-resolved's 127.0.0.53, a local dnsmasq) cannot
/// be reached from the container's namespace: then the proxy stays in ward's for all its
/// upstream traffic, said in the log.
fn resolver_reachable_from_container(flag: Option<std::net::SocketAddr>) -> bool {
    if let Some(a) = flag {
        return !a.ip().is_loopback();
    }
    let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let servers: Vec<std::net::IpAddr> = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().split('%').next()?.parse().ok())
        .collect();
    let ok = servers.iter().any(|a| !a.is_loopback());
    if !ok {
        tracing::warn!(
            "egress: the host's nameservers are on loopback; the proxy's upstream traffic \
             leaves from ward's network namespace, not the container's (see --egress-resolver)"
        );
    }
    ok
}

/// Whether the network namespace of `pid` has a route through a device other than `lo`.
fn routed(pid: i32) -> bool {
    let v4 = std::fs::read_to_string(format!("/proc/{pid}/net/route")).unwrap_or_default();
    let v6 = std::fs::read_to_string(format!("/proc/{pid}/net/ipv6_route")).unwrap_or_default();
    let v4_out = v4
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().next().is_some_and(|dev| dev != "lo"));
    // ipv6_route: the device is the last column; multicast/local entries use lo too.
    let v6_out = v6.lines().any(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.len() == 10 && cols[9] != "lo" && !cols[0].starts_with("ff")
    });
    v4_out || v6_out
}
