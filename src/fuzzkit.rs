//! Generated-case loops for every parser and validator that reads untrusted input (issue 21):
//! the seeded generator, the mutations, and the driver each fuzz target runs on. Test-only, and
//! at the bottom of the layers: it imports nothing of ward's, so any module's tests may use it.
//!
//! A seeded xorshift rather than proptest or cargo-fuzz: no dependency, stable Rust, and
//! mutations of real inputs (configs, ClientHellos, DNS queries) reach deeper than generic
//! strategies would. Every case has its own generator, derived from the seed, the target's name
//! and the case's number, so a failure is replayed alone.
//!
//! - `WARD_FUZZ_CASES`: cases per target (default `DEFAULT_CASES`, what `cargo test` and CI
//!   run; `make fuzz` runs 1,000,000 in a release build).
//! - `WARD_FUZZ_SEED`: another seed (decimal or 0x hex); the default is fixed.
//! - `WARD_FUZZ_CASE`: only that case (as a failure names it).
//!
//! The driver (`run`) catches a panicking case, names it and carries on (up to `MAX_REPORTED`
//! failures), times every call under test (`Case::call`; the slowest must stay under
//! `PER_CALL`), aborts the process naming the case when one does not return within `HANG` (a
//! loop cannot be unwound), and prints one line per target: `fuzz NAME: N cases, S s, F
//! failures, slowest call D, outcomes ...` (what `make fuzz` collects).

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Cases per target in `cargo test` (debug) and CI: the whole set within tens of seconds.
pub const DEFAULT_CASES: usize = 10_000;
const DEFAULT_SEED: u64 = 0x5eed_0f3a_7d00;
/// One call under test on inputs of at most 64 KiB; generous for a debug build on a shared
/// machine, far below what a quadratic walk or a loop would take.
pub const PER_CALL: Duration = Duration::from_millis(500);
/// A case still running after this is a hang: the process is aborted, naming it.
const HANG: Duration = Duration::from_secs(30);
/// Failures reported one by one before the target gives up.
const MAX_REPORTED: usize = 5;

fn env_number(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim().replace('_', "");
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    match parsed {
        Ok(n) => Some(n),
        Err(e) => panic!("{name}={v:?}: not a number: {e}"),
    }
}

/// Cases per target: `WARD_FUZZ_CASES`, else `DEFAULT_CASES`.
pub fn cases() -> usize {
    env_number("WARD_FUZZ_CASES").map_or(DEFAULT_CASES, |n| n as usize)
}

/// The run's seed: `WARD_FUZZ_SEED`, else a fixed one.
pub fn seed() -> u64 {
    env_number("WARD_FUZZ_SEED").unwrap_or(DEFAULT_SEED)
}

/// splitmix64: spreads a counter into well-mixed seeds.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a of a target's name: each target draws its own sequence from one seed.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// xorshift64*: fast, and the same sequence on every machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // xorshift's state must not be zero.
        Rng(splitmix(seed) | 1)
    }

    /// The generator of case `case` of `target` under `seed`.
    pub fn for_case(seed: u64, target: &str, case: usize) -> Rng {
        Rng::new(seed ^ name_hash(target) ^ splitmix(case as u64))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// True once in `n` draws.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// `n` random bytes for `n` drawn below `max`.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        (0..n).map(|_| self.next() as u8).collect()
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Up to `max` pieces drawn from `pieces`, joined: strings that reach a parser's branches
    /// (separators, escapes, edge numbers) far more often than random bytes do.
    pub fn text(&mut self, pieces: &[&str], max: usize) -> String {
        let n = self.below(max + 1);
        (0..n).map(|_| *self.pick(pieces)).collect()
    }
}

/// One to four random edits: bit flips, byte sets, 16-bit length fields set to edge values,
/// inserts, deletes, truncation, duplication.
pub fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(7) {
            0 if at < b.len() => b[at] ^= 1 << rng.below(8),
            1 if at < b.len() => b[at] = rng.next() as u8,
            2 if at + 1 < b.len() => {
                let v = *rng.pick(&[0u16, 1, 0xff, 0x100, 0x4000, 0x4001, 0xffff]);
                b[at..at + 2].copy_from_slice(&v.to_be_bytes());
            }
            3 => {
                let extra = rng.bytes(16);
                b.splice(at..at, extra);
            }
            4 => {
                let end = (at + rng.below(16)).min(b.len());
                b.drain(at..end);
            }
            5 => b.truncate(at),
            _ => {
                let end = (at + rng.below(64)).min(b.len());
                let copy = b[at..end].to_vec();
                b.splice(at..at, copy);
            }
        }
    }
    b
}

