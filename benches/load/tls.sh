#!/usr/bin/env bash
# TLS figures for the README (issue 14): full handshakes/s against the daemon and memory per
# idle TLS connection, with a test CA made by openssl, everything on 127.0.0.1.
#
#   benches/load/tls.sh [SECONDS] [CONCURRENCY] [IDLE_CONNECTIONS]     (defaults 10 8 1000)
#
# The daemon is pinned to core 0 and the client (examples/tls_load.rs) to core 1. Handshakes
# are full ones (new TCP connection, no resumption, ECDSA P-256 certificate, the client's
# preferred TLS 1.3 with X25519). Idle memory: RSS before and after opening N connections that
# then stay silent (the [tcp] caps are raised for this run). Bounded in time and count.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$ROOT/tests/interop/lib.sh"
SECS=${1:-10} CONC=${2:-8} IDLE=${3:-1000}

(cd "$ROOT" && cargo build --release --quiet --bin ferroswitch --example tls_load) || exit 1
LOAD=$ROOT/target/release/examples/tls_load
WORK=$(mktemp -d /tmp/ferroswitch-tls-bench.XXXXXX)
cleanup() { stop_daemon; rm -rf "$WORK"; }
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=bench CA" -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$WORK/server.key" -out "$WORK/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > "$WORK/ext"
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
  -CAcreateserial -days 2 -extfile "$WORK/ext" -out "$WORK/server.pem" 2>/dev/null

PORT=$(free_port) TLS_PORT=$(free_port)
make_config "$WORK" "$PORT" 1000 1001
sed -i "s|^listen = .*|listen = [\"udp:127.0.0.1:$PORT\", \"tls:127.0.0.1:$TLS_PORT\"]|" "$WORK/ferroswitch.toml"
cat >> "$WORK/ferroswitch.toml" <<TOML

[tcp]
max_connections = 100000
max_connections_per_ip = 65535
untrusted_idle_timeout = 300

[tls]
certificate = "server.pem"
private_key = "server.key"
TOML
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
start_daemon "$WORK" "$PORT" || exit 1
taskset -pc 0 "$DAEMON_PID" >/dev/null
# The daemon's CPU time in ns (exact, unlike /proc/stat; see INTEROP-NOTES).
cpu_ns() { cat /proc/"$DAEMON_PID"/task/*/schedstat | awk '{s += $1} END {printf "%d\n", s}'; }
echo "== handshakes: $LOAD handshakes 127.0.0.1:$TLS_PORT ca.pem $SECS $CONC"
c0=$(cpu_ns)
out=$(taskset -c 1 "$LOAD" handshakes "127.0.0.1:$TLS_PORT" "$WORK/ca.pem" "$SECS" "$CONC")
c1=$(cpu_ns)
echo "$out"
n=$(echo "$out" | awk '{print $1}')
[ "$n" -gt 0 ] && echo "daemon CPU per handshake: $(( (c1 - c0) / n / 1000 )) us (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "== idle: $LOAD idle 127.0.0.1:$TLS_PORT ca.pem $IDLE PID"
taskset -c 1 "$LOAD" idle "127.0.0.1:$TLS_PORT" "$WORK/ca.pem" "$IDLE" "$DAEMON_PID"
