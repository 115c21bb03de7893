#!/bin/bash
# End-to-end proof of issue 17 (HTTP method/path rules over TLS, credentials that never enter
# the container): real containers in the egress lab (README.md here), the lab's api.test origin
# (its request record, WARD_LAB_RECORD, shows what reached it), ward's terminating proxy between.
# See the "e2e_creds" section of integration/egress/README.md.
#
# Prints `PASS NAME: got` / `FAIL NAME: want W, got G` per check (a check ward cannot pass yet
# FAILS, it is never skipped), then `N passed, M failed`; exits non-zero when anything failed.
# Everything it made (containers, cgroups, the lab, files) is removed on exit, also on failure
# or a signal.
#
#   baseline-*  the lab's client netns without ward: the origin takes what ward must refuse
#   K-*         ward: a container with `interception.credentials` (API_KEY and ECHO_KEY from
#               process.env, the "api_key" of /creds/config.json by `extract`) bound to api.test,
#               http rules for api.test and allowed.test, default-deny egress; ward runs with
#               `--egress-ca` (the lab's CA) and `--egress-resolver` (the lab's DNS)
#   R-*         create refusals (credentials without default-deny egress: no domain rules,
#               "default": "allow", an address allowed past the proxy; env var absent): fail, and
#               leave no state dir, cgroup, mount, process or proxy behind
#   H-*         runc with ward's hook (hooks/): http path rules over plain HTTP work; credentials
#               are refused by the hook, leaving nothing behind
#   A-*         ward, AWS pairs (item 7): a container with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
#               and AWS_SESSION_TOKEN masked, bound to api.test /aws/*; botocore signs inside
#               with the placeholders, the origin verifies SigV4 with botocore and the real pair
#               (baseline-aws-* show the origin's verifier accepts and refuses without ward)
#
# Env: WARD (default target/release/ward), RUNC (runc on PATH), WARD_E2E_SUFFIX (lab suffix,
# default ecr<pid>), WARD_E2E_KEEP=1 (keep $W for reading; it holds the test secrets),
# WARD_E2E_LAB_WAIT (seconds to wait for another lab, 180), WARD_E2E_PARTS (which groups run,
# default "K R H A"; the baselines always run), WARD_E2E_BOTOCORE (pip spec, default
# botocore>=1.36: installed with pip into .work/egress-py when the host's /usr/bin/python3 has no
# botocore that recent).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WARD=${WARD:-$REPO/target/release/ward}
RUNC=${RUNC:-$(command -v runc || echo runc)}
SFX=${WARD_E2E_SUFFIX:-ecr$$}
SFX=${SFX:0:10}
W=/tmp/ward-e2e-$SFX
CG=ward-e2e-$SFX
WROOT=$W/ward-root
RROOT=$W/runc-root
HROOT=$W/hook-root
T=60

[ "$(id -u)" = 0 ] || { echo "e2e_creds.sh: must run as root (containers, network namespaces)" >&2; exit 1; }