/// Strings every field should survive: empty, traversal, NUL, control and non-ASCII
/// characters, globs, separators.
const EDGE_STRINGS: &[&str] = &[
    "", " ", "../", "..", ".", "/", "//", "/..", "/a/../..", "~", "~/", "*", "**", "/**", "\0",
    "a\0b", "\n", "\u{7f}", "é", "\u{202e}", "%00", "%2e%2e", "-1", "0", "true", "null", "{}", "[",
    "=", ":", "@",
];

/// A value of any type at the edges: numbers around the widths fields are parsed into,
/// strings from `EDGE_STRINGS` or `words`, long strings, empty and nested containers.
pub fn edge_value(rng: &mut Rng, words: &[&str]) -> Value {
    match rng.below(12) {
        0 => Value::Null,
        1 => Value::Bool(rng.one_in(2)),
        2 => {
            let n: i64 = *rng.pick(&[
                0,
                -1,
                1,
                -2,
                255,
                256,
                65_535,
                65_536,
                i64::from(i32::MAX),
                i64::from(i32::MIN),
                i64::from(u32::MAX),
                i64::from(u32::MAX) + 1,
                i64::MAX,
                i64::MIN,
            ]);
            Value::from(n)
        }
        3 => Value::from(*rng.pick(&[u64::MAX, u64::MAX - 1, 1 << 63])),
        4 => Value::from(*rng.pick(&[0.5, -0.0, 1e308, -1e308, 4294967296.5])),
        5 => Value::from(*rng.pick(EDGE_STRINGS)),
        6 | 7 if !words.is_empty() => Value::from(*rng.pick(words)),
        8 => {
            let unit = *rng.pick(&["a", "é", "/a", "../", "\0", "*."]);
            Value::from(unit.repeat(rng.below(5000)))
        }
        9 => Value::Array(Vec::new()),
        10 => Value::Object(serde_json::Map::new()),
        _ => {
            // Deep nesting, below serde_json's recursion limit (128) or above it.
            let mut v = edge_value(rng, words);
            for _ in 0..rng.below(140) {
                v = if rng.one_in(2) {
                    Value::Array(vec![v])
                } else {
                    serde_json::json!({ "x": v })
                };
            }
            v
        }
    }
}

/// One of `words`, or `x` when there are none.
fn word<'a>(rng: &mut Rng, words: &[&'a str]) -> &'a str {
    if words.is_empty() {
        "x"
    } else {
        rng.pick::<&str>(words)
    }
}

/// One structure-aware edit of `v`: a node found by a random descent is replaced by an edge
/// value or a value of another type, edited in place (string, number), removed from its
/// parent, duplicated, or given an unknown sibling key. `words` are strings the target knows
/// (syscall names, domain patterns, access names) to put where they mean something.
pub fn mutate_json(rng: &mut Rng, v: &mut Value, words: &[&str]) {
    // Descend: at each level stop with probability 1/4, else enter a random child.
    let mut node = v;
    loop {
        let children = match &*node {
            Value::Array(a) => a.len(),
            Value::Object(o) => o.len(),
            _ => 0,
        };
        if children == 0 || rng.one_in(4) {
            break;
        }
        let i = rng.below(children);
        // Removing the picked child happens here, from its parent, when drawn.
        if rng.one_in(12) {
            match node {
                Value::Array(a) => {
                    a.remove(i);
                }
                Value::Object(o) => {
                    let k = o.keys().nth(i).cloned().unwrap_or_default();
                    o.remove(&k);
                }
                _ => {}
            }
            return;
        }
        node = match node {
            Value::Array(a) => &mut a[i],
            Value::Object(o) => match o.values_mut().nth(i) {
                Some(c) => c,
                None => return,
            },
            _ => return,
        };
    }
    match rng.below(8) {
        0..=2 => *node = edge_value(rng, words),
        3 => match node {
            Value::String(s) => {
                let b = mutate(rng, s.as_bytes());
                *s = String::from_utf8_lossy(&b).into_owned();
            }
            Value::Number(n) => {
                let x = n.as_i64().unwrap_or(0);
                let d: i64 = *rng.pick(&[1, -1, 1 << 16, 1 << 32, -(1 << 31)]);
                *node = Value::from(x.wrapping_add(d));
            }
            Value::Bool(b) => *b = !*b,
            _ => *node = edge_value(rng, words),
        },
        4 => match node {
            Value::Array(a) if !a.is_empty() => {
                let i = rng.below(a.len());
                let copy = a[i].clone();
                for _ in 0..1 + rng.below(3) {
                    a.insert(i, copy.clone());
                }
            }
            Value::Object(o) => {
                let key = if rng.one_in(2) {
                    format!("x-unknown-{}", rng.below(4))
                } else {
                    word(rng, words).to_string()
                };
                o.insert(key, edge_value(rng, words));
            }
            _ => *node = Value::Array(vec![node.take()]),
        },
        5 => *node = Value::from(word(rng, words)),
        6 => {
            // Another type holding the same thing: "x" -> ["x"], [..] -> {"0": ..}, 1 -> "1".
            *node = match node.take() {
                Value::String(s) => Value::Array(vec![Value::String(s)]),
                Value::Array(a) => Value::Object(
                    a.into_iter()
                        .enumerate()
                        .map(|(i, x)| (i.to_string(), x))
                        .collect(),
                ),
                Value::Number(n) => Value::String(n.to_string()),
                other => Value::String(other.to_string()),
            }
        }
        _ => {
            if let Value::Array(a) = node {
                a.push(edge_value(rng, words));
            } else {
                *node = edge_value(rng, words);
            }
        }
    }
}

