//! Kubernetes RuntimeClass end to end: containerd's CRI plugin with a `ward` handler
//! (runtime_type io.containerd.runc.v2, BinaryName = ward), driven through the CRI gRPC API.
//!
//! The same flow runs with the handler `ward` and then `runc`, and must give the same results,
//! with one expected difference: the pod annotation `org.ward.landlock` (passed through by
//! containerd's `pod_annotations = ["org.ward.*"]`) confines writes to /tmp and /dev under ward,
//! while runc ignores it. That difference is the proof that the annotation reached ward.
//! gvisor.rs runs a pod with `org.ward.isolation: gvisor` under the same handler: all its
//! containers in one runsc sandbox, exits and exit codes seen by containerd.
//!
//! Offline: the pause and busybox images are built here from /bin/busybox (static) as OCI
//! image-layout tarballs and imported with `ctr -n k8s.io images import`. Pods use the host
//! network namespace (NamespaceMode NODE), so no CNI network is set up (containerd 1.6's CRI needs
//! an `eth0` with an IP from CNI otherwise, i.e. a bridge on the host).
//!
//! Everything lives under /tmp/ward-cri-<pid> (containerd root/state/socket, runtime roots, logs)
//! and the cgroup parent /ward-cri-<pid>; all of it is removed at the end (WARD_CRI_KEEP=1 keeps
//! the directory for debugging). Needs root, containerd and ctr (1.6+), runc, busybox.
//! Run: `make integration-cri` (cargo test --release --features cri --test cri -- --test-threads=1).

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use sha2::{Digest, Sha256};
use tonic::transport::{Channel, Endpoint, Uri};

mod gvisor;

const NS: &str = "k8s.io";
const PAUSE_IMAGE: &str = "ward.test/pause:1";
const BUSYBOX_IMAGE: &str = "ward.test/busybox:1";
/// systemd mode: the pod slice's MemoryMax (set by "the kubelet") and the container's memory
/// limit (through CRI), both seen on the units and in the cgroup files.
const POD_MEMORY_MAX: &str = "268435456";
const CONTAINER_MEMORY_MAX: i64 = 67108864;
/// Deny writes everywhere but /tmp and /dev (ward's `org.ward.landlock` annotation format).
const LANDLOCK: &str = r#"{"ruleset":{"handledAccessFS":["write_file","make_reg"]},"rules":{"pathBeneath":[{"allowedAccess":["write_file","make_reg"],"paths":["/tmp","/dev"]}]}}"#;

type R<T> = Result<T, String>;

/// The ward under test: the one cargo built, or `WARD_CRI_WARD` (the systemd VM runs this test
/// binary where cargo's path does not exist).
fn ward_bin() -> PathBuf {
    std::env::var_os("WARD_CRI_WARD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ward")))
}

/// `WARD_CRI_SYSTEMD=1`: containerd's handlers get `SystemdCgroup = true` and the pods a kubelet
/// style pod slice as cgroup parent (integration/systemd-vm runs the test that way, in a VM
/// whose PID 1 is systemd).
fn systemd_mode() -> bool {
    std::env::var_os("WARD_CRI_SYSTEMD").is_some_and(|v| v == "1")
}

fn which(name: &str) -> Option<PathBuf> {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
    {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return Some(p);
        }
    }
    None
}

/// The host kernel's release, what `uname -r` shows in a native container.
fn host_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn run(cmd: &mut Command) -> R<String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Everything the test created outside of containerd's own bookkeeping.
struct Env {
    dir: PathBuf,
    sock: PathBuf,
    /// `/ward-cri-<pid>` (cgroupfs), or a pod slice `kubepods-besteffort-pod<uid>.slice`
    /// (systemd mode), which the test creates first, as the kubelet does.
    cgroup_parent: String,
    systemd: bool,
    runc: PathBuf,
    containerd: Option<Child>,
}

impl Env {
    fn root_for(&self, handler: &str) -> PathBuf {
        self.dir.join(format!("{handler}-root"))
    }
    fn binary_for(&self, handler: &str) -> PathBuf {
        if handler == "ward" {
            ward_bin()
        } else {
            self.runc.clone()
        }
    }
    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }
}

// ---------------------------------------------------------------- images

