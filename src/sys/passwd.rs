//! Names and homes from /etc/passwd, read as a file: runc's (Go's, without cgo) user lookup.
//!
//! ward's release binary links glibc statically, and a static glibc's getpwuid loads the NSS
//! modules nsswitch.conf names (systemd, sss, ldap) with dlopen, which needs the shared
//! libraries of the very glibc version ward was built with. Reading the file is what runc
//! does, and what init already did for HOME inside the container.

use std::path::Path;

/// One line of a passwd file: the fields ward uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub home: String,
}

/// The entry for `uid` in the passwd file at `path` (the first one, as getpwuid), if any.
pub fn by_uid_in(path: &Path, uid: u32) -> Option<Entry> {
    let text = std::fs::read_to_string(path).ok()?;
    find(&text, uid)
}

/// The entry for `uid` in this mount namespace's /etc/passwd.
pub fn by_uid(uid: u32) -> Option<Entry> {
    by_uid_in(Path::new("/etc/passwd"), uid)
}

/// `name:password:uid:gid:gecos:home:shell`; comments, blank and short lines are skipped.
fn find(text: &str, uid: u32) -> Option<Entry> {
    text.lines().find_map(|line| {
        if line.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| Entry {
            name: f[0].to_string(),
            home: f[5].to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
# a comment:x:7:7::/nowhere:/bin/sh
root:x:0:0:root:/root:/bin/bash

short:x:5
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
again:x:1:1::/elsewhere:/bin/sh
";

    #[test]
    fn finds_the_first_entry_of_a_uid() {
        let e = find(PASSWD, 1).unwrap();
        assert_eq!((e.name.as_str(), e.home.as_str()), ("daemon", "/usr/sbin"));
        assert_eq!(find(PASSWD, 0).unwrap().home, "/root");
    }

    #[test]
    fn skips_comments_short_lines_and_unknown_uids() {
        assert_eq!(find(PASSWD, 7), None);
        assert_eq!(find(PASSWD, 5), None);
        assert_eq!(find(PASSWD, 4242), None);
        assert_eq!(find("", 0), None);
    }

    #[test]
    fn reads_a_file_and_a_missing_one() {
        let dir = std::env::temp_dir().join(format!("ward-passwd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("passwd");
        std::fs::write(&f, PASSWD).unwrap();
        assert_eq!(by_uid_in(&f, 0).unwrap().name, "root");
        assert_eq!(by_uid_in(&dir.join("missing"), 0), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
