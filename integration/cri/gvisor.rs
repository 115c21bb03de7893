//! A gVisor pod through the RuntimeClass handler `ward`: the pod annotation
//! `org.ward.isolation: gvisor` (passed on by `pod_annotations = ["org.ward.*"]`) must put the
//! pause container and every app container of the pod into one runsc sandbox, with containerd's
//! ordinary runc shim seeing each app container's exit and exit code.
//!
//! Skipped (with the reason) when runsc is not installed, unless WARD_CRI_REQUIRE is set.

use super::*;

/// The longest any one CRI call may take here: a call that hangs (e.g. StartContainer waiting on
/// a pipe the sandbox holds) is a failure, not a stuck test.
const RPC_TIMEOUT: Duration = Duration::from_secs(60);

async fn within<T>(
    what: &str,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> R<T> {
    match tokio::time::timeout(RPC_TIMEOUT, call).await {
        Err(_) => Err(format!("{what}: no answer in {RPC_TIMEOUT:?}")),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Ok(Ok(r)) => Ok(r.into_inner()),
    }
}

/// What the gVisor pod showed.
#[derive(Debug, Default)]
struct GvisorOutcome {
    sandbox_ready: bool,
    sleeper_running: bool,
    echo: (String, i32),
    /// `uname -r` and `dmesg` in the app container: gVisor's kernel, not the host's.
    uname_r: String,
    dmesg: String,
    /// `runsc --root <ward root>/k8s.io/@runsc state` of the pod and of the app container:
    /// (status, pid); the pid is the sandbox process, the same for both when they share it.
    runsc_pod: (String, i64),
    runsc_sleeper: (String, i64),
    /// runsc-sandbox processes under ward's root while the pod ran with two app containers.
    sandbox_processes: usize,
    /// `ward state` of the app container: status and pid (what the shim was given).
    ward_state: (String, i64),
    /// The container whose process ends by itself (`exit 7`): state and exit code seen by CRI.
    quitter: (i32, i32),
    /// Its log as CRI wrote it: the container's stdout and stderr reached the shim.
    quitter_log: String,
    /// The container with a terminal: exits 3 when its stdin and stdout are a tty.
    tty: (i32, i32),
    /// The sleeper after StopContainer: state and exit code.
    stopped: (i32, i32),
    leftovers: Vec<String>,
}

fn runsc_state(env: &Env, id: &str) -> (String, i64) {
    let root = env.root_for("ward").join(NS).join("@runsc");
    let Some(runsc) = which("runsc") else {
        return Default::default();
    };
    match run(Command::new(runsc)
        .arg("--root")
        .arg(&root)
        .arg("state")
        .arg(id))
    {
        Ok(out) => {
            let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
            (
                v["status"].as_str().unwrap_or_default().to_string(),
                v["pid"].as_i64().unwrap_or(0),
            )
        }
        Err(e) => (format!("error: {e}"), 0),
    }
}

/// Processes whose command line names ward's runtime root (runsc's sandbox and gofers, ward's
/// keepers): none may outlive the pod.
fn processes_under(root: &Path) -> Vec<String> {
    pids_mentioning(&root.display().to_string())
        .into_iter()
        .map(|pid| {
            let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            format!(
                "{pid}: {}",
                String::from_utf8_lossy(&cmd).replace('\0', " ")
            )
        })
        .collect()
}

async fn container_state(rt: &mut RuntimeServiceClient<Channel>, id: &str) -> R<(i32, i32)> {
    let st = within(
        "ContainerStatus",
        rt.container_status(ContainerStatusRequest {
            container_id: id.into(),
            verbose: false,
        }),
    )
    .await?;
    let s = st.status.ok_or("ContainerStatus without status")?;
    Ok((s.state, s.exit_code))
}

async fn gvisor_flow(env: &Env, ch: &Channel) -> R<GvisorOutcome> {
    let mut rt = RuntimeServiceClient::new(ch.clone());
    let mut o = GvisorOutcome::default();
    let logdir = env.dir.join("logs").join("gvisor");
    fs::create_dir_all(&logdir).unwrap();
    let ward_root = env.root_for("ward").join(NS);

    let sandbox_config = pod_config(env, "cri-gvisor", &logdir, ("org.ward.isolation", "gvisor"));
    let pod = within(
        "RunPodSandbox(gvisor)",
        rt.run_pod_sandbox(RunPodSandboxRequest {
            config: Some(sandbox_config.clone()),
            runtime_handler: "ward".into(),
        }),
    )
    .await?
    .pod_sandbox_id;
    eprintln!("[gvisor] pod sandbox {pod}");
    let st = within(
        "PodSandboxStatus",
        rt.pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: false,
        }),
    )
    .await?;
    o.sandbox_ready =
        st.status.as_ref().map(|s| s.state) == Some(PodSandboxState::SandboxReady as i32);

    let create = |name: &str, command: &[&str], tty: bool| {
        let mut rt = rt.clone();
        let req = CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(ContainerConfig {
                metadata: Some(ContainerMetadata {
                    name: name.into(),
                    attempt: 0,
                }),
                image: Some(ImageSpec {
                    image: BUSYBOX_IMAGE.into(),
                    ..Default::default()
                }),
                command: command.iter().map(|s| s.to_string()).collect(),
                log_path: format!("{name}.log"),
                tty,
                linux: Some(LinuxContainerConfig::default()),
                ..Default::default()
            }),
            sandbox_config: Some(sandbox_config.clone()),
        };
        let what = format!("CreateContainer/StartContainer({name})");
        async move {
            let id = within(&what, rt.create_container(req)).await?.container_id;
            within(
                &what,
                rt.start_container(StartContainerRequest {
                    container_id: id.clone(),
                }),
            )
            .await?;
            Ok::<_, String>(id)
        }
    };
    let sleeper = create("sleeper", &["sleep", "300"], false).await?;
    eprintln!("[gvisor] container sleeper {sleeper}");
    // Its process ends by itself a little later, with a status of its own.
    let quitter = create(
        "quitter",
        &["sh", "-c", "echo out-7; echo err-7 >&2; sleep 3; exit 7"],
        false,
    )
    .await?;
    eprintln!("[gvisor] container quitter {quitter}");
    // A terminal: the shim passes a console socket; 3 only if stdin and stdout are a tty.
    let tty = create(
        "tty",
        &[
            "sh",
            "-c",
            "sleep 1; [ -t 0 ] && [ -t 1 ] && exit 3; exit 4",
        ],
        true,
    )
    .await?;
    eprintln!("[gvisor] container tty {tty}");
    o.sleeper_running =
        container_state(&mut rt, &sleeper).await?.0 == ContainerState::ContainerRunning as i32;

    let exec = |cmd: &[&str]| {
        let mut rt = rt.clone();
        let req = ExecSyncRequest {
            container_id: sleeper.clone(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 20,
        };
        async move { within("ExecSync(gvisor)", rt.exec_sync(req)).await }
    };
    let r = exec(&["echo", "hi"]).await?;
    o.echo = (String::from_utf8_lossy(&r.stdout).into_owned(), r.exit_code);
    let r = exec(&["uname", "-r"]).await?;
    o.uname_r = String::from_utf8_lossy(&r.stdout).trim().to_string();
    let r = exec(&["dmesg"]).await?;
    o.dmesg = String::from_utf8_lossy(&r.stdout).into_owned();

    o.runsc_pod = runsc_state(env, &pod);
    o.runsc_sleeper = runsc_state(env, &sleeper);
    o.sandbox_processes = pids_mentioning(&ward_root.display().to_string())
        .into_iter()
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .starts_with(b"runsc-sandbox\0")
        })
        .count();
    let state = run(Command::new(ward_bin())
        .arg("--root")
        .arg(&ward_root)
        .arg("state")
        .arg(&sleeper))?;
    let state: serde_json::Value =
        serde_json::from_str(&state).map_err(|e| format!("state json: {e}: {state}"))?;
    eprintln!("[gvisor] ward state {sleeper}: {state}");
    o.ward_state = (
        state["status"].as_str().unwrap_or_default().to_string(),
        state["pid"].as_i64().unwrap_or(0),
    );

    // Their exits reach containerd only if the shim's view of their init ends with them.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        o.quitter = container_state(&mut rt, &quitter).await?;
        o.tty = container_state(&mut rt, &tty).await?;
        let exited = ContainerState::ContainerExited as i32;
        if (o.quitter.0 == exited && o.tty.0 == exited) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    within(
        "StopContainer(sleeper)",
        rt.stop_container(StopContainerRequest {
            container_id: sleeper.clone(),
            timeout: 5,
        }),
    )
    .await?;
    o.stopped = container_state(&mut rt, &sleeper).await?;
    o.quitter_log = fs::read_to_string(logdir.join("quitter.log")).unwrap_or_default();
    for id in [&sleeper, &quitter, &tty] {
        within(
            "RemoveContainer",
            rt.remove_container(RemoveContainerRequest {
                container_id: id.clone(),
            }),
        )
        .await?;
    }
    within(
        "StopPodSandbox(gvisor)",
        rt.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        }),
    )
    .await?;
    within(
        "RemovePodSandbox(gvisor)",
        rt.remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        }),
    )
    .await?;

    // Nothing left: CRI objects, ward's and runsc's state, shim bundles, processes, cgroups.
    let pods = within(
        "ListPodSandbox",
        rt.list_pod_sandbox(ListPodSandboxRequest::default()),
    )
    .await?;
    o.leftovers
        .extend(pods.items.iter().map(|p| format!("pod {}", p.id)));
    let ctrs = within(
        "ListContainers",
        rt.list_containers(ListContainersRequest::default()),
    )
    .await?;
    o.leftovers.extend(
        ctrs.containers
            .iter()
            .map(|c| format!("container {}", c.id)),
    );
    for e in fs::read_dir(&ward_root).into_iter().flatten().flatten() {
        if e.file_name() == "@runsc" {
            for r in fs::read_dir(e.path()).into_iter().flatten().flatten() {
                o.leftovers.push(r.path().display().to_string());
            }
        } else {
            o.leftovers.push(e.path().display().to_string());
        }
    }
    for id in [&pod, &sleeper, &quitter, &tty] {
        let p = env
            .dir
            .join("state/io.containerd.runtime.v2.task")
            .join(NS)
            .join(id);
        if p.exists() {
            o.leftovers.push(p.display().to_string());
        }
    }
    // The sandbox's processes exit with its root container; give them a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut procs = processes_under(&ward_root);
    while !procs.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        procs = processes_under(&ward_root);
    }
    o.leftovers.extend(procs);
    o.leftovers.extend(cgroup_leftovers(env));
    Ok(o)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gvisor_pod_under_ward() {
    // SAFETY: geteuid(2) takes no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 && skip("needs root") {
        return;
    }
    let (Some(_), Some(ctr_bin), Some(runc), Some(_)) = (
        which("containerd"),
        which("ctr"),
        which("runc"),
        which("runsc"),
    ) else {
        skip("the gVisor pod needs containerd, ctr, runc and runsc (Debian package runsc)");
        return;
    };
    let mut env = Env::new("-gvisor", runc);
    let result: R<GvisorOutcome> = async {
        let ch = setup(&mut env, &ctr_bin).await?;
        gvisor_flow(&env, &ch)
            .await
            .map_err(|e| format!("{e}\n{}", diagnostics(&env)))
    }
    .await;
    let diag = diagnostics(&env);
    let ch = connect(&env.sock).await.ok();
    cleanup(&mut env, ch.as_ref()).await;

    let o = result.unwrap_or_else(|e| panic!("{e}"));
    eprintln!("[gvisor] {o:#?}");
    let exited = ContainerState::ContainerExited as i32;
    assert!(o.sandbox_ready, "gVisor pod sandbox not READY");
    assert!(o.sleeper_running, "app container not RUNNING");
    assert_eq!(o.echo, ("hi\n".to_string(), 0), "ExecSync echo hi");
    // A native pod shows the host's kernel (runtime_class_ward_matches_runc checks that).
    assert_ne!(
        o.uname_r,
        host_release(),
        "uname -r in the pod is the host's kernel: not gVisor"
    );
    assert!(
        o.dmesg.contains("gVisor"),
        "dmesg in the pod does not show gVisor's kernel: {:?}",
        o.dmesg
    );
    assert_eq!(o.runsc_pod.0, "running", "runsc state of the pod");
    assert_eq!(
        o.runsc_sleeper.0, "running",
        "runsc state of the app container"
    );
    assert!(o.runsc_pod.1 > 0, "runsc state pid of the pod");
    assert_eq!(
        o.runsc_pod.1, o.runsc_sleeper.1,
        "the app container runs in a sandbox of its own, not the pod's"
    );
    assert_eq!(
        o.sandbox_processes, 1,
        "one runsc sandbox for a pod of four containers"
    );
    assert_eq!(o.ward_state.0, "running", "ward state of the app container");
    assert!(
        o.ward_state.1 > 0 && o.ward_state.1 != o.runsc_pod.1,
        "ward state pid of the app container is {}, the sandbox is {}: the shim would take the sandbox for the container's init",
        o.ward_state.1,
        o.runsc_pod.1
    );
    assert_eq!(
        o.quitter,
        (exited, 7),
        "the app container that exits 7: (state, exit code) seen by CRI\n{diag}"
    );
    for line in [" stdout F out-7", " stderr F err-7"] {
        assert!(
            o.quitter_log.contains(line),
            "container log lacks {line:?}: {:?}",
            o.quitter_log
        );
    }
    assert_eq!(
        o.tty,
        (exited, 3),
        "the app container with a terminal (3: stdin and stdout are a tty, 4: not)\n{diag}"
    );
    assert!(
        o.stopped.0 == exited && matches!(o.stopped.1, 137 | 143),
        "after StopContainer: (state, exit code) {:?}",
        o.stopped
    );
    assert!(o.leftovers.is_empty(), "left behind: {:#?}", o.leftovers);
    assert!(
        !env.dir.exists() || std::env::var_os("WARD_CRI_KEEP").is_some(),
        "{} not removed",
        env.dir.display()
    );
}
