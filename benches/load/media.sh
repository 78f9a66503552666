#!/usr/bin/env bash
# Media relay benchmark (issue 11): calls that each carry real G.711 RTP (PCMU, 20 ms packets,
# 50 packets/s each way) held MEDIA_N at a time through the relay, side by side:
#   kamailio     Kamailio (kamailio-rtpengine.cfg: the load benchmark's registrar/proxy plus
#                rtpengine_manage() on requests and replies) + rtpengine (Debian
#                rtpengine-daemon, userspace: --table=-1, ng control on 127.0.0.1:2223);
#                the relay process measured is rtpengine;
#   ferroswitch  the daemon with [media] mode = "relay"; the relay process is the daemon itself
#                (its CPU includes the little SIP of held calls). Skipped with a clear message
#                while the daemon rejects the [media] section.
# Caller: SIPp uac_rtp.xml (digest auth, rtp_stream plays a PCMU WAV looped during the hold);
# callee: SIPp uas_rtp.xml with -rtp_echo, registered through the server, echoing each packet
# back through the relay. For each N: the calls are placed at MEDIA_RATE/s, then with all N up,
# over MEDIA_WINDOW seconds: relay CPU (schedstat of the relay process) per relayed packet,
# relayed packets/s and loss % (nft counters on lo: packets to the relay port range vs packets
# from it), added latency p50/p99 (dumpcap on lo for MEDIA_CAP_SECS, each packet matched with
# the relay's copy by SSRC + sequence + timestamp), relay RSS delta / N.
#
#   benches/load/media.sh [--servers "kamailio ferroswitch"] [--out DIR] [--keep]
#   MEDIA_N="100 250 500 1000" MEDIA_RATE=100 MEDIA_WINDOW=8 MEDIA_CAP_SECS=2
#   (also run by benches/load/run.sh --media, after the other phases)
#
# It runs in a network namespace of its own (its lo carries all the traffic, the nft counters
# count only it, nothing else on the machine sees it), removed on exit. Relay and servers are
# pinned to core SERVER_CORE, SIPp and the capture to SIPP_CORE. Each N is bounded in time
# (about N/MEDIA_RATE + MEDIA_WINDOW + 20 s). Writes the table to stdout and OUT/<date>-media.md
# (OUT defaults to benches/results) and OUT/latest-media.md. Exit 0 when every server that ran
# carried every N without failed calls.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SERVERS="kamailio ferroswitch" OUT= KEEP=
ARGS=("$@")
while [ $# -gt 0 ]; do
  case $1 in
    --servers) SERVERS=$2; shift ;;
    --out) OUT=$2; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# Outside: make the namespace, run this script inside it, remove it.
