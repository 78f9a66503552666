#!/usr/bin/env bash
# Media timeout (issue 11): the daemon relays media ([media] mode = "relay") with
# media_timeout = 5 and must hang up a call whose RTP stopped, and only such a call.
#   1. SIPp caller 1000 -> SIPp callee 1001 (answers, echoes RTP): PCMU both ways for 2 s, then
#      silence. The daemon must send BYE to both sides MEDIA_TIMEOUT..MEDIA_TIMEOUT+3 s after the
#      silence began, and the CDR says "hangup_cause":"MEDIA_TIMEOUT".
#   2. The same, but held from the start (caller sendonly, callee 1002 answers recvonly and sends
#      nothing): no BYE within MEDIA_TIMEOUT+4 s of the silence; the caller hangs up itself,
#      the CDR says NORMAL_CLEARING.
#
#   MEDIA_MODE=relay   (default) [media] mode = "relay", media_timeout, rtp_ports
#   MEDIA_MODE=none    no [media] section (today's daemon): check 1 must fail (no BYE), which
#                      shows the test can fail; EXPECT=fail turns that into a pass
#   EXPECT=pass|fail   (default pass)
# When the daemon rejects the [media] section it prints "relay not available" and exits 77.
# Ends with "N passed, N failed". Not in .ci/run until the relay lands.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
HERE=$ROOT/tests/interop
MEDIA_MODE=${MEDIA_MODE:-relay}
EXPECT=${EXPECT:-pass}
MEDIA_TIMEOUT=${MEDIA_TIMEOUT:-5}

if [ ! -x "$BIN" ]; then
  (cd "$ROOT" && cargo build --release --quiet) || exit 1
