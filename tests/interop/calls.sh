# SIPp call tests through the B2BUA (sourced by run.sh, after the daemon is up on $PORT with
# users 1000..1999, CDRs in $WORK/cdr.jsonl). Callees are SIPp UASes that registered as
# users first: 1001 answers, 1002 rings until cancelled, 1003 is busy.

CALLS=${CALLS:-10000}
CALL_RATE=${CALL_RATE:-250}

register_as() { # USER PORT
  printf 'SEQUENTIAL\n%s;127.0.0.1;[authentication username=%s password=pw-%s-Xk9q]\n' "$1" "$1" "$1" > "$WORK/reg-$1.csv"
  timeout 20 sipp "127.0.0.1:$PORT" -sf "$HERE/register.xml" -inf "$WORK/reg-$1.csv" -i 127.0.0.1 \
    -p "$2" -m 1 -nostdin -timeout 10s -timeout_error >"$WORK/reg-$1.out" 2>&1
}

start_uas() { # NAME PORT ARGS...
  local name=$1 port=$2; shift 2
  sipp -i 127.0.0.1 -p "$port" -nostdin -buff_size 4194304 "$@" >"$WORK/uas-$name.out" 2>&1 &
  UAS_PIDS+=($!)
}

caller_csv() { # CALLEE
  printf 'SEQUENTIAL\n1000;%s;[authentication username=1000 password=pw-1000-Xk9q]\n' "$1" > "$WORK/caller-$1.csv"
}

cdr_count() { # CAUSE
  grep -c "\"hangup_cause\":\"$1\"" "$WORK/cdr.jsonl" 2>/dev/null || true
}

setup_callees() {
  UAS_PIDS=()
  U1=$(free_port); U2=$(free_port); U3=$(free_port); U4=$(free_port)
  register_as 1001 "$U1" && register_as 1002 "$U2" && register_as 1003 "$U3" \
    && register_as 1004 "$U4" || return 1
  start_uas answer "$U1" -sn uas -default_behaviors all,-bye
  start_uas ring "$U2" -sf "$HERE/uas_ring.xml"
  start_uas busy "$U3" -sf "$HERE/uas_busy.xml"
  start_uas message "$U4" -sf "$HERE/uas_message.xml"
  sleep 0.5
}

stop_callees() {
  for p in "${UAS_PIDS[@]:-}"; do
    [ -n "$p" ] && { kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; }
  done
  UAS_PIDS=()
}

# run_uac NAME SCENARIO CALLEE COUNT RATE
run_uac() {
  local name=$1 scenario=$2 callee=$3 count=$4 rate=$5 log=$WORK/uac-$1
  caller_csv "$callee"
  timeout 600 sipp "127.0.0.1:$PORT" -sf "$HERE/$scenario" -inf "$WORK/caller-$callee.csv" \
    -i 127.0.0.1 -m "$count" -r "$rate" -l 2000 -timeout 300s -timeout_error -nostdin \
    -buff_size 4194304 -trace_err -error_file "$log.err" >"$log.out" 2>&1
  local rc=$?
  echo "     sipp $name: rc=$rc $(grep -o 'Successful call.*' "$log.out" | tail -1 | tr -s ' ')"
  [ $rc -eq 0 ] || { tail -25 "$log.out"; head -60 "$log.err" 2>/dev/null; }
  [ $rc -eq 0 ]
}

calls_basic() {
  local before; before=$(cdr_count NORMAL_CLEARING)
  run_uac calls uac_auth.xml 1001 "$CALLS" "$CALL_RATE" || return 1
  sleep 1
  local after; after=$(cdr_count NORMAL_CLEARING)
  echo "     CDRs NORMAL_CLEARING: $((after - before)) of $CALLS"
  [ $((after - before)) -eq "$CALLS" ] || return 1
  # Media anchored (the default [media] mode = "relay"): every call had a relay session (its
  # CDR carries media counters), and once they all ended the daemon holds no relay socket.
  local with_media; with_media=$(tail -n "$CALLS" "$WORK/cdr.jsonl" | grep -c '"media":{')
  echo "     CDRs with relay media figures: $with_media of $CALLS"
  [ "$with_media" -eq "$CALLS" ] || return 1
  local relay_sockets
  relay_sockets=$(ss -Hanup 2>/dev/null | grep "pid=$DAEMON_PID," \
    | awk '{print $5}' | grep -cE ':(1[6-9][0-9]{3}|2[0-9]{4}|3[0-2][0-9]{3})$')
  echo "     relay sockets still open after the calls: $relay_sockets"
  [ "$relay_sockets" -eq 0 ]
}

calls_cancel() {
  local before; before=$(cdr_count ORIGINATOR_CANCEL)
  run_uac cancel uac_cancel.xml 1002 50 25 || return 1
  sleep 1
  local after; after=$(cdr_count ORIGINATOR_CANCEL)
  echo "     CDRs ORIGINATOR_CANCEL: $((after - before)) of 50"
  [ $((after - before)) -eq 50 ]
}

calls_busy() {
  local before; before=$(cdr_count USER_BUSY)
  run_uac busy uac_busy.xml 1003 50 25 || return 1
  sleep 1
  local after; after=$(cdr_count USER_BUSY)
  echo "     CDRs USER_BUSY: $((after - before)) of 50"
  [ $((after - before)) -eq 50 ]
}

messages() {
  run_uac message uac_message.xml 1004 50 25
}

# calls_limit: [calls] max_calls_per_user on a daemon of its own (the load tests above run with
# the limits off): user 1000 holds 10 calls ringing at a SIPp UAS that rings until cancelled;
# its 11th call gets 486 from the switch, while user 1001 still gets through.
calls_limit() {
  local dir=$WORK/limit port u rc=0 main_pid=$DAEMON_PID hold_pid
  port=$(free_port); u=$(free_port)
  make_config "$dir" "$port" 1000 1009
  printf '\n[calls]\nmax_calls_per_user = 10\ncdr_file = "cdr.jsonl"\n' >> "$dir/ferroswitch.toml"
  start_daemon "$dir" "$port" || { DAEMON_PID=$main_pid; return 1; }
  local limit_pid=$DAEMON_PID
  DAEMON_PID=$main_pid
  PORT=$port register_as 1005 "$u" || rc=1
  start_uas ring-forever "$u" -sf "$HERE/uas_ring.xml"
  sleep 0.5
  PORT=$port run_uac limit-hold uac_ring_hold.xml 1005 10 20 &
  hold_pid=$!
  sleep 3
  echo "     11th call from 1000 while 10 ring:"
  PORT=$port run_uac limit-11th uac_busy.xml 1005 1 1 || rc=1
  printf 'SEQUENTIAL\n1001;1005;[authentication username=1001 password=pw-1001-Xk9q]\n' > "$WORK/caller-1001.csv"
  timeout 30 sipp "127.0.0.1:$port" -sf "$HERE/uac_cancel.xml" -inf "$WORK/caller-1001.csv" \
    -i 127.0.0.1 -m 1 -nostdin -timeout 20s -timeout_error >"$WORK/uac-limit-other.out" 2>&1 \
    && echo "     user 1001 rings 1005 meanwhile" || { echo "     user 1001 did not get through"; rc=1; }
  wait "$hold_pid" || { echo "     the 10 held calls did not all complete"; rc=1; }
  grep -q "over the per-user/per-source limit" "$dir/daemon.log" \
    || { echo "     no log line for the refused call"; rc=1; }
  kill -TERM "$limit_pid" 2>/dev/null; wait "$limit_pid" 2>/dev/null
  return $rc
}