if [ -z "${MEDIA_NS:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "media.sh needs root (network namespace, nft, dumpcap)" >&2; exit 2; }
  command -v rtpengine >/dev/null || {
    echo "media.sh: installing rtpengine-daemon" >&2
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends rtpengine-daemon >/dev/null
  }
  for t in sipp kamailio rtpengine dumpcap nft; do
    command -v "$t" >/dev/null || { echo "media.sh: $t missing" >&2; exit 2; }
  done
  ns=fsbench-media-$$
  ip netns add "$ns" || exit 1
  trap 'ip netns del "$ns" 2>/dev/null' EXIT
  trap 'exit 130' INT TERM
  ip -n "$ns" link set lo up
  # Ephemeral ports (SIPp's per-call RTP sockets) below the relays' range 30000-39999.
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_local_port_range="20000 29999"
  # setsid: a scheduler autogroup of its own, whose nice level MEDIA_NICE sets (see below).
  setsid -w ip netns exec "$ns" env MEDIA_NS="$ns" bash "$0" "${ARGS[@]}"
  exit $?
fi

source "$HERE/lib.sh"
: "${MEDIA_N:=100 250 500 1000}" "${MEDIA_RATE:=100}" "${MEDIA_WINDOW:=8}" "${MEDIA_CAP_SECS:=2}"
: "${USERS_FIRST:=1000}" "${USERS_LAST:=1049}" "${SERVER_CORE:=0}" "${SIPP_CORE:=1}"
: "${KAM_CHILDREN:=2}" "${KAM_SHM_MB:=512}" "${SETTLE:=2}"
RELAY_LO=30000 RELAY_HI=39999
# This script, and so the relay, Kamailio and SIPp, run at this nice level: on a shared machine
# other builds would otherwise starve the relay and the figures would measure them (loss,
# latency). With autogroup scheduling (kernel.sched_autogroup_enabled=1) nice only counts within
# a session, so the level is set on this session's autogroup too. MEDIA_NICE=0 turns it off.
: "${MEDIA_NICE:=-5}"
[ -w /proc/$$/autogroup ] && echo "$MEDIA_NICE" >/proc/$$/autogroup 2>/dev/null
# relay_sock_drops: receive-queue drops (ss "d" counter) summed over the relay's UDP sockets.
renice -n "$MEDIA_NICE" -p $$ >/dev/null 2>&1 || true
relay_sock_drops() {
  ss -uamn "sport >= :$RELAY_LO and sport <= :$RELAY_HI" 2>/dev/null | grep -o 'skmem:([^)]*)' \
    | grep -o ',d[0-9]*' | tr -d ',d' | awk '{s+=$1} END{print s+0}'
}
BIN=${FERROSWITCH_BIN:-$ROOT/target/release/ferroswitch}
CALLEE=$USERS_LAST
[ -n "$OUT" ] || OUT=$ROOT/benches/results
WORK=$(mktemp -d /tmp/ferroswitch-media.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM
RESULTS=$WORK/media.jsonl
m() { python3 "$HERE/media.py" "$@"; }
tool users "$WORK" "$USERS_FIRST" "$USERS_LAST" 127.0.0.1
m wav "$WORK/pcmu.wav"
m record "$RESULTS" test='"media_meta"' date="\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"" nproc="$(nproc)" \
  cpu="$(lscpu | awk -F: '/Model name/{gsub(/^ +/,"",$2); print $2; exit}' | python3 -c 'import json,sys;print(json.dumps(sys.stdin.read().strip()))')" \
  kernel="\"$(uname -r)\"" sipp="\"$(sipp -v 2>&1 | grep -o 'v[0-9][0-9.]*[0-9]' | head -1)\"" \
  kamailio="\"$(kamailio -v 2>/dev/null | awk '/^version/{print $3; exit}')\"" \
  rtpengine="\"$(rtpengine --version 2>&1 | awk '/Version/{print $2; exit}')\"" \
  ferroswitch="\"$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)\"" \
  window_s="$MEDIA_WINDOW"

# Packet counters on lo: to the relay range, from the relay range.
nft -f - <<NFT
table inet fsbench_media {
  chain out { type filter hook output priority 0; policy accept;
    udp dport $RELAY_LO-$RELAY_HI counter
    udp sport $RELAY_LO-$RELAY_HI counter
  }
}
NFT

RELAY_PID=
start_rtpengine() {
  bg "$WORK/rtpengine.log" taskset -c "$SERVER_CORE" rtpengine --config-file=none --table=-1 \
    --interface=127.0.0.1 --listen-ng=127.0.0.1:2223 --port-min=$RELAY_LO --port-max=$RELAY_HI \
    --foreground --log-stderr --log-level=4 --num-threads="${RTPENGINE_THREADS:-1}" --delete-delay=0
  RELAY_PID=$BG
  local i
  for i in $(seq 1 50); do ss -uln | grep -q '127.0.0.1:2223 ' && return 0; sleep 0.1; done
  echo "rtpengine did not start:"; tail -5 "$WORK/rtpengine.log"; return 1
}

# media_server NAME: starts the server (and its relay); sets RELAY_PID. Non-zero when it cannot.
media_server() {
  case $1 in
    kamailio)
      start_rtpengine || return 1
      KAM_CFG=$HERE/kamailio-rtpengine.cfg KAM_NG=127.0.0.1:2223 start_server kamailio || return 1 ;;
    ferroswitch)
      [ -x "$BIN" ] || { SKIP_WHY="no daemon binary at $BIN"; return 2; }
      FERRO_EXTRA=$(printf '\n[media]\nmode = "relay"\nrtp_ports = "%s-%s"\n' $RELAY_LO $RELAY_HI)
      if ! FERRO_EXTRA=$FERRO_EXTRA start_server ferroswitch; then
        if grep -qi media "$WORK/ferroswitch/daemon.log"; then
          SKIP_WHY="relay not available: the daemon rejects [media] ($(grep -i media "$WORK/ferroswitch/daemon.log" | head -1 | cut -c1-160))"
          return 2
        fi
        return 1
      fi
      RELAY_PID=$SERVER_PID ;;
  esac
}

stop_all() {
  stop_server
  [ -n "$RELAY_PID" ] && [ "$RELAY_PID" != "$SERVER_PID" ] && stop_pid "$RELAY_PID"
  RELAY_PID=
}

