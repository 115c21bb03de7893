//! Credentials at create and exec (issue 17): the values are read from what the config already
//! gives the container — its `process.env` and files inside its rootfs (or under a bind mount
//! the config names) — before init exists; each secret is replaced by a placeholder
//! (`policy::credentials::mint`) in the env given to init and in a copy of the file mounted
//! read-only over it; the secrets go into the `Vault` the proxy gets in memory.
//!
//! `<state>/credentials.json` (`Record`) keeps only what `ward exec` needs to give its process
//! the same view: each masked variable's placeholder value, the withheld names, the trust
//! variables. Never a secret.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::error::{Error, Result};
use crate::policy::credentials::mint;
use crate::spec::credentials::{spans, Compiled, Entry, Mode, NoMatch, Source};
use crate::spec::Bundle;

mod sealed;
pub use sealed::{scrub_stack, Pending, PendingBinding, Sealed};

/// The record `ward exec` reads, in the state dir.
pub const FILE: &str = "credentials.json";
/// Where the masked copies of files are written (in the state dir), one per entry.
const FILES_DIR: &str = "credential-files";
/// The largest credential file read (a key or a config, not a data set).
const FILE_MAX: u64 = 1 << 20;

/// What `ward exec` applies to its process's env (placeholders only).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Masked variables: the value the container sees (placeholders where the secrets were).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Withheld variables (`mode: deny`).
    #[serde(default)]
    pub removed: Vec<String>,
    /// Set when the process does not set them (the CA bundle's variables, `container::trust`).
    #[serde(default)]
    pub defaults: BTreeMap<String, String>,
}

impl Record {
    pub fn is_empty(&self) -> bool {
        self.env.is_empty() && self.removed.is_empty() && self.defaults.is_empty()
    }

    /// The env a process of the container gets: masked names get their placeholder value
    /// (whatever value the process carried), withheld names are dropped, defaults are added
    /// where the name is absent.
    pub fn apply(&self, env: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(env.len() + self.defaults.len());
        for kv in env {
            let name = kv.split_once('=').map_or(kv.as_str(), |(n, _)| n);
            if self.removed.iter().any(|r| r == name) {
                continue;
            }
            match self.env.get(name) {
                Some(v) => out.push(format!("{name}={v}")),
                None => out.push(kv.clone()),
            }
        }
        for (name, v) in &self.defaults {
            if !out
                .iter()
                .any(|kv| kv.split_once('=').map(|(n, _)| n) == Some(name))
            {
                out.push(format!("{name}={v}"));
            }
        }
        out
    }

    pub fn save(&self, state_dir: &Path) -> Result<()> {
        let data = serde_json::to_vec(self).map_err(|e| Error::Init(e.to_string()))?;
        crate::sys::stateroot::write_atomic(&state_dir.join(FILE), &data)
    }

    /// The record of a container (empty when it has none).
    pub fn load(state_dir: &Path) -> Result<Record> {
        let p = state_dir.join(FILE);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::spec(p.display().to_string(), e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Record::default()),
            Err(e) => Err(Error::io("read", &p, e)),
        }
    }
}