# ---------------------------------------------------------------- bookkeeping
PASSED=0; FAILED=0
# every line printed goes through redact: a leaked secret shows as <SECRET_...>, never itself
redact() {
    if [ -n "${SECRET_API:-}" ]; then sed "s/$SECRET_API/<SECRET_API>/g; s/$SECRET_ECHO/<SECRET_ECHO>/g; s/$SECRET_FILE/<SECRET_FILE>/g;
        s/$AWS_KEY_ID/<AWS_KEY_ID>/g; s/$AWS_SECRET/<AWS_SECRET>/g; s/$AWS_TOKEN/<AWS_TOKEN>/g"
    else cat; fi
}
pass() { echo "PASS $1: $2" | redact; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $1: $2" | redact; FAILED=$((FAILED + 1)); }
expect() { # expect NAME WANT(glob) GOT
    # shellcheck disable=SC2053
    if [[ $3 == $2 ]]; then pass "$1" "$3"; else fail "$1" "want '$2', got '$3'"; fi
}
one_line() { tr '\n\r\t' '   ' | sed 's/  */ /g; s/ $//' | cut -c1-"${1:-300}"; }

# ---------------------------------------------------------------- teardown
CREATED=()
LAB_UP=""
teardown() {
    set +e
    local e rt id m
    for e in "${CREATED[@]}"; do
        read -r rt id <<<"$e"
        rtc "$rt" delete -f "$id" >/dev/null 2>&1
    done
    for m in $(findmnt -rn -t cgroup,cgroup2 -o TARGET 2>/dev/null); do
        [ -d "$m/$CG" ] && find "$m/$CG" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    [ -n "$LAB_UP" ] && [ -n "${WARD_E2E_KEEP:-}" ] && cp "$WARD_LAB_DIR/origin.log" "$WARD_LAB_RECORD" "$W/logs/" 2>/dev/null
    [ -n "$LAB_UP" ] && WARD_LAB_SUFFIX=$SFX "$HERE/lab.sh" down >/dev/null 2>&1
    if [ -z "${WARD_E2E_KEEP:-}" ]; then rm -rf "$W"; else echo "# kept $W (it holds the test secrets)"; fi
}
trap teardown EXIT
trap 'exit 130' INT TERM HUP

# ---------------------------------------------------------------- runtimes
GLOBAL=()                          # ward's global flags (set once the lab is up)
rtc() {
    local rt=$1; shift
    if [ "$rt" = runc ]; then timeout -k 5 "$T" "$RUNC" --root "$RROOT" "$@"
    else timeout -k 5 "$T" "$WARD" --root "$WROOT" "${GLOBAL[@]}" "$@"; fi
}

missing=""
for b in curl python3 openssl ip ss jq findmnt dnsmasq ps; do command -v "$b" >/dev/null || missing+=" $b"; done
[ -x "$WARD" ] || missing+=" ward($WARD: build it, or set WARD=)"
if [ -n "$missing" ]; then fail prerequisites "missing:$missing"; echo "0 passed, 1 failed"; exit 1; fi
rm -rf "$W"; mkdir -p "$W/logs" "$W/b" "$WROOT" "$RROOT" "$HROOT"
chmod 700 "$W"
echo "# ward: $WARD ($("$WARD" --version 2>&1 | head -1))"
PARTS=" ${WARD_E2E_PARTS:-K R H A} "

# ---------------------------------------------------------------- botocore (the A-* checks)
# The containers run the host's /usr/bin/python3 (its /usr is their /usr), the origin runs it too
# (PYTHON for lab.sh): botocore >= 1.36 (the release whose S3 uploads default to aws-chunked with
# a checksum trailer, as every current AWS SDK's do) must import there. When the host's does not
# (none, or Debian's older python3-botocore), pip installs it into $REPO/.work/egress-py, on the
# origin's PYTHONPATH and mounted read-only at /e2e-py.
PY_SYS=/usr/bin/python3
PYDEPS=""; BOTO_ERR=""
boto_ok() { # boto_ok PYTHONPATH
    PYTHONPATH=$1 "$PY_SYS" -c 'import sys, botocore, botocore.auth, botocore.httpsession
sys.exit(tuple(int(x) for x in botocore.__version__.split(".")[:2]) < (1, 36))' 2>/dev/null
}
if ! boto_ok ""; then
    PYDEPS=$REPO/.work/egress-py
    if ! boto_ok "$PYDEPS"; then
        echo "# installing ${WARD_E2E_BOTOCORE:-botocore>=1.36} into $PYDEPS (pip)"
        for pip in "$PY_SYS -m pip" "python3 -m pip"; do
            $pip install -q --disable-pip-version-check --no-warn-script-location --upgrade --target "$PYDEPS" \
                "${WARD_E2E_BOTOCORE:-botocore>=1.36}" >>"$W/logs/pip.log" 2>&1 && break
        done
    fi
    boto_ok "$PYDEPS" ||
        BOTO_ERR="no botocore >= 1.36 for $PY_SYS (pip install into $PYDEPS failed: $(grep -v WARNING "$W/logs/pip.log" 2>/dev/null | tail -2 | one_line 200); needs pip: apt-get install python3-pip)"
fi
[ -z "$BOTO_ERR" ] && echo "# botocore $(PYTHONPATH=$PYDEPS "$PY_SYS" -c 'import botocore; print(botocore.__version__)') for $PY_SYS${PYDEPS:+ (from $PYDEPS)}"

# ---------------------------------------------------------------- lab
if ! PYTHON=$PY_SYS PYTHONPATH=$PYDEPS WARD_LAB_WAIT=${WARD_E2E_LAB_WAIT:-180} WARD_LAB_SUFFIX=$SFX "$HERE/lab.sh" up >"$W/lab.env" 2>"$W/logs/lab.log"; then
    fail lab-up "lab.sh up failed: $(tail -3 "$W/logs/lab.log" | one_line 400)"
    echo "$PASSED passed, $FAILED failed"; exit 1
fi
LAB_UP=1
set -a
# shellcheck disable=SC1091
. "$W/lab.env"
set +a
CNS=$WARD_LAB_CLIENT_NS
REC=$WARD_LAB_RECORD
if [ -z "$REC" ] || [ -z "${WARD_LAB_ADDR_API_TEST:-}" ]; then fail lab-api-test "the lab has no api.test or no request record (lab.sh older than issue 17?)"; echo "$PASSED passed, $FAILED failed"; exit 1; fi
GLOBAL=(--egress-resolver "$WARD_LAB_DNS:53" --egress-ca "$WARD_LAB_CA")

# ---------------------------------------------------------------- secrets (files only, never argv/env)
SECRET_API=sk-lab-api-$(openssl rand -hex 24)
SECRET_ECHO=sk-lab-echo-$(openssl rand -hex 24)
SECRET_FILE=sk-lab-file-$(openssl rand -hex 24)
# an AWS pair in AWS's shapes (key id AKIA + 16, secret 40, a long session token), letters and
# digits only (sed and JSON take them as they are)
alnum() { openssl rand -base64 $(($1 * 2)) | tr -dc "${2:-A-Za-z0-9}" | cut -c1-"$1"; }
AWS_KEY_ID=AKIA$(alnum 16 A-Z0-9)
AWS_SECRET=$(alnum 40)
AWS_TOKEN=FwoGZXIvYXdzE$(alnum 200)
( umask 077
  printf '%s\n' "$SECRET_API" "$SECRET_ECHO" "$SECRET_FILE" "$AWS_KEY_ID" "$AWS_SECRET" "$AWS_TOKEN" >"$W/secrets"
  printf 'API_KEY=%s\nECHO_KEY=%s\n' "$SECRET_API" "$SECRET_ECHO" >"$W/env-creds"
  printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\nAWS_SESSION_TOKEN=%s\n' "$AWS_KEY_ID" "$AWS_SECRET" "$AWS_TOKEN" >"$W/env-aws"
  # the origin's copy (it verifies SigV4 with the real pair), and a wrong one for the baseline
  printf '{"access_key_id": "%s", "secret_access_key": "%s", "session_token": "%s"}\n' "$AWS_KEY_ID" "$AWS_SECRET" "$AWS_TOKEN" >"$WARD_LAB_AWS_CREDS"
  cp "$WARD_LAB_AWS_CREDS" "$W/aws-real.json"
  printf '{"access_key_id": "%s", "secret_access_key": "%s", "session_token": "%s"}\n' "$AWS_KEY_ID" "$(alnum 40)" "$AWS_TOKEN" >"$W/aws-wrong.json" )
: >"$W/placeholders"
# hits FILE...: how many of the secrets' occurrences are in FILE (0 when it does not exist)
secret_hits() { python3 "$HERE/e2e_scan.py" --secrets "$W/secrets" paths "$@" | jq -r '.secret_hits | length'; }

# ---------------------------------------------------------------- rootfs (host /usr read-only)
R=$W/rootfs
mkdir -p "$R"/{proc,dev,sys,tmp,usr,root,e2e,e2e-py,etc/ssl,run,var/tmp,creds}
ln -s usr/bin "$R/bin"; ln -s usr/sbin "$R/sbin"; ln -s usr/lib "$R/lib"
[ -e /lib64 ] && ln -s usr/lib64 "$R/lib64"
: >"$R/etc/lab-ca.pem"
printf 'nameserver %s\noptions timeout:2 attempts:2\n' "$WARD_LAB_DNS" >"$R/etc/resolv.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$R/etc/hosts"
echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
echo 'root:x:0:' >"$R/etc/group"
echo 'hosts: files dns' >"$R/etc/nsswitch.conf"
# a file credential: the "api_key" value is the secret (extract), the rest stays as it is
printf '{"api_key": "%s", "region": "lab-1"}\n' "$SECRET_FILE" >"$R/creds/config.json"
HELPERS=$W/helpers
mkdir -p "$HELPERS"; cp "$HERE/e2e_client.py" "$HERE/e2e_creds_client.py" "$HELPERS/"
cp "$WARD_LAB_CA" "$W/ca.pem"

# ---------------------------------------------------------------- policies
API_RULES='{"host": "api.test", "allow": [{"methods": ["POST", "GET"], "paths": ["/v1/messages", "/v1/messages/*", "/sse", "/echo-auth"]}]}'
ALLOWED_RULES='{"host": "allowed.test", "allow": [{"methods": ["GET", "POST"], "paths": ["/*"]}]}'
CREDS='{"envVars": [
    {"name": "API_KEY", "mode": "mask", "injectHosts": ["api.test"], "methods": ["POST"], "paths": ["/v1/messages"]},
    {"name": "ECHO_KEY", "mode": "mask", "injectHosts": ["api.test"], "methods": ["GET"], "paths": ["/echo-auth"]}],
  "files": [
    {"path": "/creds/config.json", "mode": "mask", "extract": "\"api_key\": \"([^\"]+)\"",
     "injectHosts": ["api.test"], "methods": ["POST"], "paths": ["/v1/messages"]}]}'
cat >"$W/policy-K.json" <<EOF
{"network": {"default": "deny",
  "allowedDomains": ["api.test", "allowed.test", "upload.allowed.test"],
  "http": [$API_RULES, $ALLOWED_RULES]},
 "credentials": $CREDS}
EOF
# refusals: credentials without default-deny egress for names and addresses (no domain rules at
# all; "default": "allow" beside them; an address allowed past the proxy); a credential whose env
# var is absent
cat >"$W/policy-R1.json" <<EOF
{"network": {"default": "allow"}, "credentials": $CREDS}
EOF
cat >"$W/policy-R3.json" <<EOF
{"network": {"default": "allow", "allowedDomains": ["api.test"], "http": [$API_RULES]}, "credentials": $CREDS}
EOF
cat >"$W/policy-R4.json" <<EOF
{"network": {"default": "deny", "allowedDomains": ["api.test"], "allow": ["$WARD_LAB_ADDR_API_TEST/32:443"],
  "http": [$API_RULES]}, "credentials": $CREDS}
