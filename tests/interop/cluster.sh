#!/usr/bin/env bash
# Several nodes behind an edge proxy (issue 16): Redis (no persistence), two ferroswitch nodes
# (fs1, fs2: the same users, the same nonce secret, store = redis://…, Kamailio trusted for
# Path, drain_timeout 5 s) and Kamailio as the edge (conf/cluster/kamailio.cfg, the shipped config:
# dispatcher hashing over Call-ID with OPTIONS probing every second, path, record_route,
# failover on 408/503/no answer). Phones (SIPp, baresip) only ever talk to Kamailio.
#   a. SIPp registers 1,000 users through Kamailio: all 200; Redis holds 1,000 AORs, each
#      binding with Kamailio's Path;
#   b. 2,000 SIPp calls to users registered through either node: 0 failed, both nodes took
#      calls (their CDR files);
#   c. baresip alice and bob register through Kamailio and call each other: RTP both ways
#      through the relay of the node that took the call (CALL_RTPESTAB on both);
#   d. SIGKILL fs2 during a call run: failures only among the calls of a bounded window after
#      the kill, every call started after it succeeds (through fs1), nobody re-registers
#      (Kamailio saw no REGISTER, Redis still has the 1,000 AORs); fs2 restarted takes calls
#      again;
#   e. `ctl drain` on the node holding a long call: its OPTIONS turn 503, Kamailio marks it
#      inactive and sends it no new call, the long call goes on to a normal end; `ctl resume`
#      brings it back (OPTIONS 200, new calls again);
#   f. Redis stopped and restarted during a registration run: both nodes stay up and answer,
#      REGISTERs get 500 while it is down, each node logs the loss and the return once, and
#      registrations succeed again once it is back.
# Addresses: Kamailio 127.0.0.10, fs1 127.0.0.11, fs2 127.0.0.12, phones and Redis 127.0.0.1;
# every port from free_port. Every wait is bounded; the run takes about two minutes and prints
# its time. Ends with "N passed, M failed". Run it under the shared lock:
#   flock /tmp/ferroswitch-interop.lock bash tests/interop/cluster.sh
# CLUSTER_DEV=1 runs the nodes without the cluster keys (store = "memory"), for working on
# the Kamailio side alone: cross-node calls and the Redis checks fail then, as they must.
# CLUSTER_CHECKS=ab runs only those checks (default abcdef); CLUSTER_HOLD=SECONDS keeps it all
# running that long at the end, for a look with ctl, kamcmd and redis-cli.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
HERE=$ROOT/tests/interop

T0=$(date +%s)

KIP=127.0.0.10
NODE_IPS=(127.0.0.11 127.0.0.12)
PHONE_IP=127.0.0.1
WORK=$(mktemp -d /tmp/ferroswitch-cluster.XXXXXX)
KAM_PID=
REDIS_PID=
NODE_PIDS=("" "")
PIDS=()

kill_wait() { # PID: TERM, up to 5 s, then KILL
  local p=$1
  [ -n "$p" ] || return 0
  kill -TERM "$p" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null
  wait "$p" 2>/dev/null
  return 0
}

cleanup() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && { kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; }
  done
  for p in "${NODE_PIDS[@]}"; do kill_wait "$p"; done
  kill_wait "$KAM_PID"
  kill_wait "$REDIS_PID"
  [ "${KEEP_WORK:-}" ] && echo "work dir kept: $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

KPORT=$(free_port)
RPORT=$(free_port)
NODE_PORTS=("$(free_port)" "$(free_port)")
KLOG=$WORK/kamailio/kamailio.log
CTL=$WORK/kamailio/run/ctl.sock
REG_FIRST=1000
REG_LAST=1999
CALLER=2100

# ---- set-up -----------------------------------------------------------------------------

make_users() {
  mkdir -p "$WORK/users"
  {
    for u in alice bob $(seq "$REG_FIRST" "$REG_LAST") $(seq 2000 2010) "$CALLER"; do
      printf '[[user]]\nid = "%s"\npassword = "pw-%s-Xk9q"\n\n' "$u" "$u"
    done
  } > "$WORK/users/test.toml"
  openssl rand -hex 32 > "$WORK/nonce.key"
  chmod 600 "$WORK/nonce.key"
}

