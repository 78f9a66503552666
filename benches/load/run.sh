#!/usr/bin/env bash
# Load benchmark: ferroswitch side by side with Kamailio, same run, same machine (issue 6).
#
#   benches/load/run.sh [--smoke | --memory-only | --store-ab] [--calls|--no-calls]
#                       [--servers "ferroswitch kamailio"] [--out DIR] [--keep]
#
# For each server in turn (each pinned to core 0, SIPp to core 1, everything on 127.0.0.1):
#   1. digest registrations/s, stepping the rate up until a step fails (then bisecting), with
#      the server's CPU time per registration from /proc/PID/task/*/schedstat;
#   2. calls/s with digest auth on the caller (INVITE 407 ACK INVITE 180 200 ACK BYE) to a SIPp
#      UAS registered through the server, the same way; skipped with "calls: not supported by
#      this build" when a single probe call does not succeed (auto) or with --no-calls;
#   3. post-dial delay p50/p99 from a packet capture at a fixed load;
#   4. memory per concurrent call: PSS difference / held-call difference between two plateaus,
#      on a freshly started server (a server that already carried the load tests reuses the
#      heap it grew there, and would show almost nothing per call). --memory-only runs just
#      this step (at MEM_RATE, default 500 calls/s) for each server.
# --store-ab runs none of these: it compares ferroswitch's location stores, memory against
# SQLite (`[registrar] store`), registering at one fixed STORE_RATE for STORE_SECS, in
# STORE_PAIRS pairs on fresh servers, the order alternating (memory first, then SQLite first,
# ...) so drift on a shared machine falls on both alike; reports registrations/s and server CPU
# per registration of each and their ratio per pair. It measures, it does not pass or fail.
# STORE_B=redis compares memory against the Redis store instead (issue 16): a redis-server of
# its own on a free loopback port, no persistence, pinned to the SIPp core, emptied between
# runs; Redis's own CPU per registration is reported beside the server's. STORE_TEST=calls
# compares authenticated calls (the suite's UAC → server → registered SIPp UAS, at STORE_RATE
# calls/s) instead of registrations: what the store costs a call (a lookup per call).
# A step is clean with 0 failed calls, 0 UDP receive-buffer errors (nstat UdpRcvbufErrors
# delta) and SIPp reaching 90 % of the asked rate. Prints one table with both servers and the
# ratios and writes it as markdown + an SVG chart into --out (default benches/results/ for the
# full run, target/bench-smoke/ for --smoke). Ends with "bench: N passed, N failed, N skipped"
# (each server registered cleanly at some rate; Kamailio, and ferroswitch once it supports
# calls, carried calls and gave a post-dial delay and a memory figure) and exits non-zero on a
# failure, so a CI smoke run notices when the suite rots. Installs sip-tester, kamailio, tshark, iproute2
# and python3 with apt-get when missing and builds ferroswitch in release mode.
# Every loop is bounded in count and time; every process started is ended on exit.
# --media (or MEDIA=1): afterwards the media relay benchmark, media.sh (not part of --smoke).
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MODE=full CALLS=auto SERVERS="ferroswitch kamailio" OUT= KEEP= MEMORY_ONLY= STORE_AB= MEDIA=${MEDIA:-}
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) MODE=smoke ;;
    --memory-only) MEMORY_ONLY=1 ;;
    --store-ab) STORE_AB=1 ;;
    --calls) CALLS=yes ;;
    --no-calls) CALLS=no ;;
    --servers) SERVERS=$2; shift ;;
    --out) OUT=$2; shift ;;
    --keep) KEEP=1 ;;
    --media) MEDIA=1 ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
source "$HERE/lib.sh"

# Settings; any of them can be overridden from the environment (e.g. REG_RATES="1000 2000").
if [ "$MODE" = smoke ]; then
  : "${USERS_LAST:=1049}" "${STEP_SECS:=2}" "${REFINE:=0}" "${SETTLE:=0.5}" "${CONFIRM_SECS:=0}"
  : "${KAM_SHM_MB:=256}" "${LOADGENS:=1}"
  : "${REG_RATES:=100 200}" "${CALL_RATES:=20 50}" "${HOLD_MS:=200}"
  : "${PDD_RATE:=50}" "${PDD_SECS:=2}"
  : "${MEM_RATE:=100}" "${MEM_N1:=100}" "${MEM_N2:=300}" "${MEM_SETTLE:=1}"
