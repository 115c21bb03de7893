#!/bin/bash
# Credentials through a terminating proxy, measured (issue 17, "make bench"): an HTTPS POST
# /v1/messages whose Authorization placeholder is swapped for the real secret, through ward's
# proxy vs direct vs mitmproxy, in the same run, in the egress lab (README.md here).
#
#   direct     the lab's client netns (`ip netns exec`), the client holds the real secret, TLS
#              straight to the origin (the floor)
#   ward       a ward container joined to that netns with `interception.credentials` (API_KEY
#              masked, bound to POST api.test/v1/messages) and an http rule for api.test: the
#              client inside holds the placeholder; ward's proxy terminates TLS (ward's CA, from
#              SSL_CERT_FILE in init's env), swaps, and dials the origin over TLS (--egress-ca)
#   mitmproxy  mitmdump (pip, in a venv under .work/bench/mitm-venv, made here) in regular mode
#              in the same netns, with bench_creds_mitm.py doing the same swap; the client
#              CONNECTs, then TLS to mitmproxy's CA
# The origin is bench_origin.py on api.test:$BENCH_PORT (a raw-socket Python server, far faster
# than origin.py; it counts requests by sha256 of their Authorization, so the bench proves the
# real secret reached it through ward and mitmproxy). Client: bench_creds_client.py, one
# kept-alive connection, a prebuilt request.
#
# Measures: p50/p90 per request on a kept-alive connection (N requests per column in ROUNDS
# interleaved rounds) and the added p50 against direct (goal: ward <= 1 ms); requests per second
# over RPS_SECONDS on one connection and on CONC connections at once (goal: ward >= 5x
# mitmproxy). One table, also in .work/bench/egress-creds.txt. Exits non-zero when a column
# could not run (its cells show why), never on a missed goal.
#
# Run at the end of bench.sh (reusing its lab: WARD_LAB_DIR set), or alone as root (its own lab,
# suffix bcreds). Env: WARD (target/release/ward), N_CREDS (2000), ROUNDS_CREDS (4), RPS_SECONDS (5),
# CONC (4), BENCH_PORT (9443), LAB_WAIT (600), MITM_VERSION (pip spec, default mitmproxy==11.0.2: the last release for Python 3.11; an unpinned install finds no version here).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WARD=${WARD:-$REPO/target/release/ward}
N=${N_CREDS:-2000}
ROUNDS=${ROUNDS_CREDS:-4}
RPS_SECONDS=${RPS_SECONDS:-5}
CONC=${CONC:-4}
PORT=${BENCH_PORT:-9443}
LAB_WAIT=${LAB_WAIT:-600}
OUT=$REPO/.work/bench
W=$OUT/egress-creds
VENV=$OUT/mitm-venv
TABLE=$OUT/egress-creds.txt
RESULTS=$W/results.json
ID=creds-bench-$$
MITM_PORT=8899
NAME=api.test

[ "$(id -u)" = 0 ] || { echo "creds bench: must run as root (containers, network namespaces)" >&2; exit 1; }
log() { echo "creds bench: $*" >&2; }
for tool in python3 curl ip openssl dnsmasq; do
    command -v "$tool" >/dev/null || { log "$tool missing (apt-get install python3 python3-venv curl iproute2 openssl dnsmasq-base)"; exit 1; }
done

