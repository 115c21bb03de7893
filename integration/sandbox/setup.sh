#!/bin/bash
# Prepares this machine for integration/sandbox/{ward,sidebyside,bench}.sh (issue 18). Root,
# idempotent: safe to run again, changes nothing the second time.
#   - bubblewrap, socat (srt's Linux back end), ripgrep (srt scans for files it always
#     write-protects with it), hyperfine and GNU time (the bench), curl, python3 (the cases),
#     dnsmasq-base, iproute2, openssl (the egress lab the network cases use); tmux and a vi
#     (ward.sh's terminal cases);
#   - srt itself from the npm registry, pinned (the version the side-by-side table was measured
#     with; SRT_VERSION=... to try another);
#   - the unprivileged user the cases run as, `ward-sb` (SANDBOX_USER=... to rename), with a home
#     directory. (`ward-rl` belongs to the rootless conformance suite: not touched here.)
set -euo pipefail

# 0.0.78: current on the npm registry when the cases were written (read: dist/cli.js,
# dist/sandbox/sandbox-config.js, linux-sandbox-utils.js, sandbox-manager.js).
SRT_VERSION="${SRT_VERSION:-0.0.78}"
SANDBOX_USER="${SANDBOX_USER:-ward-sb}"

[ "$(id -u)" = 0 ] || { echo "setup: run as root" >&2; exit 1; }

need=()
for pair in bwrap:bubblewrap socat:socat rg:ripgrep hyperfine:hyperfine curl:curl python3:python3 \
            /usr/bin/time:time npm:npm dnsmasq:dnsmasq-base ip:iproute2 openssl:openssl \
            tmux:tmux setpriv:util-linux; do
    bin="${pair%%:*}" pkg="${pair#*:}"
    command -v "$bin" >/dev/null 2>&1 || need+=("$pkg")
done
# ward.sh opens vim in the sandbox's terminal; any vi will do.
command -v vim >/dev/null 2>&1 || command -v vi >/dev/null 2>&1 || need+=(vim-tiny)
if [ "${#need[@]}" -gt 0 ]; then
    echo "setup: apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

have="$(srt --version 2>/dev/null || true)"
if [ "$have" != "$SRT_VERSION" ]; then
    echo "setup: npm install -g @anthropic-ai/sandbox-runtime@$SRT_VERSION (had: ${have:-none})"
    npm install -g --no-fund --no-audit "@anthropic-ai/sandbox-runtime@$SRT_VERSION" >/dev/null
fi

if ! id "$SANDBOX_USER" >/dev/null 2>&1; then
    echo "setup: useradd $SANDBOX_USER"
    useradd --create-home --shell /bin/bash --user-group "$SANDBOX_USER"
fi
home="$(getent passwd "$SANDBOX_USER" | cut -d: -f6)"
[ -d "$home" ] || { mkdir -p "$home"; chown "$SANDBOX_USER:" "$home"; }

# bwrap (and ward sandbox) need unprivileged user namespaces.
n="$(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo 0)"
[ "$n" -gt 0 ] || echo "setup: WARNING user.max_user_namespaces is $n: unprivileged sandboxes cannot start" >&2
if [ -r /proc/sys/kernel/apparmor_restrict_unprivileged_userns ] &&
   [ "$(cat /proc/sys/kernel/apparmor_restrict_unprivileged_userns)" = 1 ]; then
    echo "setup: WARNING kernel.apparmor_restrict_unprivileged_userns=1: bwrap may be refused" >&2
fi
echo "setup: ok (srt $(srt --version), bwrap $(bwrap --version | cut -d' ' -f2), user $SANDBOX_USER)"