# media_step N: N calls with RTP, measured once all are up.
media_step() {
  local n=$1 ramp hold_ms limit
  ramp=$(( (n + MEDIA_RATE - 1) / MEDIA_RATE ))
  hold_ms=$(( (ramp + MEDIA_WINDOW + 4) * 1000 ))
  limit=$(( ramp * 2 + MEDIA_WINDOW + 40 ))
  local c0 c1 k0 k1 r0 r1 t0 t1 pcap=$WORK/$SERVER_NAME-$n.pcap
  r0=$(m rss "$RELAY_PID")
  local cport; cport=$(tool ports 1)
  (cd "$WORK" && exec taskset -c "$SIPP_CORE" timeout -k 3 "$limit" sipp "127.0.0.1:$SERVER_PORT" \
    -i 127.0.0.1 -p "$cport" -nostdin -buff_size 4194304 -rtp_buffsize 1048576 \
    -trace_stat -stf "$WORK/$SERVER_NAME-media-$n.csv" -fd 1 -trace_err -error_file "$WORK/$SERVER_NAME-media-$n.err" \
    -sf "$HERE/scenarios/uac_rtp.xml" -inf "$WORK/callers.csv" -s "$CALLEE" \
    -r "$MEDIA_RATE" -m "$n" -l "$n" -d "$hold_ms" >"$WORK/$SERVER_NAME-media-$n.out" 2>&1) &
  local spid=$!
  BG_PIDS+=("$spid")
  # All calls up (and a second of steady state), then the window.
  sleep $(( ramp + 2 ))
  local j0 j1 e0 e1
  local d0 d1
  j0=$(tool cores "$SERVER_CORE" "$SIPP_CORE"); e0=$(rcvbuf_errors); d0=$(relay_sock_drops)
  local w0 w1 s0 s1
  w0=$(m wait "$RELAY_PID"); s0=$(tool cpu "$SERVER_PID")
  c0=$(tool cpu "$RELAY_PID"); k0=$(m counters); t0=$(date +%s.%N); r1=$(m rss "$RELAY_PID")
  local held; held=$(tool sipp-stats "$WORK/$SERVER_NAME-uas.csv" | python3 -c 'import json,sys;print(json.load(sys.stdin)["current"])')
  bg "$WORK/$SERVER_NAME-dumpcap-$n.log" taskset -c "$SIPP_CORE" timeout -k 2 -s INT "$MEDIA_CAP_SECS" \
    dumpcap -q -P -i lo -s 64 -B 256 -f "udp portrange $RELAY_LO-$RELAY_HI" -w "$pcap"
  local dpid=$BG
  sleep "$MEDIA_WINDOW"
  c1=$(tool cpu "$RELAY_PID"); k1=$(m counters); t1=$(date +%s.%N)
  w1=$(m wait "$RELAY_PID"); s1=$(tool cpu "$SERVER_PID")
  j1=$(tool cores "$SERVER_CORE" "$SIPP_CORE"); e1=$(rcvbuf_errors); d1=$(relay_sock_drops)
  wait "$dpid" 2>/dev/null
  say "$SERVER_NAME N=$n: window done, waiting for the calls to end"
  wait "$spid"; local rc=$?
  local st lat
  st=$(tool sipp-stats "$WORK/$SERVER_NAME-media-$n.csv")
  lat=$(m latency "$pcap" $RELAY_LO $RELAY_HI 2>/dev/null) || lat='{}'
  [ -n "$KEEP" ] || rm -f "$pcap"
  python3 - "$RESULTS" "$SERVER_NAME" "$n" "$held" "$c0" "$c1" "$k0" "$k1" "$t0" "$t1" "$r0" "$r1" "$st" "$lat" "$rc" "$j0" "$j1" $((e1 - e0)) $((d1 - d0)) $((w1 - w0)) $((s1 - s0)) <<'PY'
import json, sys
res, server, n, held, c0, c1, k0, k1, t0, t1, r0, r1, st, lat, rc, j0, j1, rcvbuf, rdrops, wait, scpu = sys.argv[1:]
n, held = int(n), int(held)
k0, k1, st, lat = json.loads(k0), json.loads(k1), json.loads(st), json.loads(lat)
dt = float(t1) - float(t0)
to_relay, from_relay = k1["to"] - k0["to"], k1["from"] - k0["from"]
cpu_ns = int(c1) - int(c0)
rec = {"test": "media", "server": server, "n": n, "held": held, "window_s": round(dt, 2),
       "expected_pps": n * 100, "to_relay_pps": round(to_relay / dt), "relayed_pps": round(from_relay / dt),
       "loss_pct": round(100 * (to_relay - from_relay) / to_relay, 3) if to_relay else None,
       "cpu_us_per_pkt": round(cpu_ns / 1000 / from_relay, 2) if from_relay else None,
       "cpu_pct": round(100 * cpu_ns / 1e9 / dt, 1),
       "rss0_kib": int(r0), "rss1_kib": int(r1),
       "rss_kib_per_call": round((int(r1) - int(r0)) / held, 1) if held else None,
       "ok": st["ok"], "failed": st["failed"], "sipp_rc": int(rc), "rcvbuf_errors": int(rcvbuf),
       "relay_sock_drops": int(rdrops), "relay_wait_pct": round(100 * int(wait) / 1e9 / dt, 1),
       "server_cpu_pct": round(100 * int(scpu) / 1e9 / dt, 1)}
# Busy share of the relay's core and SIPp's core over the window (/proc/stat): far above the
# relay's own CPU % means other load on a shared machine.
a, b = [int(x) for x in j0.split()], [int(x) for x in j1.split()]
rec["relay_core_busy_pct"] = round(100 * (b[0] - a[0]) / max(1, b[1] - a[1]))
rec["sipp_core_busy_pct"] = round(100 * (b[2] - a[2]) / max(1, b[3] - a[3]))
rec.update(lat)
open(res, "a").write(json.dumps(rec) + "\n")
print(f"{server:>11} N={n} held {held}: relayed {rec['relayed_pps']} pkt/s of {rec['to_relay_pps']} in "
      f"(expected {rec['expected_pps']}), loss {rec['loss_pct']} %, {rec['cpu_us_per_pkt']} µs CPU/pkt "
      f"({rec['cpu_pct']} % of a core), latency p50 {rec.get('lat_p50_us')} p99 {rec.get('lat_p99_us')} µs "
      f"({rec.get('lat_n')} matched), RSS {r0} -> {r1} KiB = {rec['rss_kib_per_call']} KiB/call, "
      f"calls ok {st['ok']} failed {st['failed']}; cores busy {rec['relay_core_busy_pct']} % / {rec['sipp_core_busy_pct']} %, "
      f"UdpRcvbufErrors {rcvbuf} (relay sockets: {rdrops}), relay waited for CPU {rec['relay_wait_pct']} %, "
      f"server CPU {rec['server_cpu_pct']} %", file=sys.stderr)
sys.exit(0 if st["failed"] == 0 and held >= n * 0.99 else 1)
PY
}