else
  : "${USERS_LAST:=1999}" "${STEP_SECS:=8}" "${REFINE:=2}" "${SETTLE:=2}" "${CONFIRM_SECS:=40}"
  # Two SIPp clients share core 1: one alone tops out near 20,000 registrations/s here.
  : "${LOADGENS:=2}"
  : "${REG_RATES:=2000 4000 6000 8000 10000 12000 14000 16000 18000 20000 22000 25000 28000 32000}"
  : "${CALL_RATES:=250 500 1000 1500 2000 2500 3000 3500 4000 4500 5000 5500 6000 7000 8000}"
  : "${HOLD_MS:=1000}"
  : "${PDD_RATE:=1000}" "${PDD_SECS:=6}"
  # Memory: calls at MEM_RATE (default: the server's held call rate, at most 500/s) for
  # MEM_RAMP_SECS (40 s, longer than the 32 s a finished transaction lingers under Timer L/J,
  # so both samples carry the same transaction high-water mark and the difference is dialog
  # state), then as many again. MEM_RATE, MEM_N1, MEM_N2 can be set to fixed values.
  : "${MEM_SETTLE:=5}"
fi
: "${MEM_RAMP_SECS:=40}" "${CONFIRM_TRIES:=5}" "${USERS_FIRST:=1000}" "${SERVER_CORE:=0}" "${SIPP_CORE:=1}" "${KAM_CHILDREN:=2}" "${KAM_SHM_MB:=2048}"
BIN=${FERROSWITCH_BIN:-$ROOT/target/release/ferroswitch}
CALLEE=$USERS_LAST
# The memory-only run uses the full run's settings and writes its own report (…-memory.md).
[ -n "$MEMORY_ONLY" ] && [ "$MODE" = full ] && MODE=memory