# ---------------------------------------------------------------- teardown
LAB_OWN=""
ORIGIN_PID=""
MITM_PID=""
cleanup() {
    set +e
    [ -z "$MITM_PID" ] || { kill "$MITM_PID" 2>/dev/null; wait "$MITM_PID" 2>/dev/null; }
    [ -z "$ORIGIN_PID" ] || { kill "$ORIGIN_PID" 2>/dev/null; wait "$ORIGIN_PID" 2>/dev/null; }
    [ -x "$WARD" ] && [ -d "$W/state/$ID" ] && "$WARD" --root "$W/state" delete -f "$ID" >/dev/null 2>&1
    [ -z "$LAB_OWN" ] || WARD_LAB_SUFFIX=bcreds "$HERE/lab.sh" down
    # the bench's secret is only in $W (config.json, the addon's file): gone with it
    rm -f "$W/swap.json" "$W/bundle/config.json"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$W"
mkdir -p "$W/state"

# ---------------------------------------------------------------- the lab (bench.sh's or our own)
if [ -n "${WARD_LAB_DIR:-}" ] && [ -e "$WARD_LAB_DIR/env" ]; then
    cp "$WARD_LAB_DIR/env" "$W/lab.env"
else
    LAB_OWN=1
    if ! WARD_LAB_WAIT=$LAB_WAIT WARD_LAB_SUFFIX=bcreds "$HERE/lab.sh" up >"$W/lab.env" 2>"$W/lab.err"; then
        LAB_OWN=""
        cat "$W/lab.err" >&2
        log "could not bring the lab up"
        exit 1
    fi
fi
set -a
# shellcheck disable=SC1091
. "$W/lab.env"
set +a

CA=$WARD_LAB_CA
CNS=$WARD_LAB_CLIENT_NS
ONS=$WARD_LAB_ORIGIN_NS
nsx() { ip netns exec "$CNS" "$@"; }
[ -e "$WARD_LAB_DIR/pki/$NAME.pem" ] || { log "the lab has no $NAME (lab.sh older than issue 17?)"; exit 1; }

# ---------------------------------------------------------------- the origin
rm -f "$W/origin.ready"
ip netns exec "$ONS" python3 "$HERE/bench_origin.py" --port "$PORT" --cert "$WARD_LAB_DIR/pki/$NAME.pem" \
    --key "$WARD_LAB_DIR/pki/$NAME.key" --ready "$W/origin.ready" >"$W/origin.log" 2>&1 &
ORIGIN_PID=$!
for _ in $(seq 100); do [ -e "$W/origin.ready" ] && break; sleep 0.1; done
[ -e "$W/origin.ready" ] || { log "bench_origin.py did not start: $(tail -3 "$W/origin.log")"; exit 1; }
# stats straight from the origin netns (never through a proxy)
stats_for() { # stats_for SHA256 -> requests the origin saw with that Authorization
    ip netns exec "$ONS" curl -sS -m 5 --cacert "$CA" --resolve "$NAME:$PORT:127.0.0.1" "https://$NAME:$PORT/stats" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["auth"].get(sys.argv[1], 0))' "$1"
}

# ---------------------------------------------------------------- secret and placeholder
SECRET=sk-lab-$(openssl rand -hex 24)
AUTH_SHA=$(printf 'Bearer %s' "$SECRET" | sha256sum | cut -d' ' -f1)
MITM_PH=ward-cred-$(openssl rand -hex 16)   # mitmproxy's placeholder (ward mints its own)

echo '{}' >"$RESULTS"
put() { # put KEY JSON-VALUE [merge]: merge adds to a latency series
    python3 - "$RESULTS" "$1" "$2" "${3:-}" <<'PY'
import json, sys
path, key, value, how = sys.argv[1:]
d = json.load(open(path))
v = json.loads(value)
if how == "merge" and key in d and "times" in d[key] and "times" in v:
    d[key]["times"] += v["times"]
    d[key]["errors"] += v["errors"]
    d[key]["first_errors"] = (d[key]["first_errors"] + v["first_errors"])[:3]
else:
    d[key] = v
json.dump(d, open(path, "w"), indent=1)
PY
}
fail_col() { put "fail_$1" "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$2")"; log "$1: $2"; }

# ---------------------------------------------------------------- ward's container
RFS=$W/rootfs
mkdir -p "$RFS"/{proc,dev,sys,tmp,usr,etc,bench,root}
for l in bin sbin lib lib64; do [ -e "/$l" ] && ln -s "usr/$l" "$RFS/$l"; done
# shellcheck disable=SC2153 # WARD_LAB_* come from lab.env
echo "nameserver $WARD_LAB_DNS" >"$RFS/etc/resolv.conf"
printf '127.0.0.1 localhost\n' >"$RFS/etc/hosts"
printf 'hosts: files dns\n' >"$RFS/etc/nsswitch.conf"
mkdir -p "$W/bundle"
python3 - "$W/bundle" "$RFS" "/run/netns/$CNS" "$HERE" "$NAME" <<PY
import json, sys
bundle, rootfs, netns, here, name = sys.argv[1:]
caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID", "CAP_KILL"]
def bind(src, dst):
    return {"destination": dst, "type": "bind", "source": src, "options": ["rbind", "ro", "nosuid", "nodev"]}