status=0
say "work dir $WORK; media steps N=$MEDIA_N at $MEDIA_RATE calls/s, window $MEDIA_WINDOW s; servers: $SERVERS"
for s in $SERVERS; do
  say "== $s: media relay"
  SKIP_WHY=
  media_server "$s"; rc=$?
  if [ $rc = 2 ]; then
    say "$s: skipped: $SKIP_WHY"
    m record "$RESULTS" test='"media_skip"' server="\"$s\"" reason="$(printf '%s' "$SKIP_WHY" | python3 -c 'import json,sys;print(json.dumps(sys.stdin.read()))')"
    continue
  elif [ $rc != 0 ]; then
    say "$s: could not start"; status=1; stop_all; continue
  fi
  UAS_PORT=$(tool ports 1)
  # The callee's echo port: fixed (the namespace is ours), below the relay range so the
  # counters and the capture only see the relay's legs. The caller's rtp_stream uses 6000.
  MP=7000
  sipp_bg "$SERVER_NAME-uas" 3600 "$UAS_PORT" -sf "$HERE/scenarios/uas_rtp.xml" \
    -default_behaviors all,-bye -rtp_echo -mp "$MP" -mi 127.0.0.1
  UAS_PID=$BG
  if ! sipp_run "$SERVER_NAME-uas-register" 15 -sf "$HERE/scenarios/register.xml" \
      -inf "$WORK/callee.csv" -key contact_port "$UAS_PORT" -m 1 -timeout 10s -timeout_error; then
    say "$s: the callee could not register"; status=1; stop_pid "$UAS_PID"; stop_all; continue
  fi
  for n in $MEDIA_N; do
    media_step "$n" || status=1
    sleep "$SETTLE"
  done
  stop_pid "$UAS_PID"
  stop_all
done
nft delete table inet fsbench_media 2>/dev/null
mkdir -p "$OUT"
stamp=$(date -u +%Y%m%d-%H%M)
m report "$RESULTS" "$OUT/$stamp-media.md" && cp "$OUT/$stamp-media.md" "$OUT/latest-media.md"
[ -n "$KEEP" ] && say "work dir kept: $WORK"
exit $status
