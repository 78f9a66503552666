#!/usr/bin/env bash
# SIPVicious (Debian package `sipvicious`: svmap, svwar, svcrack) against the daemon on loopback,
# the way a scanner finds a softswitch on a public address:
#   - svmap finds it; svwar (REGISTER, INVITE, OPTIONS, forced) finds no extension, because an
#     unknown user is challenged exactly like a known one;
#   - svcrack guessing the strong password of 1000 never succeeds; once the guard is in (the
#     daemon logs `SECURITY ban`), the source is banned after at most max_auth_failures (10)
#     failures; before that the script says bans are not active yet;
#   - meanwhile a registered user keeps registering and calling (SIPp, from 127.0.0.1);
#   - with the default guard settings, a scanner User-Agent gets no answer at all (checked only
#     when the daemon logs `SECURITY scanner`).
# A control run first cracks a weak password from a 3-word dictionary, so "never succeeds" is
# not the tool failing to talk to us.
#
# The sipvicious tools cannot all choose their source address (-b is ignored by svwar and
# svcrack 0.3.3), so they talk to tests/tools/lossy_relay.py with no impairment, whose upstream
# sockets bind to 127.0.0.2 (the scan) or 127.0.0.3 (the control): to the daemon the scan comes
# from 127.0.0.2, never from the allow-listed 127.0.0.1 the SIPp user shares. Each tool gets its
# own port (-P) and HOME (it keeps sessions in ~/.sipvicious).
#
# Runs after `cargo build --release`; installs nothing. Only 127.0.0.0/8, every wait bounded.
# Ends with "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
HERE=$ROOT/tests/interop
RELAY=$ROOT/tests/tools/lossy_relay.py
STRONG="Zq8-vT3pL9wmR2xK7"
MAX_FAILURES=10

for tool in svmap svwar svcrack sipp; do
  command -v "$tool" >/dev/null || { echo "$tool not installed"; echo "0 passed, 1 failed"; exit 1; }
done
if [ ! -x "$BIN" ]; then
  echo "no $BIN: run cargo build --release first"; echo "0 passed, 1 failed"; exit 1
fi
WORK=$(mktemp -d /tmp/ferroswitch-sipvicious.XXXXXX)
export HOME=$WORK/home
mkdir -p "$HOME"
PIDS=()
stop_started() {
  local p
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  PIDS=()
}
trap 'stop_started; stop_daemon; [ "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT


# write_config DIR PORT SECURITY: users 1000 (strong password) and 1001..1003 (pw-<id>-Xk9q);
# SECURITY is a [security] table appended when the daemon accepts it (empty: none).
write_config() {
  local dir=$1 port=$2 security=$3
  mkdir -p "$dir/users"
  cat > "$dir/ferroswitch.toml" <<TOML
[server]
domain = "127.0.0.1"
listen = ["udp:127.0.0.1:$port", "tcp:127.0.0.1:$port"]
users = "users"
$security
TOML
  {
    printf '[[user]]\nid = "1000"\npassword = "%s"\n\n' "$STRONG"
    for u in 1001 1002 1003; do printf '[[user]]\nid = "%s"\npassword = "pw-%s-Xk9q"\n\n' "$u" "$u"; done
  } > "$dir/users/test.toml"
}

