#!/usr/bin/env bash
# Calls through the B2BUA over a lossy, duplicating, reordering network (RFC 3261 §17 timers at
# work): SIPp callers and a SIPp callee talk to the daemon through tests/tools/lossy_relay.py,
# one relay per side. The callee registers through its relay, so the daemon reaches it there (NAT
# binding: the relay's socket is the source it saw).
#
#   10 % loss each way: at least 99 % of LOSSY_CALLS (1,000) calls complete, and afterwards no
#                       call is left (every "new call" has its "call ended" log line and CDR)
#                       and the transaction table is empty (every "transaction created" has its
#                       "transaction terminated").
#   30 % loss each way: every one of LOSSY_CALLS_30 (300) calls ends (SIPp counts it successful
#                       or failed), and the daemon's call and transaction tables return to empty.
#
# Both phases add 1 % duplication, 2 % of datagrams held back 40 ms (reordering) and 0-5 ms of
# delay. Seeds are fixed (LOSSY_SEED). Runs after `cargo build --release`; installs nothing
# (needs sip-tester and python3). Everything is on 127.0.0.1 and every wait is bounded. Ends
# with "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
HERE=$ROOT/tests/interop
RELAY=$ROOT/tests/tools/lossy_relay.py
CALLS_10=${LOSSY_CALLS:-1000}
CALLS_30=${LOSSY_CALLS_30:-300}
RATE=${LOSSY_RATE:-20}
SEED=${LOSSY_SEED:-4475}
# How long the daemon may take to settle after the last SIPp call ends: its longest timers are
# 64*T1 = 32 s (Timer B/F/H/J) after the last retransmission, plus the no-answer timer.
SETTLE=${LOSSY_SETTLE:-80}
# LOSSY_TRACE=1 keeps every SIP message: SIPp's -trace_msg files and the daemon's sip::wire log
# (run with KEEP_WORK=1 to look at them).
TRACE=${LOSSY_TRACE:-}

if [ ! -x "$BIN" ]; then
  echo "no $BIN: run cargo build --release first"; echo "0 passed, 1 failed"; exit 1
fi
WORK=$(mktemp -d /tmp/ferroswitch-lossy.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  PIDS=()
  stop_daemon
}
trap 'cleanup; [ "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT


# start_relay NAME LISTEN_PORT LOSS SEED: a relay in front of the daemon.
start_relay() {
  local name=$1 port=$2 loss=$3 seed=$4
  python3 "$RELAY" --listen "127.0.0.1:$port" --target "127.0.0.1:$PORT" --loss "$loss" \
    --dup 0.01 --reorder 0.02 --hold 40 --delay 0:5 --seed "$seed" \
    --stats "$DIR/relay-$name.json" >"$DIR/relay-$name.out" 2>&1 &
  PIDS+=($!)
  local _
  for _ in $(seq 1 50); do
    grep -q "listening" "$DIR/relay-$name.out" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "relay $name did not start"; cat "$DIR/relay-$name.out"; return 1
}

# count PATTERN: lines of the daemon's log containing PATTERN.
count() { grep -c -- "$1" "$DIR/daemon.log" 2>/dev/null || true; }

# sipp_stat CSV COLUMN: the last value of a column of a SIPp -trace_stat file.
sipp_stat() {
  python3 - "$1" "$2" <<'PY' 2>/dev/null || echo 0
import sys
rows = [l.rstrip("\n").split(";") for l in open(sys.argv[1]) if l.strip()]
print(int(rows[-1][rows[0].index(sys.argv[2])]))
PY
}

relay_summary() { # NAME
  python3 - "$DIR/relay-$1.json" "$1" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
parts = []
for d in ("up", "down"):
    c = s[d]
    rate = 100.0 * c["dropped"] / c["received"] if c["received"] else 0.0
    parts.append(f"{d} {c['received']} in, {c['dropped']} lost ({rate:.1f} %), "
                 f"{c['duplicated']} duplicated, {c['reordered']} held back")
print(f"     relay {sys.argv[2]}: " + "; ".join(parts))
PY
}