/// A random JSON document of at most `depth` levels, its strings from `words` and the edges.
pub fn random_json(rng: &mut Rng, words: &[&str], depth: usize) -> Value {
    if depth == 0 || rng.one_in(3) {
        return edge_value(rng, &words[..words.len().min(64)]);
    }
    let n = rng.below(5);
    if rng.one_in(2) {
        Value::Array((0..n).map(|_| random_json(rng, words, depth - 1)).collect())
    } else {
        Value::Object(
            (0..n)
                .map(|_| {
                    let k = word(rng, words).to_string();
                    (k, random_json(rng, words, depth - 1))
                })
                .collect(),
        )
    }
}

/// A sample mutated the way a config file arrives damaged: a few structure-aware edits, then
/// sometimes byte edits of its text (valid UTF-8 kept: files are read as strings).
pub fn mutated_text(rng: &mut Rng, sample: &Value, words: &[&str]) -> String {
    let mut v = sample.clone();
    for _ in 0..1 + rng.below(3) {
        mutate_json(rng, &mut v, words);
    }
    let text = v.to_string();
    if rng.one_in(4) {
        String::from_utf8_lossy(&mutate(rng, text.as_bytes())).into_owned()
    } else {
        text
    }
}

/// A config file's text as it may arrive: random bytes, random JSON, or one of `samples`
/// damaged as text (byte edits) or as structure (`mutated_text`), mostly the last.
pub fn file_text(rng: &mut Rng, samples: &[Value], words: &[&str]) -> String {
    match rng.below(16) {
        0 => String::from_utf8_lossy(&rng.bytes(300)).into_owned(),
        1 => random_json(rng, words, 5).to_string(),
        2 => {
            let s = rng.pick(samples).to_string();
            String::from_utf8_lossy(&mutate(rng, s.as_bytes())).into_owned()
        }
        _ => {
            let sample = rng.pick(samples);
            mutated_text(rng, sample, words)
        }
    }
}

/// One case: its generator, its number, and the timing of the calls under test.
pub struct Case {
    pub rng: Rng,
    pub index: usize,
    slowest: Duration,
}

impl Case {
    /// Runs one call under test, keeping the slowest time (the property: under `PER_CALL`).
    pub fn call<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.slowest = self.slowest.max(start.elapsed());
        out
    }
}

/// What a target's run saw: how many cases ended in each outcome, the slowest call.
#[derive(Debug, Default)]
pub struct Stats {
    pub cases: usize,
    pub outcomes: BTreeMap<&'static str, usize>,
    pub slowest: Duration,
}

impl Stats {
    pub fn count(&self, outcome: &str) -> usize {
        self.outcomes.get(outcome).copied().unwrap_or(0)
    }

    /// Each outcome reached in at least 1% of the cases (the generator must reach them all, or
    /// the loop proves little); skipped for a replayed case or a run too short to judge.
    pub fn assert_reaches(&self, outcomes: &[&str]) {
        if std::env::var_os("WARD_FUZZ_CASE").is_some() || self.cases < 2000 {
            return;
        }
        for o in outcomes {
            assert!(
                self.count(o) >= self.cases / 100,
                "outcome {o:?} reached in {} of {} cases: {:?}",
                self.count(o),
                self.cases,
                self.outcomes
            );
        }
    }
}

/// Stops the process when a case runs longer than `HANG`: a loop cannot be caught as a panic.
struct Watchdog {
    target: String,
    seed: u64,
    base: Instant,
    case: AtomicUsize,
    /// When the current case started, in nanoseconds since `base`.
    since: AtomicU64,
    done: AtomicBool,
}

