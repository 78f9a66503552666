#!/usr/bin/env bash
# A real SIP provider (issue 12): Kamailio (Debian's) as the "provider" with its own registrar
# and digest auth (tests/interop/provider/kamailio.cfg), a SIPp UAS behind it as the "PSTN",
# and ferroswitch configured with a [[gateway]] to it and a dialplan. Checks, in order:
#   1. ferroswitch accepts the gateway + dialplan config and starts;
#   2. it registers to Kamailio as acct1234 (Kamailio's usrloc, read with kamcmd ul.dump);
#   3. user 1000 dials 95551234567: the PSTN UAS gets +15551234567 with P-Asserted-Identity
#      +15551230000, through Kamailio's 407 auth; answered and hung up cleanly;
#   4. the PSTN calls the DID +15551230000 through Kamailio: user 1000 (a SIPp UAS) answers;
#   5. toll fraud: unauthenticated INVITEs for 9… from a user's address and from an unknown
#      address get 4xx and never reach Kamailio (its INVITE count from us stays the same);
#   6. a wrong gateway password: logged, the daemon stays up and serves, and it retries.
# PROVIDER_SELFTEST=1 proves the Kamailio/SIPp half alone, with SIPp standing in for
# ferroswitch (registration with digest, a wrong password, an outbound call with 407 auth to
# the PSTN UAS, a DID call to the registered account); it needs no daemon.
#
# Every port comes from free_port, so it may run beside other suites; every wait is bounded
# (the full run stays under 3 minutes). Ends with "N passed, M failed", exits non-zero on any
# failure. Run it under the shared lock:
#   flock /tmp/ferroswitch-interop.lock bash tests/interop/provider.sh
set -uo pipefail
source "$(dirname "$0")/lib.sh"
HERE=$ROOT/tests/interop
PROV=$HERE/provider

ACCOUNT=acct1234
PASSWORD=${PROVIDER_PASSWORD:-Kq7-acct1234-pw}
REALM=provider.test
DID=+15551230000
DIALLED=95551234567          # ^9(\d{7,15})$ → +1$1
EXPECTED=+15551234567

