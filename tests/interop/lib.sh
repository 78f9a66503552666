# Shared helpers for the interop scripts: free ports, a throw-away daemon config, start/stop.
# Sourced, not run. Everything listens on 127.0.0.1 only and every wait is bounded.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${FERROSWITCH_BIN:-$ROOT/target/release/ferroswitch}

free_port() {
  python3 - "$@" <<'PY'
import socket
# A port free for both UDP and TCP on 127.0.0.1, with the port after it free too.
for _ in range(200):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
    p = u.getsockname()[1]
    try:
        t = socket.socket(); t.bind(("127.0.0.1", p)); t.close()
        u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u2.bind(("127.0.0.1", p + 1)); u2.close()
    except OSError:
        u.close(); continue
    u.close(); print(p); break
PY
}

# make_config DIR PORT FIRST LAST: a config serving 127.0.0.1 with users FIRST..LAST (password
# "pw-<id>-Xk9q", strong enough not to be flagged) plus alice/bob with the same scheme, and a
# SIPp injection file DIR/users.csv.
make_config() {
  local dir=$1 port=$2 first=$3 last=$4
  mkdir -p "$dir/users"
  cat > "$dir/ferroswitch.toml" <<TOML
[server]
domain = "127.0.0.1"
listen = ["udp:127.0.0.1:$port", "tcp:127.0.0.1:$port"]
users = "users"

[registrar]
min_expires = 60
max_expires = 3600
default_expires = 3600
TOML
  {
    for u in alice bob $(seq "$first" "$last"); do
      printf '[[user]]\nid = "%s"\npassword = "pw-%s-Xk9q"\n\n' "$u" "$u"
    done
  } > "$dir/users/test.toml"
  {
    echo "SEQUENTIAL"
    # Users first..first+99 are kept free of registrations for the call tests.
    for u in $(seq "$((first + 100))" "$last"); do
      printf '%s;127.0.0.1;[authentication username=%s password=pw-%s-Xk9q]\n' "$u" "$u" "$u"
    done
  } > "$dir/users.csv"
}

# start_daemon DIR PORT: runs the daemon in the background, waits until it answers OPTIONS.
start_daemon() {
  local dir=$1 port=$2
  "$BIN" --config "$dir/ferroswitch.toml" --log-level info >"$dir/daemon.log" 2>&1 &
  DAEMON_PID=$!
  for _ in $(seq 1 100); do
    if options_ping "$port"; then return 0; fi
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then cat "$dir/daemon.log"; return 1; fi
    sleep 0.1
  done
  echo "daemon did not answer OPTIONS on port $port" >&2
  return 1
}

stop_daemon() {
  if [ -n "${DAEMON_PID:-}" ]; then
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=
  fi
}

# options_ping PORT: one OPTIONS over UDP, true when a 200 comes back within 0.5 s.
options_ping() {
  python3 - "$1" <<'PY'
import socket, sys, random
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); s.settimeout(0.5)
lp = s.getsockname()[1]; b = "z9hG4bK%08x" % random.getrandbits(32)
msg = (f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lp};branch={b};rport\r\n"
       f"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p{b}\r\nTo: <sip:127.0.0.1:{port}>\r\n"
       f"Call-ID: {b}@probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
s.sendto(msg.encode(), ("127.0.0.1", port))
try:
    data, _ = s.recvfrom(65535)
    sys.exit(0 if data.startswith(b"SIP/2.0 200") else 1)
except OSError:
    sys.exit(1)
PY
}

# check NAME CMD…: runs CMD, prints "ok   NAME" or "FAIL NAME" and counts it in passed/failed.
passed=0
failed=0
check() {
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $name"
  else failed=$((failed + 1)); echo "FAIL $name"; fi
}
