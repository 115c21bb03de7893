#!/bin/bash
# `ward sandbox` alone (issue 18's proof, the cases sidebyside.sh cannot share with srt): a
# terminal session through a pty driven with tmux (interactive sh, tty, stty size following the
# pane, Ctrl-C, exit status, vim), signals from outside, exit statuses and stdio, walls
# inherited by children and exec'd binaries, unix sockets, the command-line flags, violations
# (--log, the summary, --quiet), what the command sees of ward and the host (state root, /proc,
# capabilities, id), bad input, and nothing left behind after every run.
#
#   integration/sandbox/setup.sh     # once: user ward-sb (and srt etc. for sidebyside.sh)
#   integration/sandbox/ward.sh      # root; WARD=path (default target/release/ward)
#
# Every case runs as the unprivileged user of setup.sh (setpriv, a clean environment, no
# XDG_RUNTIME_DIR: the state root is /tmp/ward-<uid>). Network cases use an egress lab of its
# own (integration/egress/lab.sh, suffix wsb<pid>, waiting up to 10 minutes for another lab to
# go) and `ward --egress-resolver <lab DNS>`, so the host's /etc/hosts is never touched;
# WARD_LAB_REUSE=SUFFIX uses a lab already up instead (only read, never taken down).
# Prints one table (case | got | expected); exits non-zero on any mismatch. Removes the lab, the
# work directory, the tmux server and any process of the run on exit, failure or signal.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

WARD="${WARD:-$ROOT/target/release/ward}"
USER_SB="${SANDBOX_USER:-ward-sb}"
export WARD_LAB_SUFFIX="wsb$$"
WARD_LAB_SUFFIX="${WARD_LAB_SUFFIX:0:10}"
export WARD_LAB_WAIT="${WARD_LAB_WAIT:-600}"

[ "$(id -u)" = 0 ] || { echo "ward.sh: run as root (it starts the egress lab and runs the cases as $USER_SB)" >&2; exit 1; }
id "$USER_SB" >/dev/null 2>&1 || { echo "ward.sh: no user $USER_SB: run integration/sandbox/setup.sh" >&2; exit 1; }
[ -x "$WARD" ] || { echo "ward.sh: $WARD missing (make build, or WARD=path)" >&2; exit 1; }
for t in tmux python3 curl setpriv; do
    command -v "$t" >/dev/null || { echo "ward.sh: $t missing" >&2; exit 1; }
done
VIM="$(command -v vim || command -v vi || true)"

UID_SB="$(id -u "$USER_SB")"
GID_SB="$(id -g "$USER_SB")"
HOME_SB="$(getent passwd "$USER_SB" | cut -d: -f6)"
STATE="/tmp/ward-$UID_SB"
WORK="$(mktemp -d /tmp/ward-sandbox-ward.XXXXXX)"
PROJ="$WORK/proj"
OUT="$WORK/out"
SECRET="$HOME_SB/wsb-secret-$$"
OUTSIDE="$HOME_SB/wsb-outside-$$.txt"
TMUX_SOCK="$WORK/tmux.sock"
RUNTAG="ward-sandbox-ward-$$"
LAB_UP=0

