//! The search under the swap: one Aho-Corasick automaton over every placeholder and one over
//! every secret, built once per vault, and `BodyFilter`, the streaming search-and-replace over
//! a body that holds back only what may be the start of a needle.
//!
//! Semantics: leftmost-longest, non-overlapping (as one search over the whole body would find
//! them, whatever the chunking). A chunk's tail is held back only while it is a proper prefix of
//! some needle, so a chunk that does not end in the start of a needle goes out whole.
//!
//! What cannot be wiped: the secrets automaton keeps the secrets' bytes in its tables (the
//! crate has no zeroizing drop), for as long as the vault lives (the proxy's lifetime). Held
//! tails are wiped; what has been handed out as `Bytes` belongs to the caller.

use std::fmt;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, MatchKind};
use bytes::{Bytes, BytesMut};
use zeroize::{Zeroize, Zeroizing};

use super::violation::{Place, Violation};
use super::Vault;

/// Which bytes of a binding a search looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Placeholder,
    Secret,
}

/// Every needle of one kind.
pub(super) struct Needles {
    kind: Kind,
    /// `None` when there is no needle, or when the automaton could not be built (`broken`).
    ac: Option<AhoCorasick>,
    /// Pattern id -> binding index (empty needles are left out).
    binding: Vec<usize>,
    longest: usize,
    /// Bytes some needle starts with: most positions are ruled out by one lookup.
    first: [bool; 256],
    broken: bool,
}

impl Needles {
    fn build(vault: &Vault, kind: Kind) -> Needles {
        let mut binding = Vec::new();
        let mut first = [false; 256];
        let mut longest = 0;
        for i in 0..vault.bindings.len() {
            let n = needle(vault, kind, i);
            if let Some(&c) = n.first() {
                binding.push(i);
                first[usize::from(c)] = true;
                longest = longest.max(n.len());
            }
        }
        if binding.is_empty() {
            return Needles {
                kind,
                ac: None,
                binding,
                longest: 0,
                first,
                broken: false,
            };
        }
        let built = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(binding.iter().map(|&i| needle(vault, kind, i)));
        let (ac, broken) = match built {
            Ok(ac) => (Some(ac), false),
            Err(e) => {
                tracing::error!("credentials: the {kind:?} search could not be built: {e}");
                (None, true)
            }
        };
        Needles {
            kind,
            ac,
            binding,
            longest,
            first,
            broken,
        }
    }

    /// Every match in `hay`: (start, end, binding index), leftmost-longest, non-overlapping;
    /// `Err` when the search could not be built (the caller fails closed).
    pub(super) fn matches<'h>(
        &'h self,
        hay: &'h [u8],
    ) -> Result<impl Iterator<Item = (usize, usize, usize)> + 'h, ()> {
        if self.broken {
            return Err(());
        }
        Ok(self.ac.iter().flat_map(move |ac| {
            ac.find_iter(hay).map(|m| {
                let b = self.binding.get(m.pattern().as_usize()).copied();
                (m.start(), m.end(), b.unwrap_or(usize::MAX))
            })
        }))
    }

    /// The first position `>= from` at which the rest of `buf` is a proper prefix of some
    /// needle (a needle that may complete in the next chunk), else `buf.len()`.
    fn partial_start(&self, vault: &Vault, buf: &[u8], from: usize) -> usize {
        let from = from.max(buf.len().saturating_sub(self.longest.saturating_sub(1)));
        (from..buf.len())
            .find(|&p| {
                self.first[usize::from(buf[p])]
                    && self.binding.iter().any(|&i| {
                        let n = needle(vault, self.kind, i);
                        n.len() > buf.len() - p && n.starts_with(&buf[p..])
                    })
            })
            .unwrap_or(buf.len())
    }
}

fn needle(vault: &Vault, kind: Kind, i: usize) -> &[u8] {
    match (kind, vault.bindings.get(i)) {
        (Kind::Placeholder, Some(b)) => b.placeholder.as_bytes(),
        (Kind::Secret, Some(b)) => b.secret.expose(),
        (_, None) => &[],
    }
}

/// Both automatons of a vault.
pub(super) struct Index {
    pub(super) placeholders: Needles,
    pub(super) secrets: Needles,
    /// How many bindings the vault had when this was built (a vault changed since is stale).
    pub(super) bindings: usize,
}

impl Index {
    pub(super) fn build(vault: &Vault) -> Index {
        Index {
            placeholders: Needles::build(vault, Kind::Placeholder),
            secrets: Needles::build(vault, Kind::Secret),
            bindings: vault.bindings.len(),
        }
    }

    /// An index that finds nothing and fails every search: the swap then refuses what it
    /// cannot judge rather than let a placeholder or a secret through.
    pub(super) fn broken() -> &'static Index {
        static BROKEN: OnceLock<Index> = OnceLock::new();
        BROKEN.get_or_init(|| {
            let none = |kind| Needles {
                kind,
                ac: None,
                binding: Vec::new(),
                longest: 0,
                first: [false; 256],
                broken: true,
            };
            Index {
                placeholders: none(Kind::Placeholder),
                secrets: none(Kind::Secret),
                bindings: 0,
            }
        })
    }
}

impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Index({} needles)", self.placeholders.binding.len())
    }
}

