#!/usr/bin/env bash
# SIP over TLS with real clients (issue 14; needs openssl, linphone-cli, baresip-core). A test
# CA and certificate are made here with openssl; the daemon listens on UDP, TCP and TLS.
#  - openssl s_client: TLS 1.0 and 1.1 refused, 1.2 and 1.3 accepted with AEAD suites only,
#    a CBC suite refused; the chain verifies against the test CA.
#  - linphonec trusting the CA registers over TLS and calls baresip (UDP): bob answers.
#  - linphonec trusting another CA is not registered, and the daemon logs one clear line per
#    refused handshake and no other warning.
#  - SIGHUP after a renewal: new connections get the new certificate.
# Ends with "N passed, N failed".
# Run it under the shared lock: flock /tmp/ferroswitch-interop.lock bash tests/interop/tls.sh
set -uo pipefail
source "$(dirname "$0")/lib.sh"
HERE=$ROOT/tests/interop

if [ ! -x "$BIN" ]; then
  (cd "$ROOT" && cargo build --release --quiet) || exit 1
fi
WORK=$(mktemp -d /tmp/ferroswitch-tls.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null; done
  stop_daemon
  [ "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

# make_ca NAME: a CA certificate and key in $WORK/NAME-ca.{pem,key}.
make_ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=ferroswitch interop $1 CA" -keyout "$WORK/$1-ca.key" -out "$WORK/$1-ca.pem" \
    2>/dev/null
}

# issue CN OUT: a server certificate for 127.0.0.1 signed by the test CA, in OUT.{pem,key}.
# The name is in the CN and as DNS and IP subjectAltNames: mbedTLS (linphone) matches
# 127.0.0.1 as a DNS name, rustls and openssl as an IP address.
issue() {
  local cn=$1 out=$2
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1/O=$cn" \
    -keyout "$out.key" -out "$out.csr" 2>/dev/null
  printf 'subjectAltName=DNS:127.0.0.1,IP:127.0.0.1,DNS:localhost\n' > "$out.ext"
  openssl x509 -req -in "$out.csr" -CA "$WORK/test-ca.pem" -CAkey "$WORK/test-ca.key" \
    -CAcreateserial -days 2 -extfile "$out.ext" -out "$out.pem" 2>/dev/null
  chmod 600 "$out.key"
}

make_ca test
make_ca other
issue first "$WORK/server"
PORT=$(free_port)
TLS_PORT=$(free_port)
make_config "$WORK" "$PORT" 1000 1001
sed -i "s|^listen = .*|listen = [\"udp:127.0.0.1:$PORT\", \"tcp:127.0.0.1:$PORT\", \"tls:127.0.0.1:$TLS_PORT\"]|" \
  "$WORK/ferroswitch.toml"
cat >> "$WORK/ferroswitch.toml" <<TOML

[calls]
cdr_file = "cdr.jsonl"

[tls]
certificate = "server.pem"
private_key = "server.key"
min_version = "1.2"
TOML
start_daemon "$WORK" "$PORT" || { echo "0 passed, 1 failed"; exit 1; }
source "$HERE/baresip.sh"

# s_client ARGS…: one handshake with openssl; its output in $WORK/s_client.out.
s_client() {
  timeout 10 openssl s_client -connect "127.0.0.1:$TLS_PORT" -CAfile "$WORK/test-ca.pem" \
    -verify_return_error "$@" </dev/null >"$WORK/s_client.out" 2>&1
}

# Old versions: the client is allowed them (SECLEVEL=0), so a refusal is the server's.
refused() { ! s_client "$1" -cipher 'DEFAULT:@SECLEVEL=0'; }
accepted_aead() { # VERSION-FLAG PROTOCOL-NAME
  s_client "$1" || { tail -5 "$WORK/s_client.out"; return 1; }
  grep -q "Protocol *: *$2\|New, $2," "$WORK/s_client.out" || { grep -i protocol "$WORK/s_client.out"; return 1; }
  local c; c=$(grep -o 'Cipher is [A-Z0-9_-]*' "$WORK/s_client.out" | head -1)
  echo "     $2: $c"
  echo "$c" | grep -Eq 'GCM|CHACHA20' && grep -q 'Verify return code: 0 (ok)' "$WORK/s_client.out"
}
cbc_refused() { ! s_client -tls1_2 -cipher 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA256:@SECLEVEL=0'; }

check "openssl s_client: TLS 1.0 refused" refused -tls1
check "openssl s_client: TLS 1.1 refused" refused -tls1_1
check "openssl s_client: TLS 1.2 accepted with an AEAD suite, chain verified" accepted_aead -tls1_2 TLSv1.2
check "openssl s_client: TLS 1.3 accepted with an AEAD suite, chain verified" accepted_aead -tls1_3 TLSv1.3
check "openssl s_client: TLS 1.2 with CBC suites only refused" cbc_refused

tls_call() {
  local dir=$WORK/b-bob sp ctrl lp rc=0 pid
  sp=$(free_port); ctrl=$(free_port); lp=$(free_port)
  baresip_config "$dir" bob "$sp" "$ctrl"
  echo "module_app menu.so" >> "$dir/config"
  timeout 60 baresip -f "$dir" >"$dir/out.log" 2>&1 &
  pid=$!; PIDS+=("$pid")
  timeout 60 python3 "$HERE/tls.py" call "$PORT" "$TLS_PORT" "$WORK" "$lp" "$WORK/test-ca.pem" "$ctrl" || rc=1
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; PIDS=()
  if [ $rc -ne 0 ]; then
    tail -n 20 "$dir/out.log" "$WORK"/lp-alice/out.log | grep -v "^$"
    grep -E "WARN|ERROR" "$WORK/daemon.log" | tail -n 10
    return 1
  fi
  grep -q 'registered aor=alice@127.0.0.1' "$WORK/daemon.log" || { echo "     no binding logged"; return 1; }
  sleep 0.5
  grep '"caller":{"user":"alice"' "$WORK/cdr.jsonl" | grep '"callee":{"user":"bob"' \
    | grep -q '"answer_time":"' || { echo "     no CDR of the answered call"; return 1; }
}
check "linphonec registers over TLS and calls baresip on UDP, bob answers" tls_call

untrusted() {
  local lp before rc=0
  lp=$(free_port)
  before=$(wc -l < "$WORK/daemon.log")
  timeout 40 python3 "$HERE/tls.py" untrusted "$PORT" "$TLS_PORT" "$WORK" "$lp" "$WORK/other-ca.pem" || rc=1
  tail -n +"$((before + 1))" "$WORK/daemon.log" | grep -E " (WARN|ERROR) " > "$WORK/untrusted.log"
  local n; n=$(grep -c "TLS handshake failed" "$WORK/untrusted.log")
  echo "     daemon: $n handshake lines, e.g.: $(head -1 "$WORK/untrusted.log" | sed 's/^.*TLS handshake failed/TLS handshake failed/')"
  [ $rc -eq 0 ] && [ "$n" -ge 1 ] || return 1
  # Nothing but those lines, each of them saying why.
  ! grep -v "TLS handshake failed: the peer sent the alert .* does not trust our certificate" "$WORK/untrusted.log"
}
check "linphonec not trusting the CA is refused; the daemon logs one line per handshake" untrusted

reload() {
  issue renewed "$WORK/renewed"
  cp "$WORK/renewed.pem" "$WORK/server.pem"; cp "$WORK/renewed.key" "$WORK/server.key"
  kill -HUP "$DAEMON_PID"
  for _ in $(seq 1 20); do grep -q "TLS certificate reloaded" "$WORK/daemon.log" && break; sleep 0.1; done
  grep -q "TLS certificate reloaded" "$WORK/daemon.log" || return 1
  s_client -tls1_3 || return 1
  grep -q "O *= *renewed" "$WORK/s_client.out" || { grep "subject=" "$WORK/s_client.out"; return 1; }
  kill -0 "$DAEMON_PID"
}
check "SIGHUP reloads the renewed certificate for new connections" reload

stop_daemon
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