/// Reads every credential, rewrites the env of `bundle` (and of its stored config) and mounts
/// the masked files; returns the secrets (sealed until init is forked) and the record for exec.
/// The replaced values are wiped where ward held them.
pub fn prepare(bundle: &mut Bundle, c: &Compiled, state_dir: &Path) -> Result<(Pending, Record)> {
    let mut vault = Pending {
        bindings: Vec::new(),
        allow_plaintext_inject: c.allow_plaintext_inject,
        aws_pairs: c.aws_pairs.clone(),
    };
    let mut record = Record::default();
    let mut env: Vec<String> = bundle.process()?.env().clone().unwrap_or_default();
    let mut mounts = Vec::new();
    for (i, e) in c.entries.iter().enumerate() {
        let mut masker = Masker {
            entry: e,
            minted: Vec::new(),
        };
        match &e.source {
            Source::Env(name) => {
                let found = env
                    .iter()
                    .any(|kv| kv.split_once('=').is_some_and(|(n, _)| n == name));
                if !found {
                    return Err(Error::spec(
                        format!("{}.name", e.field),
                        format!(
                            "{name:?} is not in process.env: a credential's value comes from \
                             the container's own env (e.g. docker run -e {name})"
                        ),
                    ));
                }
                let mut withhold = e.mode == Mode::Deny;
                let mut shown = None;
                for kv in env.iter_mut() {
                    let Some((n, v)) = kv.split_once('=') else {
                        continue;
                    };
                    if n != name || withhold {
                        continue;
                    }
                    let Some(masked) = masker.mask(v.as_bytes(), false)? else {
                        withhold = true;
                        continue;
                    };
                    // Placeholders and the value's own non-secret bytes: UTF-8 as it was.
                    let masked = String::from_utf8_lossy(&masked).into_owned();
                    std::mem::replace(kv, format!("{name}={masked}")).zeroize();
                    shown.get_or_insert(masked);
                }
                if withhold {
                    let (gone, kept): (Vec<String>, Vec<String>) = std::mem::take(&mut env)
                        .into_iter()
                        .partition(|kv| kv.split_once('=').is_some_and(|(n, _)| n == name));
                    env = kept;
                    gone.into_iter().for_each(|mut kv| kv.zeroize());
                    record.removed.push(name.clone());
                    continue;
                }
                if let Some(v) = shown {
                    record.env.insert(name.clone(), v);
                }
            }
            Source::File(path) => {
                refuse_unmountable(bundle, e)?;
                let (content, meta) = read_file(bundle, e, path)?;
                let masked = match e.mode {
                    Mode::Deny => Vec::new(),
                    Mode::Mask => masker.mask(&content, true)?.unwrap_or_default(),
                };
                drop(zeroize::Zeroizing::new(content));
                let copy = write_copy(state_dir, i, &masked, &meta)?;
                mounts.push(read_only_bind(&copy, path));
            }
        }
        vault.bindings.extend(masker.bindings());
    }
    wipe_env(bundle);
    set_env(bundle, env)?;
    if !mounts.is_empty() {
        add_mounts(bundle, mounts);
    }
    Ok((vault, record))
}

/// Wipes the env as the config gave it (the typed spec's and the stored config's), before it
/// is replaced by the masked one (or before a copy of the bundle is dropped).
pub fn wipe_env(bundle: &mut Bundle) {
    if let Some(env) = bundle
        .spec
        .process_mut()
        .as_mut()
        .and_then(|p| p.env_mut().as_mut())
    {
        env.iter_mut().for_each(Zeroize::zeroize);
    }
    if let Some(env) = bundle
        .raw
        .pointer_mut("/process/env")
        .and_then(|v| v.as_array_mut())
    {
        for v in env {
            if let serde_json::Value::String(s) = v {
                s.zeroize();
            }
        }
    }
}

/// The placeholders of one entry: one per distinct secret.
struct Masker<'a> {
    entry: &'a Entry,
    minted: Vec<(Sealed, String)>,
}

impl Masker<'_> {
    /// `value` with each secret replaced by its placeholder (`None`: withheld, by
    /// `onExtractNoMatch: "deny"`). `file`: a trailing newline of a whole-value secret stays
    /// (a key file ends in one; the key does not).
    fn mask(&mut self, value: &[u8], file: bool) -> Result<Option<Vec<u8>>> {
        let e = self.entry;
        let whole = || {
            let mut end = value.len();
            if file {
                while end > 0 && matches!(value[end - 1], b'\n' | b'\r') {
                    end -= 1;
                }
            }
            std::iter::once(0..end).collect::<Vec<_>>()
        };
        let spans = match &e.extract {
            None => whole(),
            Some(re) => match spans(re, value) {
                Some(s) => s,
                None if e.no_match == NoMatch::Error => {
                    return Err(Error::spec(
                        format!("{}.extract", e.field),
                        format!(
                            "matched nothing in {} (onExtractNoMatch: \"error\")",
                            what(&e.source)
                        ),
                    ))
                }
                None if e.no_match == NoMatch::Deny => {
                    tracing::warn!(
                        "{}: extract matched nothing; the value is withheld (onExtractNoMatch: \
                         \"deny\")",
                        e.label
                    );
                    return Ok(None);
                }
                None => {
                    tracing::warn!(
                        "{}: extract matched nothing; the whole value is masked",
                        e.label
                    );
                    whole()
                }
            },
        };
        if spans.iter().all(|r| r.is_empty()) {
            return Err(Error::spec(
                e.field.clone(),
                format!(
                    "{} is empty: nothing to mask (use \"mode\": \"deny\", or give it a value)",
                    what(&e.source)
                ),
            ));
        }
        let mut out = Vec::with_capacity(value.len() + 64);
        let mut at = 0;
        for r in spans {
            out.extend_from_slice(&value[at..r.start]);
            let secret = &value[r.clone()];
            out.extend_from_slice(self.placeholder(secret)?.as_bytes());
            at = r.end;
        }
        out.extend_from_slice(&value[at..]);
        Ok(Some(out))
    }

    fn placeholder(&mut self, secret: &[u8]) -> Result<String> {
        if let Some((_, p)) = self.minted.iter().find(|(s, _)| s.expose() == secret) {
            return Ok(p.clone());
        }
        let p = mint(secret.len())?;
        self.minted.push((Sealed::new(secret)?, p.clone()));
        Ok(p)
    }

    fn bindings(self) -> Vec<PendingBinding> {
        let e = self.entry;
        let many = self.minted.len() > 1;
        self.minted
            .into_iter()
            .enumerate()
            .map(|(k, (secret, placeholder))| PendingBinding {
                name: if many {
                    format!("{} #{}", e.label, k + 1)
                } else {
                    e.label.clone()
                },
                placeholder,
                secret,
                // A whole variable (AWS pairs are found by these names).
                env: match (&e.source, &e.extract) {
                    (Source::Env(n), None) => Some(n.clone()),
                    _ => None,
                },
                hosts: e.hosts.clone(),
                methods: e.methods.clone(),
                paths: e.paths.clone(),
            })
            .collect()
    }
}

