//! Secrets between create's reading them and the proxy's fork: in pages of their own that a
//! fork does not copy (MADV_WIPEONFORK: the child sees zeros) and a core dump leaves out
//! (MADV_DONTDUMP). `ward create` forks the container's init after the credentials are read;
//! init waits for `ward start` with create's memory image, so the secrets must not be in it.
//! `Pending::open` (after init is forked) turns them into the proxy's `Vault`.

use crate::error::{Error, Result};
use crate::policy::credentials::sigv4::AwsPair;
use crate::policy::credentials::{Binding, Secret, Vault};
use crate::spec::credentials::AwsPairNames;
use crate::spec::domains::http::PathPattern;
use crate::spec::domains::Pattern;

/// One secret's bytes in a private mapping wiped in every child.
pub struct Sealed {
    ptr: *mut u8,
    len: usize,
    map: usize,
}

// SAFETY: the mapping is owned by this value alone (no aliasing pointer escapes `expose`'s
// borrow); moving it to another thread moves that ownership.
unsafe impl Send for Sealed {}

impl Sealed {
    pub fn new(bytes: &[u8]) -> Result<Sealed> {
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let map = bytes.len().max(1).div_ceil(page) * page;
        // SAFETY: a fresh anonymous private mapping; no existing memory is touched.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::Init(format!(
                "credentials: mmap: {}",
                std::io::Error::last_os_error()
            )));
        }
        let sealed = Sealed {
            ptr: ptr.cast(),
            len: bytes.len(),
            map,
        };
        for (advice, what) in [
            (libc::MADV_WIPEONFORK, "MADV_WIPEONFORK (Linux 4.14)"),
            (libc::MADV_DONTDUMP, "MADV_DONTDUMP"),
        ] {
            // SAFETY: the range is exactly the mapping made above.
            if unsafe { libc::madvise(ptr, map, advice) } != 0 {
                return Err(Error::Init(format!(
                    "credentials: madvise {what}: {}",
                    std::io::Error::last_os_error()
                )));
            }
        }
        // SAFETY: the mapping is writable and at least `bytes.len()` long; the regions are
        // distinct (one is fresh).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), sealed.ptr, bytes.len()) };
        Ok(sealed)
    }

    pub fn expose(&self) -> &[u8] {
        // SAFETY: `ptr` points to `map >= len` readable bytes owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealed({} bytes)", self.len)
    }
}

impl Drop for Sealed {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and writable; it is unmapped right after.
        unsafe {
            for i in 0..self.len {
                std::ptr::write_volatile(self.ptr.add(i), 0);
            }
            libc::munmap(self.ptr.cast(), self.map);
        }
    }
}

/// How much dead stack `scrub_stack` overwrites (the main thread's stack is 8 MiB).
const SCRUB: usize = 256 * 1024;

/// Overwrites the stack below the caller's frame, where reading and matching the credentials
/// left copies (the regex search, buffered reads): init is forked with this stack. Call it
/// from the frame that called `prepare`, once it has returned.
#[inline(never)]
pub fn scrub_stack() {
    let mut dead = [0u8; SCRUB];
    zeroize::Zeroize::zeroize(&mut dead[..]);
    std::hint::black_box(&dead);
}

/// A binding whose secret is still sealed.
#[derive(Debug)]
pub struct PendingBinding {
    pub name: String,
    pub placeholder: String,
    pub secret: Sealed,
    /// The variable this binding masks whole, if it is one.
    pub env: Option<String>,
    pub hosts: Vec<Pattern>,
    pub methods: Option<Vec<String>>,
    pub paths: Option<Vec<PathPattern>>,
}

/// The vault before init is forked.
#[derive(Debug, Default)]
pub struct Pending {
    pub bindings: Vec<PendingBinding>,
    pub allow_plaintext_inject: bool,
    /// `awsPairs` (by envVars names); the conventional trio pairs without it.
    pub aws_pairs: Vec<AwsPairNames>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// The proxy's vault (call once init exists: from here the secrets are ordinary memory,
    /// which the proxy's fork copies and nothing else does).
    pub fn open(self) -> Vault {
        let find = |name: &str| {
            self.bindings
                .iter()
                .position(|b| b.env.as_deref() == Some(name))
        };
        let pair = |p: &AwsPairNames| {
            Some(AwsPair {
                key_id: find(&p.key_id)?,
                secret_key: find(&p.secret_key)?,
                session_token: p.session_token.as_deref().and_then(find),
            })
        };
        let mut aws: Vec<AwsPair> = self.aws_pairs.iter().filter_map(pair).collect();
        // AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN), masked whole, pair
        // by themselves unless an explicit pair names one of them.
        let trio = AwsPairNames {
            key_id: "AWS_ACCESS_KEY_ID".into(),
            secret_key: "AWS_SECRET_ACCESS_KEY".into(),
            session_token: Some("AWS_SESSION_TOKEN".into()),
        };
        let named = |n: &str| {
            self.aws_pairs.iter().any(|p| {
                p.key_id == n || p.secret_key == n || p.session_token.as_deref() == Some(n)
            })
        };
        if !named(&trio.key_id) && !named(&trio.secret_key) {
            aws.extend(pair(&trio));
        }
        let mut vault = Vault::new(
            self.bindings
                .into_iter()
                .map(|b| Binding {
                    name: b.name,
                    placeholder: b.placeholder,
                    secret: Secret::new(b.secret.expose().to_vec()),
                    hosts: b.hosts,
                    methods: b.methods,
                    paths: b.paths,
                })
                .collect(),
            self.allow_plaintext_inject,
        );
        vault.aws = aws;
        vault
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_sees_zeros() {
        let s = Sealed::new(b"sealed-secret").unwrap();
        assert_eq!(s.expose(), b"sealed-secret");
        let mut fds = [0i32; 2];
        // SAFETY: pipe fills the two ints.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let [r, w] = fds;
        // SAFETY: the child only reads memory, writes to a pipe and _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let seen = s.expose().iter().any(|&b| b != 0);
            let byte = [u8::from(seen)];
            // SAFETY: async-signal-safe calls on valid buffers.
            unsafe {
                libc::write(w, byte.as_ptr().cast(), 1);
                libc::_exit(0);
            }
        }
        let mut byte = [9u8];
        // SAFETY: reads one byte into a valid buffer; then reaps the child.
        unsafe {
            libc::close(w);
            assert_eq!(libc::read(r, byte.as_mut_ptr().cast(), 1), 1);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
            libc::close(r);
        }
        assert_eq!(byte[0], 0, "the child saw the secret");
        assert_eq!(s.expose(), b"sealed-secret", "the parent keeps it");
        assert_eq!(format!("{s:?}"), "Sealed(13 bytes)");
    }
}
