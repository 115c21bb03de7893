//! Lookups in the kernel's own type information (`/sys/kernel/btf/vmlinux`): the ids of the
//! kfuncs and structs a hand-built program refers to, and member offsets, so ward's programs
//! follow the running kernel's layout instead of assuming one. Only what ward needs is read:
//! names, kinds, struct members and enum values (see the kernel's Documentation/bpf/btf.rst).

use crate::error::{Error, Result};

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

pub const KIND_STRUCT: u32 = 4;
pub const KIND_ENUM: u32 = 6;
pub const KIND_FUNC: u32 = 12;

/// One type's header and where its trailing records start in the type section.
struct Type {
    kind: u32,
    vlen: u32,
    kind_flag: bool,
    extra: usize,
}

/// The raw bytes: read into memory, or the kernel's file mapped (sysfs serves
/// /sys/kernel/btf/vmlinux 4 KiB per read(2): ~1,300 reads of its 5 MiB, where one private
/// read-only mapping costs a few page faults; the kernel allows that mapping from 6.16).
enum Data {
    Owned(Vec<u8>),
    Mapped { ptr: *const u8, len: usize },
}

impl std::ops::Deref for Data {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Data::Owned(v) => v,
            // SAFETY: `ptr` is a live PROT_READ mapping of `len` bytes made in `map_file`,
            // unmapped only in Drop; nothing writes it (MAP_PRIVATE, read-only).
            Data::Mapped { ptr, len } => unsafe { std::slice::from_raw_parts(*ptr, *len) },
        }
    }
}

impl Drop for Data {
    fn drop(&mut self) {
        if let Data::Mapped { ptr, len } = *self {
            // SAFETY: the mapping made in `map_file`, unmapped once, here.
            unsafe { libc::munmap(ptr as *mut libc::c_void, len) };
        }
    }
}

/// `path` mapped read-only and private, or None when the kernel does not allow it (before
/// 6.16: EACCES/ENODEV) or the file is empty.
fn map_file(path: &str) -> Option<Data> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).ok()?;
    let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
    if len == 0 {
        return None;
    }
    // SAFETY: a new private read-only mapping of an open file; the result is checked
    // against MAP_FAILED before use. The mapping outlives the fd (closed on return).
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        )
    };
    (ptr != libc::MAP_FAILED).then_some(Data::Mapped {
        ptr: ptr as *const u8,
        len,
    })
}

/// Parsed BTF: where each type's header starts (index = type id - 1; 4 bytes a type, decoded
/// when looked at: vmlinux has ~150k types) and the raw sections.
pub struct Btf {
    types: Vec<u32>,
    data: Data,
    str_off: usize,
    str_len: usize,
}

impl Btf {
    /// The running kernel's BTF.
    pub fn vmlinux() -> Result<Btf> {
        let data = match map_file(VMLINUX) {
            Some(mapped) => mapped,
            None => Data::Owned(std::fs::read(VMLINUX).map_err(|e| Error::io("read", VMLINUX, e))?),
        };
        Btf::parse_data(data).map_err(|why| Error::Host(format!("{VMLINUX}: {why}")))
    }

    pub fn parse(data: Vec<u8>) -> std::result::Result<Btf, String> {
        Btf::parse_data(Data::Owned(data))
    }

    fn parse_data(data: Data) -> std::result::Result<Btf, String> {
        let u32_at = |d: &[u8], o: usize| -> std::result::Result<u32, String> {
            d.get(o..o + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| format!("truncated at byte {o}"))
        };
        if data.get(0..2) != Some(&[0x9f, 0xeb]) {
            return Err("not little-endian BTF (bad magic)".into());
        }
        let hdr_len = u32_at(&data, 4)? as usize;
        let (type_off, type_len) = (u32_at(&data, 8)? as usize, u32_at(&data, 12)? as usize);
        let (str_off, str_len) = (u32_at(&data, 16)? as usize, u32_at(&data, 20)? as usize);
        let type_off = hdr_len + type_off;
        let str_off = hdr_len + str_off;
        if data.len() < type_off + type_len || data.len() < str_off + str_len {
            return Err("sections run past the end".into());
        }
        let mut types = Vec::with_capacity(type_len / 16);
        let mut at = type_off;
        while at < type_off + type_len {
            let info = u32_at(&data, at + 4)?;
            let (kind, vlen) = ((info >> 24) & 0x1f, info & 0xffff);
            types.push(u32::try_from(at).map_err(|_| "type section past 4 GiB".to_string())?);
            at += 12
                + match kind {
                    1 | 14 | 17 => 4,                      // INT, VAR, DECL_TAG
                    3 => 12,                               // ARRAY
                    4 | 5 | 15 | 19 => 12 * vlen as usize, // STRUCT, UNION, DATASEC, ENUM64
                    6 | 13 => 8 * vlen as usize,           // ENUM, FUNC_PROTO
                    2 | 7..=12 | 16 | 18 => 0,
                    k => return Err(format!("unknown BTF kind {k}")),
                };
        }
        let btf = Btf {
            types,
            data,
            str_off,
            str_len,
        };
        Ok(btf)
    }