/// An OCI image-layout tarball holding one busybox layer and two images: the pause image
/// (`sleep infinity`) and a busybox image (`sh`).
fn build_images(dir: &Path) -> R<PathBuf> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or("no /bin/busybox (busybox-static)")?;
    let rootfs = dir.join("image-rootfs");
    for d in [
        "bin", "dev", "etc", "proc", "sys", "tmp", "root", "var", "run",
    ] {
        fs::create_dir_all(rootfs.join(d)).map_err(|e| e.to_string())?;
    }
    run(Command::new("chmod").arg("1777").arg(rootfs.join("tmp")))?;
    fs::copy(&busybox, rootfs.join("bin/busybox")).map_err(|e| e.to_string())?;
    let applets = run(Command::new(&busybox).arg("--list"))?;
    for a in applets.split_whitespace().filter(|a| *a != "busybox") {
        let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a));
    }
    fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
    let layer_tar = dir.join("layer.tar");
    run(Command::new("tar")
        .args([
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            "--sort=name",
            "--mtime=@0",
            "-C",
        ])
        .arg(&rootfs)
        .arg("-cf")
        .arg(&layer_tar)
        .arg("."))?;
    let layer = fs::read(&layer_tar).map_err(|e| e.to_string())?;
    let layer_digest = sha256_hex(&layer);

    let oci = dir.join("oci");
    let blobs = oci.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    fs::rename(&layer_tar, blobs.join(&layer_digest)).unwrap();
    let put = |b: &[u8]| -> String {
        let d = sha256_hex(b);
        fs::write(blobs.join(&d), b).unwrap();
        d
    };
    let mut manifests = vec![];
    for (name, cmd) in [
        (PAUSE_IMAGE, vec!["sleep", "infinity"]),
        (BUSYBOX_IMAGE, vec!["sh"]),
    ] {
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                       "Cmd": cmd, "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
        })
        .to_string();
        let config_digest = put(config.as_bytes());
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": format!("sha256:{config_digest}"), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": format!("sha256:{layer_digest}"), "size": layer.len()}],
        })
        .to_string();
        let manifest_digest = put(manifest.as_bytes());
        manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{manifest_digest}"), "size": manifest.len(),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": name.rsplit(':').next().unwrap()},
        }));
    }
    fs::write(oci.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    fs::write(
        oci.join("index.json"),
        serde_json::json!({"schemaVersion": 2, "manifests": manifests}).to_string(),
    )
    .unwrap();
    let tarball = dir.join("images.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&oci)
        .arg("-cf")
        .arg(&tarball)
        .args(["oci-layout", "index.json", "blobs"]))?;
    Ok(tarball)
}

// ---------------------------------------------------------------- containerd

fn containerd_config(env: &Env) -> String {
    let d = env.dir.display();
    let handler = |name: &str, extra: &str| {
        format!(
            r#"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}]
      runtime_type = "io.containerd.runc.v2"
{extra}
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}.options]
        BinaryName = "{bin}"
        Root = "{root}"
        SystemdCgroup = {systemd}
"#,
            systemd = env.systemd,
            bin = env.binary_for(name).display(),
            root = env.root_for(name).display(),
        )
    };
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
oom_score = 0
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  level = "debug"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d}/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "{snapshotter}"
    default_runtime_name = "runc"
{runc}{ward}"#,
        // WARD_CRI_SNAPSHOTTER=native where overlayfs is a module not loaded (the systemd VM)
        snapshotter = std::env::var("WARD_CRI_SNAPSHOTTER").unwrap_or_else(|_| "overlayfs".into()),
        runc = handler("runc", r#"      pod_annotations = ["org.ward.*"]"#),
        ward = handler("ward", r#"      pod_annotations = ["org.ward.*"]"#),
    )
}

async fn connect(sock: &Path) -> R<Channel> {
    let sock = sock.to_path_buf();
    Endpoint::try_from("http://[::]")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let sock = sock.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(sock).await?))
            }
        }))
        .await
        .map_err(|e| format!("connect: {e}"))
}