policy = {
    "network": {"default": "deny", "allowedDomains": [name],
                "http": [{"host": name, "allow": [{"methods": ["POST"], "paths": ["/v1/messages"]}]}]},
    "credentials": {"envVars": [{"name": "API_KEY", "mode": "mask", "injectHosts": [name],
                                 "methods": ["POST"], "paths": ["/v1/messages"]}]},
}
config = {
    "ociVersion": "1.0.2",
    "process": {
        "terminal": False, "user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sleep", "3600"],
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "API_KEY=$SECRET"],
        "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 4096}],
        "noNewPrivileges": True,
        "interception": policy,
    },
    "root": {"path": rootfs, "readonly": True},
    "hostname": "bench",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755", "size=65536k"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
        bind("/usr", "/usr"), bind(here, "/bench"),
    ],
    "linux": {"namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")] + [{"type": "network", "path": netns}]},
}
json.dump(config, open(f"{bundle}/config.json", "w"), indent=1)
PY
chmod 600 "$W/bundle/config.json"
WARD_OK=""
wrt() { "$WARD" --root "$W/state" --egress-resolver "$WARD_LAB_DNS:53" --egress-ca "$CA" "$@"; }
if [ ! -x "$WARD" ]; then
    fail_col ward "no ward binary at $WARD (make build, or WARD=...)"
elif ! wrt run -d --bundle "$W/bundle" "$ID" </dev/null >"$W/run.out" 2>&1; then
    fail_col ward "ward run failed (credentials, http rules over TLS and --egress-ca are issue 17): $(tail -3 "$W/run.out" | tr '\n' ' ' | cut -c1-300)"
else
    WARD_OK=1
fi
cx() { wrt exec "$ID" "$@"; }
CLIENT_IN=(python3 /bench/bench_creds_client.py "$NAME" "$PORT")
CLIENT_OUT=(python3 "$HERE/bench_creds_client.py" "$NAME" "$PORT")

# ---------------------------------------------------------------- mitmproxy
MITM_OK=""
if [ ! -x "$VENV/bin/mitmdump" ]; then
    log "installing ${MITM_VERSION:-mitmproxy==11.0.2} into $VENV (pip)"
    { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q "${MITM_VERSION:-mitmproxy==11.0.2}"; } >"$W/pip.log" 2>&1 ||
        fail_col mitmproxy "pip install failed: $(tail -2 "$W/pip.log" | tr '\n' ' ' | cut -c1-300)"
fi
if [ -x "$VENV/bin/mitmdump" ]; then
    python3 -c 'import json,sys; json.dump(dict(zip(["host","method","path","placeholder","secret"], sys.argv[1:])), open(sys.argv[6], "w"))' \
        "$NAME" POST /v1/messages "$MITM_PH" "$SECRET" "$W/swap.json"
    chmod 600 "$W/swap.json"
    mkdir -p "$W/mitm-conf"
    BENCH_MITM_SWAP=$W/swap.json nsx "$VENV/bin/mitmdump" -q --listen-host 127.0.0.1 --listen-port "$MITM_PORT" \
        --set confdir="$W/mitm-conf" --set ssl_verify_upstream_trusted_ca="$CA" \
        -s "$HERE/bench_creds_mitm.py" >"$W/mitm.log" 2>&1 &
    MITM_PID=$!
    for _ in $(seq 150); do
        [ -e "$W/mitm-conf/mitmproxy-ca-cert.pem" ] && nsx bash -c "exec 3<>/dev/tcp/127.0.0.1/$MITM_PORT" 2>/dev/null && break
        sleep 0.2
    done
    if nsx bash -c "exec 3<>/dev/tcp/127.0.0.1/$MITM_PORT" 2>/dev/null; then MITM_OK=1
    else fail_col mitmproxy "mitmdump did not listen: $(tail -3 "$W/mitm.log" | tr '\n' ' ')"; fi
fi
MITM_CA=$W/mitm-conf/mitmproxy-ca-cert.pem