/// What a filter does with a match.
pub(super) enum Mode {
    /// Placeholders: binding `i` is swapped for its secret when `refusals[i]` is `None`, else
    /// refused with that reason at `place`.
    Request {
        refusals: Vec<Option<String>>,
        place: Place,
    },
    /// Secrets: each replaced by its placeholder.
    Response,
}

/// A streaming search-and-replace over a body: between chunks it holds back only the tail of
/// what it has seen that is a prefix of some needle (at most the longest needle minus one
/// byte), so a needle split across chunks is still found and nothing else is delayed: a chunk
/// that does not end in the start of a needle goes out whole (server-sent events keep flowing).
pub struct BodyFilter<'v> {
    vault: &'v Vault,
    state: FilterState,
}

impl<'v> BodyFilter<'v> {
    pub(super) fn new(vault: &'v Vault, mode: Mode) -> BodyFilter<'v> {
        BodyFilter {
            vault,
            state: FilterState {
                mode,
                held: Zeroizing::new(Vec::new()),
                refused: None,
            },
        }
    }

    /// The bytes of `chunk` that can be sent now.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Bytes, Violation> {
        self.state.push(self.vault, chunk)
    }

    /// What was held back, at the end of the body.
    pub fn finish(&mut self) -> Result<Bytes, Violation> {
        self.state.finish(self.vault)
    }

    /// Whether nothing is held back.
    pub fn is_idle(&self) -> bool {
        self.state.is_idle()
    }

    /// The filter without its borrow of the vault, for a body that must be `'static` (a
    /// hyper body holding the `Arc` the vault lives in): pass the same vault to each call.
    pub fn detach(self) -> FilterState {
        self.state
    }
}

/// A `BodyFilter`'s state, detached from the vault (`BodyFilter::detach`).
pub struct FilterState {
    mode: Mode,
    held: Zeroizing<Vec<u8>>,
    /// Set after a refusal: nothing more passes.
    refused: Option<Violation>,
}

impl FilterState {
    /// `BodyFilter::push`; `vault` must be the one the filter was made from.
    pub fn push(&mut self, vault: &Vault, chunk: &[u8]) -> Result<Bytes, Violation> {
        if self.held.is_empty() {
            return self.run(vault, chunk, false);
        }
        // Sized once: a reallocation would free a copy of the held bytes unwiped.
        let mut buf = Zeroizing::new(Vec::with_capacity(self.held.len() + chunk.len()));
        buf.extend_from_slice(&self.held);
        buf.extend_from_slice(chunk);
        self.held.zeroize();
        self.run(vault, &buf, false)
    }

    /// `BodyFilter::finish`.
    pub fn finish(&mut self, vault: &Vault) -> Result<Bytes, Violation> {
        let buf = Zeroizing::new(std::mem::take(&mut *self.held));
        self.run(vault, &buf, true)
    }

    /// Whether nothing is held back.
    pub fn is_idle(&self) -> bool {
        self.held.is_empty()
    }

    fn run(&mut self, vault: &Vault, buf: &[u8], last: bool) -> Result<Bytes, Violation> {
        if let Some(v) = &self.refused {
            return Err(v.clone());
        }
        let needles = match self.mode {
            Mode::Request { .. } => &vault.index().placeholders,
            Mode::Response => &vault.index().secrets,
        };
        if needles.ac.is_none() && !needles.broken {
            return Ok(Bytes::copy_from_slice(buf));
        }
        let cut = if last {
            buf.len()
        } else {
            needles.partial_start(vault, buf, 0)
        };
        let Ok(found) = needles.matches(buf) else {
            return Err(self.refuse(broken()));
        };
        let mut out = BytesMut::with_capacity(buf.len());
        let mut done = 0;
        for (start, end, i) in found {
            if start >= cut {
                break;
            }
            let with = match self.replacement(vault, i) {
                Ok(w) => w,
                Err(v) => return Err(self.refuse(v)),
            };
            out.extend_from_slice(&buf[done..start]);
            out.extend_from_slice(with);
            done = end;
        }
        let hold = if last {
            buf.len()
        } else {
            needles.partial_start(vault, buf, done)
        };
        out.extend_from_slice(&buf[done..hold]);
        self.held.extend_from_slice(&buf[hold..]);
        Ok(out.freeze())
    }

    fn replacement<'v>(&self, vault: &'v Vault, i: usize) -> Result<&'v [u8], Violation> {
        let Some(b) = vault.bindings.get(i) else {
            return Err(broken());
        };
        match &self.mode {
            Mode::Response => Ok(b.placeholder.as_bytes()),
            Mode::Request { refusals, place } => match refusals.get(i) {
                Some(None) => Ok(b.secret.expose()),
                Some(Some(why)) => Err(Violation {
                    binding: b.name.clone(),
                    place: place.clone(),
                    why: why.clone(),
                }),
                None => Err(broken()),
            },
        }
    }

    fn refuse(&mut self, v: Violation) -> Violation {
        self.held.zeroize();
        self.refused = Some(v.clone());
        v
    }
}

/// Fail closed when the search is not there.
pub(super) fn broken() -> Violation {
    Violation {
        binding: "credentials".into(),
        place: Place::Body,
        why: "the proxy could not build its credential search".into(),
    }
}
