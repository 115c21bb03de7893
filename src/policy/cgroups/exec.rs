//! Where an `exec`'d process lives: the container's cgroup in every hierarchy (each v1 one and
//! the unified one), or the sub-cgroups `exec --cgroup` names, in runc's forms:
//! `--cgroup PATH` (one, the same sub-cgroup everywhere) or, repeatable,
//! `--cgroup CTRL[,CTRL]:PATH` (those v1 controllers only; the rest stay in the container's).
//! Every target must already exist: it is checked before anything is forked.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{v1, Cgroup, Mode};
use crate::error::{Error, Result};

const FLAG: &str = "--cgroup";

/// Parsed `--cgroup` arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubCgroups {
    /// The form without a controller: this sub-cgroup in every hierarchy.
    pub all: Option<String>,
    /// controller (as /proc/self/cgroup names it, `name=systemd` too) -> sub-cgroup.
    pub per_controller: BTreeMap<String, String>,
}

/// A sub-cgroup path, relative to the container's cgroup; `..` may not climb out of it.
fn sub_path(arg: &str, raw: &str) -> Result<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(Error::spec(
                        FLAG,
                        format!("{arg:?}: {raw:?} is not a sub-cgroup of the container's"),
                    ));
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Parses runc's `--cgroup` forms; an empty list is "no sub-cgroup".
pub fn parse(args: &[String]) -> Result<SubCgroups> {
    let mut out = SubCgroups::default();
    for arg in args {
        let fields: Vec<&str> = arg.split(':').collect();
        match fields.as_slice() {
            [path] => {
                if args.len() != 1 {
                    return Err(Error::spec(
                        FLAG,
                        format!("{arg:?} lacks a <controller>: prefix (only a single {FLAG} may omit it)"),
                    ));
                }
                out.all = Some(sub_path(arg, path)?);
            }
            [ctrls, path] => {
                let path = sub_path(arg, path)?;
                for c in ctrls.split(',') {
                    if c.is_empty() {
                        return Err(Error::spec(FLAG, format!("{arg:?}: empty controller name")));
                    }
                    out.per_controller.insert(c.to_string(), path.clone());
                }
            }
            _ => {
                return Err(Error::spec(
                    FLAG,
                    format!("{arg:?} is not [<controller>[,<controller>]:]<path>"),
                ))
            }
        }
    }
    Ok(out)
}

/// The directories an exec'd process joins.
#[derive(Debug, Default)]
pub struct Targets {
    /// The v2 directory (pure v2, or `unified` on a hybrid host): CLONE_INTO_CGROUP.
    pub v2: Option<PathBuf>,
    /// One directory per v1 hierarchy: cgroup.procs written by the parent after the fork.
    pub v1: Vec<PathBuf>,
}

/// A v1 hierarchy's controllers (its super options without the mount flags).
fn controllers(options: &str) -> impl Iterator<Item = &str> {
    options.split(',').filter(|o| {
        !matches!(
            *o,
            "xattr" | "noprefix" | "clone_children" | "cpuset_v2_mode" | "none"
        ) && (!o.contains('=') || o.starts_with("name="))
    })
}

impl Cgroup {
    /// Where an exec'd process goes, every directory checked to exist (the error names the
    /// missing one) before anything is forked.
    pub fn exec_targets(&self, sub: &SubCgroups) -> Result<Targets> {
        let joined = |dir: PathBuf, s: Option<&String>| match s {
            Some(s) if !s.is_empty() => dir.join(s),
            _ => dir,
        };
        let mut t = Targets::default();
        if self.mode != Mode::Unified {
            let hierarchies = v1::dirs(self.place());
            for c in sub.per_controller.keys() {
                if !hierarchies
                    .iter()
                    .any(|(h, _)| controllers(&h.options).any(|x| x == c))
                {
                    return Err(Error::spec(
                        FLAG,
                        format!("unknown controller {c:?}: no v1 hierarchy of this host has it"),
                    ));
                }
            }
            for (h, dir) in hierarchies {
                let s = sub
                    .all
                    .as_ref()
                    .or_else(|| controllers(&h.options).find_map(|c| sub.per_controller.get(c)));
                t.v1.push(joined(dir, s));
            }
        } else if !sub.per_controller.is_empty() {
            return Err(Error::spec(
                FLAG,
                "per-controller sub-cgroups need cgroup v1; on cgroup v2 give one path",
            ));
        }
        t.v2 = self.v2_dir().map(|d| joined(d, sub.all.as_ref()));
        for dir in t.v1.iter().chain(&t.v2) {
            if !dir.join("cgroup.procs").exists() {
                return Err(Error::BadState(format!(
                    "{FLAG}: cgroup {} does not exist",
                    dir.display()
                )));
            }
        }
        Ok(t)
    }
}

/// Places `pid` in each v1 directory of `t`.
pub fn add_v1(t: &Targets, pid: i32) -> Result<()> {
    for dir in &t.v1 {
        super::write(dir, "cgroup.procs", &pid.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn runc_forms() {
        assert_eq!(parse(&[]).unwrap(), SubCgroups::default());
        let one = parse(&args(&["/a/b/"])).unwrap();
        assert_eq!(one.all.as_deref(), Some("a/b"));
        let per = parse(&args(&["memory,pids:x", "cpu:/y/./z"])).unwrap();
        assert_eq!(per.all, None);
        assert_eq!(per.per_controller["memory"], "x");
        assert_eq!(per.per_controller["pids"], "x");
        assert_eq!(per.per_controller["cpu"], "y/z");
        assert_eq!(parse(&args(&["a/../b"])).unwrap().all.as_deref(), Some("b"));
        for bad in [
            &["a:b:c"][..],
            &["x", "y"],
            &["../.."],
            &["memory:a/../.."],
            &[",:x"],
        ] {
            let e = parse(&args(bad)).unwrap_err().to_string();
            assert!(e.contains("--cgroup"), "{bad:?}: {e}");
        }
    }
}