    fn str(&self, off: u32) -> &str {
        let off = off as usize;
        if off >= self.str_len {
            return "";
        }
        let s = &self.data[self.str_off + off..self.str_off + self.str_len];
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        std::str::from_utf8(&s[..end]).unwrap_or("")
    }

    /// The header of type `id`.
    fn ty(&self, id: u32) -> Option<Type> {
        let at = *self.types.get(id.checked_sub(1)? as usize)? as usize;
        let info = self.u32_at(at + 4);
        Some(Type {
            kind: (info >> 24) & 0x1f,
            vlen: info & 0xffff,
            kind_flag: info >> 31 == 1,
            extra: at + 12,
        })
    }

    fn u32_at(&self, o: usize) -> u32 {
        self.data
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or(0)
    }

    /// The id of the type of `kind` called `name`.
    /// A scan, not a map: ward looks up a handful of names in ~100k types, once per create.
    pub fn id(&self, kind: u32, name: &str) -> Option<u32> {
        self.types
            .iter()
            .position(|&at| {
                (self.u32_at(at as usize + 4) >> 24) & 0x1f == kind
                    && self.name_is(self.u32_at(at as usize), name)
            })
            .map(|i| i as u32 + 1)
    }

    /// Whether the string at `off` is `name`, without measuring strings that cannot be.
    fn name_is(&self, off: u32, name: &str) -> bool {
        let (off, name) = (off as usize, name.as_bytes());
        off < self.str_len
            && self.data[self.str_off + off..self.str_off + self.str_len]
                .get(..=name.len())
                .is_some_and(|s| &s[..name.len()] == name && s[name.len()] == 0)
    }

    /// The byte offset of `member` in the struct `id` (bitfields excluded).
    pub fn member_offset(&self, id: u32, member: &str) -> Option<u32> {
        let t = self.ty(id)?;
        if t.kind != KIND_STRUCT {
            return None;
        }
        (0..t.vlen as usize).find_map(|i| {
            let m = t.extra + 12 * i;
            if self.str(self.u32_at(m)) != member {
                return None;
            }
            let mut bits = self.u32_at(m + 8);
            if t.kind_flag {
                bits &= 0x00ff_ffff;
            }
            bits.is_multiple_of(8).then_some(bits / 8)
        })
    }

    /// The value of `name` in the enum `enum_name`.
    pub fn enum_value(&self, enum_name: &str, name: &str) -> Option<i64> {
        let id = self.id(KIND_ENUM, enum_name)?;
        let t = self.ty(id)?;
        (0..t.vlen as usize).find_map(|i| {
            let e = t.extra + 8 * i;
            (self.str(self.u32_at(e)) == name).then(|| self.u32_at(e + 4) as i32 as i64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_running_kernels_types() {
        // The unix socket attach types (and the kfuncs) exist from Linux 6.7, BTF when the
        // kernel is built with it: elsewhere there is nothing to read.
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut v = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|x| x.parse().unwrap_or(0));
        let version: (u32, u32) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
        if version < (6, 7) || !std::path::Path::new(VMLINUX).exists() {
            use std::io::Write;
            let reason = format!("skipped: needs Linux 6.7+ with {VMLINUX}; this is {release}");
            let _ = writeln!(std::io::stderr(), "{}", reason.trim());
            return;
        }
        let btf = Btf::vmlinux().expect("this kernel has BTF");
        // From 6.16 the file is mapped, not read 4 KiB at a time (`ward features` probes it).
        if version >= (6, 16) {
            assert!(
                matches!(btf.data, Data::Mapped { .. }),
                "{VMLINUX} was read, not mapped"
            );
        }
        assert!(btf.id(KIND_FUNC, "bpf_cast_to_kern_ctx").is_some());
        let sa = btf.id(KIND_STRUCT, "sockaddr_un").unwrap();
        assert_eq!(btf.member_offset(sa, "sun_path"), Some(2));
        let attach = |n| btf.enum_value("bpf_attach_type", n);
        assert_eq!(attach("BPF_CGROUP_INET4_CONNECT"), Some(10));
        assert_eq!(attach("BPF_CGROUP_UNIX_CONNECT"), Some(49));
        assert_eq!(attach("BPF_CGROUP_UNIX_SENDMSG"), Some(50));
        assert_eq!(btf.id(KIND_FUNC, "no_such_function_here"), None);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(Btf::parse(vec![]).is_err());
        assert!(Btf::parse(vec![0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 99, 0, 0, 0]).is_err());
        let mut short = vec![0x9f, 0xeb, 1, 0, 24, 0, 0, 0];
        short.extend_from_slice(&[0, 0, 0, 0, 12, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0]);
        short.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x1f, 0, 0, 0, 0, 0]);
        assert!(Btf::parse(short).is_err());
    }
}