EOF
cat >"$W/policy-R2.json" <<EOF
{"network": {"default": "deny", "allowedDomains": ["api.test"], "http": [$API_RULES]},
 "credentials": {"envVars": [{"name": "ABSENT_KEY", "mode": "mask", "injectHosts": ["api.test"]}]}}
EOF
# runc + hook: path rules over plain HTTP; credentials (refused by the hook)
cat >"$W/policy-H1.json" <<'EOF'
{"network": {"default": "deny", "allowedDomains": ["allowed.test"],
  "http": [{"host": "allowed.test",
    "allow": [{"methods": ["POST"], "paths": ["/echo/v1/messages", "/echo/v1/messages/*"]}],
    "deny": [{"paths": ["/echo/v1/files", "/echo/v1/files/*"]}]}]}}
EOF
cat >"$W/policy-H2.json" <<EOF
{"network": {"default": "deny", "allowedDomains": ["api.test"], "http": [$API_RULES]},
 "credentials": {"envVars": [{"name": "API_KEY", "mode": "mask", "injectHosts": ["api.test"]}]}}
EOF
# AWS pairs: the three variables bound to api.test /aws/* (any of the methods the checks use);
# /aws-unbound/* is allowed by the http rules but outside the binding
AWS_RULES='{"host": "api.test", "allow": [{"methods": ["GET", "POST", "PUT"], "paths": ["/aws/*", "/aws-unbound/*"]}]}'
AWS_BIND='"mode": "mask", "injectHosts": ["api.test"], "methods": ["GET", "POST", "PUT"], "paths": ["/aws/*"]'
cat >"$W/policy-A.json" <<EOF
{"network": {"default": "deny", "allowedDomains": ["api.test"], "http": [$AWS_RULES]},
 "credentials": {"envVars": [{"name": "AWS_ACCESS_KEY_ID", $AWS_BIND},
   {"name": "AWS_SECRET_ACCESS_KEY", $AWS_BIND}, {"name": "AWS_SESSION_TOKEN", $AWS_BIND}]}}
EOF
for f in "$W"/policy-*.json; do jq -e . "$f" >/dev/null || { fail harness-policy-json "$f is not JSON"; }; done

