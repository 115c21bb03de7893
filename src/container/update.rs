//! `ward update`: change the resources of a running container (what `docker update` and
//! containerd's shim do: `update --resources=-` with a LinuxResources JSON on stdin).

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::container::state::{ContainerDir, Status};
use crate::error::{Error, Result};

pub fn update(root: &Path, id: &str, res: &LinuxResources) -> Result<()> {
    crate::spec::resources::check(res)?;
    let dir = ContainerDir::open(root, id)?;
    let _lock = dir.lock()?;
    let stored = dir.load()?;
    if dir.status(&stored) == Status::Stopped {
        return Err(Error::BadState("container not running".into()));
    }
    let cg = stored
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::BadState(format!("container {id} has no cgroup to update")))?;
    // Device rules are not changed by update (as runc): only limits.
    cg.apply(res, &[], true)
}

/// Parses a size as runc/docker do: bytes, or a number with k/m/g/t (binary multiples), "-1"
/// for unlimited.
pub fn parse_size(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| Error::spec("size", format!("{s:?} is not a size")))?;
    if n < 0.0 {
        return Err(Error::spec("size", format!("{s:?} is negative")));
    }
    Ok((n * mult as f64) as i64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_like_docker() {
        assert_eq!(super::parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(super::parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(super::parse_size("1024").unwrap(), 1024);
        assert_eq!(super::parse_size("-1").unwrap(), -1);
        assert!(super::parse_size("lots").is_err());
    }
}
