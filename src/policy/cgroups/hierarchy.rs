//! The host's cgroup file systems as the runtime sees them: whether the host is pure cgroup v2,
//! its v1 hierarchies (from /proc/self/mountinfo) and this process's path in each.

use std::path::PathBuf;

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

pub fn host_is_unified() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type().0 == CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

/// A v1 hierarchy mounted on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Host mount point, e.g. /sys/fs/cgroup/memory.
    pub mountpoint: PathBuf,
    /// Super options without rw/ro, e.g. "memory" or "name=systemd".
    pub options: String,
}

/// The v1 hierarchies of the host, from a mountinfo text.
pub fn v1_hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split_whitespace();
        let (Some("cgroup"), Some(_src), Some(superopts)) = (post.next(), post.next(), post.next())
        else {
            continue;
        };
        let Some(mp) = pre.split_whitespace().nth(4) else {
            continue;
        };
        let options: Vec<&str> = superopts
            .split(',')
            .filter(|o| *o != "rw" && *o != "ro")
            .collect();
        out.push(Hierarchy {
            mountpoint: PathBuf::from(unescape(mp)),
            options: options.join(","),
        });
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\134", "\\")
}

/// This process's cgroup path in the v1 hierarchy with `options`, from /proc/self/cgroup.
pub fn own_path(proc_cgroup: &str, options: &str) -> String {
    let wanted: Vec<&str> = options.split(',').collect();
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if !ctrls.is_empty() && ctrls.split(',').all(|c| wanted.contains(&c)) {
            return path.to_string();
        }
    }
    "/".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
34 30 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hierarchies_skip_unified_and_keep_named() {
        let hs = v1_hierarchies(MOUNTINFO);
        let names: Vec<_> = hs.iter().map(|h| h.options.as_str()).collect();
        assert_eq!(names, vec!["cpu", "memory", "name=systemd"]);
        assert_eq!(hs[2].mountpoint, PathBuf::from("/sys/fs/cgroup/systemd"));
    }

    #[test]
    fn own_path_matches_controllers() {
        let pc = "5:memory:/a/b\n4:cpu,cpuacct:/c\n1:name=systemd:/s\n0::/u\n";
        assert_eq!(own_path(pc, "memory"), "/a/b");
        assert_eq!(own_path(pc, "cpu,cpuacct"), "/c");
        assert_eq!(own_path(pc, "name=systemd"), "/s");
        assert_eq!(own_path(pc, "pids"), "/");
    }
}
