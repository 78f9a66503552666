#!/usr/bin/env bash
# Blind transfer carried out by the daemon with real phones (needs Debian's baresip-core and
# linphone-cli): A calls B, B transfers A to C (user 1000) with its transfer command; the
# daemon answers the REFER itself (A never sees it), calls C as A, releases B once C answers,
# and A and C talk through the relay; A hangs up. Both ways: linphonec transferee / baresip
# transferor, and baresip transferee / linphonec transferor. Checks what the phones report
# and the daemon's CDRs (B's record BLIND_TRANSFER with transferred_to, the call's record
# A -> 1000 with transferred_by, and no third call). A third scenario has the CALLER transfer:
# baresip A calls baresip B, A transfers B to C; B and C talk through the relay, A is
# released, B hangs up. Ends with "N passed, N failed".
# Run it under the shared lock: flock /tmp/ferroswitch-interop.lock bash tests/interop/transfer.sh
set -uo pipefail
source "$(dirname "$0")/lib.sh"
HERE=$ROOT/tests/interop

if [ ! -x "$BIN" ]; then
  (cd "$ROOT" && cargo build --release --quiet) || exit 1
fi
WORK=$(mktemp -d /tmp/ferroswitch-transfer.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null; done
  stop_daemon
  [ "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT


PORT=$(free_port)
make_config "$WORK" "$PORT" 1000 1001
printf '\n[calls]\ncdr_file = "cdr.jsonl"\n' >> "$WORK/ferroswitch.toml"
start_daemon "$WORK" "$PORT" || { echo "0 passed, 1 failed"; exit 1; }
source "$HERE/baresip.sh"

# start_baresip NAME USER: a headless baresip (auto-answer) with the menu commands on
# ctrl_tcp; sets CTRL to its control port.
start_baresip() {
  local dir=$WORK/b-$1 sp
  sp=$(free_port); CTRL=$(free_port)
  baresip_config "$dir" "$2" "$sp" "$CTRL"
  echo "module_app menu.so" >> "$dir/config"
  timeout 60 baresip -f "$dir" >"$dir/out.log" 2>&1 &
  PIDS+=($!)
}

# cdr_has CALLER CALLEE PATTERN: a CDR (in $WORK/new-cdrs) of an answered call from CALLER to
# CALLEE whose line also matches PATTERN.
cdr_has() {
  grep "\"caller\":{\"user\":\"$1\"" "$WORK/new-cdrs" 2>/dev/null \
    | grep "\"callee\":{\"user\":\"$2\"" | grep '"answer_time":"' | grep -q "$3"
}

transfer() { # MODE (see transfer.py)
  local mode=$1 rc=0 lp_port c1 c2
  local before; before=$(wc -l < "$WORK/cdr.jsonl" 2>/dev/null || echo 0)
  if [ "$mode" = linphone-transferee ]; then
    start_baresip bob bob; c1=$CTRL
  else
    start_baresip alice alice; c1=$CTRL
  fi
  start_baresip carol 1000; c2=$CTRL
  lp_port=$(free_port)
  timeout 90 python3 "$HERE/transfer.py" "$mode" "$PORT" "$WORK" "$lp_port" "$c1" "$c2" || rc=1
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null; done
  PIDS=()
  sleep 1
  if [ $rc -ne 0 ]; then
    tail -n 25 "$WORK"/b-*/out.log "$WORK"/lp-*/out.log 2>/dev/null | grep -v "^$"
    grep -E "WARN|ERROR|call" "$WORK/daemon.log" | tail -n 20
    return 1
  fi
  tail -n +"$((before + 1))" "$WORK/cdr.jsonl" > "$WORK/new-cdrs"
  echo "     CDRs: $(grep -o '"caller":{"user":"[^"]*"\|"callee":{"user":"[^"]*"\|"hangup_cause":"[^"]*"\|"transferred_[a-z]*":"[^"]*"' "$WORK/new-cdrs" | tr '\n' ' ')"
  cdr_has alice bob '"hangup_cause":"BLIND_TRANSFER".*"transferred_to":"1000","transferred_by":"bob"' \
    || { echo "     no BLIND_TRANSFER CDR alice -> bob with transferred_to 1000"; return 1; }
  cdr_has alice 1000 '"media":{.*"transferred_to":"1000","transferred_by":"bob"' \
    || { echo "     no CDR of the transferred call alice -> 1000 (with media, transferred_by bob)"; return 1; }
  # carol's RTP reached alice through the relay: carol talks >= 2.5 s after the transfer
  # (~125 packets at 50/s), on top of a baresip transferor's ~1 s before it (~50-75); a
  # linphonec transferor sends none. Without carol's media the count stays at the transferor's.
  local tx min=120
  [ "$mode" = baresip-transferee ] && min=75
  tx=$(grep '"callee":{"user":"1000"' "$WORK/new-cdrs" \
    | grep -o '"media":{"caller":{"rx_packets":[0-9]*,"rx_bytes":[0-9]*,"tx_packets":[0-9]*' \
    | grep -o '[0-9]*$')
  [ "${tx:-0}" -ge "$min" ] \
    || { echo "     the relay sent alice ${tx:-0} RTP packets: carol's media did not reach her"; return 1; }
  [ "$(wc -l < "$WORK/new-cdrs")" -eq 2 ] \
    || { echo "     expected 2 CDRs: the transferee placed a call of its own?"; return 1; }
  grep -q "blind transfer" "$WORK/daemon.log" \
    || { echo "     the daemon did not carry out the transfer"; return 1; }
}

# The caller transfers: alice calls bob, alice transfers bob to 1000.
caller_transfer() {
  local rc=0 c1 c2 c3 tx
  local before; before=$(wc -l < "$WORK/cdr.jsonl" 2>/dev/null || echo 0)
  start_baresip alice alice; c1=$CTRL
  start_baresip carol 1000; c2=$CTRL
  start_baresip bob bob; c3=$CTRL
  timeout 90 python3 "$HERE/transfer.py" caller-transfers "$PORT" "$WORK" 0 "$c1" "$c2" "$c3" || rc=1
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null; done
  PIDS=()
  sleep 1
  if [ $rc -ne 0 ]; then
    tail -n 25 "$WORK"/b-*/out.log 2>/dev/null | grep -v "^$"
    grep -E "WARN|ERROR|call" "$WORK/daemon.log" | tail -n 20
    return 1
  fi
  tail -n +"$((before + 1))" "$WORK/cdr.jsonl" > "$WORK/new-cdrs"
  echo "     CDRs: $(grep -o '"caller":{"user":"[^"]*"\|"callee":{"user":"[^"]*"\|"hangup_cause":"[^"]*"\|"transferred_[a-z]*":"[^"]*"' "$WORK/new-cdrs" | tr '\n' ' ')"
  cdr_has alice bob '"hangup_cause":"BLIND_TRANSFER".*"transferred_to":"1000","transferred_by":"alice"' \
    || { echo "     no BLIND_TRANSFER CDR of alice's part with transferred_to 1000"; return 1; }
  cdr_has alice bob '"hangup_cause":"NORMAL_CLEARING".*"media":{.*"transferred_to":"1000","transferred_by":"alice"' \
    || { echo "     no CDR of the transferred call (alice -> bob, with media, transferred_to 1000)"; return 1; }
  # carol's RTP reached bob through the relay: alice's ~1.5 s before the transfer is ~75
  # packets (50/s), carol's 3 s after it ~150 more.
  tx=$(grep '"hangup_cause":"NORMAL_CLEARING"' "$WORK/new-cdrs" \
    | grep -o '"callee":{"rx_packets":[0-9]*,"rx_bytes":[0-9]*,"tx_packets":[0-9]*' \
    | grep -o '[0-9]*$')
  [ "${tx:-0}" -ge 150 ] \
    || { echo "     the relay sent bob ${tx:-0} RTP packets: carol's media did not reach him"; return 1; }
  [ "$(wc -l < "$WORK/new-cdrs")" -eq 2 ] \
    || { echo "     expected 2 CDRs: the transferee placed a call of its own?"; return 1; }
  grep -q "by_caller=true" "$WORK/daemon.log" \
    || { echo "     the daemon did not carry out the caller's transfer"; return 1; }
}

check "linphonec calls baresip, baresip transfers it to 1000, 1000 answers" transfer linphone-transferee
check "baresip calls linphonec, linphonec transfers it to 1000, 1000 answers" transfer baresip-transferee
check "baresip calls baresip, the CALLER transfers the callee to 1000, 1000 answers" caller_transfer

stop_daemon
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