impl Watchdog {
    fn start(target: &str, seed: u64) -> Arc<Watchdog> {
        let w = Arc::new(Watchdog {
            target: target.to_string(),
            seed,
            base: Instant::now(),
            case: AtomicUsize::new(0),
            since: AtomicU64::new(0),
            done: AtomicBool::new(false),
        });
        let watch = Arc::clone(&w);
        std::thread::spawn(move || {
            while !watch.done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let now = watch.base.elapsed().as_nanos() as u64;
                let since = watch.since.load(Ordering::Relaxed);
                if now.saturating_sub(since) > HANG.as_nanos() as u64 {
                    eprintln!(
                        "fuzz {}: case {} did not return within {HANG:?}: a hang \
                         (replay: WARD_FUZZ_SEED={:#x} WARD_FUZZ_CASE={})",
                        watch.target,
                        watch.case.load(Ordering::Relaxed),
                        watch.seed,
                        watch.case.load(Ordering::Relaxed)
                    );
                    std::process::abort();
                }
            }
        });
        w
    }

    fn enter(&self, case: usize) {
        self.case.store(case, Ordering::Relaxed);
        let now = self.base.elapsed().as_nanos() as u64;
        self.since.store(now, Ordering::Relaxed);
    }
}

/// Runs `body` on every case of `target` (or the one `WARD_FUZZ_CASE` names); `body` returns
/// the case's outcome (`"ok"`, `"refused"`, ...). Panics after the run when a case failed or
/// a call took longer than `PER_CALL`, naming the seed and cases to replay.
pub fn run(target: &str, mut body: impl FnMut(&mut Case) -> &'static str) -> Stats {
    let seed = seed();
    let only = env_number("WARD_FUZZ_CASE").map(|n| n as usize);
    let range = match only {
        Some(n) => n..n + 1,
        None => 0..cases(),
    };
    let watchdog = Watchdog::start(target, seed);
    let started = Instant::now();
    let mut stats = Stats::default();
    let mut failed: Vec<usize> = Vec::new();
    for index in range {
        watchdog.enter(index);
        let mut case = Case {
            rng: Rng::for_case(seed, target, index),
            index,
            slowest: Duration::ZERO,
        };
        match catch_unwind(AssertUnwindSafe(|| body(&mut case))) {
            Ok(outcome) => *stats.outcomes.entry(outcome).or_default() += 1,
            Err(_) => {
                eprintln!(
                    "fuzz {target}: case {index} failed (replay: WARD_FUZZ_SEED={seed:#x} \
                     WARD_FUZZ_CASE={index})"
                );
                failed.push(index);
            }
        }
        stats.cases += 1;
        stats.slowest = stats.slowest.max(case.slowest);
        if failed.len() >= MAX_REPORTED {
            break;
        }
    }
    watchdog.done.store(true, Ordering::Relaxed);
    let outcomes: Vec<String> = stats
        .outcomes
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    eprintln!(
        "fuzz {target}: {} cases, {:.1} s, {} failures, slowest call {:?}, seed {seed:#x}; {}",
        stats.cases,
        started.elapsed().as_secs_f64(),
        failed.len(),
        stats.slowest,
        outcomes.join(", ")
    );
    assert!(
        failed.is_empty(),
        "fuzz {target}: cases {failed:?} failed (seed {seed:#x}; replay one with \
         WARD_FUZZ_SEED={seed:#x} WARD_FUZZ_CASE=N)"
    );
    assert!(
        stats.slowest < PER_CALL,
        "fuzz {target}: the slowest call took {:?} (bound {PER_CALL:?})",
        stats.slowest
    );
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_replay_alone_and_targets_differ() {
        let a: Vec<u64> = (0..4).map(|_| Rng::for_case(7, "t", 3).next()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]), "one case, one sequence");
        assert_ne!(
            Rng::for_case(7, "t", 3).next(),
            Rng::for_case(7, "u", 3).next()
        );
        assert_ne!(
            Rng::for_case(7, "t", 3).next(),
            Rng::for_case(7, "t", 4).next()
        );
    }

    #[test]
    fn json_mutations_stay_serialisable_and_change_things() {
        let sample = serde_json::json!({"a": [1, "x", {"b": null}], "c": {"d": true}});
        let mut changed = 0;
        for i in 0..2000 {
            let mut rng = Rng::new(i);
            let text = mutated_text(&mut rng, &sample, &["a", "word"]);
            let same = serde_json::from_str::<Value>(&text).is_ok_and(|v| v == sample);
            changed += usize::from(!same);
            let _ = random_json(&mut rng, &["k"], 4).to_string();
        }
        assert!(changed > 1500, "{changed} of 2000 changed");
    }
}