async fn start_containerd(env: &mut Env) -> R<Channel> {
    fs::create_dir_all(env.dir.join("cni")).unwrap();
    let cfg = env.dir.join("containerd.toml");
    fs::write(&cfg, containerd_config(env)).unwrap();
    let log = fs::File::create(env.dir.join("containerd.log")).unwrap();
    let child = Command::new(which("containerd").ok_or("containerd not found")?)
        .arg("--config")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("spawn containerd: {e}"))?;
    env.containerd = Some(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if env.sock.exists() {
            if let Ok(ch) = connect(&env.sock).await {
                let mut rt = RuntimeServiceClient::new(ch.clone());
                if rt.version(VersionRequest::default()).await.is_ok() {
                    return Ok(ch);
                }
            }
        }
        if let Some(Ok(Some(st))) = env.containerd.as_mut().map(|c| c.try_wait()) {
            return Err(format!("containerd exited: {st}\n{}", env.log()));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "containerd CRI did not come up in 30s\n{}",
                env.log()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---------------------------------------------------------------- the flow

/// What one handler run observed; compared across handlers.
#[derive(Clone, Debug, Default, PartialEq)]
struct Outcome {
    sandbox_ready: bool,
    container_running: bool,
    echo_stdout: String,
    echo_exit: i32,
    /// `uname -r` in the container: the host's kernel under native isolation (the gvisor test
    /// compares against this).
    uname_r: String,
    tmp_write: (i32, String),
    etc_write_exit: i32,
    etc_write_stderr: String,
    /// `<handler> --root <root>/k8s.io state <id>`: status and the annotation as seen by the runtime.
    runtime_state_status: String,
    runtime_state_landlock_annotation: Option<String>,
    /// The container's state dir was under this handler's root and not the other's.
    state_dir_in_own_root: bool,
    state_dir_in_other_root: bool,
    /// StopContainer: EXITED, and the exec'd background process (a `sleep <marker>` in the
    /// container's cgroup) gone with it.
    exited_after_stop: bool,
    background_alive_before_stop: bool,
    background_alive_after_stop_container: bool,
    exited_after_stop_pod: bool,
    /// systemd mode: the containers' cgroups, their scope units and the limits on them, with the
    /// ids made `<ctr>`/`<pod>` so both handlers compare equal.
    systemd_view: Vec<String>,
    leftovers: Vec<String>,
}

/// Processes whose argv is exactly `argv`.
fn pids_with_cmdline(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    let mut v = vec![];
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if fs::read(e.path().join("cmdline")).ok().as_deref() == Some(&want[..]) {
            v.push(pid);
        }
    }
    v
}

/// The directories of the test's cgroup parent: one per hierarchy (cgroupfs), or the pod slice's
/// nested path on the unified hierarchy (systemd: `a-b-c.slice` lives in `a.slice/a-b.slice/`).
fn parent_dirs(env: &Env) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if env.systemd {
        let name = env.cgroup_parent.trim_end_matches(".slice");
        let mut p = root.to_path_buf();
        let mut prefix = String::new();
        for part in name.split('-') {
            prefix = if prefix.is_empty() {
                part.to_string()
            } else {
                format!("{prefix}-{part}")
            };
            p.push(format!("{prefix}.slice"));
        }
        return vec![p];
    }
    fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join(env.cgroup_parent.trim_start_matches('/')))
        .collect()
}

/// Cgroups left under the test's cgroup parent.
fn cgroup_leftovers(env: &Env) -> Vec<String> {
    let mut left = vec![];
    for p in parent_dirs(env) {
        if let Ok(sub) = fs::read_dir(&p) {
            for s in sub.flatten() {
                if s.path().is_dir() {
                    left.push(s.path().display().to_string());
                }
            }
        }
    }
    left
}

/// `systemctl show -p P1,P2 UNIT` as `P1=v1 P2=v2`, sorted by name (systemctl has its own
/// order); systemd mode only.
fn unit_props(unit: &str, props: &str) -> String {
    let out =
        run(Command::new("systemctl").args(["show", "-p", props, unit])).unwrap_or_else(|e| e);
    let mut v: Vec<&str> = out.split_whitespace().collect();
    v.sort_unstable();
    v.join(" ")
}

/// systemd still knows the unit (in any state), as `systemctl list-units --all` lists it.
fn unit_listed(unit: &str) -> bool {
    run(Command::new("systemctl").args(["list-units", "--all", "--plain", "--no-legend", unit]))
        .map(|o| !o.trim().is_empty())
        .unwrap_or(false)
}

/// The unified-hierarchy cgroup of a process (`0::` line of /proc/PID/cgroup).
fn cgroup_of(pid: i64) -> String {
    fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_default()
        .to_string()
}