# run_col COL MODE AMOUNT: one client of column COL; its JSON line
run_col() {
    case $1 in
    direct) nsx env API_KEY="$SECRET" "${CLIENT_OUT[@]}" "$2" "$3" --cafile "$CA" --token-env API_KEY ;;
    ward) cx "${CLIENT_IN[@]}" "$2" "$3" --cafile init --token-env API_KEY ;;
    mitmproxy) nsx env MITM_TOKEN="$MITM_PH" "${CLIENT_OUT[@]}" "$2" "$3" --cafile "$MITM_CA" \
        --proxy "127.0.0.1:$MITM_PORT" --token-env MITM_TOKEN ;;
    esac
}
# run_json COL MODE AMOUNT: run_col's line, or an error line when the client failed
run_json() {
    local out
    if out=$(run_col "$@" 2>>"$W/client-$1.err") && [ -n "$out" ]; then echo "$out"
    else python3 -c 'import json,sys; print(json.dumps({"times": [], "errors": 1, "first_errors": ["client failed: " + sys.argv[1][-200:]]}))' \
        "$(tail -1 "$W/client-$1.err" 2>/dev/null)"; fi
}
col_ok() { case $1 in direct) true ;; ward) [ -n "$WARD_OK" ] ;; mitmproxy) [ -n "$MITM_OK" ] ;; esac; }
COLS=(direct ward mitmproxy)

# a first request per column: it must work and the origin must see the real secret
for c in "${COLS[@]}"; do
    col_ok "$c" || continue
    before=$(stats_for "$AUTH_SHA")
    if ! j=$(run_col "$c" lat 1 2>"$W/probe-$c.err"); then
        fail_col "$c" "client failed: $(tail -3 "$W/probe-$c.err" | tr '\n' ' ' | cut -c1-300)"
        [ "$c" = ward ] && WARD_OK=""; [ "$c" = mitmproxy ] && MITM_OK=""
        continue
    fi
    after=$(stats_for "$AUTH_SHA")
    errs=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["errors"], d["first_errors"][:1])' "$j")
    if [ "${errs%% *}" != 0 ] || [ $((after - before)) -lt 51 ]; then
        fail_col "$c" "probe: errors ${errs}, origin saw the real secret in $((after - before)) of 51 requests"
        [ "$c" = ward ] && WARD_OK=""; [ "$c" = mitmproxy ] && MITM_OK=""
    else
        put "secret_seen_$c" "$((after - before))"
    fi
done

# ---------------------------------------------------------------- latency, interleaved rounds
per=$(( (N + ROUNDS - 1) / ROUNDS ))
for r in $(seq "$ROUNDS"); do
    log "latency round $r of $ROUNDS, $per requests per column"
    for c in "${COLS[@]}"; do
        col_ok "$c" || continue
        put "lat_$c" "$(run_json "$c" lat "$per")" merge
    done
done

# ---------------------------------------------------------------- requests per second
for conc in 1 "$CONC"; do
    for c in "${COLS[@]}"; do
        col_ok "$c" || continue
        log "rps, $c, $conc connection(s), $RPS_SECONDS s"
        before=$(stats_for "$AUTH_SHA")
        pids=()
        for k in $(seq "$conc"); do
            run_col "$c" rps "$RPS_SECONDS" >"$W/rps-$c-$conc-$k.json" 2>"$W/rps-$c-$conc-$k.err" & pids+=($!)
        done
        for p in "${pids[@]}"; do wait "$p" || true; done
        after=$(stats_for "$AUTH_SHA")
        put "rps_${c}_$conc" "$(python3 - "$W" "$c" "$conc" "$((after - before))" <<'PY'
import json, sys
w, c, conc, seen = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
tot, secs, errs, first = 0, 0.0, 0, []
for k in range(1, conc + 1):
    try:
        d = json.load(open(f"{w}/rps-{c}-{conc}-{k}.json"))
    except (OSError, ValueError):
        errs += 1
        first.append(open(f"{w}/rps-{c}-{conc}-{k}.err").read()[-200:])
        continue
    tot += d["requests"]; secs = max(secs, d["seconds"]); errs += d["errors"]; first += d["first_errors"]
print(json.dumps({"requests": tot, "seconds": secs, "rps": tot / secs if secs else 0,
                  "errors": errs, "first_errors": first[:3], "secret_seen": seen}))
PY
)"
    done
done