WORK=$(mktemp -d /tmp/ferroswitch-provider.XXXXXX)
KAM_PID=
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && { kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; }
  done
  stop_daemon
  if [ -n "$KAM_PID" ]; then
    # -DD keeps the main process in the foreground; it takes its children down on TERM.
    kill -TERM "$KAM_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$KAM_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$KAM_PID" 2>/dev/null
    wait "$KAM_PID" 2>/dev/null
  fi
  [ "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

KPORT=$(free_port)          # Kamailio
PSTN_PORT=$(free_port)      # the PSTN UAS behind Kamailio
PSTN_UAC_PORT=$(free_port)  # the PSTN's calls come from here (Kamailio trusts this source)
KLOG=$WORK/kamailio/kamailio.log
CTL=$WORK/kamailio/run/ctl.sock

start_kamailio() {
  local dir=$WORK/kamailio
  mkdir -p "$dir/run"
  sed -e "s|@PORT@|$KPORT|g" -e "s|@PSTN_PORT@|$PSTN_PORT|g" \
      -e "s|@PSTN_UAC_PORT@|$PSTN_UAC_PORT|g" -e "s|@ACCOUNT@|$ACCOUNT|g" \
      -e "s|@PASSWORD@|$PASSWORD|g" -e "s|@DID@|$DID|g" -e "s|@REALM@|$REALM|g" \
      -e "s|@CTL@|$CTL|g" "$PROV/kamailio.cfg" >"$dir/kamailio.cfg"
  kamailio -DD -E -m 64 -M 8 -f "$dir/kamailio.cfg" -Y "$dir/run" -w "$dir" >"$KLOG" 2>&1 &
  KAM_PID=$!
  for _ in $(seq 1 50); do
    if [ -S "$CTL" ] && kamcmd -s "unix:$CTL" core.version >/dev/null 2>&1; then return 0; fi
    kill -0 "$KAM_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "     kamailio did not start:"; tail -20 "$KLOG"
  return 1
}

# kam_count PATTERN: lines of Kamailio's log matching the extended regex.
kam_count() { grep -cE "$1" "$KLOG" 2>/dev/null || true; }

# kam_tail: Kamailio's last marker lines, for a failing check's report.
kam_tail() { grep -oE 'PROVIDER-.*' "$KLOG" | tail -"${1:-8}" | sed 's/^/     k /'; }

# INVITEs Kamailio received from anyone but the PSTN side (i.e. from ferroswitch).
invites_from_customer() {
  local all pstn
  all=$(kam_count "PROVIDER-INVITE src=")
  pstn=$(kam_count "PROVIDER-INVITE src=127\.0\.0\.1:$PSTN_UAC_PORT ")
  echo $((all - pstn))
}

# registered ACCOUNT [CONTACT_RE]: true when Kamailio's usrloc holds a binding for ACCOUNT
# (whose contact matches CONTACT_RE when given).
registered() {
  local dump; dump=$(kamcmd -s "unix:$CTL" ul.dump 2>/dev/null) || return 1
  echo "$dump" | grep -qE "AoR: $1\$" || return 1
  [ -z "${2:-}" ] || echo "$dump" | grep -E "Address: .*$2" >/dev/null
}

# pstn_uas_template OUT: the PSTN UAS scenario expecting EXPECTED and a PAI naming DID.
pstn_uas_template() {
  sed -e "s|@NUMBER_RE@|\\\\$EXPECTED|" -e "s|@PAI_RE@|\\\\$DID|" "$PROV/pstn_uas.xml" >"$1"
}

# start_bg NAME CMD…: runs CMD in the background, output in $WORK/NAME.out, pid in BG_PID.
start_bg() {
  local name=$1; shift
  "$@" >"$WORK/$name.out" 2>&1 &
  BG_PID=$!
  PIDS+=("$BG_PID")
}

# wait_rc PID SECONDS: waits for PID (a SIPp) up to SECONDS, returns its exit code (124 on
# timeout, after killing it).
wait_rc() {
  local pid=$1 limit=$2
  for _ in $(seq 1 $((limit * 10))); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid"; return $?; }
    sleep 0.1
  done
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  return 124
}

show() { # NAME: the tail of a SIPp run's output and error file
  tail -15 "$WORK/$1.out" 2>/dev/null | grep -v '^\s*$' | sed 's/^/     | /'
  [ -s "$WORK/$1.err" ] && head -20 "$WORK/$1.err" | sed 's/^/     ! /'
  return 0
}

sipp_once() { # NAME TIMEOUT SIPP-ARGS…: one call with SIPp in the foreground, exit code kept
  local name=$1 limit=$2; shift 2
  timeout "$limit" sipp -i 127.0.0.1 -m 1 -nostdin -timeout "$((limit - 2))s" -timeout_error \
    -trace_err -error_file "$WORK/$name.err" "$@" >"$WORK/$name.out" 2>&1
  local rc=$?
  [ $rc -eq 0 ] || { echo "     sipp $name: rc=$rc"; show "$name"; }
  return $rc
}

# ---------------------------------------------------------------------------------------------
# PROVIDER_SELFTEST=1: Kamailio + SIPp only.
if [ "${PROVIDER_SELFTEST:-}" = 1 ]; then
  CUST_PORT=$(free_port)   # SIPp standing in for ferroswitch: registers and calls from here
  printf 'SEQUENTIAL\n%s;127.0.0.1;[authentication username=%s password=%s]\n' \
    "$ACCOUNT" "$ACCOUNT" "$PASSWORD" >"$WORK/account.csv"
  printf 'SEQUENTIAL\n%s;127.0.0.1;[authentication username=%s password=wrong-%s]\n' \
    "$ACCOUNT" "$ACCOUNT" "$PASSWORD" >"$WORK/account-bad.csv"
  printf 'SEQUENTIAL\n%s;%s;[authentication username=%s password=%s]\n' \
    "$ACCOUNT" "$EXPECTED" "$ACCOUNT" "$PASSWORD" >"$WORK/call.csv"
  pstn_uas_template "$WORK/pstn_uas.xml"

  st_start() { start_kamailio; }
  check "selftest: kamailio starts as the provider on 127.0.0.1:$KPORT" st_start
  [ -n "$KAM_PID" ] && kill -0 "$KAM_PID" 2>/dev/null || { echo "$passed passed, $((failed + 1)) failed"; exit 1; }

  st_wrong_password() {
    local before; before=$(kam_count "PROVIDER-AUTH-FAIL method=REGISTER")
    sipp_once reg-bad 10 "127.0.0.1:$KPORT" -sf "$PROV/register_reject.xml" \
      -inf "$WORK/account-bad.csv" -p "$CUST_PORT" || return 1
    local after; after=$(kam_count "PROVIDER-AUTH-FAIL method=REGISTER")
    echo "     kamailio logged $((after - before)) auth failure(s); binding present: $(registered "$ACCOUNT" && echo yes || echo no)"
    [ $((after - before)) -ge 1 ] && ! registered "$ACCOUNT"
  }
  check "selftest: REGISTER with a wrong password gets 401 again, nothing saved" st_wrong_password

  st_register() {
    sipp_once reg 10 "127.0.0.1:$KPORT" -sf "$HERE/register.xml" -inf "$WORK/account.csv" \
      -p "$CUST_PORT" || return 1
    registered "$ACCOUNT" "127\.0\.0\.1:$CUST_PORT"
  }
  check "selftest: $ACCOUNT registers with digest (401, then 200; in usrloc)" st_register

  st_call_out() {
    local before; before=$(kam_count "PROVIDER-INVITE-AUTHED user=$ACCOUNT")
    start_bg pstn-uas sipp -i 127.0.0.1 -p "$PSTN_PORT" -sf "$WORK/pstn_uas.xml" -m 1 -nostdin \
      -timeout 15s -timeout_error -trace_err -error_file "$WORK/pstn-uas.err"
    local uas=$BG_PID
    sleep 0.3
    sipp_once call-out 15 "127.0.0.1:$KPORT" -sf "$PROV/uac_customer.xml" -inf "$WORK/call.csv" \
      -p "$CUST_PORT"
    local rc=$?
    wait_rc "$uas" 5; local urc=$?
    [ $urc -eq 0 ] || { echo "     pstn uas: rc=$urc"; show pstn-uas; }
    local after; after=$(kam_count "PROVIDER-INVITE-AUTHED user=$ACCOUNT")
    echo "     caller rc=$rc, PSTN UAS rc=$urc, INVITEs that passed Kamailio's auth: $((after - before))"
    [ $rc -eq 0 ] && [ $urc -eq 0 ] && [ $((after - before)) -eq 1 ]
  }
  check "selftest: $ACCOUNT calls $EXPECTED through Kamailio's 407 auth, the PSTN UAS checks R-URI and PAI" st_call_out

  st_wrong_number() {
    # The PSTN UAS must fail a call for another number (the check is real).
    sed -e "s|@NUMBER_RE@|\\\\+19999999999|" -e "s|@PAI_RE@|\\\\$DID|" "$PROV/pstn_uas.xml" >"$WORK/pstn_uas_other.xml"
    start_bg pstn-uas-other sipp -i 127.0.0.1 -p "$PSTN_PORT" -sf "$WORK/pstn_uas_other.xml" -m 1 \
      -nostdin -timeout 8s -timeout_error
    local uas=$BG_PID
    sleep 0.3
    timeout 10 sipp -i 127.0.0.1 -m 1 -nostdin -timeout 6s "127.0.0.1:$KPORT" -sf "$PROV/uac_customer.xml" \
      -inf "$WORK/call.csv" -p "$CUST_PORT" >"$WORK/call-other.out" 2>&1
    wait_rc "$uas" 10; local urc=$?
    echo "     PSTN UAS expecting +19999999999: rc=$urc (non-zero wanted)"
    [ $urc -ne 0 ]
  }
  check "selftest: the PSTN UAS fails a call whose R-URI is not the expected number" st_wrong_number

  st_did() {
    # The account's contact is CUST_PORT (registered above): a UAS there takes the DID call.
    start_bg did-uas sipp -i 127.0.0.1 -p "$CUST_PORT" -sf "$PROV/callee_uas.xml" -m 1 -nostdin \
      -timeout 15s -timeout_error -trace_err -error_file "$WORK/did-uas.err"
    local uas=$BG_PID
    sleep 0.3
    sipp_once did 15 "127.0.0.1:$KPORT" -sf "$PROV/pstn_uac.xml" -s "$DID" -p "$PSTN_UAC_PORT"
    local rc=$?
    wait_rc "$uas" 5; local urc=$?
    [ $urc -eq 0 ] || { echo "     account UAS: rc=$urc"; show did-uas; }
    echo "     PSTN caller rc=$rc, account UAS rc=$urc; $(grep -o 'PROVIDER-TO-DID.*' "$KLOG" | tail -1)"
    [ $rc -eq 0 ] && [ $urc -eq 0 ] && grep -q "PROVIDER-TO-DID ruri=sip:$ACCOUNT@127.0.0.1:$CUST_PORT.* to=sip:$DID@" "$KLOG"
  }
  check "selftest: a PSTN call to $DID reaches $ACCOUNT's registered contact (To keeps the DID)" st_did

  st_no_relay() {
    # An INVITE without credentials to a + number is challenged, not relayed.
    local before; before=$(kam_count "PROVIDER-TO-PSTN")
    python3 - "$KPORT" <<'PY'
import socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.2", 0)); s.settimeout(3)
lp = s.getsockname()[1]
msg = (f"INVITE sip:+15551234567@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:{lp};branch=z9hG4bKnorelay;rport\r\n"
       f"Max-Forwards: 70\r\nFrom: <sip:acct1234@127.0.0.1>;tag=x1\r\nTo: <sip:+15551234567@127.0.0.1>\r\n"
       f"Call-ID: norelay@127.0.0.2\r\nCSeq: 1 INVITE\r\nContact: <sip:x@127.0.0.2:{lp}>\r\nContent-Length: 0\r\n\r\n")
s.sendto(msg.encode(), ("127.0.0.1", port))
while True:
    data, _ = s.recvfrom(65535)
    line = data.split(b"\r\n", 1)[0].decode()
    if not line.startswith("SIP/2.0 1"):
        print("     answer:", line); sys.exit(0 if line.startswith("SIP/2.0 407") else 1)
PY
    local rc=$?
    [ $rc -eq 0 ] && [ "$(kam_count "PROVIDER-TO-PSTN")" -eq "$before" ]
  }
  check "selftest: an INVITE without credentials to a + number gets 407 and goes nowhere" st_no_relay

  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
fi

# ---------------------------------------------------------------------------------------------
# The full run: ferroswitch as the provider's customer.
if [ ! -x "$BIN" ]; then
  (cd "$ROOT" && cargo build --release --quiet) || exit 1
fi
PORT=$(free_port)      # ferroswitch
U1000=$(free_port)     # user 1000's registered contact: its phone answers here (check 4)
UCALL=$(free_port)     # user 1000 places its call from here (check 3), with its credentials

write_config() { # PASSWORD
  make_config "$WORK" "$PORT" 1000 1001
  # dialplan = … goes into the [server] table make_config wrote (right after its users line).
  sed -i 's|^users = "users"$|users = "users"\ndialplan = "dialplan.toml"|' "$WORK/ferroswitch.toml"
  cat >>"$WORK/ferroswitch.toml" <<TOML

[[gateway]]
name = "provider"
proxy = "127.0.0.1:$KPORT"
transport = "udp"
username = "$ACCOUNT"
password = "$1"
register = true
expires = 60
ping = 5
TOML
  cat >"$WORK/dialplan.toml" <<'TOML'
[[context.default.route]]
name = "extensions"
match = '^(1\d{3})$'
to = { user = "$1" }

[[context.default.route]]
name = "outbound"
match = '^9(\d{7,15})$'
to = { gateway = "provider", number = "+1$1" }
caller_id = { number = "+15551230000", name = "Example Ltd" }

[[context.public.route]]
name = "main number"
match = '^\+?15551230000$'
to = { user = "1000" }
TOML
}

daemon_up() { [ -n "${DAEMON_PID:-}" ] && kill -0 "$DAEMON_PID" 2>/dev/null; }
need_daemon() {
  daemon_up && return 0
  echo "     ferroswitch is not running (see check 1)"
  return 1
}

if ! start_kamailio; then
  echo "0 passed, 1 failed"; exit 1
fi
pstn_uas_template "$WORK/pstn_uas.xml"
write_config "$PASSWORD"

f_start() {
  if ! "$BIN" --config "$WORK/ferroswitch.toml" check-config >"$WORK/check-config.out" 2>&1; then
    echo "     check-config rejects the gateway/dialplan config:"
    sed 's/^/     | /' "$WORK/check-config.out" | head -20
    return 1
  fi
  start_daemon "$WORK" "$PORT" >"$WORK/start.out" 2>&1 || { sed 's/^/     | /' "$WORK/start.out" | tail -20; return 1; }
}
check "1. ferroswitch accepts [[gateway]] + dialplan.toml and starts" f_start

f_registers() {
  need_daemon || return 1
  for _ in $(seq 1 100); do
    if registered "$ACCOUNT" "127\.0\.0\.1:$PORT"; then
      echo "     $(kamcmd -s "unix:$CTL" ul.dump | grep -m1 'Address:' | tr -s ' \t' ' ')"
      # The operator's view agrees: ctl gateways says registered and up.
      local gw=""
      for _ in $(seq 1 20); do
        gw=$("$BIN" --config "$WORK/ferroswitch.toml" ctl gateways 2>&1)
        echo "$gw" | grep -qE "^provider +127\.0\.0\.1:$KPORT +registered .* up *$" && break
        sleep 0.1
      done
      echo "$gw" | sed 's/^/     ctl gateways | /'
      echo "$gw" | grep -qE "^provider +127\.0\.0\.1:$KPORT +registered .* up *$" || return 1
      return 0
    fi
    sleep 0.1
  done
  echo "     no binding for $ACCOUNT at 127.0.0.1:$PORT in Kamailio after 10 s; Kamailio saw:"
  kam_tail 5
  return 1
}
check "2. ferroswitch registers to Kamailio as $ACCOUNT (digest) within 10 s" f_registers

user_csv() { # USER CALLEE → $WORK/u-USER.csv
  printf 'SEQUENTIAL\n%s;%s;[authentication username=%s password=pw-%s-Xk9q]\n' "$1" "$2" "$1" "$1" >"$WORK/u-$1.csv"
}

f_call_out() {
  need_daemon || return 1
  user_csv 1000 127.0.0.1
  sipp_once reg-1000 10 "127.0.0.1:$PORT" -sf "$HERE/register.xml" -inf "$WORK/u-1000.csv" -p "$U1000" || return 1
  local before; before=$(kam_count "PROVIDER-INVITE-AUTHED user=$ACCOUNT ruri=sip:\\$EXPECTED@")
  start_bg pstn-uas sipp -i 127.0.0.1 -p "$PSTN_PORT" -sf "$WORK/pstn_uas.xml" -m 1 -nostdin \
    -timeout 20s -timeout_error -trace_err -error_file "$WORK/pstn-uas.err"
  local uas=$BG_PID
  sleep 0.3
  user_csv 1000 "$DIALLED"
  # From another port than the registered contact, so late retransmissions to the caller
  # (should this call fail) cannot disturb the callee of check 4.
  sipp_once call-out 20 "127.0.0.1:$PORT" -sf "$HERE/uac_auth.xml" -inf "$WORK/u-1000.csv" -p "$UCALL"
  local rc=$?
  wait_rc "$uas" 5; local urc=$?
  [ $urc -eq 0 ] || { echo "     PSTN UAS: rc=$urc"; show pstn-uas; }
  local after; after=$(kam_count "PROVIDER-INVITE-AUTHED user=$ACCOUNT ruri=sip:\\$EXPECTED@")
  echo "     caller rc=$rc, PSTN UAS rc=$urc, INVITEs for $EXPECTED through Kamailio's auth: $((after - before))"
  [ $rc -eq 0 ] && [ $urc -eq 0 ] && [ $((after - before)) -ge 1 ] || { kam_tail; return 1; }
}
check "3. 1000 dials $DIALLED: the PSTN gets $EXPECTED with PAI $DID via Kamailio's auth" f_call_out

f_did() {
  need_daemon || return 1
  # 1000's registered contact is U1000 (registered in check 3): a UAS there answers.
  start_bg u1000-uas sipp -i 127.0.0.1 -p "$U1000" -sf "$PROV/callee_uas.xml" -m 1 -nostdin \
    -timeout 20s -timeout_error -trace_err -error_file "$WORK/u1000-uas.err"
  local uas=$BG_PID
  sleep 0.3
  sipp_once did 20 "127.0.0.1:$KPORT" -sf "$PROV/pstn_uac.xml" -s "$DID" -p "$PSTN_UAC_PORT"
  local rc=$?
  wait_rc "$uas" 5; local urc=$?
  [ $urc -eq 0 ] || { echo "     user 1000's UAS: rc=$urc"; show u1000-uas; }
  echo "     PSTN caller rc=$rc, user 1000 rc=$urc; $(grep -o 'PROVIDER-TO-DID.*' "$KLOG" | tail -1)"
  [ $rc -eq 0 ] && [ $urc -eq 0 ] || { kam_tail; return 1; }
}
check "4. the PSTN calls $DID through Kamailio: user 1000 rings and answers" f_did

# fraud_invite SRC_IP SRC_PORT FROM_USER RURI_USER: one INVITE without credentials to
# ferroswitch; prints the final status line; true for 401/403/404/407 (no call placed).
fraud_invite() {
  python3 - "$PORT" "$@" <<'PY'
import socket, sys, random
port, src, sport, fuser, ruser = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.bind((src, sport))
except OSError as e:
    print(f"     cannot bind {src}:{sport}: {e}"); sys.exit(2)
lp = s.getsockname()[1]; b = "z9hG4bKfraud%08x" % random.getrandbits(32); tag = "f%06x" % random.getrandbits(24)
sdp = "v=0\r\no=x 1 1 IN IP4 {0}\r\ns=-\r\nc=IN IP4 {0}\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n".format(src)
head = (f"Via: SIP/2.0/UDP {src}:{lp};branch={b};rport\r\nMax-Forwards: 70\r\n"
        f"From: <sip:{fuser}@127.0.0.1>;tag={tag}\r\nTo: <sip:{ruser}@127.0.0.1>\r\n"
        f"Call-ID: {b}@fraud\r\n")
inv = (f"INVITE sip:{ruser}@127.0.0.1:{port} SIP/2.0\r\n{head}CSeq: 1 INVITE\r\n"
       f"Contact: <sip:{fuser}@{src}:{lp}>\r\nContent-Type: application/sdp\r\n"
       f"Content-Length: {len(sdp)}\r\n\r\n{sdp}")
s.settimeout(0.5)
status = None
for attempt in range(8):           # resend like UDP timer A would, ~4 s in all
    s.sendto(inv.encode(), ("127.0.0.1", port))
    try:
        while True:
            data, _ = s.recvfrom(65535)
            line = data.split(b"\r\n", 1)[0].decode(errors="replace")
            if line.startswith("SIP/2.0 ") and not line.startswith("SIP/2.0 1"):
                status = line; raise StopIteration
    except socket.timeout:
        continue
    except StopIteration:
        break
if status is None:
    print("     no final answer (a silent drop also keeps the call away, but we expect a 4xx)")
    sys.exit(1)
code = int(status.split()[1])
if code >= 300:   # ACK the final answer (same branch, §17.1.1.3)
    to = [l for l in data.decode(errors="replace").split("\r\n") if l.lower().startswith(("to:", "t:"))]
    ack = (f"ACK sip:{ruser}@127.0.0.1:{port} SIP/2.0\r\n{head.replace(f'To: <sip:{ruser}@127.0.0.1>', to[0] if to else '')}"
           f"CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n")
    s.sendto(ack.encode(), ("127.0.0.1", port))
print(f"     {src}:{lp} as {fuser} → {ruser}: {status}")
sys.exit(0 if code in (401, 403, 404, 407) else 1)
PY
}

f_toll_fraud() {
  need_daemon || return 1
  local before; before=$(invites_from_customer)
  local ok=0
  # From user 1000's own address (registered above), no credentials.
  fraud_invite 127.0.0.1 "$U1000" 1000 "$DIALLED" || ok=1
  # From the same address, straight to a + number.
  fraud_invite 127.0.0.1 "$U1000" 1000 "$EXPECTED" || ok=1
  # From an address nobody registered from, claiming to be a user, then the account.
  fraud_invite 127.0.0.2 0 1000 "$DIALLED" || ok=1
  fraud_invite 127.0.0.2 0 "$ACCOUNT" "$DIALLED" || ok=1
  fraud_invite 127.0.0.2 0 "+15559876543" "$EXPECTED" || ok=1
  sleep 2
  local after; after=$(invites_from_customer)
  echo "     INVITEs Kamailio received from ferroswitch during the attempts: $((after - before))"
  [ $ok -eq 0 ] && [ "$after" -eq "$before" ]
}
check "5. toll fraud: unauthenticated INVITEs for 9… and + numbers get 4xx, none reaches Kamailio" f_toll_fraud

f_wrong_password() {
  stop_daemon
  # The first daemon's log, for a failing check above (start_daemon starts a new one).
  cp "$WORK/daemon.log" "$WORK/daemon-first.log" 2>/dev/null
  write_config "wrong-$PASSWORD"
  local before; before=$(kam_count "PROVIDER-AUTH-FAIL method=REGISTER .* user=$ACCOUNT")
  start_daemon "$WORK" "$PORT" >"$WORK/start-bad.out" 2>&1 || { sed 's/^/     | /' "$WORK/start-bad.out" | tail -20; return 1; }
  local t0=$SECONDS n=0
  # Retries: at least 2 rejected REGISTERs within 40 s (the back-off may start at a few
  # seconds; 40 s leaves room for an initial attempt plus one retry at up to ~30 s).
  while [ $((SECONDS - t0)) -lt 40 ]; do
    n=$(( $(kam_count "PROVIDER-AUTH-FAIL method=REGISTER .* user=$ACCOUNT") - before ))
    [ "$n" -ge 2 ] && break
    daemon_up || break
    sleep 0.5
  done
  echo "     rejected REGISTERs from ferroswitch in $((SECONDS - t0)) s: $n"
  local logged; logged=$(grep -iE 'provider' "$WORK/daemon.log" | grep -iE 'fail|reject|denied|forbidden|401|403|auth' | head -2)
  echo "     daemon log: ${logged:-(no line naming the gateway and a failure)}"
  local alive=no served=no
  daemon_up && alive=yes
  user_csv 1001 127.0.0.1
  [ $alive = yes ] && sipp_once reg-1001 10 "127.0.0.1:$PORT" -sf "$HERE/register.xml" -inf "$WORK/u-1001.csv" && served=yes
  echo "     still running: $alive; a user's REGISTER answered 200: $served"
  [ "$n" -ge 2 ] && [ -n "$logged" ] && [ $alive = yes ] && [ $served = yes ]
}
check "6. wrong gateway password: logged, retried (≥2 REGISTERs in 40 s), daemon up and serving" f_wrong_password

stop_daemon
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