# node_config I: fs1 (I=0) or fs2 (I=1).
node_config() {
  local i=$1 n=$(( $1 + 1 )) dir=$WORK/fs$(( $1 + 1 ))
  local ip=${NODE_IPS[$i]} port=${NODE_PORTS[$i]}
  local ports=$(( 20000 + i * 4000 ))-$(( 23999 + i * 4000 ))
  mkdir -p "$dir"
  local cluster_server="node_id = \"fs$n\""
  local cluster_registrar="store = \"redis://127.0.0.1:$RPORT/0\"
trusted_proxies = [\"$KIP\"]
nonce_secret_file = \"../nonce.key\""
  if [ "${CLUSTER_DEV:-}" ]; then
    cluster_server=""
    cluster_registrar='store = "memory"'
  fi
  cat > "$dir/ferroswitch.toml" <<TOML
[server]
domain = "$KIP"
listen = ["udp:$ip:$port"]
users = "../users"
drain_timeout = 5
$cluster_server

[registrar]
min_expires = 60
max_expires = 3600
default_expires = 3600
$cluster_registrar

[calls]
cdr_file = "cdr.jsonl"
max_calls_per_user = 0     # one caller and two callees carry every call of the load runs

[media]
rtp_ports = "$ports"

[control]
socket = "ctl.sock"
TOML
}

# ping IP PORT: the status of one OPTIONS to IP:PORT (000 when nothing came back in 0.5 s).
ping() {
  python3 - "$1" "$2" <<'PY'
import socket, sys, random
ip, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); s.settimeout(0.5)
lp = s.getsockname()[1]; b = "z9hG4bK%08x" % random.getrandbits(32)
msg = (f"OPTIONS sip:{ip}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lp};branch={b};rport\r\n"
       f"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p{b}\r\nTo: <sip:{ip}:{port}>\r\n"
       f"Call-ID: {b}@probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
s.sendto(msg.encode(), (ip, port))
try:
    data, _ = s.recvfrom(65535)
    print(data.split(b" ", 2)[1].decode())
except OSError:
    print("000")
PY
}

# start_node I: starts fs(I+1), waits (10 s at most) until it answers OPTIONS.
start_node() {
  local i=$1 dir=$WORK/fs$(( $1 + 1 ))
  "$BIN" --config "$dir/ferroswitch.toml" --log-level info >>"$dir/daemon.log" 2>&1 &
  NODE_PIDS[$i]=$!
  for _ in $(seq 1 100); do
    [ "$(ping "${NODE_IPS[$i]}" "${NODE_PORTS[$i]}")" = 200 ] && return 0
    kill -0 "${NODE_PIDS[$i]}" 2>/dev/null || { tail -20 "$dir/daemon.log"; return 1; }
    sleep 0.1
  done
  echo "     fs$(( i + 1 )) did not answer OPTIONS"; return 1
}

start_redis() {
  mkdir -p "$WORK/redis"
  redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no \
    --dir "$WORK/redis" --logfile "$WORK/redis/redis.log" --daemonize no &
  REDIS_PID=$!
  for _ in $(seq 1 50); do
    redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.1
  done
  echo "     redis-server did not start"; return 1
}

stop_redis() {
  redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1
  kill_wait "$REDIS_PID"
  REDIS_PID=
}

start_kamailio() {
  local dir=$WORK/kamailio
  mkdir -p "$dir/run"
  {
    echo "1 sip:${NODE_IPS[0]}:${NODE_PORTS[0]} 0 0 fs1"
    echo "1 sip:${NODE_IPS[1]}:${NODE_PORTS[1]} 0 0 fs2"
  } > "$dir/dispatcher.list"
  # The shipped config, with only its four settings changed.
  sed -e "s|^#!substdef \"!EDGE_ADDR!.*|#!substdef \"!EDGE_ADDR!$KIP!g\"|" \
      -e "s|^#!substdef \"!EDGE_PORT!.*|#!substdef \"!EDGE_PORT!$KPORT!g\"|" \
      -e "s|^#!substdef \"!DISPATCHER_LIST!.*|#!substdef \"!DISPATCHER_LIST!$dir/dispatcher.list!g\"|" \
      -e "s|^#!substdef \"!CTL_SOCKET!.*|#!substdef \"!CTL_SOCKET!$CTL!g\"|" \
      "$ROOT/conf/cluster/kamailio.cfg" >"$dir/kamailio.cfg"
  local want
  for want in "EDGE_ADDR!$KIP" "EDGE_PORT!$KPORT" "DISPATCHER_LIST!$dir/dispatcher.list" "CTL_SOCKET!$CTL"; do
    grep -qF "#!substdef \"!$want!g\"" "$dir/kamailio.cfg" \
      || { echo "     conf/cluster/kamailio.cfg: setting ${want%%!*} not found"; return 1; }
  done
  kamailio -DD -E -m 512 -M 16 -x fm -f "$dir/kamailio.cfg" -Y "$dir/run" -w "$dir" >"$KLOG" 2>&1 &
  KAM_PID=$!
  for _ in $(seq 1 50); do
    if [ -S "$CTL" ] && kamcmd -s "unix:$CTL" core.version >/dev/null 2>&1; then return 0; fi
    kill -0 "$KAM_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "     kamailio did not start:"; tail -20 "$KLOG"
  return 1
}

# ds_state I: the dispatcher's flags for node I ("AP" active, "IP" inactive, …).
ds_state() {
  kamcmd -s "unix:$CTL" dispatcher.list 2>/dev/null \
    | grep -A2 "URI: sip:${NODE_IPS[$1]}:${NODE_PORTS[$1]}" | awk '/FLAGS:/ {print $2; exit}'
}

# wait_ds I PATTERN SECONDS: until node I's dispatcher flags match PATTERN.
wait_ds() {
  local s
  for _ in $(seq 1 $(( $3 * 10 ))); do
    s=$(ds_state "$1"); [[ "$s" =~ $2 ]] && return 0
    sleep 0.1
  done
  echo "     fs$(( $1 + 1 )) dispatcher state: ${s:-?} (wanted $2)"; return 1
}

# ctl I ARGS…: `ferroswitch ctl` on node I.
ctl() { local i=$1; shift; "$BIN" --config "$WORK/fs$(( i + 1 ))/ferroswitch.toml" ctl "$@"; }
calls_up() { ctl "$1" --json status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["calls_up"])' 2>/dev/null || echo "?"; }
cdrs() { # I: NORMAL_CLEARING CDRs of node I
  local n; n=$(grep -c '"hangup_cause":"NORMAL_CLEARING"' "$WORK/fs$(( $1 + 1 ))/cdr.jsonl" 2>/dev/null)
  echo "${n:-0}"
}
kam_count() { grep -cE "$1" "$KLOG" 2>/dev/null || true; }
redis_aors() { redis-cli -p "$RPORT" --scan --pattern 'ferroswitch:loc:*' 2>/dev/null | wc -l; }

# ---- SIPp -------------------------------------------------------------------------------

# register_csv FILE FIRST LAST
register_csv() {
  { echo SEQUENTIAL
    for u in $(seq "$2" "$3"); do
      printf '%s;%s;[authentication username=%s password=pw-%s-Xk9q]\n' "$u" "$KIP" "$u" "$u"
    done; } > "$1"
}

# sipp_register NAME FIRST LAST RATE [PORT]: registers users FIRST..LAST through Kamailio;
# returns SIPp's exit code.
sipp_register() {
  local name=$1 first=$2 last=$3 rate=$4 port=${5:-0}
  register_csv "$WORK/$name.csv" "$first" "$last"
  timeout 120 sipp "$KIP:$KPORT" -sf "$HERE/register.xml" -inf "$WORK/$name.csv" -i "$PHONE_IP" \
    -p "$port" -m $(( last - first + 1 )) -r "$rate" -l 500 -nostdin -timeout 90s -timeout_error \
    -buff_size 4194304 -trace_err -error_file "$WORK/$name.err" >"$WORK/$name.out" 2>&1
}

# start_callee USER: USER registers from a free port, then a SIPp UAS answers there.
start_callee() {
  local port; port=$(free_port)
  sipp_register "reg-$1" "$1" "$1" 10 "$port" || { echo "     $1 did not register"; return 1; }
  echo "     $1 registered through $(grep -o "EDGE-REGISTER src=$PHONE_IP:$port node=[^ ]*" "$KLOG" | tail -1 | sed 's/.*node=//')"
  sipp -i "$PHONE_IP" -p "$port" -sn uas -default_behaviors all,-bye -nostdin \
    -buff_size 4194304 >"$WORK/uas-$1.out" 2>&1 &
  PIDS+=($!)
}

# uac NAME CALLEE COUNT RATE [HOLD_MS]: COUNT calls from CALLER to CALLEE through Kamailio;
# SIPp in the background, its pid in UAC_PID; `uac_wait` collects it.
uac() {
  local name=$1 callee=$2 count=$3 rate=$4 hold=${5:-200}
  printf 'SEQUENTIAL\n%s;%s;[authentication username=%s password=pw-%s-Xk9q]\n' \
    "$CALLER" "$callee" "$CALLER" "$CALLER" > "$WORK/$name.csv"
  sed -e "s|<pause milliseconds=\"200\"/>|<pause milliseconds=\"$hold\"/>|" \
    "$HERE/uac_auth.xml" > "$WORK/$name.xml"
  sipp "$KIP:$KPORT" -sf "$WORK/$name.xml" -inf "$WORK/$name.csv" -i "$PHONE_IP" \
    -m "$count" -r "$rate" -l 2000 -timeout 100s -timeout_error -nostdin -buff_size 4194304 \
    -trace_err -error_file "$WORK/$name.err" \
    >"$WORK/$name.out" 2>&1 &
  UAC_PID=$!
  PIDS+=("$UAC_PID")
}

# uac_wait NAME PID SECONDS: SIPp's exit code (124 when it had to be killed); prints its tally.
uac_wait() {
  local rc=124
  for _ in $(seq 1 $(( $3 * 10 ))); do
    kill -0 "$2" 2>/dev/null || { wait "$2"; rc=$?; break; }
    sleep 0.1
  done
  [ $rc -eq 124 ] && { kill "$2" 2>/dev/null; wait "$2" 2>/dev/null; }
  echo "     sipp $1: rc=$rc successful=$(sipp_count "$1" Successful) failed=$(sipp_count "$1" Failed)"
  return $rc
}

# sipp_count NAME Successful|Failed: the cumulative count on SIPp's last screen.
sipp_count() {
  grep -E "^ *$2 call" "$WORK/$1.out" | tail -1 | awk '{print $NF}'
}

# ---- the checks -------------------------------------------------------------------------

check_a_register() {
  sipp_register reg1000 "$REG_FIRST" "$REG_LAST" 250
  local rc=$?
  echo "     sipp: rc=$rc successful=$(sipp_count reg1000 Successful) failed=$(sipp_count reg1000 Failed)"
  echo "     REGISTERs by node: fs1 $(kam_count "EDGE-REGISTER .*node=sip:${NODE_IPS[0]}:${NODE_PORTS[0]}") fs2 $(kam_count "EDGE-REGISTER .*node=sip:${NODE_IPS[1]}:${NODE_PORTS[1]}")"
  [ $rc -eq 0 ] || { tail -20 "$WORK/reg1000.out"; head -40 "$WORK/reg1000.err" 2>/dev/null; return 1; }
  sleep 0.5
  local aors; aors=$(redis_aors)
  echo "     Redis: $aors AORs (1,000 registered plus none other yet)"
  [ "$aors" -eq 1000 ] || return 1
  # Every binding carries the Path Kamailio added: its address with the phone's as received.
  local with_path
  with_path=$(redis-cli -p "$RPORT" --scan --pattern 'ferroswitch:loc:*' \
      | sed 's/^/HGETALL /' | redis-cli -p "$RPORT" 2>/dev/null \
      | grep -cE "<sip:$KIP:$KPORT;[^>]*received=sip:$PHONE_IP")
  echo "     bindings in Redis with Kamailio's Path: $with_path"
  if [ "$with_path" -ne 1000 ]; then
    redis-cli -p "$RPORT" hgetall "ferroswitch:loc:$REG_FIRST@$KIP" | head -4 | sed 's/^/     r /'
    return 1
  fi
}

check_b_calls() {
  local before0 before1; before0=$(cdrs 0); before1=$(cdrs 1)
  uac calls 2001 2000 250 200
  uac_wait calls "$UAC_PID" 60 || { tail -20 "$WORK/calls.out"; head -40 "$WORK/calls.err"; return 1; }
  [ "$(sipp_count calls Successful)" -eq 2000 ] && [ "$(sipp_count calls Failed)" -eq 0 ] || return 1
  sleep 1
  local n0=$(( $(cdrs 0) - before0 )) n1=$(( $(cdrs 1) - before1 ))
  echo "     calls by node (NORMAL_CLEARING CDRs): fs1 $n0, fs2 $n1"
  [ "$n0" -gt 0 ] && [ "$n1" -gt 0 ] && [ $(( n0 + n1 )) -eq 2000 ]
}

check_c_baresip() {
  source "$HERE/baresip.sh"
  local a=$WORK/bcall-alice b=$WORK/bcall-bob asp acp bsp bcp
  asp=$(free_port); acp=$(free_port); bsp=$(free_port); bcp=$(free_port)
  PORT=$KPORT baresip_config "$a" alice "$asp" "$acp"
  PORT=$KPORT baresip_config "$b" bob "$bsp" "$bcp"
  for u in alice bob; do
    local d=$WORK/bcall-$u
    printf '<sip:%s@%s;transport=udp>;auth_pass=pw-%s-Xk9q;outbound="sip:%s:%s;lr";regint=600;answermode=auto\n' \
      "$u" "$KIP" "$u" "$KIP" "$KPORT" > "$d/accounts"
    echo "module_app menu.so" >> "$d/config"
  done
  timeout 40 baresip -f "$b" >"$b/out.log" 2>&1 &
  local bpid=$!
  timeout 40 baresip -f "$a" >"$a/out.log" 2>&1 &
  local apid=$!
  local rc=0
  timeout 45 python3 "$HERE/baresip_call.py" "$acp" "$bcp" "sip:bob@$KIP" || rc=1
  kill "$apid" "$bpid" 2>/dev/null; wait "$apid" "$bpid" 2>/dev/null
  if [ $rc -ne 0 ]; then tail -n 15 "$a/out.log" "$b/out.log"; return 1; fi
  sleep 0.5
  cat "$WORK"/fs*/cdr.jsonl | grep '"caller":{"user":"alice"' \
    | grep -q '"hangup_cause":"NORMAL_CLEARING"' || { echo "     no NORMAL_CLEARING CDR for alice"; return 1; }
  echo "     the call went through $(grep -l '"caller":{"user":"alice"' "$WORK"/fs*/cdr.jsonl | xargs -n1 dirname | xargs -n1 basename)"
}

# restart_fs2: fs2 back (the later checks need both nodes, whatever check d found).
restart_fs2() {
  [ -n "${NODE_PIDS[1]}" ] && kill -0 "${NODE_PIDS[1]}" 2>/dev/null && return 0
  start_node 1
}

check_d_kill() {
  local rate=100 window=6 regs_before aors_before
  regs_before=$(kam_count "EDGE-REGISTER"); aors_before=$(redis_aors)
  # 1,200 calls of 1 s at 100/s; fs2 dies 4 s in.
  uac kill 2001 1200 "$rate" 1000
  local pid=$UAC_PID
  sleep 4
  kill -KILL "${NODE_PIDS[1]}"; wait "${NODE_PIDS[1]}" 2>/dev/null; NODE_PIDS[1]=
  echo "     fs2 killed with $(kam_count EDGE-INVITE) INVITEs seen by Kamailio"
  uac_wait kill "$pid" 30
  local failed; failed=$(sipp_count kill Failed)
  # Failures may only come from the calls around the kill (those in progress on fs2, and new
  # ones until the prober marked it inactive, ~1 s + 2 s of tm's fr_timer): at most rate·window.
  echo "     failed: $failed (at most $(( rate * window )) allowed: ${window} s of calls at $rate/s)"
  [ "${failed:-1}" -le $(( rate * window )) ] || return 1
  # After the window: every call succeeds, through fs1 alone.
  uac after 2001 300 100 200
  uac_wait after "$UAC_PID" 30 || return 1
  [ "$(sipp_count after Failed)" -eq 0 ] || return 1
  local regs_after; regs_after=$(kam_count "EDGE-REGISTER")
  echo "     REGISTERs through Kamailio during the kill: $(( regs_after - regs_before )); Redis AORs $aors_before -> $(redis_aors)"
  [ "$regs_after" -eq "$regs_before" ] && [ "$(redis_aors)" -eq "$aors_before" ] || return 1
  # Restarted, fs2 takes calls again once the prober sees it.
  local before1; before1=$(cdrs 1)
  restart_fs2 || return 1
  wait_ds 1 '^A' 10 || return 1
  uac back 2001 200 100 200
  uac_wait back "$UAC_PID" 30 || return 1
  sleep 0.5
  echo "     fs2 after its restart: $(( $(cdrs 1) - before1 )) calls"
  [ "$(sipp_count back Failed)" -eq 0 ] && [ $(( $(cdrs 1) - before1 )) -gt 0 ]
}

check_e_drain() {
  # One long call (8 s); the node that holds it is drained. No other call may be up.
  local c0 c1
  for _ in $(seq 1 30); do
    c0=$(calls_up 0); c1=$(calls_up 1)
    [ "$c0" = 0 ] && [ "$c1" = 0 ] && break
    sleep 0.1
  done
  [ "$c0" = 0 ] && [ "$c1" = 0 ] || { echo "     calls still up before the long call: fs1 $c0, fs2 $c1"; return 1; }
  uac long 2002 1 1 8000
  local long=$UAC_PID node=
  for _ in $(seq 1 30); do
    [ "$(calls_up 0)" = 1 ] && { node=0; break; }
    [ "$(calls_up 1)" = 1 ] && { node=1; break; }
    sleep 0.1
  done
  [ -n "$node" ] || { echo "     the long call is up on neither node"; return 1; }
  local other=$(( 1 - node )) name=fs$(( node + 1 ))
  echo "     the long call is on $name; draining it"
  ctl "$node" drain | sed 's/^/     ctl: /'
  ctl "$node" status | grep -E "^(state|calls up):" | sed 's/^/     ctl: /'
  local st; st=$(ping "${NODE_IPS[$node]}" "${NODE_PORTS[$node]}")
  echo "     OPTIONS to $name: $st"
  [ "$st" = 503 ] || return 1
  wait_ds "$node" '^I' 5 || return 1
  local before; before=$(cdrs "$node")
  uac during 2001 200 100 200
  uac_wait during "$UAC_PID" 30 || return 1
  [ "$(sipp_count during Failed)" -eq 0 ] || return 1
  uac_wait long "$long" 20 || return 1
  sleep 0.5
  local got=$(( $(cdrs "$node") - before ))
  echo "     calls $name took while draining: $(( got - 1 )) (plus its long call, ended normally)"
  [ "$got" -eq 1 ] || return 1
  ctl "$node" resume | sed 's/^/     ctl: /'
  st=$(ping "${NODE_IPS[$node]}" "${NODE_PORTS[$node]}")
  echo "     OPTIONS to $name after resume: $st"
  [ "$st" = 200 ] || return 1
  wait_ds "$node" '^A' 5 || return 1
  before=$(cdrs "$node")
  uac resumed 2001 200 100 200
  uac_wait resumed "$UAC_PID" 30 || return 1
  sleep 0.5
  echo "     calls $name took after resume: $(( $(cdrs "$node") - before ))"
  [ "$(sipp_count resumed Failed)" -eq 0 ] && [ $(( $(cdrs "$node") - before )) -gt 0 ]
}

check_f_redis() {
  local l0 l1
  l0=$(wc -l < "$WORK/fs1/daemon.log"); l1=$(wc -l < "$WORK/fs2/daemon.log")
  register_csv "$WORK/regf.csv" 1000 1599
  timeout 60 sipp "$KIP:$KPORT" -sf "$HERE/register.xml" -inf "$WORK/regf.csv" -i "$PHONE_IP" \
    -m 600 -r 100 -l 500 -nostdin -timeout 40s -buff_size 4194304 \
    -trace_err -error_file "$WORK/regf.err" >"$WORK/regf.out" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  sleep 1.5
  local held; held=$(redis_aors)
  stop_redis
  echo "     Redis stopped (it held $held AORs)"
  sleep 2
  local up0 up1
  up0=$(ping "${NODE_IPS[0]}" "${NODE_PORTS[0]}"); up1=$(ping "${NODE_IPS[1]}" "${NODE_PORTS[1]}")
  echo "     while Redis is down, OPTIONS: fs1 $up0, fs2 $up1"
  start_redis || return 1
  echo "     Redis restarted (empty: no persistence)"
  wait "$pid"; local rc=$?
  echo "     sipp during the outage: rc=$rc successful=$(grep -E '^ *Successful call' "$WORK/regf.out" | tail -1 | awk '{print $NF}') failed=$(grep -E '^ *Failed call' "$WORK/regf.out" | tail -1 | awk '{print $NF}'); 500s: $(grep -c 'SIP/2.0 500' "$WORK/regf.err" 2>/dev/null || true)"
  [ "$up0" = 200 ] && [ "$up1" = 200 ] || return 1
  kill -0 "${NODE_PIDS[0]}" && kill -0 "${NODE_PIDS[1]}" || { echo "     a node died"; return 1; }
  grep -q 'SIP/2.0 500' "$WORK/regf.err" 2>/dev/null || { echo "     no REGISTER got 500"; return 1; }
  # Back: new registrations succeed and are in Redis.
  sleep 2
  sipp_register regback 1600 1699 100 || { tail -20 "$WORK/regback.out"; return 1; }
  local n; n=$(redis-cli -p "$RPORT" --scan --pattern "ferroswitch:loc:16??@*" | wc -l)
  echo "     after Redis returned: 100 registrations, $n of them in Redis"
  [ "$n" -eq 100 ] || return 1
  # Redis came back empty: the nodes wrote their replicas back, so every phone registered
  # before the outage is still reachable (in Redis and on both nodes) without registering
  # again.
  local k0 k1 now_aors i
  for i in $(seq 50); do
    now_aors=$(redis_aors)
    [ "$now_aors" -ge "$held" ] && break
    sleep 0.1
  done
  k0=$(ctl 0 --json status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["registrations"])' 2>/dev/null)
  k1=$(ctl 1 --json status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["registrations"])' 2>/dev/null)
  echo "     after the empty Redis came back: Redis $now_aors AORs (held $held before), fs1 ${k0:-?} and fs2 ${k1:-?} bindings"
  [ "$now_aors" -ge "$held" ] && [ "${k0:-0}" -ge "$held" ] && [ "${k1:-0}" -ge "$held" ] \
    || { echo "     registrations made before the outage were lost"; return 1; }
  # One line per change of state on each node, not one per request.
  local bad=0
  for i in 0 1; do
    local log=$WORK/fs$(( i + 1 ))/daemon.log from=$(( i == 0 ? l0 : l1 ))
    local down up
    down=$(tail -n +"$(( from + 1 ))" "$log" | grep -c 'location store .*: down')
    up=$(tail -n +"$(( from + 1 ))" "$log" | grep -c 'location store .*: up')
    echo "     fs$(( i + 1 )) log: $down line(s) on the loss, $up on the return"
    tail -n +"$(( from + 1 ))" "$log" | grep -E 'location store|store' | head -4 | cut -c1-200 | sed 's/^/       /'
    [ "$down" -eq 1 ] && [ "$up" -eq 1 ] || bad=1
  done
  [ $bad -eq 0 ]
}

# ---- run --------------------------------------------------------------------------------

echo "== cluster: Redis, fs1 + fs2 behind Kamailio (dispatcher, path, record_route)"
[ -x "$BIN" ] || { echo "FAIL no release binary at $BIN (cargo build --release)"; exit 1; }
make_users
node_config 0; node_config 1
setup_ok=1
start_redis || setup_ok=0
start_node 0 || setup_ok=0
start_node 1 || setup_ok=0
start_kamailio || setup_ok=0
if [ $setup_ok -eq 1 ]; then
  wait_ds 0 '^A' 5 && wait_ds 1 '^A' 5 || setup_ok=0
fi
check "set-up: Redis, two nodes, Kamailio probing both" [ $setup_ok -eq 1 ]
if [ $setup_ok -eq 1 ]; then
  want() { [[ "${CLUSTER_CHECKS:-abcdef}" == *$1* ]]; }
  want a && check "a. 1,000 users register through Kamailio; Redis has them with their Path" check_a_register
  start_callee 2001 && start_callee 2002 || echo "     callees did not register"
  want b && check "b. 2,000 calls through Kamailio, 0 failed, both nodes took calls" check_b_calls
  want c && check "c. baresip through the proxy: call set up, RTP both ways" check_c_baresip
  want d && check "d. SIGKILL fs2 mid-run: bounded failures, fs1 carries on, no re-registration, fs2 back" check_d_kill
  want d && { restart_fs2 >/dev/null; wait_ds 1 '^A' 5 >/dev/null; }
  want e && check "e. ctl drain: OPTIONS 503, no new calls, the call in progress ends normally; resume" check_e_drain
  want e && { ctl 0 resume >/dev/null 2>&1; ctl 1 resume >/dev/null 2>&1; sleep 2; }
  want f && check "f. Redis stopped and restarted during registrations: nodes up, 500s, one log line, recovery" check_f_redis
  # Debugging: keep everything running for a look (ctl, kamcmd, redis-cli) before cleanup.
  [ -z "${CLUSTER_HOLD:-}" ] || { echo "holding ${CLUSTER_HOLD} s: $WORK"; sleep "$CLUSTER_HOLD"; }
fi
echo "cluster: $(( $(date +%s) - T0 )) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
