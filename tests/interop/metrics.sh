#!/usr/bin/env bash
# Metrics against SIPp's own counts (issue 13): the daemon with [metrics] on, a SIPp UAS
# registered as 1001 (answers: 180, 200, BYE), SIPp's uac_auth.xml caller placing $CALLS calls
# with digest auth; then GET /metrics and compare the daemon's counters with SIPp's
# successful calls. Also: 404 for another path, calls_up back to 0.
# Ends with "N passed, N failed". Run it under the shared lock:
#   flock /tmp/ferroswitch-interop.lock bash tests/interop/metrics.sh
set -uo pipefail
source "$(dirname "$0")/lib.sh"
HERE=$ROOT/tests/interop
CALLS=${CALLS:-200}

if [ ! -x "$BIN" ]; then
  (cd "$ROOT" && cargo build --release --quiet) || exit 1
fi
WORK=$(mktemp -d /tmp/ferroswitch-metrics.XXXXXX)
UAS_PID=
cleanup() {
  [ -n "$UAS_PID" ] && { kill "$UAS_PID" 2>/dev/null; wait "$UAS_PID" 2>/dev/null; }
  stop_daemon
  [ "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(free_port)
MPORT=$(free_port)
make_config "$WORK" "$PORT" 1000 1001
printf '\n[calls]\nmax_calls_per_user = 0\nmax_calls_per_source = 0\n[metrics]\nlisten = "127.0.0.1:%s"\n' "$MPORT" >> "$WORK/ferroswitch.toml"
start_daemon "$WORK" "$PORT" || { echo "0 passed, 1 failed"; exit 1; }

scrape() { # PATH → body on stdout; HTTP status in $WORK/status
  python3 - "$MPORT" "$1" "$WORK/status" <<'PY'
import sys, urllib.request, urllib.error
port, path, status = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    r = urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5)
    code, body = r.status, r.read().decode()
except urllib.error.HTTPError as e:
    code, body = e.code, ""
open(status, "w").write(str(code))
print(body, end="")
PY
}

# metric NAME: its value in the last scrape ($WORK/metrics), 0 when absent.
metric() {
  awk -v n="$1" '$1 == n { v = $2 } END { print (v == "" ? 0 : v) + 0 }' "$WORK/metrics"
}

# is NAME WANT: the scraped value equals WANT (printed either way).
is() {
  local got; got=$(metric "$1")
  echo "     $1 = $got (want $2)"
  [ "$got" = "$2" ]
}

U1=$(free_port)
printf 'SEQUENTIAL\n1001;127.0.0.1;[authentication username=1001 password=pw-1001-Xk9q]\n' > "$WORK/reg.csv"
register() {
  timeout 20 sipp "127.0.0.1:$PORT" -sf "$HERE/register.xml" -inf "$WORK/reg.csv" -i 127.0.0.1 \
    -p "$U1" -m 1 -nostdin -timeout 10s -timeout_error >"$WORK/reg.out" 2>&1
}
check "sipp UAS registers as 1001" register
sipp -i 127.0.0.1 -p "$U1" -nostdin -sn uas >"$WORK/uas.out" 2>&1 &
UAS_PID=$!
sleep 0.5

calls() {
  printf 'SEQUENTIAL\n1000;1001;[authentication username=1000 password=pw-1000-Xk9q]\n' > "$WORK/caller.csv"
  timeout 300 sipp "127.0.0.1:$PORT" -sf "$HERE/uac_auth.xml" -inf "$WORK/caller.csv" \
    -i 127.0.0.1 -m "$CALLS" -r 50 -l 200 -timeout 120s -timeout_error -nostdin \
    -trace_stat -stf "$WORK/uac.csv" >"$WORK/uac.out" 2>&1
  local rc=$?
  # SIPp's own count: SuccessfulCall(C) in the last row of its statistics file.
  read -r SUCCESS RETRANS < <(python3 - "$WORK/uac.csv" <<'PY'
import sys
rows = [l.rstrip("\n").split(";") for l in open(sys.argv[1]) if l.strip()]
col = lambda name: rows[-1][rows[0].index(name)]
print(col("SuccessfulCall(C)"), col("Retransmissions(C)"))
PY
)
  echo "     sipp: rc=$rc, $SUCCESS successful calls of $CALLS, $RETRANS retransmissions"
  [ $rc -eq 0 ] && [ "$SUCCESS" -eq "$CALLS" ]
}
SUCCESS=0
RETRANS=0
check "sipp: $CALLS calls with digest auth to the SIPp UAS" calls
sleep 1
scrape /metrics > "$WORK/metrics"
check "GET /metrics answers 200" test "$(cat "$WORK/status")" = 200
check "calls started = SIPp's successful calls" is ferroswitch_calls_started_total "$SUCCESS"
check "calls answered = SIPp's successful calls" is ferroswitch_calls_answered_total "$SUCCESS"
check "calls ended NORMAL_CLEARING = SIPp's successful calls" \
  is 'ferroswitch_calls_ended_total{cause="NORMAL_CLEARING"}' "$SUCCESS"
# Each call sends 2 INVITEs (the 407 round) and a BYE; SIPp's retransmissions are received too.
invites_and_byes() {
  local inv bye; inv=$(metric 'ferroswitch_sip_requests_received_total{method="INVITE"}')
  bye=$(metric 'ferroswitch_sip_requests_received_total{method="BYE"}')
  echo "     INVITE $inv + BYE $bye (want 3 x $SUCCESS + $RETRANS retransmissions)"
  [ "$((inv + bye))" -eq "$((3 * SUCCESS + RETRANS))" ] && [ "$inv" -ge "$((2 * SUCCESS))" ] \
    && [ "$bye" -ge "$SUCCESS" ]
}
check "INVITEs + BYEs received = SIPp's sent, retransmissions included" invites_and_byes
check "post-dial delays observed = 1 per call" is ferroswitch_post_dial_delay_seconds_count "$SUCCESS"
check "no call up afterwards" is ferroswitch_calls_up 0
check "one registration (the UAS)" is ferroswitch_registrations_up 1
scrape /other > /dev/null
check "another path answers 404" test "$(cat "$WORK/status")" = 404

stop_daemon
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
