#!/usr/bin/env bash
# Interop tests: the real daemon on 127.0.0.1 against real SIP peers from Debian's packages
# (sip-tester = SIPp, baresip-core). Installs nothing; .ci/run does. Every step is bounded in
# count and time. Ends with "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
HERE=$ROOT/tests/interop

if [ ! -x "$BIN" ]; then
  (cd "$ROOT" && cargo build --release --quiet) || exit 1
fi
WORK=$(mktemp -d /tmp/ferroswitch-interop.XXXXXX)
trap 'stop_daemon; pkill -P $$ 2>/dev/null; [ "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT


PORT=$(free_port)
make_config "$WORK" "$PORT" 1000 2099
# Limits off for the load tests (10,000 calls from one user); calls_limit checks them.
printf '\n[calls]\ncdr_file = "cdr.jsonl"\nmax_calls_per_user = 0\nmax_calls_per_source = 0\n' >> "$WORK/ferroswitch.toml"
start_daemon "$WORK" "$PORT" || { echo "0 passed, 1 failed"; exit 1; }

# SIPp registers 1,000 users with digest auth over UDP, then 200 over TCP: 0 failures allowed.
sipp_register() {
  local transport=$1 count=$2 log=$WORK/sipp-register-$1
  timeout 120 sipp "127.0.0.1:$PORT" -sf "$HERE/register.xml" -inf "$WORK/users.csv" \
    -t "$transport" -i 127.0.0.1 -m "$count" -r 500 -l 200 -timeout 90s -timeout_error \
    -max_socket 100 -buff_size 4194304 -nostdin -trace_stat -stf "$log.csv" \
    -trace_err -error_file "$log.err" >"$log.out" 2>&1
  local rc=$?
  local ok fail
  ok=$(tail -1 "$log.csv" | awk -F';' '{print $(NF-0)}' >/dev/null; grep -o 'Successful call.*' "$log.out" | tail -1)
  echo "     sipp $transport: rc=$rc ${ok:-}"
  [ $rc -eq 0 ] || { tail -20 "$log.out"; head -40 "$log.err" 2>/dev/null; }
  [ $rc -eq 0 ]
}
check "sipp: 1000 digest registrations over UDP" sipp_register u1 1000
check "sipp: 200 digest registrations over TCP" sipp_register t1 200

source "$HERE/baresip.sh"
check "baresip: registers as alice with digest auth" baresip_register alice

source "$HERE/calls.sh"
if setup_callees; then
  check "sipp: $CALLS calls with digest auth through the B2BUA, CDR for each" calls_basic
  check "sipp: caller cancels while ringing (200/487, CANCEL to the callee)" calls_cancel
  check "sipp: busy callee (486 relayed)" calls_busy
  check "sipp: MESSAGE (chat) with 407 auth delivered to the callee" messages
  check "sipp: the 11th ringing call of one user gets 486, another user gets through" calls_limit
else
  failed=$((failed + 1)); echo "FAIL registering the SIPp callees"
fi
stop_callees
check "baresip: alice calls bob, RTP both ways, alice hangs up" baresip_call

stop_daemon
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