# 1. Tools and the release build.
install_missing() {
  local need=()
  command -v sipp >/dev/null || need+=(sip-tester)
  command -v kamailio >/dev/null || need+=(kamailio)
  command -v dumpcap >/dev/null || need+=(tshark)
  command -v nstat >/dev/null && command -v ss >/dev/null || need+=(iproute2)
  command -v taskset >/dev/null || need+=(util-linux)
  command -v python3 >/dev/null || need+=(python3)
  [ ${#need[@]} -eq 0 ] && return 0
  say "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq && timeout 900 apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}
install_missing || { echo "could not install the tools" >&2; exit 1; }
# The parsers and the report, offline, before spending minutes on load.
python3 "$HERE/selftest.py" >/dev/null || { python3 "$HERE/selftest.py"; echo "selftest failed" >&2; exit 1; }
if [ -z "${FERROSWITCH_BIN:-}" ]; then
  say "cargo build --release"
  (cd "$ROOT" && cargo build --release --quiet) || { echo "release build failed" >&2; exit 1; }
fi
[ "$(nproc)" -ge 2 ] || say "warning: fewer than 2 cores; server and SIPp share a core"

WORK=$(mktemp -d /tmp/ferroswitch-bench.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM
RESULTS=$WORK/results.jsonl
# The smoke run's table goes to target/ (ignored by git), the full run's into the repository.
[ -n "$OUT" ] || { [ "$MODE" = smoke ] && OUT=$ROOT/target/bench-smoke || OUT=$ROOT/benches/results; }
tool users "$WORK" "$USERS_FIRST" "$USERS_LAST" 127.0.0.1
tool note "$RESULTS" test='"meta"' mode="\"$MODE\"" \
  date="\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"" nproc="$(nproc)" \
  cpu="$(lscpu | awk -F: '/Model name/{gsub(/^ +/,"",$2); print $2; exit}' | python3 -c 'import json,sys;print(json.dumps(sys.stdin.read().strip()))')" \
  kernel="\"$(uname -r)\"" \
  sipp="\"$(sipp -v 2>&1 | grep -o 'v[0-9][0-9.]*[0-9]' | head -1)\"" \
  kamailio="\"$(kamailio -v 2>/dev/null | awk '/^version/{print $3; exit}')\"" \
  ferroswitch="\"$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)\"" \
  step_secs="$STEP_SECS" hold_ms="$HOLD_MS" kam_children="$KAM_CHILDREN" users="$((USERS_LAST - USERS_FIRST + 1))"

# step TEST RATE SECS TAG SIPP_ARGS...: one bounded SIPp run at RATE for SECS seconds against
# the running server; records the step. Exit 0 when clean.
step() {
  local test=$1 rate=$2 secs=$3 tag=$4; shift 4
  local n=$(( rate * secs )) hold_s=0
  [ "$test" = calls ] && hold_s=$(awk "BEGIN{print $HOLD_MS/1000}")
  local e0 c0 d0 e1 c1 d1 j0 j1
  e0=$(rcvbuf_errors); d0=$(server_sock_drops); c0=$(server_cpu_ns)
  j0=$(tool cores "$SERVER_CORE" "$SIPP_CORE")
  sipp_load "$tag" $(( secs * 2 + ${hold_s%.*} + 30 )) "$rate" "$n" "$@"
  j1=$(tool cores "$SERVER_CORE" "$SIPP_CORE")
  c1=$(server_cpu_ns); e1=$(rcvbuf_errors); d1=$(server_sock_drops)
  # "busy:total" jiffies of the two cores before and after: a busy share well above what the
  # server and SIPp use themselves means someone else ran there (shared machine).
  local sj0 sj1 pj0 pj1 a b c d
  read -r a b c d <<<"$j0"; sj0="$a:$b"; pj0="$c:$d"
  read -r a b c d <<<"$j1"; sj1="$a:$b"; pj1="$c:$d"
  tool record "$RESULTS" "$SIPP_STATS" server="$SERVER_NAME" test="$test" rate="$rate" \
    secs="$secs" expected=$(( n / ${LOADGENS:-1} * ${LOADGENS:-1} )) hold_s="$hold_s" \
    cpu_ns=$((c1 - c0)) rcvbuf_errors=$((e1 - e0)) sock_drops=$((d1 - d0)) \
    wall_s="$SIPP_WALL_S" sipp_cpu_s="$SIPP_CPU_S" loadgens="${LOADGENS:-1}" \
    server_core_j0="$sj0" server_core_j1="$sj1" sipp_core_j0="$pj0" sipp_core_j1="$pj1"
  local rc=$?
  sleep "$SETTLE"
  return $rc
}

# stepup TEST RATES SIPP_ARGS...: steps up through RATES (STEP_SECS each) until a step is not
# clean, then bisects REFINE times between the last clean and the first failed rate. Then, as
# short steps cannot show what builds up over a transaction's lifetime (32 s for Timer J/L on
# UDP), the best rate must hold for CONFIRM_SECS; if it does not, the rate goes down by a quarter
# at a time, at most CONFIRM_TRIES times. Bounded by the list, REFINE and CONFIRM_TRIES.
stepup() {
  local test=$1 rates=$2; shift 2
  local good=0 bad=0 r i mid
  for r in $rates; do
    if step "$test" "$r" "$STEP_SECS" "$SERVER_NAME-$test-$r" "$@"; then good=$r; else bad=$r; break; fi
  done
  # A failed step leaves debris (lingering transactions, queued retransmissions): every step
  # after one starts on a fresh server.
  local fresh=
  [ "$bad" -gt 0 ] && { restart_server "$test" || return 1; fresh=1; }
  if [ "$bad" -gt 0 ] && [ "$good" -gt 0 ]; then
    for i in $(seq 1 "$REFINE"); do
      mid=$(( (good + bad) / 2 / 100 * 100 ))
      [ "$mid" -le "$good" ] && break
      fresh=
      if step "$test" "$mid" "$STEP_SECS" "$SERVER_NAME-$test-$mid" "$@"; then good=$mid
      else bad=$mid; restart_server "$test" || return 1; fresh=1; fi
    done
  fi
  local confirmed=$good
  if [ "$CONFIRM_SECS" -gt 0 ] && [ "$good" -gt 0 ]; then
    confirmed=0
    r=$good
    for i in $(seq 1 "$CONFIRM_TRIES"); do
      [ -n "$fresh" ] || { restart_server "$test" || return 1; }
      fresh=
      if step "$test" "$r" "$CONFIRM_SECS" "$SERVER_NAME-$test-confirm-$r" "$@"; then confirmed=$r; break; fi
      r=$(( r * 3 / 4 / 10 * 10 ))
      [ "$r" -gt 0 ] || break
    done
  fi
  STEPUP_MAX=$confirmed
  tool note "$RESULTS" server="\"$SERVER_NAME\"" test="\"${test}_max\"" max_clean="$confirmed" \
    short_step_max="$good" first_failed="$bad" confirm_secs="$CONFIRM_SECS"
  say "$SERVER_NAME: highest clean $test rate $confirmed/s (${STEP_SECS} s steps: $good/s, first failing: $([ "$bad" -gt 0 ] && echo "$bad/s" || echo none); held for ${CONFIRM_SECS} s)"
}

# restart_server TEST: the same server afresh (new process, new port); for calls the UAS
# registers again.
restart_server() {
  stop_server
  start_server "$SERVER_NAME" || return 1
  [ "$1" = calls ] && { register_uas || return 1; }
  return 0
}

register_phase() {
  start_server "$1" || return 1
  # One fixed Contact per user (port 5060, nothing listens there): every step refreshes the
  # same bindings instead of piling up one more contact per user per step.
  # -bye: an aborted registration needs no clean-up BYE (it would only add load).
  stepup register "$REG_RATES" -sf "$HERE/scenarios/register.xml" -inf "$WORK/callers.csv" \
    -key contact_port 5060 -default_behaviors all,-bye
  stop_server
}

# The callee: a SIPp UAS registered through the server as user CALLEE.
start_uas() {
  UAS_PORT=$(tool ports 1)
  sipp_bg "$SERVER_NAME-uas" 3600 "$UAS_PORT" -sf "$HERE/scenarios/uas.xml" \
    -default_behaviors all,-bye
  UAS_PID=$BG
  register_uas
}

register_uas() {
  sipp_run "$SERVER_NAME-uas-register" 15 -sf "$HERE/scenarios/register.xml" \
    -inf "$WORK/callee.csv" -key contact_port "$UAS_PORT" -m 1 -timeout 10s -timeout_error
}

uac_args() { echo -sf "$HERE/scenarios/uac.xml" -inf "$WORK/callers.csv" -s "$CALLEE"; }

calls_phase() {
  local name=$1
  if [ "$CALLS" = no ]; then
    tool note "$RESULTS" server="\"$name\"" test='"calls_support"' supported=false skipped=true reason='"--no-calls"'
    return 0
  fi
  start_server "$name" || return 1
  local why=
  if ! start_uas; then
    why="the callee could not register"
  elif ! sipp_run "$name-probe" 20 $(uac_args) -m 1 -d 100 -timeout 15s -timeout_error; then
    why="a single probe call failed ($(grep -ao 'received .SIP/2.0 [0-9]* [^'"'"']*' "$WORK/$name-probe.err" 2>/dev/null | head -1 | tr -d "'"))"
  fi
  if [ -n "$why" ] && [ "$CALLS" = auto ]; then
    say "$name calls: not supported by this build: $why"
    tool note "$RESULTS" server="\"$name\"" test='"calls_support"' supported=false reason="$(printf '%s' "$why" | python3 -c 'import json,sys;print(json.dumps(sys.stdin.read()))')"
    stop_pid "$UAS_PID"; stop_server
    return 0
  fi
  [ -n "$why" ] && say "$name: $why (--calls given: measuring anyway)"
  tool note "$RESULTS" server="\"$name\"" test='"calls_support"' supported=true
  if [ -n "$MEMORY_ONLY" ]; then
    STEPUP_MAX=${MEM_RATE:-500}
    mem_phase
    stop_pid "$UAS_PID"; stop_server
    return 0
  fi
  stepup calls "$CALL_RATES" $(uac_args) -d "$HOLD_MS"
  if [ "$STEPUP_MAX" -gt 0 ]; then
    pdd_phase
    restart_server calls || return 1
    mem_phase
  else
    say "$name: no clean call step; post-dial delay and memory not measured"
  fi
  stop_pid "$UAS_PID"; stop_server
}

# Post-dial delay at PDD_RATE for PDD_SECS from a capture of the caller's and the UAS's ports.
pdd_phase() {
  local cport pcap=$WORK/$SERVER_NAME-pdd.pcap n=$(( PDD_RATE * PDD_SECS ))
  cport=$(tool ports 1)
  bg "$WORK/$SERVER_NAME-dumpcap.log" taskset -c "$SIPP_CORE" timeout -k 3 $((PDD_SECS * 3 + 30)) \
    dumpcap -q -P -i lo -B 64 -f "udp port $cport or udp port $UAS_PORT" -w "$pcap"
  local dpid=$BG i
  for i in $(seq 1 50); do [ -s "$pcap" ] && break; sleep 0.1; done
  sipp_bg "$SERVER_NAME-pdd" $((PDD_SECS * 3 + 20)) "$cport" "127.0.0.1:$SERVER_PORT" \
    $(uac_args) -d "$HOLD_MS" -r "$PDD_RATE" -m "$n"
  wait "$BG"
  sleep 0.5
  stop_pid "$dpid"
  local res
  res=$(python3 "$HERE/pdd.py" "$pcap" "$cport" "$UAS_PORT") || res='{}'
  local st; st=$(tool sipp-stats "$WORK/$SERVER_NAME-pdd.csv")
  python3 - "$RESULTS" "$SERVER_NAME" "$PDD_RATE" "$res" "$st" <<'PY'
import json, sys
results, server, rate, res, st = sys.argv[1:]
rec = {"server": server, "test": "pdd", "rate": int(rate)}
rec.update(json.loads(res)); s = json.loads(st)
rec.update({"ok": s["ok"], "failed": s["failed"]})
open(results, "a").write(json.dumps(rec) + "\n")
print(f"{server:>11} pdd at {rate}/s: p50 {rec.get('pdd_p50_ms')} ms p99 {rec.get('pdd_p99_ms')} ms, "
      f"added by the server p50 {rec.get('added_p50_ms')} p99 {rec.get('added_p99_ms')} ms "
      f"({rec.get('pdd_n', 0)} calls measured, {s['failed']} failed)")
PY
  rm -f "$pcap"
  sleep "$SETTLE"
}

# Memory per concurrent call: hold N1 calls, sample PSS, add N2-N1 more at the same rate, sample
# again; bytes/call = PSS difference / held-call difference (counted by the UAS).
mem_phase() {
  local settle=$MEM_SETTLE r=${MEM_RATE:-} n1 n2
  [ -n "$r" ] || r=$(( STEPUP_MAX < 500 ? STEPUP_MAX : 500 ))
  n1=${MEM_N1:-$(( r * MEM_RAMP_SECS ))}; n2=${MEM_N2:-$(( 2 * n1 ))}
  local ramp1=$(( (n1 + r - 1) / r )) ramp2=$(( (n2 - n1 + r - 1) / r ))
  local hold_s=$(( ramp1 + ramp2 + 2 * ${settle%.*} + 10 ))
  local p0 p1 p2 h1 h2 pid1 pid2
  p0=$(server_pss_kb)
  sipp_bg "$SERVER_NAME-mem1" $((hold_s + ramp1 + 60)) "$(tool ports 1)" "127.0.0.1:$SERVER_PORT" \
    $(uac_args) -d $((hold_s * 1000)) -r "$r" -m "$n1"
  pid1=$BG
  sleep $(( ramp1 + 1 )); sleep "$settle"
  p1=$(server_pss_kb); h1=$(tool sipp-stats "$WORK/$SERVER_NAME-uas.csv" | python3 -c 'import json,sys;print(json.load(sys.stdin)["current"])')
  sipp_bg "$SERVER_NAME-mem2" $((hold_s + ramp2 + 60)) "$(tool ports 1)" "127.0.0.1:$SERVER_PORT" \
    $(uac_args) -d $(( (hold_s - ramp1 - ${settle%.*} - 1) * 1000 )) -r "$r" -m $((n2 - n1))
  pid2=$BG
  sleep $(( ramp2 + 1 )); sleep "$settle"
  p2=$(server_pss_kb); h2=$(tool sipp-stats "$WORK/$SERVER_NAME-uas.csv" | python3 -c 'import json,sys;print(json.load(sys.stdin)["current"])')
  say "$SERVER_NAME memory: idle ${p0} KiB, ${h1} calls ${p1} KiB, ${h2} calls ${p2} KiB; waiting for the calls to end"
  wait "$pid1"; wait "$pid2"
  local s1 s2
  s1=$(tool sipp-stats "$WORK/$SERVER_NAME-mem1.csv"); s2=$(tool sipp-stats "$WORK/$SERVER_NAME-mem2.csv")
  python3 - "$RESULTS" "$SERVER_NAME" "$p0" "$p1" "$p2" "$h1" "$h2" "$n1" "$n2" "$s1" "$s2" <<'PY'
import json, sys
results, server = sys.argv[1:3]
p0, p1, p2, h1, h2, n1, n2 = map(int, sys.argv[3:10])
s1, s2 = json.loads(sys.argv[10]), json.loads(sys.argv[11])
rec = {"server": server, "test": "memory", "pss_idle_kb": p0, "pss1_kb": p1, "pss2_kb": p2,
       "held1": h1, "held2": h2, "n1": n1, "n2": n2,
       "failed": s1["failed"] + s2["failed"], "ok": s1["ok"] + s2["ok"]}
dh = h2 - h1
rec["bytes_per_call"] = round((p2 - p1) * 1024 / dh) if dh > 0 else None
open(results, "a").write(json.dumps(rec) + "\n")
print(f"{server:>11} memory: {rec['bytes_per_call']} bytes per held call "
      f"(PSS {p1} -> {p2} KiB for {h1} -> {h2} calls; {rec['failed']} failed)")
PY
  sleep "$SETTLE"
}

# Memory against SQLite (or Redis: STORE_B=redis) store, paired (see --store-ab at the top).
store_ab() {
  local rate=${STORE_RATE:-8000} secs=${STORE_SECS:-8} pairs=${STORE_PAIRS:-4} i kind order
  local b=${STORE_B:-sqlite} redis_port= redis_pid= r0 r1 test=${STORE_TEST:-register}
  case $test in register|calls) ;; *) say "STORE_TEST must be register or calls"; return 1 ;; esac
  case $b in sqlite|redis) ;; *) say "STORE_B must be sqlite or redis"; return 1 ;; esac
  if [ "$b" = redis ]; then
    command -v redis-server >/dev/null || { say "redis-server missing (apt-get install redis-server)"; return 1; }
    redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    bg "$WORK/redis.log" taskset -c "$SIPP_CORE" redis-server --port "$redis_port" --bind 127.0.0.1 \
      --save '' --appendonly no --dir "$WORK"
    redis_pid=$BG
    for i in $(seq 1 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  say "store A/B: $pairs pairs of memory and $b, $test at $rate/s for $secs s each"
  for i in $(seq 1 "$pairs"); do
    if [ $((i % 2)) -eq 1 ]; then order="memory $b"; else order="$b memory"; fi
    for kind in $order; do
      rm -f "$WORK/ferroswitch/registrations.db"*
      case $kind in
        memory) FERRO_STORE=memory ;;
        sqlite) FERRO_STORE=sqlite:registrations.db ;;
        redis) FERRO_STORE=redis://127.0.0.1:$redis_port/0
               redis-cli -p "$redis_port" flushall >/dev/null ;;
      esac
      export FERRO_STORE
      start_server ferroswitch || return 1
      # The Redis store connects in the background: wait until it answers REGISTERs.
      [ "$kind" = redis ] && sleep 1
      SERVER_NAME=ferroswitch-$kind
      [ -n "$redis_pid" ] && r0=$(tool cpu "$redis_pid")
      if [ "$test" = calls ]; then
        start_uas || return 1
        step calls "$rate" "$secs" "store-$kind-$i" $(uac_args) -d "$HOLD_MS"
        stop_pid "$UAS_PID"
      else
        step register "$rate" "$secs" "store-$kind-$i" -sf "$HERE/scenarios/register.xml" \
          -inf "$WORK/callers.csv" -key contact_port 5060 -default_behaviors all,-bye
      fi
      if [ -n "$redis_pid" ]; then
        r1=$(tool cpu "$redis_pid")
        tool note "$RESULTS" test='"redis_cpu"' server="\"$SERVER_NAME\"" cpu_ns=$((r1 - r0)) \
          calls="$(redis-cli -p "$redis_port" info commandstats | tr -d '\r' | grep -E '^cmdstat_(exec|evalsha|hgetall):' | tr '\n' ' ' | python3 -c 'import json,sys;print(json.dumps(sys.stdin.read().strip()))')"
      fi
      SERVER_NAME=ferroswitch
      stop_server
    done
  done
  mkdir -p "$OUT"
  python3 - "$RESULTS" "$OUT/$(date -u +%Y%m%dT%H%M)-store$([ "$test" = calls ] && echo -calls).md" "$rate" "$secs" "$b" "$test" <<'PY'