/// A pod on the node's network (no CNI here) with its own pid and ipc namespaces and one
/// pod annotation. No hostname: like kubelet for hostNetwork pods (no private UTS namespace to
/// set it in; runc and ward both refuse a hostname without one).
fn pod_config(env: &Env, name: &str, logdir: &Path, annotation: (&str, &str)) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}-{}", std::process::id()),
            namespace: "default".into(),
            attempt: 0,
        }),
        log_directory: logdir.display().to_string(),
        annotations: HashMap::from([(annotation.0.to_string(), annotation.1.to_string())]),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: env.cgroup_parent.clone(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Node as i32,
                    pid: NamespaceMode::Pod as i32,
                    ipc: NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn flow(env: &Env, ch: &Channel, handler: &str) -> R<Outcome> {
    let mut rt = RuntimeServiceClient::new(ch.clone());
    let mut o = Outcome::default();
    let other = if handler == "ward" { "runc" } else { "ward" };
    let logdir = env.dir.join("logs").join(handler);
    fs::create_dir_all(&logdir).unwrap();

    let sandbox_config = pod_config(
        env,
        &format!("cri-{handler}"),
        &logdir,
        ("org.ward.landlock", LANDLOCK),
    );

    let pod = rt
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(sandbox_config.clone()),
            runtime_handler: handler.into(),
        })
        .await
        .map_err(|e| format!("RunPodSandbox({handler}): {e}"))?
        .into_inner()
        .pod_sandbox_id;
    eprintln!("[{handler}] pod sandbox {pod}");
    let st = rt
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: false,
        })
        .await
        .map_err(|e| format!("PodSandboxStatus: {e}"))?
        .into_inner();
    o.sandbox_ready =
        st.status.as_ref().map(|s| s.state) == Some(PodSandboxState::SandboxReady as i32);
    let got = st
        .status
        .as_ref()
        .map(|s| s.runtime_handler.as_str())
        .unwrap_or_default();
    if got != handler {
        return Err(format!(
            "PodSandboxStatus: runtime_handler {got:?}, want {handler:?}"
        ));
    }

    let ctr = rt
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(ContainerConfig {
                metadata: Some(ContainerMetadata {
                    name: "sleeper".into(),
                    attempt: 0,
                }),
                image: Some(ImageSpec {
                    image: BUSYBOX_IMAGE.into(),
                    ..Default::default()
                }),
                command: vec!["sleep".into(), "300".into()],
                log_path: "sleeper.log".into(),
                linux: Some(LinuxContainerConfig {
                    resources: env.systemd.then(|| LinuxContainerResources {
                        memory_limit_in_bytes: CONTAINER_MEMORY_MAX,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            sandbox_config: Some(sandbox_config.clone()),
        })
        .await
        .map_err(|e| format!("CreateContainer({handler}): {e}"))?
        .into_inner()
        .container_id;
    eprintln!("[{handler}] container {ctr}");
    rt.start_container(StartContainerRequest {
        container_id: ctr.clone(),
    })
    .await
    .map_err(|e| format!("StartContainer({handler}): {e}"))?;

    let status = rt
        .container_status(ContainerStatusRequest {
            container_id: ctr.clone(),
            verbose: false,
        })
        .await
        .map_err(|e| format!("ContainerStatus: {e}"))?
        .into_inner();
    o.container_running =
        status.status.as_ref().map(|s| s.state) == Some(ContainerState::ContainerRunning as i32);

    let exec = |cmd: &[&str]| {
        let mut rt = rt.clone();
        let req = ExecSyncRequest {
            container_id: ctr.clone(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 20,
        };
        async move {
            rt.exec_sync(req)
                .await
                .map(|r| r.into_inner())
                .map_err(|e| format!("ExecSync({handler}): {e}"))
        }
    };
    let r = exec(&["echo", "hi"]).await?;
    o.echo_stdout = String::from_utf8_lossy(&r.stdout).into_owned();
    o.echo_exit = r.exit_code;
    let r = exec(&["uname", "-r"]).await?;
    o.uname_r = String::from_utf8_lossy(&r.stdout).trim().to_string();
    let r = exec(&["sh", "-c", "echo y > /tmp/y && cat /tmp/y"]).await?;
    o.tmp_write = (r.exit_code, String::from_utf8_lossy(&r.stdout).into_owned());
    let r = exec(&["sh", "-c", "echo x > /etc/x"]).await?;
    o.etc_write_exit = r.exit_code;
    o.etc_write_stderr = String::from_utf8_lossy(&r.stderr).trim().to_string();

    // Which runtime ran it: the shim calls `<BinaryName> --root <Root>/<namespace> ...`.
    let own_root = env.root_for(handler).join(NS);
    o.state_dir_in_own_root = own_root.join(&ctr).join("state.json").is_file();
    o.state_dir_in_other_root = env.root_for(other).join(NS).join(&ctr).exists();
    let state = run(Command::new(env.binary_for(handler))
        .arg("--root")
        .arg(&own_root)
        .arg("state")
        .arg(&ctr))?;
    let state: serde_json::Value =
        serde_json::from_str(&state).map_err(|e| format!("state json: {e}: {state}"))?;
    o.runtime_state_status = state["status"].as_str().unwrap_or_default().to_string();
    o.runtime_state_landlock_annotation = state["annotations"]["org.ward.landlock"]
        .as_str()
        .map(str::to_string);
    eprintln!(
        "[{handler}] {} state: {state}",
        env.binary_for(handler).display()
    );
    if env.systemd {
        o.systemd_view = systemd_view(env, &own_root, handler, &pod, &ctr, &state)?;
        eprintln!("[{handler}] systemd: {:#?}", o.systemd_view);
    }

    // StopContainer while the pod lives on: an exec'd background process sits in the container's
    // cgroup, reparented to the pod's pid-namespace init (the pause). When the container's init
    // exits the shim runs `<runtime> kill --all <id> KILL` (the container shares the pod's pid
    // namespace), and the runtime must kill what is left in the cgroup, as runc does.
    let marker = format!(
        "{}",
        4000 + std::process::id() % 1000 + if handler == "ward" { 0 } else { 1000 }
    );
    // It ignores SIGTERM, so only the shim's `kill --all ... KILL` can end it.
    let cmd = format!("(trap '' TERM; exec sleep {marker}) </dev/null >/dev/null 2>&1 &");
    exec(&["sh", "-c", &cmd]).await?;
    // The exec returns once sh has forked the subshell, which may not have exec'd sleep yet
    // (seen in CI on a loaded machine): give it up to 5 s to show up.
    for _ in 0..50 {
        if !pids_with_cmdline(&["sleep", &marker]).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    o.background_alive_before_stop = !pids_with_cmdline(&["sleep", &marker]).is_empty();
    rt.stop_container(StopContainerRequest {
        container_id: ctr.clone(),
        timeout: 5,
    })
    .await
    .map_err(|e| format!("StopContainer({handler}): {e}"))?;
    let status = rt
        .container_status(ContainerStatusRequest {
            container_id: ctr.clone(),
            verbose: false,
        })
        .await
        .map_err(|e| format!("ContainerStatus after StopContainer: {e}"))?
        .into_inner();
    o.exited_after_stop =
        status.status.as_ref().map(|s| s.state) == Some(ContainerState::ContainerExited as i32);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let orphans = pids_with_cmdline(&["sleep", &marker]);
    o.background_alive_after_stop_container = !orphans.is_empty();
    for pid in orphans {
        // SAFETY: kill(2) takes no memory.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }

    rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .map_err(|e| format!("StopPodSandbox({handler}): {e}"))?;
    let status = rt
        .container_status(ContainerStatusRequest {
            container_id: ctr.clone(),
            verbose: false,
        })
        .await
        .map_err(|e| format!("ContainerStatus after stop: {e}"))?
        .into_inner();
    o.exited_after_stop_pod =
        status.status.as_ref().map(|s| s.state) == Some(ContainerState::ContainerExited as i32);
    rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .map_err(|e| format!("RemovePodSandbox({handler}): {e}"))?;

    // Nothing left: CRI, the runtime's state dirs, the shim bundles, the cgroups.
    let pods = rt
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    o.leftovers
        .extend(pods.items.iter().map(|p| format!("pod {}", p.id)));
    let ctrs = rt
        .list_containers(ListContainersRequest::default())
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    o.leftovers.extend(
        ctrs.containers
            .iter()
            .map(|c| format!("container {}", c.id)),
    );
    for id in [&pod, &ctr] {
        for p in [
            own_root.join(id),
            env.dir
                .join("state/io.containerd.runtime.v2.task")
                .join(NS)
                .join(id),
        ] {
            if p.exists() {
                o.leftovers.push(p.display().to_string());
            }
        }
    }
    o.leftovers.extend(cgroup_leftovers(env));
    if env.systemd {
        for id in [&pod, &ctr] {
            let unit = format!("cri-containerd-{id}.scope");
            if unit_listed(&unit) {
                o.leftovers.push(format!("unit {unit}"));
            }
        }
    }
    Ok(o)
}

/// What systemd shows for a running pod: the pause and the container each in a scope
/// `cri-containerd-<id>.scope` in the pod slice, the scopes' properties, and the limits in the
/// cgroup files. `state` is the runtime's `state` of the container.
fn systemd_view(
    env: &Env,
    own_root: &Path,
    handler: &str,
    pod: &str,
    ctr: &str,
    state: &serde_json::Value,
) -> R<Vec<String>> {
    let pod_state = run(Command::new(env.binary_for(handler))
        .arg("--root")
        .arg(own_root)
        .arg("state")
        .arg(pod))?;
    let pod_state: serde_json::Value =
        serde_json::from_str(&pod_state).map_err(|e| format!("state json: {e}: {pod_state}"))?;
    let slice_dir = parent_dirs(env).remove(0);
    let norm = |s: String| {
        s.replace(ctr, "<ctr>")
            .replace(pod, "<pod>")
            .replace(&env.cgroup_parent, "<slice>")
    };
    let mut v = vec![];
    for (what, id, pid) in [
        ("pause", pod, pod_state["pid"].as_i64().unwrap_or(0)),
        ("container", ctr, state["pid"].as_i64().unwrap_or(0)),
    ] {
        let unit = format!("cri-containerd-{id}.scope");
        v.push(norm(format!("{what} cgroup {}", cgroup_of(pid))));
        v.push(norm(format!(
            "{what} unit {}",
            unit_props(&unit, "ActiveState,Slice,Delegate")
        )));
    }
    let ctr_dir = slice_dir.join(format!("cri-containerd-{ctr}.scope"));
    v.push(norm(format!(
        "container {} memory.max {}",
        unit_props(&format!("cri-containerd-{ctr}.scope"), "MemoryMax"),
        fs::read_to_string(ctr_dir.join("memory.max"))
            .unwrap_or_default()
            .trim()
    )));
    v.push(norm(format!(
        "pod slice {} {} memory.max {}",
        slice_dir.display(),
        unit_props(&env.cgroup_parent, "ActiveState,MemoryMax"),
        fs::read_to_string(slice_dir.join("memory.max"))
            .unwrap_or_default()
            .trim()
    )));
    Ok(v)
}

/// Shim and runtime logs of the last run, for a failure message.
fn diagnostics(env: &Env) -> String {
    let mut s = String::new();
    let task = env.dir.join("state/io.containerd.runtime.v2.task").join(NS);
    if let Ok(rd) = fs::read_dir(&task) {
        for e in rd.flatten() {
            if let Ok(t) = fs::read_to_string(e.path().join("log.json")) {
                s += &format!("--- {}/log.json\n{t}\n", e.path().display());
            }
        }
    }
    let log = env.log();
    let tail: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("level=error") || l.contains("level=warn"))
        .collect();
    s += &format!(
        "--- containerd.log warnings/errors ({}):\n{}\n",
        env.dir.join("containerd.log").display(),
        tail.join("\n")
    );
    s
}

// ---------------------------------------------------------------- cleanup

fn pids_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut v = vec![];
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(c) = fs::read(e.path().join("cmdline")) {
            if String::from_utf8_lossy(&c).contains(needle) {
                v.push(pid);
            }
        }
    }
    v
}

async fn cleanup(env: &mut Env, ch: Option<&Channel>) {
    // 1. Through CRI, so the shims tear down what they set up.
    if let Some(ch) = ch {
        let mut rt = RuntimeServiceClient::new(ch.clone());
        if let Ok(pods) = rt.list_pod_sandbox(ListPodSandboxRequest::default()).await {
            for p in pods.into_inner().items {
                let _ = rt
                    .stop_pod_sandbox(StopPodSandboxRequest {
                        pod_sandbox_id: p.id.clone(),
                    })
                    .await;
                let _ = rt
                    .remove_pod_sandbox(RemovePodSandboxRequest {
                        pod_sandbox_id: p.id,
                    })
                    .await;
            }
        }
    }
    // 2. Whatever the runtimes still know about.
    for h in ["ward", "runc"] {
        let root = env.root_for(h).join(NS);
        if let Ok(rd) = fs::read_dir(&root) {
            for e in rd.flatten() {
                let _ = Command::new(env.binary_for(h))
                    .arg("--root")
                    .arg(&root)
                    .args(["delete", "--force"])
                    .arg(e.file_name())
                    .output();
            }
        }
    }
    // 3. containerd, then any shim it started (their command line names our socket).
    if let Some(mut c) = env.containerd.take() {
        // SAFETY: kill(2) takes no memory.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
    for pid in pids_mentioning(&env.sock.display().to_string()) {
        // SAFETY: kill(2) takes no memory.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    // gVisor's sandbox and gofer processes and ward's keepers name the runtime root instead.
    for pid in pids_mentioning(&env.dir.display().to_string()) {
        // SAFETY: kill(2) with a pid and a signal number; no memory is involved.
        // SAFETY: kill(2) takes no memory.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    std::thread::sleep(Duration::from_millis(300));
    // 4. Mounts under our directory (rootfs overlays, shm), deepest first.
    let mut mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&env.dir.display().to_string()))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let c = std::ffi::CString::new(m).unwrap();
        // SAFETY: `c` is a valid C string for the call.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
    // 5. Our cgroup parent: the pod slice is stopped as the kubelet stops it (systemd), or
    // removed in every hierarchy, deepest first (cgroupfs).
    if env.systemd {
        let _ = Command::new("systemctl")
            .args(["stop", &env.cgroup_parent])
            .output();
    } else {
        for top in parent_dirs(env) {
            if top.is_dir() {
                rmdir_tree(&top);
            }
        }
    }
    if std::env::var_os("WARD_CRI_KEEP").is_none() {
        let _ = fs::remove_dir_all(&env.dir);
    } else {
        eprintln!("WARD_CRI_KEEP: left {}", env.dir.display());
    }
}

fn rmdir_tree(p: &Path) {
    for e in fs::read_dir(p).into_iter().flatten().flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            rmdir_tree(&e.path());
        }
    }
    let _ = fs::remove_dir(p);
}

// ---------------------------------------------------------------- the test

fn skip(why: &str) -> bool {
    eprintln!("SKIP cri: {why}");
    let _ = std::io::stderr().flush();
    if std::env::var_os("WARD_CRI_REQUIRE").is_some() {
        panic!("WARD_CRI_REQUIRE set but: {why}");
    }
    true
}

impl Env {
    /// `/tmp/ward-cri-<pid><suffix>` and the cgroup parent of the same name.
    fn new(suffix: &str, runc: PathBuf) -> Env {
        let name = format!("ward-cri-{}{suffix}", std::process::id());
        let dir = PathBuf::from("/tmp").join(&name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let systemd = systemd_mode();
        Env {
            sock: dir.join("containerd.sock"),
            // The kubelet's form: the pod's uid with '-' made '_' (a '-' nests slices).
            cgroup_parent: if systemd {
                format!(
                    "kubepods-besteffort-podwardcri{}{}.slice",
                    std::process::id(),
                    suffix.replace('-', "_")
                )
            } else {
                format!("/{name}")
            },
            systemd,
            dir,
            runc,
            containerd: None,
        }
    }
}

/// Builds and imports the images, starts containerd, and waits until CRI sees both images.
async fn setup(env: &mut Env, ctr_bin: &Path) -> R<Channel> {
    if env.systemd {
        // What the kubelet does before RunPodSandbox: the pod slice as a transient unit of its
        // own, with a limit, over D-Bus (kubelet uses runc's libcontainer systemd manager).
        run(Command::new("busctl").args([
            "call",
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StartTransientUnit",
            "ssa(sv)a(sa(sv))",
            &env.cgroup_parent,
            "replace",
            "2",
            "Description",
            "s",
            "ward CRI test pod slice",
            "MemoryMax",
            "t",
            POD_MEMORY_MAX,
            "0",
        ]))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while unit_props(&env.cgroup_parent, "ActiveState") != "ActiveState=active" {
            if Instant::now() > deadline {
                return Err(format!("pod slice {} not active", env.cgroup_parent));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let images = build_images(&env.dir)?;
    let ch = start_containerd(env).await?;
    run(Command::new(ctr_bin)
        .arg("--address")
        .arg(&env.sock)
        .args(["-n", NS, "images", "import"])
        .arg(&images))?;
    // The CRI image store follows containerd's image events; wait until it sees both.
    let mut img = ImageServiceClient::new(ch.clone());
    for name in [PAUSE_IMAGE, BUSYBOX_IMAGE] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let st = img
                .image_status(ImageStatusRequest {
                    image: Some(ImageSpec {
                        image: name.into(),
                        ..Default::default()
                    }),
                    verbose: false,
                })
                .await
                .map_err(|e| format!("ImageStatus {name}: {e}"))?
                .into_inner();
            if st.image.is_some() {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("CRI does not see imported image {name}"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(ch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_class_ward_matches_runc() {
    // SAFETY: geteuid takes nothing and cannot fail.
    if unsafe { libc::geteuid() } != 0 && skip("needs root") {
        return;
    }
    let (Some(_), Some(ctr_bin), Some(runc)) = (which("containerd"), which("ctr"), which("runc"))
    else {
        skip("needs containerd, ctr and runc");
        return;
    };
    let mut env = Env::new("", runc);

    let result: R<(Outcome, Outcome)> = async {
        let ch = setup(&mut env, &ctr_bin).await?;
        let ward = flow(&env, &ch, "ward")
            .await
            .map_err(|e| format!("{e}\n{}", diagnostics(&env)))?;
        eprintln!("[ward] {ward:#?}");
        let runc = flow(&env, &ch, "runc")
            .await
            .map_err(|e| format!("{e}\n{}", diagnostics(&env)))?;
        eprintln!("[runc] {runc:#?}");
        Ok((ward, runc))
    }
    .await;

    let ch = connect(&env.sock).await.ok();
    cleanup(&mut env, ch.as_ref()).await;
    let cg_left = cgroup_leftovers(&env);
    let dir_left = env.dir.exists() && std::env::var_os("WARD_CRI_KEEP").is_none();

    let (ward, runc) = result.unwrap_or_else(|e| panic!("{e}"));
    for (h, o) in [("ward", &ward), ("runc", &runc)] {
        assert!(o.sandbox_ready, "[{h}] sandbox not READY");
        assert!(o.container_running, "[{h}] container not RUNNING");
        assert_eq!(
            (o.echo_stdout.as_str(), o.echo_exit),
            ("hi\n", 0),
            "[{h}] ExecSync echo hi"
        );
        assert_eq!(
            o.uname_r,
            host_release(),
            "[{h}] uname -r is not the host's kernel"
        );
        assert_eq!(
            o.tmp_write,
            (0, "y\n".to_string()),
            "[{h}] write under /tmp"
        );
        assert!(
            o.state_dir_in_own_root,
            "[{h}] no state.json under {h}'s root: {h} did not run it"
        );
        assert!(
            !o.state_dir_in_other_root,
            "[{h}] the container shows up under the other runtime's root"
        );
        assert_eq!(o.runtime_state_status, "running", "[{h}] `{h} state`");
        assert_eq!(
            o.runtime_state_landlock_annotation.as_deref(),
            Some(LANDLOCK),
            "[{h}] pod annotation org.ward.landlock did not reach the OCI spec"
        );
        assert!(
            o.exited_after_stop,
            "[{h}] container not EXITED after StopContainer"
        );
        assert!(
            o.background_alive_before_stop,
            "[{h}] exec'd background sleep not running"
        );
        assert!(
            !o.background_alive_after_stop_container,
            "[{h}] exec'd background process outlived StopContainer (`{h} kill --all` after init exit)"
        );
        assert!(
            o.exited_after_stop_pod,
            "[{h}] container not EXITED after StopPodSandbox"
        );
        assert!(
            o.leftovers.is_empty(),
            "[{h}] left behind: {:?}",
            o.leftovers
        );
        if env.systemd {
            let slice = "/kubepods.slice/kubepods-besteffort.slice/<slice>";
            let want = [
                format!("pause cgroup {slice}/cri-containerd-<pod>.scope"),
                "pause unit ActiveState=active Delegate=yes Slice=<slice>".to_string(),
                format!("container cgroup {slice}/cri-containerd-<ctr>.scope"),
                "container unit ActiveState=active Delegate=yes Slice=<slice>".to_string(),
                format!("container MemoryMax={CONTAINER_MEMORY_MAX} memory.max {CONTAINER_MEMORY_MAX}"),
                format!(
                    "pod slice /sys/fs/cgroup{slice} ActiveState=active MemoryMax={POD_MEMORY_MAX} memory.max {POD_MEMORY_MAX}"
                ),
            ];
            assert_eq!(o.systemd_view, want, "[{h}] the pod under systemd");
        }
    }
    // The one expected difference: ward enforces the annotation, runc ignores it.
    assert_ne!(
        ward.etc_write_exit, 0,
        "[ward] write to /etc allowed despite org.ward.landlock"
    );
    assert!(
        ward.etc_write_stderr.contains("Permission denied"),
        "[ward] {:?}",
        ward.etc_write_stderr
    );
    assert_eq!(
        (runc.etc_write_exit, runc.etc_write_stderr.as_str()),
        (0, ""),
        "[runc] write to /etc"
    );
    let normalize = |o: &Outcome| Outcome {
        etc_write_exit: 0,
        etc_write_stderr: String::new(),
        ..o.clone()
    };
    assert_eq!(
        normalize(&ward),
        normalize(&runc),
        "ward and runc differ beyond the landlock effect"
    );
    assert!(cg_left.is_empty(), "cgroups left: {cg_left:?}");
    assert!(!dir_left, "{} not removed", env.dir.display());
}