# ---------------------------------------------------------------- containers
HOOK_JSON=""
# make_bundle RT ID POLICY VIA [ENV-FILE]
make_bundle() {
    local rt=$1 id=$2 b=$W/b/$2 args=(--policy "$3" --via "$4")
    mkdir -p "$b"
    [ -n "${5:-}" ] && args+=(--env-file "$5")
    [ -n "$PYDEPS" ] && args+=(--pydeps "$PYDEPS")
    [ "$rt" = runc ] && [ -n "$HOOK_JSON" ] && args+=(--hook-json "$HOOK_JSON" --ward "$WARD"
        --hook-global=--root --hook-global="$HROOT" --hook-global=--egress-resolver --hook-global="$WARD_LAB_DNS:53"
        --hook-global=--egress-ca --hook-global="$WARD_LAB_CA")
    python3 "$HERE/e2e_bundle.py" "$b" --rootfs "$R" --netns "/run/netns/$CNS" --cgroup "/$CG/$id" \
        --ca "$W/ca.pem" --helpers "$HELPERS" "${args[@]}"
}
# run_ctr RT ID: `RT run -d`; status as the runtime's; its output in $W/logs/ID.log
run_ctr() {
    CREATED+=("$1 $2")
    rtc "$1" run -d --bundle "$W/b/$2" "$2" </dev/null >"$W/logs/$2.log" 2>&1
}
# in ID CMD...: the credential client inside ID (ward exec, the container's own env: placeholders)
in_k() { local id=$1; shift; rtc ward exec "$id" /usr/bin/python3 /e2e/e2e_creds_client.py "$@" 2>&1 | grep '^{' | tail -1; }
# rsum JSON: "rc=.. code=.. [denied] version=.."
rsum() {
    local j; j=$(cat)
    [ -n "$j" ] || { echo "exec failed (no JSON)"; return; }
    jq -r '"rc=\(.rc) code=\(.code)\(if .denied then " X-Ward-Denied" else "" end) v=\(.version)"' <<<"$j"
}
vlog() { echo "$WROOT/$1/violations.jsonl"; }
# vrec ID JQ-FILTER: the violation records of ID matching the filter, compact, one a line
vrec() { local f; f=$(vlog "$1"); [ -f "$f" ] && jq -c "select($2)" "$f" 2>/dev/null; }
# origin_saw SINCE-LINE: the origin's records after line SINCE-LINE
origin_saw() { tail -n +"$(($1 + 1))" "$REC" 2>/dev/null; }
rec_lines() { wc -l <"$REC" 2>/dev/null || echo 0; }
# what a host side check would leave: state dir, cgroup, mounts, processes, proxy listeners
cgroup_left() { local m; for m in $(findmnt -rn -t cgroup,cgroup2 -o TARGET); do [ -d "$m/$CG/$1" ] && echo "$m/$CG/$1"; done; }
procs_mentioning() {
    local p n=0
    for p in /proc/[0-9]*; do { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "$1" && n=$((n + 1)); done
    echo $n
}
listeners_cns() { ip netns exec "$CNS" ss -Htlnp 2>/dev/null | grep -cE ' 198\.1[89]\.[0-9]+\.[0-9]+:' || true; }
leftovers() { # leftovers ID: "state=.. cgroup=.. mounts=.. procs=.. listeners=.."
    local id=$1 st=gone cg=gone mnts
    [ -e "$WROOT/$id" ] || [ -e "$RROOT/$id" ] || [ -e "$HROOT/$id" ] || [ -e "$HROOT/@egress-hook/$id" ] && st=left
    [ -n "$(cgroup_left "$id")" ] && cg=left
    mnts=$(grep -cF -e "$W/b/$id" -e "/$id/" /proc/self/mountinfo || true)
    echo "state=$st cgroup=$cg mounts=$mnts procs=$(procs_mentioning "$W/b/$id") listeners=$(listeners_cns)"
}
NOTHING='state=gone cgroup=gone mounts=0 procs=0 listeners=0'

# ---------------------------------------------------------------- baseline (no ward)
baseline() {
    local C=(ip netns exec "$CNS" curl -sS --path-as-is -m 10 --cacert "$WARD_LAB_CA" -o /dev/null -w '%{http_code}')
    expect baseline-post-messages 200 "$("${C[@]}" -X POST -d '{}' https://api.test/v1/messages)"
    expect baseline-post-files 200 "$("${C[@]}" -X POST -d x https://api.test/v1/files)"
    local p g=""
    for p in /v1/./files /v1//files /v1/%66iles; do g+="$("${C[@]}" -X POST -d x "https://api.test$p") "; done
    expect baseline-path-tricks-reach-origin '200 200 200 ' "$g"
    expect baseline-echo-auth 'X-Echo-Authorization: Bearer probe*' \
        "$(ip netns exec "$CNS" curl -sS -m 10 --cacert "$WARD_LAB_CA" -D - -o /dev/null -H 'Authorization: Bearer probe' 'https://api.test/echo-auth?key=k' | grep -i '^x-echo-authorization' | tr -d '\r')"
}

# ---------------------------------------------------------------- K: credentials under ward
K=w-creds
PH_API=""; PH_ECHO=""; PH_FILE=""
creds_ward() {
    local cases=(K-create K-env-placeholder K-proc-environ K-files-placeholder K-files-no-secret K-memory-scan
        K-post-messages K-origin-saw-secret K-file-credential-swapped K-post-files-denied K-post-files-logged
        K-files-not-at-origin K-path-tricks-denied K-http2 K-http1
        K-sse-streamed K-echo-auth-masked K-placeholder-other-host K-placeholder-plain-http
        K-placeholder-query K-placeholder-denied-path K-placeholder-dns K-placeholder-logged K-exec-process-json
        K-origin-secret-only-bound K-state-no-secret K-ward-state-no-secret K-ps-no-secret
        K-logs-no-secret K-violation-log-no-secret K-delete-leaves-nothing)
    make_bundle ward "$K" "$W/policy-K.json" field "$W/env-creds" || { for c in "${cases[@]}"; do fail "$c" "bundle generation failed"; done; return; }
    if ! run_ctr ward "$K"; then
        local why; why="ward run failed: $(tail -3 "$W/logs/$K.log" | one_line 400)"
        echo "# container $K not started: $why" | redact
        for c in "${cases[@]}"; do fail "$c" "container $K not started ($why)"; done
        return
    fi
    pass K-create "ward run -d with interception.credentials and --egress-ca"
    local j g n0 init
    init=$(rtc ward state "$K" | jq -r .pid)

    # --- what the container holds: placeholders only
    j=$(in_k "$K" env)
    PH_API=$(jq -r '.env.API_KEY // ""' <<<"$j" 2>/dev/null); PH_ECHO=$(jq -r '.env.ECHO_KEY // ""' <<<"$j" 2>/dev/null)
    PH_FILE=$(in_k "$K" cat /creds/config.json | jq -r '.text' 2>/dev/null | jq -r '.api_key // ""' 2>/dev/null)
    printf '%s\n' "$PH_API" "$PH_ECHO" "$PH_FILE" | grep . >"$W/placeholders"
    expect K-env-placeholder 'API_KEY=ward-cred-* ECHO_KEY=ward-cred-* secrets=0' \
        "API_KEY=${PH_API:-absent} ECHO_KEY=${PH_ECHO:-absent} secrets=$(python3 "$HERE/e2e_scan.py" --secrets "$W/secrets" stdin <<<"$j" | jq -r .secret_hits)"
    g="init=$(jq -r '.init.API_KEY // "absent"' <<<"$j" 2>/dev/null | cut -c1-10) self=$(jq -r '.self.API_KEY // "absent"' <<<"$j" 2>/dev/null | cut -c1-10)"
    g+=" secrets-in-init-environ=$(python3 "$HERE/e2e_scan.py" --secrets "$W/secrets" paths "/proc/$init/environ" | jq -r '.secret_hits | length')"
    expect K-proc-environ 'init=ward-cred- self=ward-cred- secrets-in-init-environ=0' "$g"
    expect K-files-placeholder 'api_key=ward-cred-* region=lab-1' "api_key=${PH_FILE:-absent} region=$(in_k "$K" cat /creds/config.json | jq -r '.text' 2>/dev/null | jq -r '.region // "absent"' 2>/dev/null)"

    # --- the requests
    n0=$(rec_lines)
    g=$(in_k "$K" req POST https://api.test/v1/messages --auth-env API_KEY --data '{"m":1}')
    expect K-post-messages 'rc=0 code=200 v=*' "$(rsum <<<"$g")"
    expect K-origin-saw-secret 'authorization=real-secret' \
        "authorization=$(origin_saw "$n0" | jq -r --arg s "Bearer $SECRET_API" --arg p "Bearer $PH_API" 'select(.path == "/v1/messages") | if .authorization == $s then "real-secret" elif .authorization == $p then "placeholder" else (.authorization // "none") end' | tail -1)"
    n0=$(rec_lines)
    g=$(in_k "$K" req POST https://api.test/v1/messages --auth-file-key /creds/config.json --data '{"m":2}')
    expect K-file-credential-swapped 'rc=0 code=200 * origin=real-secret' \
        "$(rsum <<<"$g") origin=$(origin_saw "$n0" | jq -r --arg s "Bearer $SECRET_FILE" 'select(.path == "/v1/messages") | if .authorization == $s then "real-secret" else (.authorization // "none") end' | tail -1)"

    n0=$(rec_lines)
    g=$(in_k "$K" req POST https://api.test/v1/files --data x)
    expect K-post-files-denied 'rc=0 code=403 X-Ward-Denied *' "$(rsum <<<"$g")"
    expect K-post-files-logged 'method=POST path=/v1/files decision=denied*' \
        "$(vrec "$K" '.path == "/v1/files"' | jq -r '"method=\(.method) path=\(.path) decision=\(.decision)"' | head -1)"
    local p tricks=""
    for p in /v1/./files /v1//files /v1/%66iles /V1/files; do
        tricks+="$(in_k "$K" req POST "https://api.test$p" --data x | rsum | cut -d' ' -f2,3) "
    done
    expect K-path-tricks-denied 'code=403 X-Ward-Denied code=403 X-Ward-Denied code=403 X-Ward-Denied code=403 X-Ward-Denied ' "$tricks"
    # neither POST /v1/files nor any of its spellings reached the origin
    expect K-files-not-at-origin 'files-requests-at-origin=0' \
        "files-requests-at-origin=$(origin_saw "$n0" | jq -r 'select(.path | ascii_downcase | test("files")) | .target' | wc -l)"

    g=$(in_k "$K" req POST https://api.test/v1/messages --http2 --auth-env API_KEY --data '{"m":3}')
    expect K-http2 'rc=0 code=200 v=2' "$(rsum <<<"$g")"
    g=$(in_k "$K" req POST https://api.test/v1/messages --http1.1 --auth-env API_KEY --data '{"m":4}')
    expect K-http1 'rc=0 code=200 v=1.1' "$(rsum <<<"$g")"

    g=$(in_k "$K" sse 'https://api.test/sse?delay=1.5')
    expect K-sse-streamed 'first-before-second-sent=yes err=' \
        "$(jq -r '"first-before-second-sent=\(if .gap != null and .gap > 0.5 then "yes" else "no (gap \(.gap))" end) err=\(.err)"' <<<"$g" 2>/dev/null || echo "exec failed: $g")"

    # an origin that echoes the credential back: the container sees its placeholder, the origin
    # got the secret (bound: GET /echo-auth, header and query)
    n0=$(rec_lines)
    g=$(in_k "$K" req GET https://api.test/echo-auth --auth-env ECHO_KEY --query-env ECHO_KEY)
    local body_a body_k hdr_a hdr_k saw
    body_a=$(jq -r '.body' <<<"$g" 2>/dev/null | jq -r '.authorization // "none"' 2>/dev/null)
    body_k=$(jq -r '.body' <<<"$g" 2>/dev/null | jq -r '.key // "none"' 2>/dev/null)
    hdr_a=$(jq -r '.headers["x-echo-authorization"] // "none"' <<<"$g" 2>/dev/null)
    hdr_k=$(jq -r '.headers["x-echo-key"] // "none"' <<<"$g" 2>/dev/null)
    saw=$(origin_saw "$n0" | jq -r --arg s "$SECRET_ECHO" --arg p "$PH_ECHO" 'select(.path == "/echo-auth")
        | def cls(x): if (x // "") | contains($s) then "secret" elif ($p != "" and ((x // "") | contains($p))) then "placeholder" else "none" end;
        "header:\(cls(.authorization)),query:\(cls(.target))"' | tail -1)
    local cls=(); for v in "$body_a" "$body_k" "$hdr_a" "$hdr_k"; do
        case $v in *"$SECRET_ECHO"*) cls+=(SECRET) ;; *"$PH_ECHO"*) [ -n "$PH_ECHO" ] && cls+=(placeholder) || cls+=("$v") ;; *) cls+=("$v") ;; esac
    done
    expect K-echo-auth-masked "code=200 body-auth=placeholder body-key=placeholder header-auth=placeholder header-key=placeholder origin-saw=header:secret,query:secret" \
        "code=$(jq -r .code <<<"$g" 2>/dev/null) body-auth=${cls[0]} body-key=${cls[1]} header-auth=${cls[2]} header-key=${cls[3]} origin-saw=${saw:-nothing}"

    # the placeholder where its binding does not allow it: refused and logged
    g=$(in_k "$K" req POST https://allowed.test/echo --auth-env API_KEY --data x)
    expect K-placeholder-other-host 'rc=0 code=403 *' "$(rsum <<<"$g")"
    g=$(in_k "$K" req POST http://upload.allowed.test/echo --auth-env API_KEY --data x)
    expect K-placeholder-plain-http 'rc=0 code=403 *' "$(rsum <<<"$g")"
    g=$(in_k "$K" req GET https://api.test/v1/messages --query-env API_KEY)
    expect K-placeholder-query 'rc=0 code=403 *' "$(rsum <<<"$g")"
    g=$(in_k "$K" req POST https://api.test/v1/messages/batches --auth-env API_KEY --data x)
    expect K-placeholder-denied-path 'rc=0 code=403 *' "$(rsum <<<"$g")"
    # in a DNS name (an exfiltration channel of its own), in upper case (DNS names are not
    # case-sensitive): REFUSED by ward, never at the lab DNS
    local dq; dq=$(echo "$PH_API" | tr '[:lower:]' '[:upper:]')
    g=$(rtc ward exec "$K" /usr/bin/python3 /e2e/e2e_client.py dns "$WARD_LAB_DNS" "$dq.api.test" A 2>&1 | grep '^{' | tail -1)
    sleep 0.3
    expect K-placeholder-dns 'rcode=5 dnsmasq-saw=0 record=yes' \
        "rcode=$(jq -r '.rcode // .err' <<<"$g" 2>/dev/null) dnsmasq-saw=$(grep -c -i -F "${dq:-no-placeholder}" "$WARD_LAB_DIR/dnsmasq.log") record=$([ -n "$(vrec "$K" '.rule == "credential binding" and (.decision | contains("DNS"))')" ] && echo yes || echo no)"
    expect K-placeholder-logged 'credential-records>=4 naming-API_KEY>=4' \
        "credential-records$(n=$(vrec "$K" '.rule == "credential binding"' | wc -l); [ "$n" -ge 4 ] && echo '>=4' || echo "=$n") naming-API_KEY$(n=$(vrec "$K" '.rule == "credential binding" and (.decision | contains("API_KEY"))' | wc -l); [ "$n" -ge 4 ] && echo '>=4' || echo "=$n")"

    # ward exec with a process.json carrying the REAL value: the process gets the placeholder
    jq --arg s "$SECRET_API" '.process | del(.interception) | .args = ["/usr/bin/python3", "/e2e/e2e_creds_client.py", "env"] | .env += ["API_KEY=" + $s]' \
        "$W/b/$K/config.json" >"$W/process-exec.json"
    chmod 600 "$W/process-exec.json"
    g=$(rtc ward exec --process "$W/process-exec.json" "$K" 2>&1 | grep '^{' | tail -1)
    expect K-exec-process-json 'API_KEY=ward-cred-* secrets=0' \
        "API_KEY=$(jq -r '.env.API_KEY // "absent"' <<<"$g" 2>/dev/null) secrets=$(python3 "$HERE/e2e_scan.py" --secrets "$W/secrets" stdin <<<"$g" | jq -r .secret_hits)"

    # --- host-side scans: files and memory of the container, ward's own traces
    g=$(python3 "$HERE/e2e_scan.py" --secrets "$W/secrets" --placeholders "$W/placeholders" files "/proc/$init/root")
    expect K-files-no-secret 'files>0 secret-hits= placeholder-in=*/creds/config.json*' \
        "files$([ "$(jq -r .files <<<"$g")" -gt 0 ] 2>/dev/null && echo '>0' || echo "=$(jq -r .files <<<"$g")") secret-hits=$(jq -r '.secret_hits | join(",")' <<<"$g") placeholder-in=$(jq -r '.placeholder_hits | join(",")' <<<"$g")"
    local pids
    pids=$(for m in $(findmnt -rn -t cgroup,cgroup2 -o TARGET); do cat "$m/$CG/$K/cgroup.procs" 2>/dev/null; done | sort -u | tr '\n' ' ')
    # a long-lived process of the container's own, holding the env too, then scan every process
    rtc ward exec -d "$K" /usr/bin/python3 -c 'import os, time; k = os.environ.get("API_KEY"); time.sleep(30)' >/dev/null 2>&1
    sleep 1
    pids=$(for m in $(findmnt -rn -t cgroup,cgroup2 -o TARGET); do cat "$m/$CG/$K/cgroup.procs" 2>/dev/null; done | sort -u | tr '\n' ' ')
    # shellcheck disable=SC2086 # pids: a list, split on purpose
    g=$(python3 "$HERE/e2e_scan.py" --secrets "$W/secrets" --placeholders "$W/placeholders" mem $pids)
    expect K-memory-scan 'pids>=2 secret-hits= placeholder-found=yes errors=' \
        "pids$([ "$(jq -r .pids <<<"$g")" -ge 2 ] 2>/dev/null && echo '>=2' || echo "=$(jq -r .pids <<<"$g")") secret-hits=$(jq -r '.secret_hits | join(",")' <<<"$g") placeholder-found=$([ "$(jq -r .placeholder_hits <<<"$g")" -gt 0 ] 2>/dev/null && echo yes || echo no) errors=$(jq -r '.errors | join(",")' <<<"$g" | cut -c1-200)"

    # the origin saw a secret only where it is bound (every request since the lab came up)
    local bad
    bad=$(jq -r --arg a "$SECRET_API" --arg e "$SECRET_ECHO" --arg f "$SECRET_FILE" '
        (tojson) as $t
        | (.host // "" | split(":")[0]) as $h
        | if ($t | contains($a)) and (($h != "api.test") or .method != "POST" or .path != "/v1/messages") then "API_KEY@\(.host)\(.target)"
          elif ($t | contains($f)) and (($h != "api.test") or .method != "POST" or .path != "/v1/messages") then "file@\(.host)\(.target)"
          elif ($t | contains($e)) and (($h != "api.test") or .method != "GET" or .path != "/echo-auth") then "ECHO_KEY@\(.host)\(.path)"
          else empty end' "$REC" 2>/dev/null | sed "s/$SECRET_API/<secret>/g; s/$SECRET_ECHO/<secret>/g; s/$SECRET_FILE/<secret>/g" | one_line)
    local seen_api; seen_api=$(grep -cF "$SECRET_API" "$REC" || true)
    expect K-origin-secret-only-bound 'elsewhere= bound>=3' "elsewhere=$bad bound$([ "$seen_api" -ge 3 ] && echo '>=3' || echo "=$seen_api")"

    expect K-state-no-secret 'files>0 hits=0' "files$([ "$(find "$WROOT" -type f | wc -l)" -gt 0 ] && echo '>0' || echo '=0') hits=$(secret_hits "$WROOT")"
    g=$(rtc ward state "$K" 2>&1)
    expect K-ward-state-no-secret 'status=running hits=0' "status=$(jq -r .status <<<"$g" 2>/dev/null) hits=$(python3 "$HERE/e2e_scan.py" --secrets "$W/secrets" stdin <<<"$g" | jq -r .secret_hits)"
    g="$(ps axeww -o pid,args 2>&1; rtc ward ps "$K" 2>&1)"
    expect K-ps-no-secret 'hits=0' "hits=$(python3 "$HERE/e2e_scan.py" --secrets "$W/secrets" stdin <<<"$g" | jq -r .secret_hits)"
    expect K-logs-no-secret 'hits=0' "hits=$(secret_hits "$W/logs")"
    expect K-violation-log-no-secret 'records>0 hits=0' \
        "records$([ -s "$(vlog "$K")" ] && echo '>0' || echo '=0') hits=$(secret_hits "$(vlog "$K")")"

    local out; out=$(rtc ward delete -f "$K" 2>&1) || fail K-delete "ward delete -f: $(one_line <<<"$out")"
    sleep 0.5
    expect K-delete-leaves-nothing "$NOTHING" "$(leftovers "$K")"
}

# ---------------------------------------------------------------- R: create refusals
refusal() { # refusal NAME ID POLICY WANT-ERROR-GLOB
    local name=$1 id=$2 out rc=0
    make_bundle ward "$id" "$3" field "$W/env-creds" || { fail "$name" "bundle generation failed"; return; }
    run_ctr ward "$id" || rc=$?
    out=$(one_line 300 <"$W/logs/$id.log")
    [ "$rc" = 0 ] && rtc ward delete -f "$id" >/dev/null 2>&1
    expect "$name" "refused error=$4" "$([ "$rc" != 0 ] && echo refused || echo "started (rc 0)") error=$out"
    sleep 0.3
    expect "$name-nothing-left" "$NOTHING secret-in-error=0" "$(leftovers "$id") secret-in-error=$(secret_hits "$W/logs/$id.log")"
}
refusals() {
    refusal R-no-domain-rules w-r1 "$W/policy-R1.json" '*[Dd]en*'
    refusal R-default-allow w-r3 "$W/policy-R3.json" '*[Dd]en*'
    refusal R-ip-allowed-past-proxy w-r4 "$W/policy-R4.json" '*[Dd]en*'
    refusal R-env-absent w-r2 "$W/policy-R2.json" '*ABSENT_KEY*'
}

# ---------------------------------------------------------------- H: runc + ward's hook
hook_col() {
    local hj=""
    [ -d "$REPO/hooks" ] && hj=$(find "$REPO/hooks" -maxdepth 1 -name '*.json' | sort | head -1)
    if [ -z "$hj" ] || ! "$WARD" hook egress --help >/dev/null 2>&1 || ! command -v "$RUNC" >/dev/null; then
        for c in H-http-post-allowed H-http-post-denied H-http-path-trick-denied H-credentials-refused H-credentials-nothing-left; do
            fail "$c" "runc or ward's egress hook missing (hooks/*.json, \`ward hook egress\`, $RUNC)"; done
        return
    fi
    HOOK_JSON=$hj
    local id=r-http g
    make_bundle runc "$id" "$W/policy-H1.json" annotation
    if run_ctr runc "$id"; then
        local C=(rtc runc exec "$id" /usr/bin/env -i PATH=/usr/bin:/bin /usr/bin/python3 /e2e/e2e_client.py curl)
        g=$("${C[@]}" -X POST -d x http://allowed.test/echo/v1/messages 2>&1 | grep '^{' | tail -1)
        expect H-http-post-allowed 'rc=0 code=200' "$(jq -r '"rc=\(.rc) code=\(.code)"' <<<"$g" 2>/dev/null || echo "exec failed")"
        g=$("${C[@]}" -X POST -d x http://allowed.test/echo/v1/files 2>&1 | grep '^{' | tail -1)
        expect H-http-post-denied 'rc=0 code=403 denied=yes' "$(jq -r '"rc=\(.rc) code=\(.code) denied=\(if .denied then "yes" else "no" end)"' <<<"$g" 2>/dev/null || echo "exec failed")"
        g=$("${C[@]}" --path-as-is -X POST -d x http://allowed.test/echo/v1/%66iles 2>&1 | grep '^{' | tail -1)
        expect H-http-path-trick-denied 'rc=0 code=403' "$(jq -r '"rc=\(.rc) code=\(.code)"' <<<"$g" 2>/dev/null || echo "exec failed")"
        rtc runc delete -f "$id" >/dev/null 2>&1
    else
        local why; why="runc run failed: $(tail -3 "$W/logs/$id.log" | one_line 300)"
        for c in H-http-post-allowed H-http-post-denied H-http-path-trick-denied; do fail "$c" "$why"; done
    fi
    id=r-creds
    make_bundle runc "$id" "$W/policy-H2.json" annotation "$W/env-creds"
    local rc=0; run_ctr runc "$id" || rc=$?
    [ "$rc" = 0 ] && rtc runc delete -f "$id" >/dev/null 2>&1
    # runc wraps the hook's error in its own: look for ward's words anywhere in it
    expect H-credentials-refused 'refused names-credentials=yes' \
        "$([ "$rc" != 0 ] && echo refused || echo "started (rc 0)") names-credentials=$(grep -qi 'credential' "$W/logs/$id.log" && echo yes || echo "no: $(one_line 300 <"$W/logs/$id.log")")"
    sleep 0.3
    expect H-credentials-nothing-left "$NOTHING secret-in-error=0" "$(leftovers "$id") secret-in-error=$(secret_hits "$W/logs/$id.log" "$HROOT")"
}

# ---------------------------------------------------------------- A: AWS pairs (SigV4 re-signing)
# aws_base ARGS...: the botocore client in the client netns, no ward (the real pair from a file)
aws_base() {
    ip netns exec "$CNS" env PYTHONPATH="$PYDEPS" "$PY_SYS" "$HERE/e2e_creds_client.py" aws "$@" --cacert "$WARD_LAB_CA" 2>&1 | grep '^{' | tail -1
}
# asum JSON: "code=.. [X-Ward-Denied] origin=verified|REASON|- err=.."
asum() {
    local j; j=$(cat)
    [ -n "$j" ] || { echo "exec failed (no JSON)"; return; }
    jq -r '"code=\(.code)\(if .denied then " X-Ward-Denied" else "" end) origin=\(((.body | fromjson?) // (.headers["x-lab-aws"] // "" | fromjson?) | if .ok == true then "verified" elif .ok == false then .reason else null end) // "-") err=\(.err)"' <<<"$j" 2>/dev/null || echo "not JSON: $j"
}
# aws_at SINCE-LINE PATH: what the origin's SigV4 check made of the last request to PATH since
# SINCE-LINE: "verified=.. key=real|placeholder|.. token=real|placeholder|absent|other"
aws_at() {
    origin_saw "$1" | jq -r --arg p "$2" --arg k "$AWS_KEY_ID" --arg t "$AWS_TOKEN" --arg pk "$PH_AWS_KEY" --arg pt "$PH_AWS_TOKEN" '
        select(.path == $p)
        | ([.headers[] | select(.[0] | ascii_downcase == "x-amz-security-token") | .[1]][0]) as $tok
        | "verified=\(.aws.verified) key=\(if .aws.key_id == $k then "real" elif .aws.key_id == $pk then "placeholder" else (.aws.key_id // "none") end) token=\(if $tok == $t then "real" elif $tok == $pt then "placeholder" elif $tok == null then "absent" else "other" end)\(if .aws.verified then "" else " reason=\(.aws.reason)" end)"' | tail -1
}
aws_baseline() {
    local B=(POST https://api.test/aws/baseline --data '{"b":1}')
    if [ -n "$BOTO_ERR" ]; then
        for c in baseline-aws-verifies baseline-aws-wrong-secret baseline-aws-tampered baseline-aws-sdk-s3-put; do fail "$c" "$BOTO_ERR"; done
        return
    fi
    expect baseline-aws-verifies 'code=200 origin=verified err=' "$(aws_base "${B[@]}" --creds-file "$W/aws-real.json" | asum)"
    expect baseline-aws-wrong-secret 'code=403 origin=the signature does not match* err=' "$(aws_base "${B[@]}" --creds-file "$W/aws-wrong.json" | asum)"
    expect baseline-aws-tampered 'code=403 origin=the signature does not match* err=' \
        "$(aws_base GET 'https://api.test/aws/baseline?a=1' --creds-file "$W/aws-real.json" --tamper-query x=1 | asum)"
    # the SDK's S3 PutObject as shipped (aws-chunked, STREAMING-UNSIGNED-PAYLOAD-TRAILER): the
    # origin verifies it (so A-sdk-s3-put failing under ward is ward's doing)
    local n0 g; n0=$(rec_lines)
    g=$(ip netns exec "$CNS" env PYTHONPATH="$PYDEPS" "$PY_SYS" "$HERE/e2e_creds_client.py" sdk s3-put https://api.test \
        --creds-file "$W/aws-real.json" --cacert "$WARD_LAB_CA" 2>&1 | grep '^{' | tail -1)
    expect baseline-aws-sdk-s3-put 'ok=true status=200 err= sent=STREAMING-UNSIGNED-PAYLOAD-TRAILER verified=true' \
        "$(jq -r '"ok=\(.ok) status=\(.status) err=\(.err) sent=\(.content_sha256)"' <<<"$g" 2>/dev/null || echo "exec failed: $g") verified=$(origin_saw "$n0" | jq -r 'select(.path == "/aws/sdk/object.txt") | "\(.aws.verified)\(if .aws.verified then "" else ": \(.aws.reason)" end)"' | tail -1)"
}
A=w-aws
PH_AWS_KEY=""; PH_AWS_SECRET=""; PH_AWS_TOKEN=""
aws_ward() {
    local cases=(A-create A-env-placeholders A-signed-accepted A-response-masked A-body-hash A-s3-style
        A-sdk-s3-put A-sdk-s3-put-when-required A-sdk-s3-get A-sdk-json
        A-secret-key-never-sent A-secret-key-logged A-other-path A-tampered A-not-at-origin
        A-origin-never-saw-secret-key A-memory-scan A-state-no-secret A-logs-no-secret
        A-violation-log-no-secret A-delete-leaves-nothing)
    if [ -n "$BOTO_ERR" ]; then for c in "${cases[@]}"; do fail "$c" "$BOTO_ERR"; done; return; fi
    make_bundle ward "$A" "$W/policy-A.json" field "$W/env-aws" || { for c in "${cases[@]}"; do fail "$c" "bundle generation failed"; done; return; }
    if ! run_ctr ward "$A"; then
        local why; why="ward run failed: $(tail -3 "$W/logs/$A.log" | one_line 400)"
        for c in "${cases[@]}"; do fail "$c" "container $A not started ($why)"; done
        return
    fi
    pass A-create "ward run -d with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN masked"
    local j g n0
    j=$(in_k "$A" env)
    PH_AWS_KEY=$(jq -r '.env.AWS_ACCESS_KEY_ID // ""' <<<"$j" 2>/dev/null)
    PH_AWS_SECRET=$(jq -r '.env.AWS_SECRET_ACCESS_KEY // ""' <<<"$j" 2>/dev/null)
    PH_AWS_TOKEN=$(jq -r '.env.AWS_SESSION_TOKEN // ""' <<<"$j" 2>/dev/null)
    printf '%s\n' "$PH_AWS_KEY" "$PH_AWS_SECRET" "$PH_AWS_TOKEN" | grep . >>"$W/placeholders"
    expect A-env-placeholders 'key=ward-cred-* secret=ward-cred-* token=ward-cred-* init=ward-cred- secrets=0' \
        "key=${PH_AWS_KEY:-absent} secret=${PH_AWS_SECRET:-absent} token=${PH_AWS_TOKEN:-absent} init=$(jq -r '.init.AWS_SECRET_ACCESS_KEY // "absent"' <<<"$j" 2>/dev/null | cut -c1-10) secrets=$(python3 "$HERE/e2e_scan.py" --secrets "$W/secrets" stdin <<<"$j" | jq -r .secret_hits)"

    # botocore signs with the placeholders; the origin verifies with the real pair
    n0=$(rec_lines)
    g=$(in_k "$A" aws GET 'https://api.test/aws/items?b=2&a=1')
    expect A-signed-accepted 'code=200 origin=verified err= at-origin: verified=true key=real token=real' \
        "$(asum <<<"$g") at-origin: $(aws_at "$n0" /aws/items)"
    # the origin answers with the key id it saw: the container reads its placeholder
    local k; k=$(jq -r '.body | fromjson? | .access_key_id // "none"' <<<"$g" 2>/dev/null)
    expect A-response-masked 'access_key_id=placeholder' \
        "access_key_id=$(if [ "$k" = "$AWS_KEY_ID" ]; then echo REAL; elif [ -n "$PH_AWS_KEY" ] && [ "$k" = "$PH_AWS_KEY" ]; then echo placeholder; else echo "$k"; fi)"
    n0=$(rec_lines)
    g=$(in_k "$A" aws POST https://api.test/aws/invoke --data '{"prompt":"hash me"}')
    expect A-body-hash 'client-content-sha256=null code=200 origin=verified err= at-origin: verified=true key=real token=real' \
        "client-content-sha256=$(jq -r .content_sha256 <<<"$g" 2>/dev/null) $(asum <<<"$g") at-origin: $(aws_at "$n0" /aws/invoke)"
    n0=$(rec_lines)
    g=$(in_k "$A" aws PUT https://api.test/aws/bucket/object.txt --service s3 --data 'an S3 object body')
    expect A-s3-style 'client-content-sha256=sha256 code=200 origin=verified err= at-origin: verified=true key=real token=real service=s3' \
        "client-content-sha256=$(jq -r '.content_sha256 // "none" | if test("^[0-9a-f]{64}$") then "sha256" else . end' <<<"$g" 2>/dev/null) $(asum <<<"$g") at-origin: $(aws_at "$n0" /aws/bucket/object.txt) service=$(origin_saw "$n0" | jq -r 'select(.path == "/aws/bucket/object.txt") | .aws.service' | tail -1)"

    # AWS SDK clients as shipped (botocore.session, credentials from the env chain, the CA bundle
    # from the AWS_CA_BUNDLE ward sets): S3 PutObject with the SDK's default request checksums
    # (aws-chunked, x-amz-content-sha256 STREAMING-UNSIGNED-PAYLOAD-TRAILER: no chunk
    # signatures, so re-signable), with checksums only when required (the body's sha256),
    # GetObject, and DynamoDB ListTables (JSON protocol: no x-amz-content-sha256, ward hashes)
    local op sdk_path
    for op in "s3-put:" "s3-put-when-required:--checksum when_required" "s3-get:" "json:"; do
        local name=${op%%:*} extra=${op#*:} cmd=${op%%:*} ep=https://api.test
        case $name in s3-put-when-required) cmd=s3-put ;; json) cmd=ddb-list; ep=https://api.test/aws/ddb ;; esac
        sdk_path=/aws/sdk/object.txt; [ "$cmd" = ddb-list ] && sdk_path=/aws/ddb
        n0=$(rec_lines)
        # shellcheck disable=SC2086 # extra: options, split on purpose
        g=$(in_k "$A" sdk "$cmd" "$ep" $extra)
        expect "A-sdk-$name" 'ok=true status=200 err= at-origin: verified=true key=real token=real *' \
            "$(jq -r '"ok=\(.ok) status=\(.status) err=\(.err)\(if .denied then " X-Ward-Denied: \(.denied)" else "" end)\(if .body then ": \(.body | gsub("\\s+"; " ") | .[:200])" else "" end)"' <<<"$g" 2>/dev/null || echo "exec failed: $g") at-origin: $(aws_at "$n0" "$sdk_path") (sent x-amz-content-sha256: $(jq -r '.content_sha256 // "none"' <<<"$g" 2>/dev/null | cut -c1-40))"
    done

    # the secret key's placeholder is sign-only: in a header (of a signed request, and as a
    # bearer token) it is refused even on the bound host and path
    n0=$(rec_lines)
    local v1 v2
    v1=$(in_k "$A" aws POST https://api.test/aws/leak --data x --header-env X-Leak:AWS_SECRET_ACCESS_KEY | asum | cut -d' ' -f1,2)
    v2=$(in_k "$A" req POST https://api.test/aws/leak --auth-env AWS_SECRET_ACCESS_KEY --data x | rsum | cut -d' ' -f1-3)
    expect A-secret-key-never-sent 'signed: code=403 X-Ward-Denied bearer: rc=0 code=403 X-Ward-Denied' "signed: $v1 bearer: $v2"
    expect A-secret-key-logged 'records>=2' \
        "records$(n=$(vrec "$A" '.rule == "credential binding" and (.decision | contains("AWS_SECRET_ACCESS_KEY")) and .path == "/aws/leak"' | wc -l); [ "$n" -ge 2 ] && echo '>=2' || echo "=$n: $(vrec "$A" '.path == "/aws/leak"' | jq -r .decision | one_line 300)")"
    g=$(in_k "$A" aws POST https://api.test/aws-unbound/invoke --data '{"p":1}')
    expect A-other-path 'code=403 X-Ward-Denied logged=yes' \
        "$(asum <<<"$g" | cut -d' ' -f1,2) logged=$([ -n "$(vrec "$A" '.rule == "credential binding" and .path == "/aws-unbound/invoke" and (.decision | contains("AWS_"))')" ] && echo yes || echo no)"
    g=$(in_k "$A" aws GET 'https://api.test/aws/tampered?a=1' --tamper-query x=1)
    expect A-tampered 'code=403 X-Ward-Denied says=does not verify logged=yes' \
        "$(asum <<<"$g" | cut -d' ' -f1,2) says=$(jq -r .body <<<"$g" 2>/dev/null | grep -o 'does not verify' | head -1) logged=$([ -n "$(vrec "$A" '.path == "/aws/tampered" and (.decision | contains("does not verify"))')" ] && echo yes || echo no)"
    expect A-not-at-origin 'leak=0 unbound=0 tampered=0' \
        "$(origin_saw "$n0" | jq -r '.path' | awk '{c[$0]++} END {printf "leak=%d unbound=%d tampered=%d", c["/aws/leak"], c["/aws-unbound/invoke"], c["/aws/tampered"]}')"
    # over the whole run: the secret access key never reached the origin, nor any AWS placeholder
    local ph_hits=0 p
    for p in "$PH_AWS_KEY" "$PH_AWS_SECRET" "$PH_AWS_TOKEN"; do
        [ -n "$p" ] && ph_hits=$((ph_hits + $(grep -cF "$p" "$REC" || true)))
    done
    expect A-origin-never-saw-secret-key 'secret-key=0 placeholders=0 key-id>=3' \
        "secret-key=$(grep -cF "$AWS_SECRET" "$REC" || true) placeholders=$ph_hits key-id$(n=$(grep -cF "$AWS_KEY_ID" "$REC" || true); [ "$n" -ge 3 ] && echo '>=3' || echo "=$n")"

    # host side: the container's memory (init and a live exec holding the env) and ward's traces
    rtc ward exec -d "$A" /usr/bin/python3 -c 'import os, time; k = os.environ.get("AWS_SECRET_ACCESS_KEY"); time.sleep(30)' >/dev/null 2>&1
    sleep 1
    local pids
    pids=$(for m in $(findmnt -rn -t cgroup,cgroup2 -o TARGET); do cat "$m/$CG/$A/cgroup.procs" 2>/dev/null; done | sort -u | tr '\n' ' ')
    # shellcheck disable=SC2086 # pids: a list, split on purpose
    g=$(python3 "$HERE/e2e_scan.py" --secrets "$W/secrets" --placeholders "$W/placeholders" mem $pids)
    expect A-memory-scan 'pids>=2 secret-hits= placeholder-found=yes' \
        "pids$([ "$(jq -r .pids <<<"$g")" -ge 2 ] 2>/dev/null && echo '>=2' || echo "=$(jq -r .pids <<<"$g")") secret-hits=$(jq -r '.secret_hits | join(",")' <<<"$g") placeholder-found=$([ "$(jq -r .placeholder_hits <<<"$g")" -gt 0 ] 2>/dev/null && echo yes || echo no)"
    expect A-state-no-secret 'files>0 hits=0' "files$([ "$(find "$WROOT/$A" -type f 2>/dev/null | wc -l)" -gt 0 ] && echo '>0' || echo '=0') hits=$(secret_hits "$WROOT")"
    expect A-logs-no-secret 'hits=0' "hits=$(secret_hits "$W/logs")"
    expect A-violation-log-no-secret 'records>0 hits=0' \
        "records$([ -s "$(vlog "$A")" ] && echo '>0' || echo '=0') hits=$(secret_hits "$(vlog "$A")")"
    local out; out=$(rtc ward delete -f "$A" 2>&1) || fail A-delete "ward delete -f: $(one_line <<<"$out")"
    sleep 0.5
    expect A-delete-leaves-nothing "$NOTHING" "$(leftovers "$A")"
}

# ---------------------------------------------------------------- run
if rtc ward list >/dev/null 2>&1; then pass ward-egress-ca-flag "ward accepts --egress-ca $WARD_LAB_CA"
else fail ward-egress-ca-flag "ward refuses its global flags ${GLOBAL[*]}: $(rtc ward list 2>&1 | one_line 200)"; fi
baseline
aws_baseline
[[ $PARTS == *" K "* ]] && creds_ward
[[ $PARTS == *" R "* ]] && refusals
[[ $PARTS == *" H "* ]] && hook_col
[[ $PARTS == *" A "* ]] && aws_ward

echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