import json, statistics, sys
results, out, rate, secs, b, test = sys.argv[1:]
unit = {"register": "reg", "calls": "call"}[test]
name = {"sqlite": "SQLite", "redis": "Redis"}[b]
steps = [json.loads(l) for l in open(results) if l.strip()]
runs = {"memory": [], b: []}
redis_cpu = {}
for r in steps:
    if r.get("test") == test and r.get("server", "").startswith("ferroswitch-"):
        runs[r["server"].split("-", 1)[1]].append(r)
    if r.get("test") == "redis_cpu" and r.get("server") == f"ferroswitch-{b}":
        redis_cpu.setdefault(b, []).append(r)
lines = [f"# Location store A/B: memory vs {name} {test} at {rate}/s, {secs} s steps", "",
         f"| pair | memory {unit}s/s | memory CPU µs/{unit} | {name} {unit}s/s | {name} CPU µs/{unit} | CPU ratio | clean (m/{b[0]}) | other load (server core busy %, m/{b[0]}) |",
         "|---|---|---|---|---|---|---|---|"]
ratios = []
for i, (m, s) in enumerate(zip(runs["memory"], runs[b]), 1):
    ratio = s["cpu_us_per"] / m["cpu_us_per"] if m.get("cpu_us_per") and s.get("cpu_us_per") else None
    if ratio: ratios.append(ratio)
    lines.append(f"| {i} | {m['achieved']:.0f} | {m['cpu_us_per']} | {s['achieved']:.0f} | {s['cpu_us_per']} | "
                 f"{ratio:.3f} | {m['clean']}/{s['clean']} | {m.get('server_core_busy_pct')}/{s.get('server_core_busy_pct')} |")