# ---------------------------------------------------------------- the table
CORES=$(nproc)
python3 - "$RESULTS" "$N" "$CONC" "$RPS_SECONDS" "$CORES" "$PORT" <<'PY' | tee "$TABLE"
import json, sys
r = json.load(open(sys.argv[1]))
n, conc, secs, cores, port = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
cols = ["direct", "ward", "mitmproxy"]
notes = []

def pct(t, p):
    t = sorted(t)
    return t[min(len(t) - 1, int(p * len(t)))] if t else None

def f(x, d=3):
    return "-" if x is None else f"{x:.{d}f}"

def yes(ok):
    return "-" if ok is None else ("met" if ok else "NOT met")

lat = {}
for c in cols:
    if f"fail_{c}" in r:
        notes.append(f"{c}: {r['fail_' + c]}")
    l = r.get(f"lat_{c}")
    if l:
        lat[c] = (pct(l["times"], 0.5), pct(l["times"], 0.9), len(l["times"]))
        if l["errors"]:
            notes.append(f"latency {c}: {l['errors']} errors: {l['first_errors']}")
    else:
        lat[c] = (None, None, 0)
rows = [["p50 / p90 per request, kept-alive (ms)"] + [f"{f(lat[c][0])} / {f(lat[c][1])}" for c in cols] + ["", ""]]
d50 = lat["direct"][0]
add = {c: (lat[c][0] - d50) if lat[c][0] is not None and d50 is not None else None for c in cols}
rows.append(["added p50 vs direct (ms)", ""] + [f"{add[c]:+.3f}" if add[c] is not None else "-" for c in cols[1:]] +
            ["ward <= 1 ms", yes(None if add["ward"] is None else add["ward"] <= 1.0)])
rps = {}
for k in (1, conc):
    for c in cols:
        x = r.get(f"rps_{c}_{k}")
        rps[(c, k)] = x["rps"] if x else None
        if x and x["errors"]:
            notes.append(f"rps {c} x{k}: {x['errors']} errors: {x['first_errors']}")
        if x and c != "direct" and x["secret_seen"] < x["requests"]:
            notes.append(f"rps {c} x{k}: the origin saw the real secret in {x['secret_seen']} of {x['requests']} requests")
    ratio = (rps[("ward", k)] / rps[("mitmproxy", k)]) if rps[("ward", k)] and rps[("mitmproxy", k)] else None
    cells = [f"{rps[(c, k)]:.0f}" if rps[(c, k)] else "-" for c in cols]
    if ratio is not None:
        cells[2] += f" (ward {ratio:.1f}x)"
    rows.append([f"requests/s, {k} kept-alive connection(s)"] + cells + ["ward >= 5x mitmproxy", yes(None if ratio is None else ratio >= 5)])
    if rps[("ward", k)] and rps[("direct", k)] and rps[("ward", k)] >= 0.85 * rps[("direct", k)]:
        notes.append(f"x{k}: ward reaches {rps[('ward', k)] / rps[('direct', k)]:.0%} of direct: the origin (or the client) is the bottleneck, "
                     "so ward's ratio to mitmproxy is a lower bound")
hdr = ["measure", "direct", "ward (swap)", "mitmproxy (swap)", "goal", "verdict"]
w = [max(len(str(x[i])) for x in rows + [hdr]) for i in range(len(hdr))]
line = lambda x: "| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(x)) + " |"
print(line(hdr))
print("|" + "|".join("-" * (k + 2) for k in w) + "|")
for row in rows:
    print(line(row))
print(f"POST /v1/messages over TLS to api.test:{port} (bench_origin.py), one kept-alive connection per client;")
print(f"latency: {lat['direct'][2]} timed requests per column in interleaved rounds; requests/s over {secs} s per cell.")
print("ward: TLS terminated by ward's proxy, placeholder swapped for the secret, TLS again to the origin;")
print("mitmproxy: CONNECT, then the same in mitmdump with bench_creds_mitm.py; direct: the client holds the secret.")
print(f"client, proxy and origin share this machine's {cores} CPU(s): compare columns of this run, not runs.")
for note in notes:
    print("PROBLEM: " + note)
PY
# exit status: every column ran
for c in "${COLS[@]}"; do col_ok "$c" || { log "column $c did not run"; exit 1; }; done