# Processes of this run: every one is started with WARD_SBT=$RUNTAG in its environment (ward,
# the proxy it spawns and the command inherit it), so another user of $USER_SB is not touched.
run_pids() {
    local p
    for p in $(pgrep -u "$UID_SB" 2>/dev/null); do
        { tr '\0' '\n' < "/proc/$p/environ"; } 2>/dev/null | grep -qx "WARD_SBT=$RUNTAG" && echo "$p"
    done
}
cleanup() {
    runuser -u "$USER_SB" -- tmux -S "$TMUX_SOCK" kill-server >/dev/null 2>&1
    # What a failed case left running: TERM first (ward then deletes its sandbox), then KILL,
    # and the state of a ward that had to be killed goes too (sandbox-<its pid>).
    local p i left
    left=$(run_pids)
    if [ -n "$left" ]; then
        kill -TERM $left 2>/dev/null
        for i in $(seq 30); do [ -z "$(run_pids)" ] && break; sleep 0.1; done
        for p in $(run_pids); do kill -KILL "$p" 2>/dev/null; done
        for p in $left; do rm -rf "$STATE/sandbox-$p" "$STATE/.sandbox/sandbox-$p"; done
    fi
    [ "$LAB_UP" = 1 ] && integration/egress/lab.sh down >/dev/null 2>&1
    rm -rf "$WORK" "$SECRET" "$OUTSIDE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "ward.sh: $WARD as $USER_SB (uid $UID_SB)"
if [ -n "${WARD_LAB_REUSE:-}" ]; then
    # A lab already up (`WARD_LAB_SUFFIX=X lab.sh up`): only read; never taken down here.
    echo "ward.sh: using the running egress lab '$WARD_LAB_REUSE'"
    WARD_LAB_SUFFIX="$WARD_LAB_REUSE" integration/egress/lab.sh env > "$WORK/lab.env" || exit 1
else
    echo "ward.sh: egress lab up (suffix $WARD_LAB_SUFFIX)"
    if ! integration/egress/lab.sh up > "$WORK/lab.env" 2> "$WORK/lab.err"; then
        cat "$WORK/lab.err" >&2
        echo "ward.sh: the egress lab did not come up (another one up? WARD_LAB_REUSE=its-suffix uses it)" >&2
        exit 1
    fi
    LAB_UP=1
fi
set -a; . "$WORK/lab.env"; set +a

mkdir -p "$PROJ/extra" "$PROJ/sub" "$OUT" "$SECRET" "$WORK/xdg"
echo "the secret" > "$SECRET/key"
cp "$WARD_LAB_CA" "$PROJ/ca.pem"
cat > "$PROJ/settings.json" <<JSON
{
  "network": { "allowedDomains": ["allowed.test"], "deniedDomains": [] },
  "filesystem": { "denyRead": ["$SECRET"], "allowWrite": ["."], "denyWrite": [] }
}
JSON
cat > "$PROJ/unix.json" <<'JSON'
{ "network": { "allowedDomains": [], "deniedDomains": [], "allowAllUnixSockets": true },
  "filesystem": { "denyRead": [], "allowWrite": ["."], "denyWrite": [] } }
JSON
cat > "$PROJ/bad.json" <<'JSON'
{ "network": { "allowedDomains": "allowed.test" } }
JSON
chown -R "$USER_SB:" "$WORK" "$SECRET"
chmod 755 "$WORK"
chmod 700 "$WORK/xdg"

# as_sb DIR CMD...: CMD as the sandbox user in DIR with a clean environment. A simple command
# (setpriv and both envs exec): started with &, $! is CMD's own pid.
as_sb() {
    local dir=$1; shift
    setpriv --reuid="$UID_SB" --regid="$GID_SB" --init-groups -- \
        env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$HOME_SB" USER="$USER_SB" LOGNAME="$USER_SB" \
        LANG=C.UTF-8 SHELL=/bin/sh TERM="${TERM_SB:-dumb}" WARD_SBT="${RUNTAG_SB-$RUNTAG}" ${XDG_SB:+XDG_RUNTIME_DIR=$XDG_SB} \
        env -C "$dir" "$@"
}
as_sb_argv() { # the same as an argv in AS_SB, for a background start whose pid is ward's
    AS_SB=(setpriv --reuid="$UID_SB" --regid="$GID_SB" --init-groups --
        env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$HOME_SB" USER="$USER_SB" LOGNAME="$USER_SB"
        LANG=C.UTF-8 SHELL=/bin/sh TERM=dumb WARD_SBT="$RUNTAG" ${XDG_SB:+XDG_RUNTIME_DIR=$XDG_SB}
        env -C "$1")
}
# sb [ward args...] -- CMD...: ward sandbox as the sandbox user in $PROJ, stdin from $IN (default
# /dev/null), stdout to $OUT/o, stderr to $OUT/e; sets RC.
# LASTPID: ward's pid (setpriv and env exec), which names its container: sandbox-<pid>.
sb() {
    as_sb_argv "$PROJ"
    "${AS_SB[@]}" "$WARD" --egress-resolver "$WARD_LAB_DNS" sandbox "$@" \
        < "${IN:-/dev/null}" > "$OUT/o" 2> "$OUT/e" &
    LASTPID=$!
    wait "$LASTPID"
    RC=$?
}
LASTPID=""

# What a run may leave: its container's state directory or work directory (sandbox-<pid>, in
# the state root and its .sandbox/; other users of the same state root may be running: only
# this run's are looked at), anything in the XDG state root of the XDG case (private to this
# script; @cache, the compiled-seccomp cache, is meant to stay), processes of this run, mounts naming the state root or the work directory,
# listening sockets of this run's processes. Polled briefly: the proxy may be exiting.
leftovers() {
    local left="" i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        left=""
        local f
        f=$(find "$WORK/xdg" -mindepth 1 -path "$WORK/xdg/ward/@cache" -prune -o \
                \( ! -type d -o -name 'sandbox-*' \) -print 2>/dev/null | head -3 | tr '\n' ' ')
        if [ -n "$LASTPID" ]; then
            for d in "$STATE/sandbox-$LASTPID" "$STATE/.sandbox/sandbox-$LASTPID"; do
                [ -e "$d" ] && f+="$(find "$d" | tail -1) "
            done
        fi
        [ -n "$f" ] && left+="state:[$f] "
        local p
        p=$(run_pids | tr '\n' ' ')
        [ -n "$p" ] && left+="procs:[$p$(for q in $p; do cat /proc/$q/comm 2>/dev/null; done | tr '\n' ' ')] "
        grep -qE "$STATE|$WORK|/\.sandbox/" /proc/self/mountinfo && left+="mounts "
        if [ -n "$p" ]; then
            local s
            s=$(ss -Hlnp 2>/dev/null | grep -E "pid=($(echo $p | tr ' ' '|'))," | head -2)
            [ -n "$s" ] && left+="listening:[$s] "
        fi
        [ -z "$left" ] && return 0
        sleep 0.2
    done
    echo "$left"
}

FAIL=0
ROWS=()
CHECK_LEFT=1  # 0 while a session is meant to be running (the terminal cases)
row() { # name got expected-regex
    local name=$1 got=$2 want=$3 mark=""
    [ -n "$got" ] || got="(nothing)"
    if [[ "$got" =~ $want ]]; then
        local l=""; [ "$CHECK_LEFT" = 1 ] && l=$(leftovers)
        if [ -n "$l" ]; then mark=" LEFTOVER $l"; FAIL=1; fi
    else
        mark=" MISMATCH"; FAIL=1
    fi
    printf '%-26s | %-34s | %s\n' "$name" "$got$mark" "$want"
    if [ -n "$mark" ] && [ -s "$OUT/e" ]; then head -n3 "$OUT/e" | sed 's/^/    (last stderr) /'; fi
}
last() { tail -n1 "$OUT/o" 2>/dev/null; }

echo "(every row also checks that the run left nothing: state or work dir of its ward, process, mount, listener)"
printf '%-26s | %-34s | %s\n' case got expected
printf '%s\n' "---------------------------+------------------------------------+--------------------"

# --- exit statuses, stdio -------------------------------------------------------------------
for n in 0 1 7 255; do
    sb -- sh -c "exit $n"; row "exit-$n" "rc=$RC" "^rc=$n$"
done
printf 'one\ntwo\n' > "$WORK/in"
IN="$WORK/in" sb -- sh -c 'tr a-z A-Z; echo to-stderr >&2'
row "stdio-pipe" "$(tr '\n' ' ' < "$OUT/o")/$(grep -c to-stderr "$OUT/e")/$(grep -c to-stderr "$OUT/o")" "^ONE TWO /1/0$"
head -c 4194304 /dev/urandom > "$WORK/big"
IN="$WORK/big" sb -- sha256sum
row "stdin-4MiB" "$( [ "$(cut -d' ' -f1 "$OUT/o")" = "$(sha256sum < "$WORK/big" | cut -d' ' -f1)" ] && echo same-sha256 || echo differs)" "^same-sha256$"
rm -f "$WORK/big" "$WORK/in"

# --- signals from outside ---------------------------------------------------------------------
# bg_sb SNIPPET: ward sandbox -- sh -c SNIPPET in the background, waits for "ready" on stdout;
# BG is ward's pid. With job control on (set -m) for the start, as from an interactive shell: a
# script's background command otherwise starts with SIGINT and SIGQUIT ignored.
bg_sb() {
    as_sb_argv "$PROJ"
    set -m
    "${AS_SB[@]}" "$WARD" sandbox -- sh -c "$1" < /dev/null > "$OUT/o" 2> "$OUT/e" &
    BG=$!; LASTPID=$BG
    set +m
    local i
    for i in $(seq 100); do grep -q ready "$OUT/o" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
# wait_bg: RC of BG, at most 20 s (then it is killed: RC "hung").
wait_bg() {
    local i
    for i in $(seq 200); do kill -0 "$BG" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$BG" 2>/dev/null; then
        kill -KILL "$BG"; wait "$BG"; RC=hung
    else
        wait "$BG"; RC=$?
    fi
}
for sig in INT TERM; do
    bg_sb 'echo ready; exec sleep 100'; kill -"$sig" "$BG"; wait_bg
    row "kill-$sig-ward" "rc=$RC" "^rc=$([ $sig = INT ] && echo 130 || echo 143)$"
done
bg_sb 'trap "echo trapped; exit 42" TERM; echo ready; while :; do sleep 0.1; done'
kill -TERM "$BG"; wait_bg
row "kill-TERM-trap" "rc=$RC $(last)" "^rc=42 trapped$"
bg_sb 'echo ready; exec sleep 1001'
victim=$(for p in $(run_pids); do [ "$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)" = "sleep 1001 " ] && echo "$p"; done | head -1)
kill -KILL "${victim:-999999}" 2>/dev/null; wait_bg
row "kill-KILL-command" "rc=$RC" "^rc=137$"
sb -- sh -c 'kill -KILL $$'
row "kill-KILL-self" "rc=$RC" "^rc=137$"
# ward itself SIGKILLed: its sandbox dies with it (pid 1's parent-death signal), and the next
# sandbox sweeps the state and work directory it could not remove (the row's leftover check).
bg_sb 'echo ready; exec sleep 1002'
kill -KILL "$BG"; wait "$BG" 2>/dev/null
sleep 0.5
alive=$(pgrep -u "$USER_SB" -fx 'sleep 1002' | wc -l)
sb -- true
row "kill-KILL-ward" "alive=$alive rc=$RC" "^alive=0 rc=0$"

# --- walls inherited by a child process and an exec'd binary ----------------------------------
CURL='curl -s -o /dev/null --max-time 10 -w %{http_code} --cacert ./ca.pem'
# Each wall as a shell snippet printing one word; run as a forked child of python3 and as a
# binary python3 execs into.
declare -A WALL=(
    [denyRead]="cat $SECRET/key >/dev/null 2>&1 && echo readable || echo denied"
    [write-outside]="(echo x > $OUTSIDE) 2>/dev/null && echo wrote || echo denied"
    [write-inside]="(echo x > ./inside.txt) 2>/dev/null && echo wrote || echo denied"
    [unix-socket]="python3 -c 'import socket; socket.socket(socket.AF_UNIX)' 2>/dev/null && echo created || echo denied"
    [net-allowed]="$CURL https://allowed.test/ || true"
    [net-other]="$CURL https://other.test/ || true"
    [net-raw-ip]="$CURL --noproxy '*' http://$WARD_LAB_ADDR_OTHER_TEST/ || echo fail"
)
declare -A WANT=([denyRead]="^denied$" [write-outside]="^denied$" [write-inside]="^wrote$"
    [unix-socket]="^denied$" [net-allowed]="^200$" [net-other]="^(403|000)$" [net-raw-ip]="^(000)?fail$|^000$")
for w in denyRead write-outside write-inside unix-socket net-allowed net-other net-raw-ip; do
    snippet=${WALL[$w]}
    sb --settings ./settings.json -- python3 -c 'import subprocess,sys; subprocess.run(["sh","-c",sys.argv[1]])' "$snippet"
    row "child-$w" "$(last)" "${WANT[$w]}"
    rm -f "$PROJ/inside.txt" "$OUTSIDE"
    sb --settings ./settings.json -- python3 -c 'import os,sys; os.execv("/bin/sh",["sh","-c",sys.argv[1]])' "$snippet"
    row "exec-$w" "$(last)" "${WANT[$w]}"
    rm -f "$PROJ/inside.txt" "$OUTSIDE"
done

# --- unix sockets -----------------------------------------------------------------------------
UNIX='import socket,os
s=socket.socket(socket.AF_UNIX); s.bind("./u.sock"); s.listen()
c=socket.socket(socket.AF_UNIX); c.connect("./u.sock"); a,_=s.accept(); c.send(b"hi"); print(a.recv(2).decode())'
sb --settings ./unix.json -- python3 -c "$UNIX"
row "unix-allowAll" "$(last)" "^hi$"; rm -f "$PROJ/u.sock"
sb -- python3 -c "$UNIX"
row "unix-default" "rc=$RC $(grep -o 'PermissionError\|Operation not permitted' "$OUT/e" | head -1)" "^rc=1 (PermissionError|Operation not permitted)$"; rm -f "$PROJ/u.sock"
sb -- python3 -c 'import socket; a,b=socket.socketpair(); a.send(b"pair"); print(b.recv(4).decode())'
row "socketpair" "$(last)" "^pair$"

# --- the command-line flags, no settings file -------------------------------------------------
# Which of the cwd, a directory below it and home got the file on the host (a write into the
# private /tmp's copy of a path is allowed and gone with the run: the host is what counts).
W='for f in ./d.txt ./extra/d.txt '"$HOME_SB"'/wsb-d.txt; do (echo x > $f) 2>/dev/null; done; true'
landed() {
    local f out=""
    for f in "$PROJ/d.txt" "$PROJ/extra/d.txt" "$HOME_SB/wsb-d.txt"; do
        [ -e "$f" ] && out+=w || out+=-
    done
    rm -f "$PROJ/d.txt" "$PROJ/extra/d.txt" "$HOME_SB/wsb-d.txt"
    echo "$out"
}
sb -- sh -c "$W"
row "default-writes" "$(landed)" "^ww-$"   # cwd (and below) writable, home not
sb -- sh -c "$CURL http://allowed.test/ || true"
row "default-no-network" "$(last)" "^000$"
sb --allow-write "$PROJ/extra" -- sh -c "$W"
row "flag-allow-write" "$(landed)" "^-w-$"   # only the named path, not the cwd
sb --deny-read "$SECRET" -- sh -c "cat $SECRET/key 2>/dev/null || echo denied; ls $SECRET | wc -l"
row "flag-deny-read" "$(tr '\n' ' ' < "$OUT/o")" "^denied 0 $"
sb -- sh -c "cat $SECRET/key 2>/dev/null || echo denied"
row "no-deny-read-readable" "$(last)" "^the secret$"
sb --allow-domain allowed.test -- sh -c "$CURL https://allowed.test/; echo; $CURL https://other.test/; echo"
row "flag-allow-domain" "$(tr '\n' ' ' < "$OUT/o")" "^200 (403|000) $"

# --- violations: --log, the summary, --quiet --------------------------------------------------
rm -f "$WORK/v.log"
sb --allow-domain allowed.test --log "$WORK/v.log" -- sh -c "$CURL http://other.test/; $CURL https://evil.test/"
row "log-json-lines" "$(python3 -c '
import json,sys
ls=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(len(ls), " ".join(sorted({str(l.get("name")) for l in ls if str(l.get("decision","")).startswith("denied")})))' "$WORK/v.log" 2>&1)" "^[0-9]+ evil.test other.test$"
row "summary-stderr" "$(grep -o 'ward sandbox: [0-9]* refused: .*' "$OUT/e" | cut -c1-34)" "^ward sandbox: 2 refused: "
sb --quiet --allow-domain allowed.test -- sh -c "$CURL http://other.test/"
row "summary-quiet" "stderr=$(wc -c < "$OUT/e")B" "^stderr=0B$"
sb --allow-domain allowed.test -- sh -c "$CURL http://allowed.test/"
row "no-refusal-no-summary" "$(last)/stderr=$(wc -c < "$OUT/e")B" "^200/stderr=0B$"

# --- what the command sees --------------------------------------------------------------------
sb -- sh -c "ls -a $STATE >/dev/null 2>&1 && echo listed || echo hidden"
row "state-root-/tmp" "$(last)" "^hidden$"
XDG_SB="$WORK/xdg" sb -- sh -c "ls $WORK/xdg/ward 2>/dev/null | wc -l; cat $WORK/xdg/ward/*/state.json >/dev/null 2>&1 && echo read || echo hidden"
row "state-root-xdg" "rc=$RC $(tr '\n' ' ' < "$OUT/o")" "^rc=0 0 hidden $"
sb -- sh -c 'n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo $n $(cat /proc/1/comm)'
row "proc-only-own" "$(last)" "^[1-4] "
sb -- sh -c "grep ^Cap /proc/self/status | awk '{print \$2}' | sort -u | tr '\n' ' '"
row "capabilities" "$(last)" "^0000000000000000 $"
sb -- sh -c 'echo $(id -u) $(id -g) $(id -un)'
row "id" "$(last)" "^$UID_SB $GID_SB $USER_SB$"
sb --allow-domain allowed.test -- sh -c 'cat /etc/hosts | grep -v "^#" | awk "{print \$1}" | sort -u | tr "\n" " "; echo'
row "hosts-loopback-only" "$(last)" "^((127\.[0-9.]+|::1) )*$"

# --- bad input, nothing left after a failed create --------------------------------------------
sb --allow-weaker apparmor -- true
row "allow-weaker-unknown" "rc=$RC $(grep -o "invalid value 'apparmor'" "$OUT/e")" "^rc=2 invalid value 'apparmor'$"
sb --settings ./bad.json -- true
row "settings-wrong-type" "rc=$RC $(grep -o 'network.allowedDomains' "$OUT/e" | head -1)" "^rc=[1-9][0-9]* network.allowedDomains$"
sb --settings ./missing.json -- true
row "settings-missing" "rc=$RC $(grep -o 'missing.json' "$OUT/e" | head -1)" "^rc=[1-9][0-9]* missing.json$"
sb -- /nonexistent/command
row "command-missing" "rc=$RC" "^rc=(126|127|1)$"

# --- a terminal: tmux drives an interactive sh in ward sandbox through a pty ------------------
# tmux itself is not of this run (no WARD_SBT): only the ward started in its pane is.
tm() { RUNTAG_SB= TERM_SB=xterm as_sb "$PROJ" tmux -S "$TMUX_SOCK" "$@"; }
pane() { tm capture-pane -p -t w 2>/dev/null; }
# waitfor REGEX: until the pane shows a line matching it (10 s).
waitfor() {
    local i
    for i in $(seq 100); do pane | grep -qE "$1" && return 0; sleep 0.1; done
    return 1
}
tm new-session -d -s w -x 100 -y 30 \
    "env WARD_SBT=$RUNTAG $WARD sandbox -- sh; echo rc=\$? > $WORK/tty.rc; sleep 30"
CHECK_LEFT=0
for i in $(seq 50); do
    LASTPID=$(pgrep -P "$(tm list-panes -t w -F '#{pane_pid}' 2>/dev/null | head -1)" 2>/dev/null | head -1)
    [ -n "$LASTPID" ] && break; sleep 0.1
done
tm set-option -t w status off >/dev/null
waitfor '^\$ ?$'
tm send-keys -t w 'PS1="sb> "' Enter
waitfor '^sb> $'
tm send-keys -t w 'tty' Enter
row "tty-pts" "$(waitfor '^/dev/pts/[0-9]+$'; pane | grep -oE '^/dev/pts/[0-9]+$' | head -1)" "^/dev/pts/[0-9]+$"
tm send-keys -t w 'echo out-$((6*7))' Enter
row "tty-output" "$(waitfor '^out-42$' && echo out-42)" "^out-42$"
tm send-keys -t w 'stty size' Enter
row "tty-size" "$(waitfor '^30 100$' && echo '30 100')" "^30 100$"
tm resize-window -t w -x 120 -y 40
sleep 0.5
tm send-keys -t w 'clear; stty size' Enter
row "tty-size-resized" "$(waitfor '^40 120$' && echo '40 120' || pane | grep -E '^[0-9]+ [0-9]+$' | tail -1)" "^40 120$"
tm send-keys -t w 'clear; sleep 100' Enter
sleep 1
tm send-keys -t w C-c
sleep 0.5
tm send-keys -t w 'echo alive-$((1+1))' Enter
got=$(waitfor '^alive-2$' && echo alive)
got+=" sleeps=$(for p in $(run_pids); do cat /proc/$p/comm 2>/dev/null; done | grep -c '^sleep$')"
row "tty-ctrl-c" "$got" "^alive sleeps=0$"
if [ -n "$VIM" ]; then
    tm send-keys -t w "clear; $(basename "$VIM") -u NONE -i NONE -N vimnote.txt" Enter
    got=$(waitfor '^~ *$' && echo opened)
    tm send-keys -t w i 'written in vim' Escape
    tm send-keys -t w ':wq' Enter
    tm send-keys -t w 'echo vim-rc-$?' Enter
    got+=" $(waitfor '^vim-rc-0$' && echo quit-0) $(cat "$PROJ/vimnote.txt" 2>/dev/null)"
    row "tty-vim" "$got" "^opened quit-0 written in vim$"
else
    row "tty-vim" "no vim or vi on this host" "^opened"
fi
tm send-keys -t w 'exit 3' Enter
for i in $(seq 100); do [ -s "$WORK/tty.rc" ] && break; sleep 0.1; done
CHECK_LEFT=1
row "tty-exit-3" "$(cat "$WORK/tty.rc" 2>/dev/null)" "^rc=3$"
tm kill-server >/dev/null 2>&1

echo
if [ "$FAIL" = 0 ]; then echo "ward.sh: every case as expected"; else echo "ward.sh: FAILED (see above)"; fi
exit "$FAIL"
