//! Helpers over the kernel and the file system, used by every layer above: safe path
//! resolution, procfs, signals, clone, the parent/child sync channel, ptys and fd passing,
//! ward's daemons (double fork, fd cleanup), eBPF loading, /etc/passwd lookups, rtnetlink requests, and the state root's on-disk layout with its atomic
//! writes. Nothing here imports a project module but `error`.

pub mod passwd;
pub mod signals;
pub mod stateroot;

#[cfg(target_os = "linux")]
pub mod clone;
#[cfg(target_os = "linux")]
pub mod console;
#[cfg(target_os = "linux")]
pub mod daemon;
#[cfg(target_os = "linux")]
pub mod ebpf;
#[cfg(target_os = "linux")]
pub mod procfs;
#[cfg(target_os = "linux")]
pub mod rtnl;
#[cfg(target_os = "linux")]
pub mod safepath;
#[cfg(target_os = "linux")]
pub mod sync;

/// A small file's text in the fewest syscalls (open, one read, close): for /proc, cgroupfs and
/// state files read once per container by `list` and `state`, where `fs::read_to_string`'s
/// statx and second read add two syscalls a file. A read shorter than the space left is the
/// end (regular files, and seq_file's proc/cgroup files, which fill a read they can fit);
/// larger files are read on to the end.
pub fn read_small(path: impl AsRef<std::path::Path>) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        let space = buf.len() - len;
        let n = match file.read(&mut buf[len..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        len += n;
        if n == 0 || n < space {
            break;
        }
        buf.resize(buf.len() * 2, 0);
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn read_small_reads_whole_files_of_any_size() {
        let dir = std::env::temp_dir().join(format!("ward-read-small-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for size in [0, 1, 4095, 4096, 4097, 70_000] {
            let text: String = (0..size)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let p = dir.join(format!("f{size}"));
            std::fs::write(&p, &text).unwrap();
            assert_eq!(super::read_small(&p).unwrap(), text, "size {size}");
        }
        let stat = super::read_small("/proc/self/stat").unwrap();
        assert!(stat.ends_with('\n'), "{stat}");
        let big = super::read_small("/proc/self/mountinfo").unwrap();
        assert_eq!(
            big.lines().count(),
            std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap()
                .lines()
                .count()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