fn what(s: &Source) -> String {
    match s {
        Source::Env(n) => format!("the value of {n}"),
        Source::File(p) => p.display().to_string(),
    }
}

/// The env of the process init runs, and of the stored config (`ward exec` without --process
/// starts from it).
pub fn set_env(bundle: &mut Bundle, env: Vec<String>) -> Result<()> {
    let mut process = bundle.process()?.clone();
    if let Some(p) = bundle
        .raw
        .get_mut("process")
        .and_then(|p| p.as_object_mut())
    {
        p.insert("env".into(), serde_json::json!(env));
    }
    process.set_env(Some(env));
    bundle.spec.set_process(Some(process));
    Ok(())
}

/// Appends mounts to the spec init mounts (after the config's own, so they lie over them).
pub fn add_mounts(bundle: &mut Bundle, extra: Vec<oci_spec::runtime::Mount>) {
    let mut mounts = bundle.spec.mounts().clone().unwrap_or_default();
    mounts.extend(extra);
    bundle.spec.set_mounts(Some(mounts));
}

/// A read-only bind of `source` (a file ward wrote) at `dest` in the container.
pub fn read_only_bind(source: &Path, dest: &Path) -> oci_spec::runtime::Mount {
    let mut m = oci_spec::runtime::Mount::default();
    m.set_destination(dest.to_path_buf());
    m.set_typ(Some("bind".into()));
    m.set_source(Some(source.to_path_buf()));
    m.set_options(Some(
        ["bind", "ro", "nosuid", "nodev", "noexec"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    ));
    m
}

/// A masked file is a mount over the real one: a process that can unmount it (CAP_SYS_ADMIN)
/// would find the secret under it, and without a mount namespace of its own the mount would
/// be the host's.
fn refuse_unmountable(bundle: &Bundle, e: &Entry) -> Result<()> {
    if !bundle.has_new_namespace(oci_spec::runtime::LinuxNamespaceType::Mount) {
        return Err(Error::spec(
            format!("{}.path", e.field),
            "a credential file is masked by a mount: the container needs a mount namespace of              its own (linux.namespaces: mount)",
        ));
    }
    let sys_admin = bundle
        .process()?
        .capabilities()
        .as_ref()
        .and_then(|c| c.bounding().as_ref())
        .is_some_and(|b| b.contains(&oci_spec::runtime::Capability::SysAdmin));
    if sys_admin {
        return Err(Error::spec(
            "process.capabilities.bounding",
            format!(
                "CAP_SYS_ADMIN beside {}: the container could unmount the masked copy and                  read the file under it (drop the capability)",
                e.label
            ),
        ));
    }
    Ok(())
}

/// Owner and mode of a file read, given to its copy so the same user can read it.
pub struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
}

