#!/usr/bin/env bash
# Install as a package (issue 13): builds the Debian package with cargo-deb, installs it with
# dpkg on THIS machine, checks where its files went, runs the installed daemon with the installed
# config as the ferroswitch user (under systemd when it runs, and by hand on a free loopback port
# in any case), registers a phone (SIPp) against it, then removes and purges the package.
# Changes the machine (a package, a system user): meant for CI and throw-away machines. Refuses
# to touch a ferroswitch package it did not install itself. Needs root, cargo-deb
# (cargo install --locked cargo-deb) and SIPp. Ends with "N passed, N failed".
set -uo pipefail
source "$(dirname "$0")/lib.sh"
HERE=$ROOT/tests/interop
MARK=/etc/ferroswitch/users/deb-test.toml   # our test user: also says "installed by deb.sh"

fail_early() { echo "$1" >&2; echo "0 passed, 1 failed"; exit 1; }
[ "$(id -u)" = 0 ] || fail_early "deb.sh installs a package: run it as root"
command -v cargo-deb >/dev/null || fail_early "needs cargo-deb: cargo install --locked cargo-deb"
if dpkg-query -W -f '${Status}' ferroswitch 2>/dev/null | grep -q installed && [ ! -e "$MARK" ]; then
  fail_early "a ferroswitch package not installed by deb.sh is on this machine: not touching it"
fi