# phase LOSS CALLS: a fresh daemon, two relays, a callee registered through one, CALLS calls
# through the other. Sets OK_CALLS, FAILED_CALLS, NEW, ENDED, CREATED, TERMINATED, CDRS, WAITED.
phase() {
  local loss=$1 calls=$2 tag=${1/./}
  DIR=$WORK/loss-$tag
  mkdir -p "$DIR"
  PORT=$(free_port)
  make_config "$DIR" "$PORT" 1000 1099
  # The callee is a SIPp UAS registered through the relay, so the registrar sees it behind
  # NAT; SIPp cannot answer keep-alive OPTIONS outside its scenario: keep-alives off here.
  sed -i 's/^default_expires = 3600$/default_expires = 3600\nnat_keepalive = 0/' "$DIR/ferroswitch.toml"
  # One SIPp user places every call: the per-user and per-source call limits are off.
  printf '\n[calls]\ncdr_file = "%s/cdr.jsonl"\nmax_calls_per_user = 0\nmax_calls_per_source = 0\n' "$DIR" >> "$DIR/ferroswitch.toml"
  # Transaction births and deaths are debug lines: counting them shows the table empty.
  export RUST_LOG="info,ferroswitch::transaction::layer=debug${TRACE:+,sip::wire=trace}"
  start_daemon "$DIR" "$PORT" || return 1
  unset RUST_LOG
  local relay_a relay_b uas uac
  relay_a=$(free_port); relay_b=$(free_port); uas=$(free_port); uac=$(free_port)
  start_relay caller "$relay_a" "$loss" "$SEED" || return 1
  start_relay callee "$relay_b" "$loss" "$((SEED + 1))" || return 1

  # The callee registers through its relay (retried: the REGISTER may be lost past SIPp's
  # retransmissions).
  printf 'SEQUENTIAL\n1001;127.0.0.1;[authentication username=1001 password=pw-1001-Xk9q]\n' > "$DIR/reg.csv"
  local registered=0 _
  for _ in 1 2 3 4 5; do
    if timeout 60 sipp "127.0.0.1:$relay_b" -sf "$HERE/register.xml" -inf "$DIR/reg.csv" \
      -i 127.0.0.1 -p "$uas" -m 1 -nostdin -recv_timeout 30s -timeout 40s -timeout_error \
      >"$DIR/reg.out" 2>&1; then registered=1; break; fi
  done
  [ $registered -eq 1 ] || { echo "     callee did not register through the relay"; return 1; }
  sipp -sf "$HERE/uas_lossy.xml" -i 127.0.0.1 -p "$uas" -nostdin -buff_size 4194304 \
    -default_behaviors all,-bye -trace_stat -stf "$DIR/uas.csv" -trace_err \
    -error_file "$DIR/uas.err" ${TRACE:+-trace_msg -message_file "$DIR/uas.msg"} >"$DIR/uas.out" 2>&1 &
  PIDS+=($!)
  local uas_pid=$!

  printf 'SEQUENTIAL\n1000;1001;[authentication username=1000 password=pw-1000-Xk9q]\n' > "$DIR/caller.csv"
  local started=$SECONDS
  # -recv_timeout bounds every wait of a call (a call whose messages are all lost fails, it
  # does not hang); -timeout bounds the whole run.
  timeout 1500 sipp "127.0.0.1:$relay_a" -sf "$HERE/uac_lossy.xml" -inf "$DIR/caller.csv" \
    -i 127.0.0.1 -p "$uac" -m "$calls" -r "$RATE" -l 1000 -recv_timeout 70s -timeout 1400s -nostdin \
    -buff_size 4194304 -trace_stat -stf "$DIR/uac.csv" -fd 1 \
    -trace_err -error_file "$DIR/uac.err" ${TRACE:+-trace_msg -message_file "$DIR/uac.msg"} \
    >"$DIR/uac.out" 2>&1
  local rc=$?
  OK_CALLS=$(sipp_stat "$DIR/uac.csv" "SuccessfulCall(C)")
  FAILED_CALLS=$(sipp_stat "$DIR/uac.csv" "FailedCall(C)")
  echo "     sipp caller: rc=$rc, $OK_CALLS successful, $FAILED_CALLS failed of $calls in $((SECONDS - started)) s"

  # Wait (bounded) until every call and every transaction the daemon started has ended.
  local t0=$SECONDS
  while :; do
    NEW=$(count " new call"); ENDED=$(count " call ended")
    CREATED=$(count "transaction created"); TERMINATED=$(count "transaction terminated")
    if [ "$NEW" -eq "$ENDED" ] && [ "$CREATED" -eq "$TERMINATED" ]; then break; fi
    [ $((SECONDS - t0)) -ge "$SETTLE" ] && break
    sleep 1
  done
  WAITED=$((SECONDS - t0))
  CDRS=$(wc -l < "$DIR/cdr.jsonl" 2>/dev/null || echo 0)
  kill "$uas_pid" 2>/dev/null; wait "$uas_pid" 2>/dev/null
  ALIVE=0; options_ping "$PORT" && ALIVE=1
  cleanup
  relay_summary caller; relay_summary callee
  echo "     daemon: $NEW new calls, $ENDED ended, $CDRS CDRs; transactions $CREATED created, $TERMINATED terminated; settled $WAITED s after the last SIPp call"
  echo "     hang-up causes: $(grep -o '"hangup_cause":"[A-Z_]*"' "$DIR/cdr.jsonl" | sort | uniq -c | tr -s ' ' | tr '\n' ',')"
  echo "     callee: $(sipp_stat "$DIR/uas.csv" "SuccessfulCall(C)") successful, $(sipp_stat "$DIR/uas.csv" "FailedCall(C)") failed"
  return 0
}

settled() {
  [ "$NEW" -eq "$ENDED" ] && [ "$CDRS" -eq "$NEW" ] && [ "$CREATED" -eq "$TERMINATED" ] \
    && [ "$ALIVE" -eq 1 ]
}

relay_unit_tests() {
  python3 -m unittest discover -s "$ROOT/tests/tools" -p 'test_lossy_relay.py' >"$WORK/relay-tests.out" 2>&1 \
    || { cat "$WORK/relay-tests.out"; return 1; }
}
check "relay: pass-through, per-client sockets, seeded loss, duplication, reordering" relay_unit_tests

if [ "$CALLS_10" -eq 0 ]; then :
elif phase 0.1 "$CALLS_10"; then
  check "10 % loss: at least 99 % of $CALLS_10 calls complete" \
    test $((OK_CALLS * 100)) -ge $((CALLS_10 * 99))
  check "10 % loss: every call ended in the daemon (log, CDR), transaction table empty" settled
else
  failed=$((failed + 1)); echo "FAIL 10 % loss: setup"
fi

if [ "$CALLS_30" -eq 0 ]; then :
elif phase 0.3 "$CALLS_30"; then
  check "30 % loss: every one of $CALLS_30 calls ends (completed or failed)" \
    test $((OK_CALLS + FAILED_CALLS)) -eq "$CALLS_30"
  check "30 % loss: the daemon's call and transaction tables return to empty" settled
else
  failed=$((failed + 1)); echo "FAIL 30 % loss: setup"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