/// A credential file as the container would see it at start: under the last bind mount of the
/// config whose destination holds it (resolved beneath the mount's source), else inside the
/// rootfs (resolved in it as a chroot would). Never a host path of its own.
fn read_file(bundle: &Bundle, e: &Entry, path: &Path) -> Result<(Vec<u8>, Meta)> {
    let field = format!("{}.path", e.field);
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
    let under = bundle
        .spec
        .mounts()
        .iter()
        .flatten()
        .enumerate()
        .filter(|(_, m)| path.starts_with(m.destination()))
        .last();
    let opened = match under {
        Some((i, m)) => {
            let opts = m.options().clone().unwrap_or_default();
            let bind = m.typ().as_deref() == Some("bind")
                || opts.iter().any(|o| o == "bind" || o == "rbind");
            let source = m.source().as_ref().filter(|_| bind).ok_or_else(|| {
                Error::spec(
                    &field,
                    format!(
                        "{} is under mounts[{i}] ({}), whose content does not exist before the \
                         container starts: ward reads credential files at create",
                        path.display(),
                        m.typ().as_deref().unwrap_or("no type")
                    ),
                )
            })?;
            let source = bundle.dir.join(source);
            let rest = path.strip_prefix(m.destination()).unwrap_or(Path::new(""));
            if rest.as_os_str().is_empty() {
                nix::fcntl::open(
                    &source,
                    flags | OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                // SAFETY: open just returned this fd; nothing else owns it.
                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
            } else {
                let dir =
                    std::fs::File::open(&source).map_err(|err| Error::io("open", &source, err))?;
                let how = OpenHow::new()
                    .flags(flags | OFlag::O_CLOEXEC)
                    .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
                nix::fcntl::openat2(dir.as_raw_fd(), rest, how)
                    // SAFETY: openat2 just returned this fd; nothing else owns it.
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
            }
        }
        None => {
            let root = crate::sys::safepath::open_root(&bundle.rootfs)?;
            crate::sys::safepath::open(root.as_fd(), path, flags)
        }
    };
    let fd = opened.map_err(|errno| {
        let why = match errno {
            nix::errno::Errno::ENOENT => format!(
                "{} does not exist in the container (a credential file must be there at \
                 create: in the rootfs or under a bind mount of the config)",
                path.display()
            ),
            nix::errno::Errno::EXDEV | nix::errno::Errno::ELOOP => format!(
                "{}: a symlink leads out of the mount it is under",
                path.display()
            ),
            other => format!("{}: {other}", path.display()),
        };
        Error::spec(&field, why)
    })?;
    let st = nix::sys::stat::fstat(fd.as_raw_fd())
        .map_err(|err| Error::sys("fstat", path.display().to_string(), err))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Error::spec(
            &field,
            format!("{} is not a regular file", path.display()),
        ));
    }
    if st.st_size as u64 > FILE_MAX {
        return Err(Error::spec(
            &field,
            format!(
                "{} is larger than {FILE_MAX} bytes (a credential file)",
                path.display()
            ),
        ));
    }
    let mut content = Vec::with_capacity(st.st_size as usize);
    std::fs::File::from(fd)
        .take(FILE_MAX + 1)
        .read_to_end(&mut content)
        .map_err(|err| Error::io("read", path, err))?;
    Ok((
        content,
        Meta {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o777,
        },
    ))
}

/// Writes the masked copy of entry `i` into the state dir, owned and permitted as the file it
/// stands for.
fn write_copy(state_dir: &Path, i: usize, content: &[u8], meta: &Meta) -> Result<PathBuf> {
    let dir = state_dir.join(FILES_DIR);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io("mkdir", &dir, e)),
    }
    let path = dir.join(i.to_string());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| Error::io("create", &path, e))?;
    std::io::Write::write_all(&mut f, content).map_err(|e| Error::io("write", &path, e))?;
    nix::unistd::fchown(
        f.as_raw_fd(),
        Some(nix::unistd::Uid::from_raw(meta.uid)),
        Some(nix::unistd::Gid::from_raw(meta.gid)),
    )
    .map_err(|e| Error::sys("fchown", path.display().to_string(), e))?;
    f.set_permissions(std::fs::Permissions::from_mode(meta.mode))
        .map_err(|e| Error::io("chmod", &path, e))?;
    Ok(path)
}

#[cfg(test)]
mod tests;