fi
WORK=$(mktemp -d /tmp/ferroswitch-mediatimeout.XXXXXX)
UAS_PIDS=()
cleanup() {
  local p
  for p in "${UAS_PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  for p in "${UAS_PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null; done
  stop_daemon
  [ "${KEEP_WORK:-}" ] && echo "work dir kept: $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(free_port)
make_config "$WORK" "$PORT" 1000 1002
printf '\n[calls]\ncdr_file = "cdr.jsonl"\n' >>"$WORK/ferroswitch.toml"
if [ "$MEDIA_MODE" != none ]; then
  printf '\n[media]\nmode = "%s"\nmedia_timeout = %s\nrtp_ports = "%s"\n%s\n' "$MEDIA_MODE" \
    "$MEDIA_TIMEOUT" "${RTP_PORTS:-41000-41099}" "${MEDIA_EXTRA:-}" >>"$WORK/ferroswitch.toml"
fi
echo "== media mode: $MEDIA_MODE, media_timeout $MEDIA_TIMEOUT s; expecting $EXPECT"
if ! start_daemon "$WORK" "$PORT" >"$WORK/start.out" 2>&1; then
  if [ "$MEDIA_MODE" != none ] && grep -qi media "$WORK/daemon.log"; then
    echo "relay not available: the daemon rejects the [media] section:"
    grep -i media "$WORK/daemon.log" | head -3 | sed 's/^/     /'
    echo "0 passed, 0 failed (skipped: relay not available)"
    exit 77
  fi
  cat "$WORK/start.out"; echo "0 passed, 1 failed"; exit 1
fi
python3 "$ROOT/benches/load/media.py" wav "$WORK/pcmu.wav"

register_as() { # USER PORT
  printf 'SEQUENTIAL\n%s;127.0.0.1;[authentication username=%s password=pw-%s-Xk9q]\n' "$1" "$1" "$1" >"$WORK/reg-$1.csv"
  timeout 20 sipp "127.0.0.1:$PORT" -sf "$HERE/register.xml" -inf "$WORK/reg-$1.csv" -i 127.0.0.1 \
    -p "$2" -m 1 -nostdin -timeout 10s -timeout_error >"$WORK/reg-$1.out" 2>&1
}
start_uas() { # USER DIR ARGS...
  local user=$1 dir=$2 port; shift 2
  port=$(free_port)
  register_as "$user" "$port" || { echo "     $user could not register"; return 1; }
  (cd "$WORK" && exec timeout 120 sipp -i 127.0.0.1 -p "$port" -nostdin -sf "$HERE/uas_media.xml" \
    -mp "$(free_port)" -key dir "$dir" -default_behaviors all,-bye -trace_logs \
    -log_file "$WORK/uas-$user.log" "$@" >"$WORK/uas-$user.out" 2>&1) &
  UAS_PIDS+=($!)
}
start_uas 1001 sendrecv -rtp_echo || { echo "0 passed, 1 failed"; exit 1; }
start_uas 1002 recvonly || { echo "0 passed, 1 failed"; exit 1; }
sleep 0.5

# call NAME SCENARIO CALLEE DIR [ARGS...]: one SIPp call from 1000, log in $WORK/NAME.log.
call() {
  local name=$1 sc=$2 callee=$3 dir=$4; shift 4
  printf 'SEQUENTIAL\n1000;%s;[authentication username=1000 password=pw-1000-Xk9q]\n' "$callee" >"$WORK/$name.csv"
  # -bye off: a call SIPp aborts sends no BYE of its own, so a BYE at the callee is the daemon's.
  case $sc in /*) ;; *) sc=$HERE/$sc ;; esac
  (cd "$WORK" && timeout 40 sipp "127.0.0.1:$PORT" -sf "$sc" -default_behaviors all,-bye -inf "$WORK/$name.csv" -i 127.0.0.1 \
    -p "$(free_port)" -mp "$(free_port)" -m 1 -nostdin -key dir "$dir" -trace_logs \
    -log_file "$WORK/$name.log" -trace_err -error_file "$WORK/$name.err" "$@" >"$WORK/$name.out" 2>&1)
}
# ticks LOG TEXT: the [clock_tick] (ms) of the line ending in TEXT.
ticks() { awk -v t="$2" 'index($0, t) { print $1; exit }' "$1" 2>/dev/null; }
cdr_cause() { # CALLEE
  grep "\"callee\":{\"user\":\"$1\"" "$WORK/cdr.jsonl" 2>/dev/null | tail -1 | grep -o '"hangup_cause":"[^"]*"'
}

timeout_call() {
  call timeout uac_media_timeout.xml 1001 sendrecv
  local rc=$? stop bye
  stop=$(ticks "$WORK/timeout.log" "rtp stop"); bye=$(ticks "$WORK/timeout.log" "bye received")
  sleep 0.5
  echo "     caller: sipp rc $rc, RTP stopped at ${stop:-?} ms, BYE at ${bye:-none} ms;" \
    "callee got BYE: $(grep -q 'bye received' "$WORK/uas-1001.log" 2>/dev/null && echo yes || echo no);" \
    "CDR $(cdr_cause 1001)"
  [ $rc = 0 ] && [ -n "$bye" ] && [ -n "$stop" ] || { head -3 "$WORK/timeout.err" 2>/dev/null | cut -c1-240; echo; return 1; }
  local dt=$(( bye - stop ))
  echo "     BYE $dt ms after the RTP stopped (want $((MEDIA_TIMEOUT * 1000))..$(( (MEDIA_TIMEOUT + 3) * 1000 )))"
  [ "$dt" -ge $((MEDIA_TIMEOUT * 1000 - 500)) ] && [ "$dt" -le $(( (MEDIA_TIMEOUT + 3) * 1000 )) ] || return 1
  grep -q 'bye received' "$WORK/uas-1001.log" || { echo "     the callee got no BYE"; return 1; }
  cdr_cause 1001 | grep -q MEDIA_TIMEOUT || { echo "     CDR lacks MEDIA_TIMEOUT"; return 1; }
}

held_call() {
  sed "s/@HOLD_WAIT_MS@/$(( (MEDIA_TIMEOUT + 4) * 1000 ))/" "$HERE/uac_media_hold.xml" >"$WORK/uac_media_hold.xml"
  call held "$WORK/uac_media_hold.xml" 1002 sendonly
  local rc=$?
  sleep 0.5
  echo "     caller: sipp rc $rc; $(grep -ho 'no bye, hanging up\|bye received (must not happen)' "$WORK/held.log" 2>/dev/null | head -1);" \
    "CDR $(cdr_cause 1002)"
  [ $rc = 0 ] || { head -3 "$WORK/held.err" 2>/dev/null | cut -c1-240; echo; return 1; }
  cdr_cause 1002 | grep -q NORMAL_CLEARING || { echo "     CDR is not NORMAL_CLEARING"; return 1; }
}

if [ "$EXPECT" = fail ]; then
  timeout_call; r=$?
  not_torn_down() { [ "$r" != 0 ]; }
  check "without a relay the silent call is not torn down (the timeout check fails)" not_torn_down
else
  check "a call whose RTP stopped is hung up after ~${MEDIA_TIMEOUT} s (BYE both sides, CDR MEDIA_TIMEOUT)" timeout_call
  check "a held call with the same silence is not hung up" held_call
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
