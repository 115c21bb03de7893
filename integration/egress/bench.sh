#!/bin/bash
# Egress by domain name, measured (issue 16, "make bench"): ward's per-container proxy against
# the same client without it and against tinyproxy, in the egress lab (README.md here).
#
#   direct     the lab's client netns, no proxy (`ip netns exec`)
#   ward       a ward container joined to that netns, policy allowing the lab names:
#              transparent (DNS answered by ward, connections steered to its listener) and
#              explicit (HTTP_PROXY/HTTPS_PROXY from `proxyEnv: true`: absolute-form GET, CONNECT)
#   tinyproxy  Debian's tinyproxy, a plain process in the same client netns on 127.0.0.1
#              (explicit: absolute-form GET, CONNECT), so its upstream leaves by the same path
#              as ward's proxy (whose upstream is the container's netns: it has a route out)
#
# Measures: added latency per new connection (p50/p90 of N sequential small requests, HTTP and
# spliced HTTPS), 1 GiB throughput (HTTP and HTTPS; HTTPS is never terminated by a proxy), the
# proxies' RSS idle and after the transfers, and the container cycle (run+delete of true) with
# and without domain rules. No assertions on time: one table with the issue's goals beside,
# also written to .work/bench/egress.txt. Exits non-zero only when something could not run.
# Then, in the same lab, bench_creds.sh (issue 17: a terminated HTTPS request with a credential
# swap, ward vs direct vs mitmproxy; its own table in .work/bench/egress-creds.txt).
#
# Env: WARD (default target/release/ward), N (requests per latency series, 200), ROUNDS (the
# series interleaved in rounds, 10), SIZE (bytes per transfer, 1073741824), TRIES (transfers per
# cell, the best counts, 2), RUNS (cycles per variant, 30), WARD_BENCH_SUFFIX (lab suffix, bench),
# LAB_WAIT (seconds to wait for another lab to go down, 600), PROFILE=1 (not in the table:
# strace -c and perf stat of ward's proxy during one more HTTP transfer, and strace -c over 105
# new HTTPS connections, into .work/bench/egress/profile-*.txt).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WARD=${WARD:-$REPO/target/release/ward}
N=${N:-200}
SIZE=${SIZE:-1073741824}
RUNS=${RUNS:-30}
ROUNDS=${ROUNDS:-10}
TRIES=${TRIES:-2}
SFX=${WARD_BENCH_SUFFIX:-bench}
LAB_WAIT=${LAB_WAIT:-600}
OUT=$REPO/.work/bench
W=$OUT/egress
ROOT=$W/state                       # ward --root
RESULTS=$W/results.json
TABLE=$OUT/egress.txt
ID=egress-bench-$$

[ "$(id -u)" = 0 ] || { echo "egress bench: must run as root (containers, network namespaces)" >&2; exit 1; }
for tool in "$WARD" python3 curl ip hyperfine tinyproxy openssl dnsmasq; do
    command -v "$tool" >/dev/null || {
        echo "egress bench: $tool missing (apt-get install curl iproute2 hyperfine tinyproxy openssl dnsmasq-base; make build)" >&2
        exit 1
    }
done

log() { echo "egress bench: $*" >&2; }
rt() { "$WARD" --root "$ROOT" --egress-resolver "$WARD_LAB_DNS:53" "$@"; }