# relay_from SOURCE: a relay on a free 127.0.0.1 port whose upstream side is SOURCE; sets RELAY_PORT.
relay_from() {
  RELAY_PORT=$(free_port)
  python3 "$RELAY" --listen "127.0.0.1:$RELAY_PORT" --target "127.0.0.1:$PORT" --source "$1" \
    >"$DIR/relay-$1.out" 2>&1 &
  PIDS+=($!)
  local _
  for _ in $(seq 1 50); do
    grep -q listening "$DIR/relay-$1.out" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

count() { grep -c -- "$1" "$DIR/daemon.log" 2>/dev/null || true; }

# --- 1. Default settings: does the guard drop scanner User-Agents? --------------------------
DIR=$WORK/defaults
PORT=$(free_port)
write_config "$DIR" "$PORT" ""
start_daemon "$DIR" "$PORT" || { echo "0 passed, 1 failed"; exit 1; }
relay_from 127.0.0.2
timeout 30 svmap -P "$(free_port)" 127.0.0.1 -p "$RELAY_PORT" >"$DIR/svmap.out" 2>&1
scanner_dropped() {
  if [ "$(count 'SECURITY scanner')" -gt 0 ]; then
    echo "     guard: scanner User-Agent dropped ($(count 'SECURITY scanner') SECURITY scanner lines)"
    ! grep -q "ferroswitch" "$DIR/svmap.out"
  else
    echo "     scanner User-Agent filter not active yet: svmap sees the daemon"
    grep -q "ferroswitch" "$DIR/svmap.out"
  fi
}
check "svmap from 127.0.0.2 with default settings" scanner_dropped
stop_started
stop_daemon

# --- 2. Bans: scanner User-Agents let through so that svwar and svcrack reach authentication. -
DIR=$WORK/bans
PORT=$(free_port)
SECURITY='[security]
allow = ["127.0.0.1"]
scanner_user_agents = []'
write_config "$DIR" "$PORT" "$SECURITY"
if "$BIN" check-config --config "$DIR/ferroswitch.toml" >"$DIR/check.out" 2>&1; then
  echo "     config: [security] accepted (allow 127.0.0.1, scanner User-Agents not filtered)"
else
  echo "     config: no [security] table in this build: running without it"
  write_config "$DIR" "$PORT" ""
fi
start_daemon "$DIR" "$PORT" || { echo "$passed passed, $((failed + 1)) failed"; exit 1; }
relay_from 127.0.0.2 && SCAN=$RELAY_PORT
relay_from 127.0.0.3 && CONTROL=$RELAY_PORT

svmap_finds_it() {
  timeout 30 svmap -P "$(free_port)" 127.0.0.1 -p "$SCAN" >"$DIR/svmap.out" 2>&1
  grep -q "ferroswitch" "$DIR/svmap.out" || { cat "$DIR/svmap.out"; return 1; }
}
check "svmap finds the daemon" svmap_finds_it

# svwar_finds_nothing METHOD: extensions 990-1010 (1000-1003 exist), forced past its sanity check.
svwar_finds_nothing() {
  local out=$DIR/svwar-$1.out
  timeout 120 svwar --force -m "$1" -e 990-1010 -P "$(free_port)" --maximumtime 10 \
    127.0.0.1 -p "$SCAN" >"$out" 2>&1
  local rc=$?
  if grep -Eq '^\| *(99[0-9]|100[0-9]|1010) *\|' "$out" || ! grep -q "found nothing" "$out"; then
    echo "     svwar $1 (rc=$rc):"; tail -15 "$out"; return 1
  fi
}
for m in REGISTER INVITE OPTIONS; do check "svwar -m $m finds no extension" svwar_finds_nothing "$m"; done

control_crack() {
  printf 'guess-one\nguess-two\npw-1003-Xk9q\n' > "$DIR/control.txt"
  timeout 60 svcrack -u 1003 -d "$DIR/control.txt" -P "$(free_port)" --maximumtime 10 \
    127.0.0.1 -p "$CONTROL" >"$DIR/control.out" 2>&1
  grep -q "pw-1003-Xk9q" "$DIR/control.out" || { cat "$DIR/control.out"; return 1; }
}
check "control: svcrack finds a password that is in its dictionary" control_crack

# A registered user at work during the scan: callee 1001 (SIPp UAS), 1002 re-registering and
# calling it, all from 127.0.0.1.
UAS=$(free_port)
printf 'SEQUENTIAL\n1001;127.0.0.1;[authentication username=1001 password=pw-1001-Xk9q]\n' > "$DIR/reg-1001.csv"
timeout 20 sipp "127.0.0.1:$PORT" -sf "$HERE/register.xml" -inf "$DIR/reg-1001.csv" -i 127.0.0.1 \
  -p "$UAS" -m 1 -nostdin -timeout 10s -timeout_error >"$DIR/reg-1001.out" 2>&1
sipp -sn uas -i 127.0.0.1 -p "$UAS" -nostdin -default_behaviors all,-bye >"$DIR/uas.out" 2>&1 &
PIDS+=($!)
printf 'SEQUENTIAL\n1002;127.0.0.1;[authentication username=1002 password=pw-1002-Xk9q]\n' > "$DIR/reg-1002.csv"
printf 'SEQUENTIAL\n1002;1001;[authentication username=1002 password=pw-1002-Xk9q]\n' > "$DIR/calls.csv"
timeout 120 sipp "127.0.0.1:$PORT" -sf "$HERE/register.xml" -inf "$DIR/reg-1002.csv" -i 127.0.0.1 \
  -p "$(free_port)" -m 60 -r 4 -nostdin -timeout 90s -trace_stat -stf "$DIR/user-reg.csv" \
  >"$DIR/user-reg.out" 2>&1 &
USER_REG=$!
timeout 120 sipp "127.0.0.1:$PORT" -sf "$HERE/uac_auth.xml" -inf "$DIR/calls.csv" -i 127.0.0.1 \
  -p "$(free_port)" -m 60 -r 4 -nostdin -timeout 90s -trace_stat -stf "$DIR/user-calls.csv" \
  >"$DIR/user-calls.out" 2>&1 &
USER_CALLS=$!

svcrack_fails() {
  timeout 150 svcrack -u 1000 -r 1-600 -P "$(free_port)" --maximumtime 10 \
    127.0.0.1 -p "$SCAN" >"$DIR/svcrack.out" 2>&1
  ATTEMPTS=$(count "authentication failed user=1000 ")
  if grep -q "$STRONG" "$DIR/svcrack.out" || ! grep -q "found nothing" "$DIR/svcrack.out"; then
    tail -15 "$DIR/svcrack.out"; return 1
  fi
  echo "     svcrack: $ATTEMPTS wrong passwords for 1000 reached the daemon, none right"
}
check "svcrack never finds the strong password of 1000" svcrack_fails

banned() {
  local line
  line=$(grep -m1 "SECURITY ban src=127.0.0.2" "$DIR/daemon.log")
  if [ -z "$line" ]; then
    echo "     bans are not active yet (no 'SECURITY ban' line): $ATTEMPTS guesses answered, none succeeded"
    [ "$ATTEMPTS" -gt $MAX_FAILURES ]
    return
  fi
  echo "     ${line#*SECURITY }"
  # Every guess after the ban was dropped: no more failures than the threshold reached auth.
  [ "$ATTEMPTS" -le $MAX_FAILURES ] && ! grep -q "SECURITY ban src=127.0.0.1 " "$DIR/daemon.log"
}
check "svcrack's source is banned after at most $MAX_FAILURES failures (when bans are active)" banned

# stat CSV COLUMN: the last value of a SIPp -trace_stat column.
stat() {
  python3 - "$1" "$2" <<'PY' 2>/dev/null || echo 0
import sys
rows = [l.rstrip("\n").split(";") for l in open(sys.argv[1]) if l.strip()]
print(int(rows[-1][rows[0].index(sys.argv[2])]))
PY
}
user_kept_working() {
  wait "$USER_REG"; local reg_rc=$?
  wait "$USER_CALLS"; local calls_rc=$?
  local regs calls
  regs=$(stat "$DIR/user-reg.csv" "SuccessfulCall(C)"); calls=$(stat "$DIR/user-calls.csv" "SuccessfulCall(C)")
  echo "     during the scan: $regs/60 registrations and $calls/60 calls of 1002 succeeded (rc $reg_rc/$calls_rc)"
  [ "$reg_rc" -eq 0 ] && [ "$calls_rc" -eq 0 ] && [ "$regs" -eq 60 ] && [ "$calls" -eq 60 ]
}
check "a registered user keeps registering and calling during the scan" user_kept_working
check "the daemon still answers OPTIONS" options_ping "$PORT"

stop_started
stop_daemon
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
