#!/usr/bin/env bash
# Makes the Debian package's variants of conf/ files (packaging/ferroswitch.toml,
# packaging/ferroswitch.service, packaging/fail2ban-jail.conf) from conf/, which stays the
# source of truth and keeps its run-from-a-clone defaults. Run it after editing conf/;
# `gen.sh --check` exits 1 when the committed variants are out of date (tests/interop/deb.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# The config: state under /var/lib/ferroswitch (the unit's StateDirectory), users beside it.
sed -e 's|^# Check it with:  ferroswitch check-config --config conf/ferroswitch.toml|# Installed by the Debian package ferroswitch (a conffile: upgrades never overwrite it).\n# Check it with:  ferroswitch check-config --config /etc/ferroswitch/ferroswitch.toml|' \
    -e 's|^store = "sqlite:registrations.db"|store = "sqlite:/var/lib/ferroswitch/registrations.db"|' \
    -e 's|^cdr_file = "cdr.jsonl"   |cdr_file = "/var/lib/ferroswitch/cdr.jsonl"|' \
    conf/ferroswitch.toml > "$tmp/ferroswitch.toml"
grep -q '^store = "sqlite:/var/lib/ferroswitch/registrations.db"' "$tmp/ferroswitch.toml"
grep -q '^cdr_file = "/var/lib/ferroswitch/cdr.jsonl"' "$tmp/ferroswitch.toml"
grep -q '^users = "users" ' "$tmp/ferroswitch.toml"

# The unit: the package's binary, and no hand-install steps in its header.
sed -e 's|/usr/local/bin/ferroswitch|/usr/bin/ferroswitch|g' \
    -e '/^# systemd unit for ferroswitch. Install (as root):/,/^# Logs go to/{/^# Logs go to/!d}' \
    conf/ferroswitch.service > "$tmp/ferroswitch.service"
sed -i '1i # systemd unit for ferroswitch, installed by its Debian package. Config: /etc/ferroswitch/.' "$tmp/ferroswitch.service"
grep -q '^ExecStart=/usr/bin/ferroswitch --config /etc/ferroswitch/ferroswitch.toml$' "$tmp/ferroswitch.service"
if grep -q /usr/local "$tmp/ferroswitch.service"; then echo "unit still names /usr/local" >&2; exit 1; fi

# The fail2ban jail ships disabled: a package must not change the firewall (nor, with
# backend = systemd and no python3-systemd, stop fail2ban from starting) until asked to.
sed -e 's|^enabled  = true|enabled  = false|' \
    -e 's|^# Example fail2ban jail for ferroswitch. Install:|# Example fail2ban jail for ferroswitch, installed by its Debian package (with the filter) but\n# DISABLED: set enabled = true below, then:|' \
    -e '/^#   cp conf\/fail2ban\//d' \
    conf/fail2ban/jail.d/ferroswitch.conf > "$tmp/fail2ban-jail.conf"
grep -q '^enabled  = false' "$tmp/fail2ban-jail.conf"

status=0
for f in ferroswitch.toml ferroswitch.service fail2ban-jail.conf; do
  if [ "$out" = --check ]; then
    if ! cmp -s "$tmp/$f" "packaging/$f"; then
      echo "packaging/$f is out of date with conf/: run packaging/gen.sh" >&2; status=1
    fi
  else
    cp "$tmp/$f" "packaging/$f"
  fi
done
exit $status