# ---------------------------------------------------------------- teardown
LAB_UP=""
TINY_PID=""
cleanup() {
    set +e
    [ -z "$TINY_PID" ] || { kill "$TINY_PID" 2>/dev/null; wait "$TINY_PID" 2>/dev/null; }
    if [ -d "$ROOT" ]; then
        for d in "$ROOT"/*/; do
            [ -d "$d" ] && "$WARD" --root "$ROOT" delete -f "$(basename "$d")" >/dev/null 2>&1
        done
    fi
    [ -z "$LAB_UP" ] || WARD_LAB_SUFFIX=$SFX "$HERE/lab.sh" down
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- the lab (one per machine)
rm -rf "$W"
mkdir -p "$W" "$ROOT"
LAB_UP=1
if ! WARD_LAB_WAIT=$LAB_WAIT WARD_LAB_SUFFIX=$SFX "$HERE/lab.sh" up >"$W/lab.env" 2>"$W/lab.err"; then
    LAB_UP=""
    cat "$W/lab.err" >&2
    log "could not bring the lab up"
    exit 1
fi
set -a
# shellcheck disable=SC1091
. "$W/lab.env"
set +a
NAME=allowed.test
CA=$WARD_LAB_CA
CNS=$WARD_LAB_CLIENT_NS
nsx() { ip netns exec "$CNS" "$@"; }

echo '{}' >"$RESULTS"
put() { # put KEY JSON-VALUE [merge|try]: merge adds to a latency series, try to a list
    python3 - "$RESULTS" "$1" "$2" "${3:-}" <<'PY'
import json, sys
path, key, value, how = sys.argv[1:]
d = json.load(open(path))
v = json.loads(value)
if how == "merge" and key in d:
    old = d[key]
    old["times"] += v["times"]
    old["errors"] += v["errors"]
    old["first_errors"] = (old["first_errors"] + v["first_errors"])[:3]
elif how == "try":
    d.setdefault(key, []).append(v)
else:
    d[key] = v
json.dump(d, open(path, "w"), indent=1)
PY
}

# ---------------------------------------------------------------- the container
# A skeleton rootfs; the host's /usr (curl, python3) bind-mounted read-only, the lab CA at
# /etc/lab-ca.pem, this directory at /bench.
RFS=$W/rootfs
mkdir -p "$RFS"/{proc,dev,sys,tmp,usr,etc,bench,root}
for l in bin sbin lib lib64; do [ -e "/$l" ] && ln -s "usr/$l" "$RFS/$l"; done
echo "nameserver $WARD_LAB_DNS" >"$RFS/etc/resolv.conf"
printf '127.0.0.1 localhost\n' >"$RFS/etc/hosts"
printf 'hosts: files dns\n' >"$RFS/etc/nsswitch.conf"
touch "$RFS/etc/lab-ca.pem"
bundle() { # bundle DIR NETNS(path|new) POLICY-JSON(or "") ARGS-JSON
    mkdir -p "$1"
    python3 - "$1" "$RFS" "$2" "$3" "$4" "$CA" "$HERE" <<'PY'
import json, sys
bundle, rootfs, netns, policy, args, ca, here = sys.argv[1:]
caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID",
        "CAP_NET_BIND_SERVICE", "CAP_KILL"]
ns = {"type": "network"}
if netns != "new":
    ns["path"] = netns
def bind(src, dst):
    return {"destination": dst, "type": "bind", "source": src, "options": ["rbind", "ro", "nosuid", "nodev"]}
config = {
    "ociVersion": "1.0.2",
    "process": {
        "terminal": False, "user": {"uid": 0, "gid": 0}, "cwd": "/", "args": json.loads(args),
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"],
        "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 4096}],
        "noNewPrivileges": True,
    },
    "root": {"path": rootfs, "readonly": True},
    "hostname": "bench",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755", "size=65536k"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
        bind("/usr", "/usr"), bind(ca, "/etc/lab-ca.pem"), bind(here, "/bench"),
    ],
    "linux": {"namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")] + [ns]},
}
if policy:
    config["process"]["interception"] = json.loads(policy)
json.dump(config, open(f"{bundle}/config.json", "w"), indent=1)
PY
}
POLICY='{"network": {"allowedDomains": ["allowed.test"], "proxyEnv": true}}'
bundle "$W/client" "/run/netns/$CNS" "$POLICY" '["sleep", "3600"]'
rt run -d --bundle "$W/client" "$ID" </dev/null >"$W/run.out" 2>&1 || { cat "$W/run.out" >&2; exit 1; }
PROXY=$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])).get("proxy"); print(p[0] if p else "")' "$ROOT/$ID/state.json")
[ -n "$PROXY" ] || { log "no proxy pid in $ROOT/$ID/state.json"; exit 1; }
cx() { rt exec "$ID" "$@"; }
# `proxyEnv: true` puts the proxy variables in init's env, not in config.json, and `exec` takes
# its env from config.json (runc's rule): the explicit clients get init's, read from /proc.
INIT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$ROOT/$ID/state.json")
PROXY_ENV=()
while IFS= read -r kv; do PROXY_ENV+=(--env "$kv"); done < <(tr '\0' '\n' <"/proc/$INIT/environ" | grep -i '^[a-z]*_proxy=')
[ ${#PROXY_ENV[@]} -gt 0 ] || { log "proxyEnv: no *_PROXY in the env of init (pid $INIT)"; exit 1; }
cxe() { rt exec "${PROXY_ENV[@]}" "$ID" "$@"; }

# ---------------------------------------------------------------- tinyproxy (the peer)
cat >"$W/tinyproxy.conf" <<EOF
User nobody
Group nogroup
Port 8888
Listen 127.0.0.1
Timeout 600
MaxClients 1024
LogLevel Error
DisableViaHeader Yes
ConnectPort 443
EOF
nsx tinyproxy -d -c "$W/tinyproxy.conf" >"$W/tinyproxy.log" 2>&1 &
TINY_PID=$!
for _ in $(seq 50); do nsx bash -c 'exec 3<>/dev/tcp/127.0.0.1/8888' 2>/dev/null && break; sleep 0.1; done
TINY=127.0.0.1:8888

rss() { # rss PID -> {"vmrss_kib": .., "private_kib": ..}
    python3 - "$1" <<'PY'
import json, sys
pid = sys.argv[1]
vm = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))
priv = sum(int(l.split()[1]) for l in open(f"/proc/{pid}/smaps_rollup")
           if l.startswith(("Private_Dirty:", "Private_Clean:")))
print(json.dumps({"vmrss_kib": vm, "private_kib": priv}))
PY
}
put rss_idle_ward "$(rss "$PROXY")"
put rss_idle_tinyproxy "$(rss "$TINY_PID")"
log "proxy pid $PROXY, tinyproxy pid $TINY_PID; idle RSS measured"

# ---------------------------------------------------------------- latency
# ROUNDS rounds, each N/ROUNDS requests per column in turn: drift in the shared machine's load
# then falls on every column alike.
CLIENT=/bench/bench_client.py
per=$(( (N + ROUNDS - 1) / ROUNDS ))
for scheme in http https; do
    log "latency, $scheme, $N requests per column in $ROUNDS rounds"
    for _ in $(seq "$ROUNDS"); do
        put "lat_${scheme}_direct" "$(nsx python3 "$HERE/bench_client.py" "$NAME" "$scheme" "$per" --cafile "$CA")" merge
        put "lat_${scheme}_transparent" "$(cx python3 "$CLIENT" "$NAME" "$scheme" "$per" --cafile /etc/lab-ca.pem)" merge
        put "lat_${scheme}_explicit" "$(cxe python3 "$CLIENT" "$NAME" "$scheme" "$per" --cafile /etc/lab-ca.pem --proxy env)" merge
        put "lat_${scheme}_tinyproxy" "$(nsx python3 "$HERE/bench_client.py" "$NAME" "$scheme" "$per" --cafile "$CA" --proxy "$TINY")" merge
    done
done

# upstream DNS queries per new connection (the lab's dnsmasq logs each query it gets): 55
# connections (5 warm-up) through each proxy
dnsq() { grep -c 'query\[' "$WARD_LAB_DIR/dnsmasq.log" || true; }
q0=$(dnsq)
cx python3 "$CLIENT" "$NAME" http 50 --cafile /etc/lab-ca.pem >/dev/null
sleep 0.5
q1=$(dnsq)
nsx python3 "$HERE/bench_client.py" "$NAME" http 50 --cafile "$CA" --proxy "$TINY" >/dev/null
sleep 0.5
q2=$(dnsq)
# and what one such query costs from the client netns (p50 of 200 A queries over UDP)
put dns_rtt "$(nsx python3 - "$WARD_LAB_DNS" "$NAME" <<'PY'
import json, socket, struct, sys, time
server, name = sys.argv[1], sys.argv[2]
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((server, 53))
times = []
for _ in range(210):
    t0 = time.perf_counter()
    s.send(q)
    s.recv(512)
    times.append((time.perf_counter() - t0) * 1000)
times = sorted(times[10:])
print(json.dumps({"p50": times[len(times) // 2]}))
PY
)"
put dns_per_conn "{\"transparent\": $(((q1 - q0) * 100 / 55)), \"tinyproxy\": $(((q2 - q1) * 100 / 55))}"

# ---------------------------------------------------------------- throughput
# curl -w: code, bytes, bytes/s, seconds; exit status appended (a truncated body shows as a
# short size and a non-zero status, reported in the table).
FMT='{"code": "%{http_code}", "size": %{size_download}, "speed": %{speed_download}, "time": %{time_total}'
xfer() { # xfer KEY CMD... (a curl command line without its output flags)
    local key=$1 out rc=0
    shift
    out=$("$@" -s -S -o /dev/null -w "$FMT" 2>"$W/curl.err") || rc=$?
    put "$key" "$out, \"rc\": $rc, \"err\": $(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read().strip()[:200]))' "$W/curl.err")}" try
}
for try in $(seq "$TRIES"); do
  for scheme in http https; do
    url=$scheme://$NAME/bytes/$SIZE
    log "throughput, $scheme, $SIZE bytes per column, try $try of $TRIES"
    xfer "tp_${scheme}_direct" nsx curl --noproxy '*' --cacert "$CA" "$url"
    xfer "tp_${scheme}_transparent" cx curl --noproxy '*' --cacert /etc/lab-ca.pem "$url"
    xfer "tp_${scheme}_explicit" cxe curl --cacert /etc/lab-ca.pem "$url"
    xfer "tp_${scheme}_tinyproxy" nsx curl -x "http://$TINY" --cacert "$CA" "$url"
  done
done
if [ -n "${PROFILE:-}" ]; then
    # PROFILE=1: where the proxy's time goes during one more HTTP transfer (not in the table):
    # its syscalls (strace -c; slows it down) and its CPU use (perf stat), in $W/profile-*.txt.
    url=http://$NAME/bytes/$SIZE
    strace -c -f -p "$PROXY" -o "$W/profile-strace.txt" & st=$!
    sleep 1
    xfer prof cx curl --noproxy '*' "$url"
    kill -INT $st; wait $st || true
    if command -v perf >/dev/null; then
        perf stat -e task-clock,context-switches,cpu-migrations -p "$PROXY" -o "$W/profile-perf.txt" & pf=$!
        sleep 1
        xfer prof cx curl --noproxy '*' "$url"
        kill -INT $pf; wait $pf || true
    fi
    # and per new connection: 105 HTTPS connections through the transparent listener
    strace -c -f -p "$PROXY" -o "$W/profile-strace-conns.txt" & st=$!
    sleep 1
    cx python3 "$CLIENT" "$NAME" https 100 --cafile /etc/lab-ca.pem >/dev/null
    kill -INT $st; wait $st || true
    log "profile: $W/profile-strace.txt $W/profile-perf.txt $W/profile-strace-conns.txt"
fi
put rss_after_ward "$(rss "$PROXY")"
put rss_after_tinyproxy "$(rss "$TINY_PID")"
alive() { [ -d "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat")" != Z ]; }
put proxy_alive_after "$(alive "$PROXY" && echo true || echo false)"
put tinyproxy_alive_after "$(alive "$TINY_PID" && echo true || echo false)"
rt delete -f "$ID" >/dev/null

# ---------------------------------------------------------------- container cycle
# run+delete of true in a new netns, without and with domain rules (with: the proxy, its
# listeners and the kernel programs; without: none of it, "cost when unused is zero"), and with
# IP rules only (the wall and its supervisor, no proxy) to tell the proxy's share from theirs.
bundle "$W/cycle-none" new "" '["true"]'
bundle "$W/cycle-ip" new '{"network": {"default": "deny", "allow": ["10.0.0.0/8:443"]}}' '["true"]'
bundle "$W/cycle-domains" new '{"network": {"allowedDomains": ["allowed.test"]}}' '["true"]'
# proof that the variant without rules starts no proxy
bundle "$W/probe-none" new "" '["sleep", "30"]'
rt run -d --bundle "$W/probe-none" "$ID-none" </dev/null >/dev/null
put none_proxy "$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])).get("proxy")))' "$ROOT/$ID-none/state.json")"
rt delete -f "$ID-none" >/dev/null
for v in none ip domains; do
    counter=$W/counter-$v
    echo 0 >"$counter"
    log "cycle, $v, $RUNS runs"
    # shellcheck disable=SC2086 # HYPERFINE_FLAGS: several flags, split on purpose
    hyperfine ${HYPERFINE_FLAGS:-} --runs "$RUNS" --warmup 3 --shell bash --export-json "$W/cycle-$v.json" \
        --command-name "$v" \
        "n=\$((\$(cat $counter) + 1)); echo \$n > $counter; id=cyc-$v-\$n; $WARD --root $ROOT --egress-resolver $WARD_LAB_DNS:53 run --bundle $W/cycle-$v \$id </dev/null && { $WARD --root $ROOT delete \$id 2>/dev/null || true; }" \
        >"$W/cycle-$v.out"
done

# ---------------------------------------------------------------- the table
python3 - "$RESULTS" "$W" "$N" "$SIZE" <<'PY' | tee "$TABLE"
import json, sys
r = json.load(open(sys.argv[1]))
work, n, size = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
cols = ["direct", "transparent", "explicit", "tinyproxy"]
heads = ["direct", "ward transparent", "ward explicit", "tinyproxy"]
rows = []
notes = []

def f(x, d=2):
    return "-" if x is None else f"{x:.{d}f}"

def yes(ok):
    return "met" if ok else "NOT met"

def pct(times, p):
    t = sorted(times)
    return t[min(len(t) - 1, int(p * len(t)))] if t else None

for s in ("http", "https"):
    lat = {c: r[f"lat_{s}_{c}"] for c in cols}
    for c in cols:
        lat[c]["p50"] = pct(lat[c]["times"], 0.5)
        lat[c]["p90"] = pct(lat[c]["times"], 0.9)
    for c in cols:
        if lat[c]["errors"]:
            notes.append(f"latency {s} {c}: {lat[c]['errors']} errors: {lat[c]['first_errors']}")
    rows.append([f"{s.upper()} new connection p50 / p90 (ms)"] +
                [f"{f(lat[c]['p50'])} / {f(lat[c]['p90'])}" for c in cols] + ["", ""])
    d = lat["direct"]["p50"]
    add = {c: None if d is None or lat[c]["p50"] is None else lat[c]["p50"] - d for c in cols[1:]}
    ok = add["transparent"] is not None and add["tinyproxy"] is not None
    rows.append([f"{s.upper()} added p50 (ms)", ""] + [f"{add[c]:+.2f}" if add[c] is not None else "-" for c in cols[1:]] +
                ["<= 0.3; < tinyproxy",
                 f"{yes(ok and add['transparent'] <= 0.3)}; {yes(ok and add['transparent'] < add['tinyproxy'])}"])
for s in ("http", "https"):
    tp = {}
    for c in cols:
        good = []
        for t in r[f"tp_{s}_{c}"]:
            if t["rc"] != 0 or t["code"] != "200" or t["size"] != size:
                notes.append(f"transfer {s} {c}: curl exit {t['rc']}, HTTP {t['code']}, {t['size']} of {size} bytes: {t['err']}")
            else:
                good.append(t)
        tp[c] = max(good, key=lambda t: t["speed"]) if good else {"speed": 0}
    d = tp["direct"]["speed"]
    cell = lambda c: f"{tp[c]['speed'] / 1e6:.0f} ({tp[c]['speed'] / d:.0%})" if d else "-"
    goal, verdict = "", ""
    if s == "https":
        ratio = tp["transparent"]["speed"] / d
        goal = ">= 90% of direct; > tinyproxy"
        verdict = f"{yes(ratio >= 0.9)}; {yes(tp['transparent']['speed'] > tp['tinyproxy']['speed'])}"
    rows.append([f"{s.upper()} {size / 2**20:g} MiB transfer, MB/s (% of direct)"] + [cell(c) for c in cols] + [goal, verdict])
dq = r["dns_per_conn"]
rows.append(["upstream DNS queries per new connection", "0 (resolved once)", f"{dq['transparent'] / 100:.2f}", "",
             f"{dq['tinyproxy'] / 100:.2f}", f"one query: {r['dns_rtt']['p50']:.2f} ms p50", ""])
mib = lambda k: r[k]["vmrss_kib"] / 1024
pmib = lambda k: r[k]["private_kib"] / 1024
rows.append(["RSS idle: VmRSS / private (MiB)", "", f"{mib('rss_idle_ward'):.1f} / {pmib('rss_idle_ward'):.1f}", "(same process)",
             f"{mib('rss_idle_tinyproxy'):.1f} / {pmib('rss_idle_tinyproxy'):.1f}", "<= 5 MiB",
             yes(r["rss_idle_ward"]["vmrss_kib"] <= 5 * 1024)])
rows.append(["RSS after transfers: VmRSS / private (MiB)", "", f"{mib('rss_after_ward'):.1f} / {pmib('rss_after_ward'):.1f}", "(same process)",
             f"{mib('rss_after_tinyproxy'):.1f} / {pmib('rss_after_tinyproxy'):.1f}", "", ""])
cyc = {v: json.load(open(f"{work}/cycle-{v}.json"))["results"][0] for v in ("none", "ip", "domains")}
for v, label in (("none", "without rules"), ("ip", "with IP rules only (no proxy)"), ("domains", "with domain rules")):
    c = cyc[v]
    verdict = "" if v != "none" else yes(r["none_proxy"] is None) + f" (state.json proxy: {json.dumps(r['none_proxy'])})"
    rows.append([f"run+delete of true {label}, mean (min) ms", "", f"{c['mean'] * 1000:.1f} ({c['min'] * 1000:.1f})", "", "",
                 "" if v != "none" else "unused: no proxy", verdict])
if not r["proxy_alive_after"]:
    notes.append("ward's proxy was NOT alive after the transfers")
if not r["tinyproxy_alive_after"]:
    notes.append("tinyproxy was NOT alive after the transfers")

hdr = ["measure"] + heads + ["goal", "verdict"]
w = [max(len(str(x[i])) for x in rows + [hdr]) for i in range(len(hdr))]
line = lambda x: "| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(x)) + " |"
print(line(hdr))
print("|" + "|".join("-" * (k + 2) for k in w) + "|")
for row in rows:
    print(line(row))
print(f"latency: {len(r['lat_http_direct']['times'])} sequential requests per cell (interleaved rounds), each a new connection")
print("(python, GET /, Connection: close). Transfers: curl, the best of the tries per cell.")
print("HTTPS via a proxy is a CONNECT tunnel (or, transparent, a spliced stream): TLS end to end, never terminated.")
print("ratios are from this one run; the machine is shared: compare columns, not runs.")
if max(t["speed"] for t in r["tp_https_direct"]) < 0.6 * max(t["speed"] for t in r["tp_http_direct"]):
    print("HTTPS direct runs at the origin's TLS speed (python ssl), so the HTTPS ratios show how much the")
    print("proxies slow a TLS-bound stream; the HTTP row shows their own copy cost against a fast origin.")
for s in ("http", "https"):
    print(f"{s.upper()} transfer tries, MB/s: " + "; ".join(
        f"{h} " + ", ".join(f"{t['speed'] / 1e6:.0f}" for t in r[f"tp_{s}_{c}"]) for c, h in zip(cols, heads)))
for note in notes:
    print("PROBLEM: " + note)
PY

# ---------------------------------------------------------------- credentials (issue 17)
# A terminated HTTPS request with a credential swap: ward vs direct vs mitmproxy, in this lab
# (bench_creds.sh reuses it through WARD_LAB_DIR); its own table, .work/bench/egress-creds.txt.
log "credentials: bench_creds.sh"
"$HERE/bench_creds.sh"
