#!/usr/bin/env bash
# Registrations survive kill -9 (issue 13): the real daemon with its SQLite store, SIPp
# registering 1,000 users over UDP with digest auth, the daemon SIGKILLed mid-run and started
# again on the same config. Checks that every user SIPp got a 200 OK for is in the database
# (read with python3's sqlite3 module before the restart), that the restarted daemon loaded
# them, and that a call to a SIPp UAS registered before the kill is answered without it
# registering again.
# Ends with "N passed, N failed". Needs sip-tester (SIPp) and python3; .ci/run installs them.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
HERE=$ROOT/tests/interop

if [ ! -x "$BIN" ]; then
  (cd "$ROOT" && cargo build --release --quiet) || exit 1
fi
WORK=$(mktemp -d /tmp/ferroswitch-restart.XXXXXX)
SIPP_PID=
cleanup() {
  [ -n "$SIPP_PID" ] && kill "$SIPP_PID" 2>/dev/null && wait "$SIPP_PID" 2>/dev/null
  stop_callees
  stop_daemon
  [ "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(free_port)
make_config "$WORK" "$PORT" 1000 2099
# [registrar] is the last table make_config writes: the store goes there (the default too,
# written out so this test keeps meaning the same if the default changes).
echo 'store = "sqlite:registrations.db"' >> "$WORK/ferroswitch.toml"
DB=$WORK/registrations.db
start_daemon "$WORK" "$PORT" || { echo "0 passed, 1 failed"; exit 1; }
source "$HERE/calls.sh"

# A callee that stays up across the restart: a SIPp UAS registered as 1001 before the kill.
UAS_PIDS=()
U1=$(free_port)
check "sipp UAS registers as 1001 before the kill" register_as 1001 "$U1"
start_uas answer "$U1" -sn uas -default_behaviors all,-bye

# 1,000 users (1100..2099) at 200/s: about 5 s; the daemon is SIGKILLed after 2.5 s. Every
# message is traced so the test knows which users got their 200 OK.
REG_RATE=${REG_RATE:-200}
KILL_AFTER=${KILL_AFTER:-2.5}
timeout 60 sipp "127.0.0.1:$PORT" -sf "$HERE/register.xml" -inf "$WORK/users.csv" \
  -t u1 -i 127.0.0.1 -m 1000 -r "$REG_RATE" -recv_timeout 3000 -max_socket 100 \
  -buff_size 4194304 -nostdin -trace_msg -message_file "$WORK/register.msg" \
  >"$WORK/sipp-register.out" 2>&1 &
SIPP_PID=$!
sleep "$KILL_AFTER"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
cp "$WORK/daemon.log" "$WORK/daemon-before-kill.log"
wait "$SIPP_PID" 2>/dev/null
SIPP_PID=

# Users whose REGISTER got a 200 OK, from SIPp's message trace.
python3 - "$WORK/register.msg" > "$WORK/ok-users" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
users = set()
for block in re.split(r"message received \[\d+\] bytes :", text)[1:]:
    msg = block.lstrip()
    if not msg.startswith("SIP/2.0 200") or not re.search(r"^CSeq:\s*\d+\s+REGISTER", msg, re.M | re.I):
        continue
    m = re.search(r"^(?:To|t):\s*<sip:([^@>]+)@", msg, re.M | re.I)
    if m:
        users.add(m.group(1))
print("\n".join(sorted(users)))
PY
OK_USERS=$(grep -c . "$WORK/ok-users")
echo "     SIPp logged a 200 OK for $OK_USERS of 1000 users before the kill"

kill_was_mid_run() { [ "$OK_USERS" -gt 0 ] && [ "$OK_USERS" -lt 1000 ]; }
check "the kill -9 landed mid-run (some users registered, not all)" kill_was_mid_run

# Every user with a 200 is in the database, read with python3's sqlite3 as the kill left it,
# before any daemon opens it again.
all_in_store() {
  python3 - "$DB" "$WORK/ok-users" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
stored = {aor.split("@")[0] for (aor,) in db.execute("SELECT aor FROM bindings")}
want = {u for u in open(sys.argv[2]).read().split() if u}
missing = sorted(want - stored)
print(f"     {len(want)} users with a 200, {len(stored)} addresses in the store, missing: {missing[:20]}")
sys.exit(1 if missing or not want else 0)
PY
}
check "every user SIPp got a 200 for is in the store after kill -9" all_in_store

start_daemon "$WORK" "$PORT" || { echo "$passed passed, $((failed + 1)) failed"; exit 1; }

loaded_them() {
  local line n
  line=$(grep -o 'location store: sqlite:[^(]*([0-9]* bindings' "$WORK/daemon.log" | head -1)
  n=$(echo "$line" | grep -o '([0-9]*' | tr -d '(')
  echo "     restarted daemon: ${line:-no load line} loaded"
  [ -n "$n" ] && [ "$n" -ge "$OK_USERS" ]
}
check "the restarted daemon loaded at least those bindings" loaded_them

check "a call to 1001 (registered before the kill) is answered after the restart" \
  run_uac restart uac_auth.xml 1001 5 5

stop_callees
stop_daemon
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