def med(kind, key):
    v = [r[key] for r in runs[kind] if r.get(key) is not None]
    return statistics.median(v) if v else float("nan")
lines += ["", f"Median: memory {med('memory', 'achieved'):.0f} {unit}s/s at {med('memory', 'cpu_us_per'):.1f} µs/{unit}; "
          f"{name} {med(b, 'achieved'):.0f} {unit}s/s at {med(b, 'cpu_us_per'):.1f} µs/{unit}; "
          f"median CPU ratio {name}/memory {statistics.median(ratios) if ratios else float('nan'):.3f}."]
for r, s in zip(redis_cpu.get(b, []), runs[b]):
    n = s.get("achieved", 0) * float(secs)
    per = r["cpu_ns"] / 1000 / n if n else float("nan")
    lines.append(f"Redis's own CPU: {per:.1f} µs per {unit} ({r['calls']}, cumulative).")
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text)
PY
}
if [ -n "$STORE_AB" ]; then
  store_ab || { say "store A/B could not run"; exit 1; }
  exit 0
fi

say "work dir $WORK; mode $MODE; servers: $SERVERS"
for s in $SERVERS; do
  if [ -z "$MEMORY_ONLY" ]; then
    say "== $s: registrations"
    register_phase "$s" || say "$s: registration phase could not run"
  fi
  say "== $s: calls"
  calls_phase "$s" || say "$s: call phase could not run"
done

mkdir -p "$OUT"
python3 "$HERE/report.py" "$RESULTS" "$OUT"
rc=$?
if [ -n "$MEDIA" ]; then
  say "== media relay benchmark (media.sh)"
  # media.sh speaks of "kamailio" for Kamailio + rtpengine; it runs in its own namespace.
  FERROSWITCH_BIN=$BIN bash "$HERE/media.sh" --servers "$SERVERS" --out "$OUT" ${KEEP:+--keep} || rc=1
fi
exit $rc