WORK=$(mktemp -d /tmp/ferroswitch-deb.XXXXXX)
chmod 755 "$WORK"
cleanup() {
  stop_daemon
  if dpkg-query -W -f '${Status}' ferroswitch 2>/dev/null | grep -q 'ok \(installed\|config-files\|half\)'; then
    dpkg --purge ferroswitch >/dev/null 2>&1 || true
  fi
  [ "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
# A run that died before its trap leaves our package behind: start from nothing.
cleanup_leftover() { [ -e "$MARK" ] && dpkg --purge ferroswitch >/dev/null 2>&1; true; }
cleanup_leftover

check "packaging/ variants are up to date with conf/ (packaging/gen.sh --check)" \
  "$ROOT/packaging/gen.sh" --check

# Build: the release binary (CI has it already), then the package around it.
build_deb() {
  (cd "$ROOT" && nice -n 19 cargo build --release --quiet && cargo deb --no-build --output "$WORK/") \
    >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; return 1; }
  DEB=$(ls "$WORK"/ferroswitch_*.deb 2>/dev/null | head -1)
  [ -n "$DEB" ]
}
check "cargo deb builds the package" build_deb || true
[ -n "${DEB:-}" ] || { echo "$passed passed, $((failed + 1)) failed"; exit 1; }

dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|' > "$WORK/contents"
dpkg-deb -f "$DEB" Depends > "$WORK/depends"
dpkg-deb -e "$DEB" "$WORK/control"
contains() { grep -qx "$1" "$WORK/contents"; }
unit_path() { grep -E '^/(usr/)?lib/systemd/system/ferroswitch.service$' "$WORK/contents"; }
check "package holds /usr/bin/ferroswitch" contains /usr/bin/ferroswitch
check "package holds the config and users" \
  bash -c "grep -qx /etc/ferroswitch/ferroswitch.toml '$WORK/contents' && grep -qx /etc/ferroswitch/users/extensions.toml '$WORK/contents'"
check "package holds the systemd unit" bash -c "grep -qE '^/(usr/)?lib/systemd/system/ferroswitch.service$' '$WORK/contents'"
check "package holds fail2ban filter and jail, logrotate snippet" bash -c "
  grep -qx /etc/fail2ban/filter.d/ferroswitch.conf '$WORK/contents' &&
  grep -qx /etc/fail2ban/jail.d/ferroswitch.conf '$WORK/contents' &&
  grep -qx /etc/logrotate.d/ferroswitch '$WORK/contents'"
conffiles_ok() {
  local f
  for f in /etc/ferroswitch/ferroswitch.toml /etc/ferroswitch/users/extensions.toml \
           /etc/ferroswitch/dialplan.toml /etc/ferroswitch/users/demo.toml /etc/fail2ban/filter.d/ferroswitch.conf \
           /etc/fail2ban/jail.d/ferroswitch.conf /etc/logrotate.d/ferroswitch; do
    grep -qx "$f" "$WORK/control/conffiles" || { echo "not a conffile: $f"; return 1; }
  done
}
check "everything under /etc is a conffile" conffiles_ok
check "Depends names libc (cargo-deb \$auto) and adduser" \
  bash -c "grep -q libc6 '$WORK/depends' && grep -q adduser '$WORK/depends'"

# Install.
check "dpkg -i installs it" bash -c "dpkg -i '$DEB' >'$WORK/dpkg-i.log' 2>&1 || { cat '$WORK/dpkg-i.log'; exit 1; }"
UNIT=$(unit_path | head -1)
check "binary installed and runs" bash -c "/usr/bin/ferroswitch --help >/dev/null"
check "unit runs /usr/bin/ferroswitch with /etc/ferroswitch/ferroswitch.toml" \
  grep -qx 'ExecStart=/usr/bin/ferroswitch --config /etc/ferroswitch/ferroswitch.toml' "$UNIT"
check "ferroswitch system user and group exist, no login shell" bash -c "
  getent group ferroswitch >/dev/null && getent passwd ferroswitch | grep -q ':/usr/sbin/nologin$' &&
  [ \$(id -u ferroswitch) -lt 1000 ]"
check "/var/lib/ferroswitch is owned by ferroswitch, 0750" \
  bash -c '[ "$(stat -c %U:%G:%a /var/lib/ferroswitch)" = ferroswitch:ferroswitch:750 ]'
check "config readable by group ferroswitch only" bash -c '
  [ "$(stat -c %U:%G:%a /etc/ferroswitch/ferroswitch.toml)" = root:ferroswitch:640 ] &&
  [ "$(stat -c %U:%G:%a /etc/ferroswitch/dialplan.toml)" = root:ferroswitch:640 ] &&
  [ "$(stat -c %U:%G:%a /etc/ferroswitch/users)" = root:ferroswitch:750 ]'
check "packaged config keeps state in /var/lib/ferroswitch" bash -c "
  grep -q '^store = \"sqlite:/var/lib/ferroswitch/registrations.db\"' /etc/ferroswitch/ferroswitch.toml &&
  grep -q '^cdr_file = \"/var/lib/ferroswitch/cdr.jsonl\"' /etc/ferroswitch/ferroswitch.toml"
check "fail2ban jail ships disabled" grep -q '^enabled  = false' /etc/fail2ban/jail.d/ferroswitch.conf
check "check-config passes on the installed config" \
  bash -c "/usr/bin/ferroswitch check-config --config /etc/ferroswitch/ferroswitch.toml >'$WORK/check.log' 2>&1 || { cat '$WORK/check.log'; exit 1; }"
check "without --config the installed binary finds /etc/ferroswitch/ferroswitch.toml" \
  bash -c "cd / && /usr/bin/ferroswitch check-config >'$WORK/check0.log' 2>&1 && grep -q /etc/ferroswitch/ferroswitch.toml '$WORK/check0.log' || { cat '$WORK/check0.log'; exit 1; }"
check "check-config passes as the ferroswitch user" bash -c "
  setpriv --reuid=ferroswitch --regid=ferroswitch --init-groups \
    /usr/bin/ferroswitch check-config --config /etc/ferroswitch/ferroswitch.toml >'$WORK/check2.log' 2>&1 ||
  { cat '$WORK/check2.log'; exit 1; }"

# A conffile the operator edited survives a reinstall of the package.
echo "# edited by the operator (deb.sh)" >> /etc/ferroswitch/ferroswitch.toml
check "dpkg -i again keeps the edited config" bash -c "
  dpkg -i --force-confold '$DEB' >'$WORK/dpkg-i2.log' 2>&1 &&
  grep -q 'edited by the operator' /etc/ferroswitch/ferroswitch.toml"

# Under systemd the postinst enabled and started the unit (on 5060, the shipped listen).
if [ "$(systemctl is-system-running 2>/dev/null)" = running ] || [ "$(systemctl is-system-running 2>/dev/null)" = degraded ]; then
  check "systemd: unit enabled" systemctl is-enabled --quiet ferroswitch
  check "systemd: unit active" systemctl is-active --quiet ferroswitch
  systemctl stop ferroswitch
else
  echo "(systemd is not running here: the unit is not started; the daemon runs by hand below)"
  check "unit enabled for the next boot (wants symlink)" \
    test -L /etc/systemd/system/multi-user.target.wants/ferroswitch.service
fi

# The installed daemon, by hand as the unit would run it: the ferroswitch user, the installed
# config (a copy listening on a free loopback port) and users directory, state in /var/lib.
PORT=$(free_port)
PW="deb-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')-Xk9q"
printf '[[user]]\nid = "debtest"\npassword = "%s"\n' "$PW" > "$MARK"
sed "s|^listen = .*|listen = [\"udp:127.0.0.1:$PORT\", \"tcp:127.0.0.1:$PORT\"]|" \
  /etc/ferroswitch/ferroswitch.toml > /etc/ferroswitch/deb-test.toml
chgrp ferroswitch "$MARK" /etc/ferroswitch/deb-test.toml
chmod 640 "$MARK" /etc/ferroswitch/deb-test.toml
install -d -m 750 -o ferroswitch -g ferroswitch /run/ferroswitch
RUNTIME_DIRECTORY=/run/ferroswitch setpriv --reuid=ferroswitch --regid=ferroswitch --init-groups \
  /usr/bin/ferroswitch --config /etc/ferroswitch/deb-test.toml --log-level info >"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
started() {
  for _ in $(seq 1 100); do
    options_ping "$PORT" && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$WORK/daemon.log"; return 1; }
    sleep 0.1
  done
  cat "$WORK/daemon.log"; return 1
}
check "installed daemon starts as ferroswitch and answers OPTIONS" started
check "daemon runs as the ferroswitch user" bash -c "[ \"\$(ps -o user= -p $DAEMON_PID)\" = ferroswitch ]"
register() {
  printf 'SEQUENTIAL\ndebtest;127.0.0.1;[authentication username=debtest password=%s]\n' "$PW" > "$WORK/reg.csv"
  timeout 20 sipp "127.0.0.1:$PORT" -sf "$HERE/register.xml" -inf "$WORK/reg.csv" -i 127.0.0.1 \
    -p "$(free_port)" -m 1 -nostdin -timeout 10s -timeout_error >"$WORK/reg.out" 2>&1 \
    || { tail -20 "$WORK/reg.out"; return 1; }
}
check "a phone registers (401, then 200) with a user from /etc/ferroswitch/users" register
check "registrations stored in /var/lib/ferroswitch, owned by ferroswitch" \
  bash -c '[ "$(stat -c %U /var/lib/ferroswitch/registrations.db)" = ferroswitch ]'
check "ferroswitch ctl reaches it through /run/ferroswitch/ctl.sock" \
  bash -c "/usr/bin/ferroswitch ctl --config /etc/ferroswitch/deb-test.toml status >'$WORK/ctl.out' 2>&1 || { cat '$WORK/ctl.out'; exit 1; }"
stopped() {
  kill -TERM "$DAEMON_PID" 2>/dev/null; local rc=0
  wait "$DAEMON_PID" || rc=$?
  DAEMON_PID=
  [ "$rc" = 0 ] || { echo "exit status $rc"; tail -5 "$WORK/daemon.log"; return 1; }
}
check "SIGTERM stops it, exit status 0" stopped

# Remove keeps configuration and state; purge takes them away, and the user stays.
check "dpkg --remove removes the binary and unit, keeps /etc/ferroswitch" bash -c "
  dpkg --remove ferroswitch >'$WORK/remove.log' 2>&1 && [ ! -e /usr/bin/ferroswitch ] && [ ! -e '$UNIT' ] &&
  [ -f /etc/ferroswitch/ferroswitch.toml ] && [ -d /var/lib/ferroswitch ]"
check "dpkg --purge removes /etc/ferroswitch and /var/lib/ferroswitch" bash -c "
  dpkg --purge ferroswitch >'$WORK/purge.log' 2>&1 &&
  [ ! -e /etc/ferroswitch ] && [ ! -e /var/lib/ferroswitch ] && [ ! -e /run/ferroswitch ] &&
  ! dpkg-query -W ferroswitch >/dev/null 2>&1"
check "purge removes fail2ban, logrotate files and the unit's enable symlink" bash -c "
  [ ! -e /etc/fail2ban/jail.d/ferroswitch.conf ] && [ ! -e /etc/fail2ban/filter.d/ferroswitch.conf ] &&
  [ ! -e /etc/logrotate.d/ferroswitch ] &&
  [ ! -L /etc/systemd/system/multi-user.target.wants/ferroswitch.service ]"
check "purge keeps the ferroswitch system user (Debian custom)" bash -c "getent passwd ferroswitch >/dev/null"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
