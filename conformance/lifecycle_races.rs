//! Commands racing on one container id (issue 21, case 4): two deletes, creates and starts at
//! once, kill during start, delete during exec, pause during exec, update during pause. Every
//! command must return (bounded: a hang fails the test), the outcome must be one a serial order
//! of the same commands could give (runc's rule: one lock per container), `state` must agree
//! with the kernel, and nothing may be left after the final delete.

use crate::harness::{alive, runtime_is_runc, Env};
use crate::lifecycle_faults::{assert_clean, procs_in_cgroup, purge_cgroup};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Rounds of each race (the order of the racers differs from round to round).
const ROUNDS: usize = 10;

static OUTPUTS: AtomicUsize = AtomicUsize::new(0);

/// A runtime command started in the background. Its output goes to files (a pipe would be held
/// open by the init a `create` leaves behind, and never reach EOF).
struct Racer {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

fn spawn(env: &Env, args: &[&str]) -> Racer {
    let n = OUTPUTS.fetch_add(1, Ordering::SeqCst);
    let out = env.dir.join(format!("logs/race-{n}.out"));
    let err = env.dir.join(format!("logs/race-{n}.err"));
    let child = Command::new(&env.binary)
        .arg("--root")
        .arg(&env.root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("spawn the runtime");
    Racer { child, out, err }
}

/// Waits for a racer, at most `secs`: (exit code, stdout, stderr). A racer still running then
/// is killed and fails the test (a deadlock or a wait on something that will never come).
fn finish(mut r: Racer, secs: u64, what: &str) -> (i32, String, String) {
    let t0 = Instant::now();
    let status = loop {
        if let Ok(Some(status)) = r.child.try_wait() {
            break status;
        }
        if t0.elapsed() > Duration::from_secs(secs) {
            let _ = r.child.kill();
            let _ = r.child.wait();
            panic!(
                "{what} still running after {secs} s: {}",
                crate::harness::read(&r.err)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    (
        crate::harness::exit_code(status),
        crate::harness::read(&r.out),
        crate::harness::read(&r.err),
    )
}

/// Starts `n` copies of `args` at once; their results in start order.
fn at_once(env: &Env, n: usize, args: &[&str], what: &str) -> Vec<(i32, String, String)> {
    let children: Vec<Racer> = (0..n).map(|_| spawn(env, args)).collect();
    children.into_iter().map(|c| finish(c, 30, what)).collect()
}

/// A sleeping container's Env with its config written (racers run `create` themselves).
fn new_env() -> (Env, String, String) {
    let (env, id, cg) = crate::lifecycle_faults::sleeping_env();
    env.write_config();
    (env, id, cg)
}

fn create_start(env: &Env, id: &str) -> i64 {
    env.create(id).ok();
    env.start(id).ok();
    env.state(id)["pid"].as_i64().unwrap()
}

/// Four `delete --force` at once of a running container: all succeed (a forced delete of what
/// is already gone is not an error, as runc's), nothing is left. Four plain deletes of a stopped
/// one: exactly one succeeds, the others say it does not exist.
#[test]
fn concurrent_deletes_remove_once_and_all_return() {
    let (env, id, cg) = new_env();
    for round in 0..ROUNDS {
        let when = format!("round {round}");
        create_start(&env, &id);
        let res = at_once(&env, 4, &["delete", "--force", &id], "delete --force");
        for (code, _, err) in &res {
            assert_eq!(*code, 0, "{when}: a racing delete --force: {err}");
        }
        assert_clean(&env, &id, &cg, &when);

        let pid = create_start(&env, &id);
        env.kill(&id, "KILL").ok();
        crate::harness::wait_for("init to die", || !alive(pid));
        let res = at_once(&env, 4, &["delete", &id], "delete");
        let ok = res.iter().filter(|r| r.0 == 0).count();
        if ok > 1 && runtime_is_runc() {
            eprintln!("skipped: runc 1.1.5 lets {ok} racing deletes of one container succeed");
            purge_cgroup(&cg);
            return;
        }
        assert_eq!(ok, 1, "{when}: plain deletes that succeeded: {res:?}");
        for (code, _, err) in res.iter().filter(|r| r.0 != 0) {
            assert!(
                err.contains("does not exist") || err.contains("not exist"),
                "{when}: a losing delete (exit {code}) said: {err}"
            );
        }
        assert_clean(&env, &id, &cg, &when);
    }
}

/// Four creates of one id at once: exactly one wins; the losers say the id exists and remove
/// nothing of the winner's (its cgroup, state and init stay; it starts and runs).
#[test]
fn concurrent_creates_of_one_id_leave_the_winner_whole() {
    let (env, id, cg) = new_env();
    let b = env.bundle.to_str().unwrap().to_string();
    for round in 0..ROUNDS {
        let when = format!("round {round}");
        let res = at_once(&env, 4, &["create", "--bundle", &b, &id], "create");
        let ok = res.iter().filter(|r| r.0 == 0).count();
        if ok > 1 && runtime_is_runc() {
            eprintln!("skipped: runc 1.1.5 lets {ok} racing creates of one id succeed");
            env.rt(&["delete", "--force", &id]);
            purge_cgroup(&cg);
            return;
        }
        assert_eq!(ok, 1, "{when}: creates that succeeded: {res:?}");
        for (code, _, err) in res.iter().filter(|r| r.0 != 0) {
            if runtime_is_runc() && !err.contains("exists") {
                eprintln!("skipped: a losing runc 1.1.5 create removed the winner's cgroup: {err}");
                env.rt(&["delete", "--force", &id]);
                purge_cgroup(&cg);
                return;
            }
            assert!(
                err.contains("exists"),
                "{when}: a losing create (exit {code}) said: {err}"
            );
        }
        let st = env.rt(&["state", &id]);
        if st.code != 0 && runtime_is_runc() {
            eprintln!("skipped: a losing runc 1.1.5 create removed the winner's state: {st:?}");
            purge_cgroup(&cg);
            return;
        }
        assert_eq!(env.state(&id)["status"], "created", "{when}");
        env.start(&id).ok();
        let (code, out, err) = finish(spawn(&env, &["exec", &id, "echo", "hi"]), 10, "exec");
        assert!(code == 0 && out.trim() == "hi", "{when}: {code} {err}");
        env.rt(&["delete", "--force", &id]).ok();
        assert_clean(&env, &id, &cg, &when);
    }
}

/// Four starts of one created container at once: exactly one starts it, the others refuse
/// (it is no longer created), and it runs once.
#[test]
fn concurrent_starts_start_once() {
    if runtime_is_runc() {
        eprintln!("skipped: racing runc 1.1.5 starts of one container hang (a loser waits on the fifo forever)");
        return;
    }
    let (env, id, cg) = new_env();
    for round in 0..ROUNDS {
        let when = format!("round {round}");
        env.create(&id).ok();
        let res = at_once(&env, 4, &["start", &id], "start");
        let ok = res.iter().filter(|r| r.0 == 0).count();
        assert_eq!(ok, 1, "{when}: starts that succeeded: {res:?}");
        assert_eq!(env.state(&id)["status"], "running", "{when}");
        env.rt(&["delete", "--force", &id]).ok();
        assert_clean(&env, &id, &cg, &when);
    }
}

/// `kill KILL` racing `start`: both return; the container ends up stopped (the kill came
/// before or after the start, never lost), and delete removes it.
#[test]
fn kill_racing_start_stops_the_container() {
    let (env, id, cg) = new_env();
    for round in 0..ROUNDS {
        let when = format!("round {round}");
        env.create(&id).ok();
        let pid = env.state(&id)["pid"].as_i64().unwrap();
        let gap = Duration::from_micros(500 * round as u64);
        let (cs, ck) = if round % 2 == 0 {
            let s = spawn(&env, &["start", &id]);
            std::thread::sleep(gap);
            (s, spawn(&env, &["kill", &id, "KILL"]))
        } else {
            let k = spawn(&env, &["kill", &id, "KILL"]);
            std::thread::sleep(gap);
            (spawn(&env, &["start", &id]), k)
        };
        let start = finish(cs, 30, "start");
        let kill = finish(ck, 30, "kill");
        assert_eq!(kill.0, 0, "{when}: kill: {}", kill.2);
        if start.0 != 0 && runtime_is_runc() && start.2.contains("already running") {
            eprintln!(
                "skipped: runc 1.1.5's start of a killed container says: {}",
                start.2
            );
            env.rt(&["delete", "--force", &id]);
            purge_cgroup(&cg);
            return;
        }
        if start.0 != 0 {
            assert!(
                start.2.contains("exited")
                    || start.2.contains("stopped")
                    || start.2.contains("dead"),
                "{when}: start failed without saying the container had stopped: {}",
                start.2
            );
        }
        crate::harness::wait_for("init to die", || !alive(pid));
        assert_eq!(env.state(&id)["status"], "stopped", "{when}");
        env.delete(&id).ok();
        assert_clean(&env, &id, &cg, &when);
    }
}

/// `delete --force` while an exec'd process runs (and while an exec is still joining): the
/// delete returns 0, the exec returns (killed, not hung), and nothing is left, in the cgroup or
/// out of it.
#[test]
fn delete_during_exec_ends_both() {
    let (env, id, cg) = new_env();
    for round in 0..ROUNDS {
        let when = format!("round {round}");
        create_start(&env, &id);
        let exec = spawn(&env, &["exec", &id, "sleep", "300"]);
        if round == 0 {
            // The settled case: the exec'd sleep is running.
            crate::harness::wait_for("the exec'd sleep", || procs_in_cgroup(&cg).len() >= 2);
        } else {
            std::thread::sleep(Duration::from_micros(700 * round as u64));
        }
        let del = finish(
            spawn(&env, &["delete", "--force", &id]),
            30,
            "delete --force",
        );
        assert_eq!(del.0, 0, "{when}: delete --force: {}", del.2);
        let ex = finish(exec, 30, "exec");
        if round == 0 {
            assert_ne!(ex.0, 0, "{when}: the exec outlived its container");
        }
        assert_clean(&env, &id, &cg, &when);
    }
}

/// `pause` while an exec'd process runs: it freezes with the container and finishes after
/// `resume`. An exec racing the pause either is refused or finishes after the resume.
#[test]
fn pause_during_exec_freezes_it_and_resume_lets_it_finish() {
    let (env, id, cg) = new_env();
    create_start(&env, &id);
    for round in 0..ROUNDS {
        let when = format!("round {round}");
        let exec = spawn(&env, &["exec", &id, "sh", "-c", "sleep 0.3; echo done"]);
        std::thread::sleep(Duration::from_micros(1000 * round as u64));
        let pause = finish(spawn(&env, &["pause", &id]), 30, "pause");
        assert_eq!(pause.0, 0, "{when}: pause: {}", pause.2);
        assert_eq!(env.state(&id)["status"], "paused", "{when}");
        std::thread::sleep(Duration::from_millis(500));
        let resume = finish(spawn(&env, &["resume", &id]), 30, "resume");
        assert_eq!(resume.0, 0, "{when}: resume: {}", resume.2);
        let (code, out, err) = finish(exec, 30, "exec after the resume");
        assert!(
            (code == 0 && out.trim() == "done") || (code != 0 && err.contains("paused")),
            "{when}: exec raced with pause: exit {code} {out:?} {err}"
        );
        assert_eq!(env.state(&id)["status"], "running", "{when}");
    }
    env.rt(&["delete", "--force", &id]).ok();
    assert_clean(&env, &id, &cg, "pause during exec");
}

/// `update` of a paused container applies (as runc's) and leaves it paused; resume runs it.
#[test]
fn update_during_pause_applies_and_keeps_it_paused() {
    let (env, id, cg) = new_env();
    create_start(&env, &id);
    env.rt(&["pause", &id]).ok();
    for (round, mb) in [300u64, 200, 400].iter().enumerate() {
        let when = format!("round {round}");
        let up = finish(
            spawn(&env, &["update", "--memory", &format!("{mb}M"), &id]),
            30,
            "update",
        );
        assert_eq!(up.0, 0, "{when}: update of a paused container: {}", up.2);
        assert_eq!(env.state(&id)["status"], "paused", "{when}");
        assert_eq!(
            crate::lifecycle_faults::memory_limit(&cg),
            (mb << 20).to_string()
        );
    }
    env.rt(&["resume", &id]).ok();
    let (code, out, _) = finish(spawn(&env, &["exec", &id, "echo", "hi"]), 10, "exec");
    assert!(code == 0 && out.trim() == "hi");
    env.rt(&["delete", "--force", &id]).ok();
    assert_clean(&env, &id, &cg, "update during pause");
}
