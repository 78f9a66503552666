#!/usr/bin/env bash
# Two home-router NATs in network namespaces, for trying ferroswitch with real phones the way an
# office user at home has them (see the "Home-router NAT" notes in the shared INTEROP-NOTES).
# Needs root, iproute2 and nftables. Not wired into CI.
#
#   bash tests/interop/nat/topology.sh up     build it (removes a previous one with the same prefix first)
#   bash tests/interop/nat/topology.sh down   remove it (idempotent; safe in a trap)
#   bash tests/interop/nat/topology.sh show   addresses, routes, NAT rules and conntrack entries
#
#   ${P}srv  198.18.0.1/24 on bridge ${P}wan        the server: run the daemon here
#   ${P}r1   WAN 198.18.0.11, LAN 198.19.1.1/24     home router 1: masquerade, forwarding
#   ${P}r2   WAN 198.18.0.12, LAN 198.19.2.1/24     home router 2
#   ${P}p1   198.19.1.2, default via 198.19.1.1     phone 1 (run baresip here)
#   ${P}p2   198.19.2.2, default via 198.19.2.1     phone 2 (run linphonec here)
#   ${P}x    198.18.0.99/24 on the WAN bridge        a stranger on the public side (NAT_STRANGER=1
#                                                    only), e.g. to send RTP at the server's relay
#
# P defaults to "fsn-" (NAT_PREFIX=... to change it). Run programs with
#   ip netns exec fsn-srv target/release/ferroswitch --config ...
# Each router forgets an idle UDP mapping after NAT_UDP_TIMEOUT seconds (default 30, like a cheap
# home router), so phones that send no keep-alives become unreachable from outside. By default a
# router answers a datagram that matches no mapping with ICMP port-unreachable (plain Linux);
# NAT_DROP_UNSOLICITED=1 makes it drop such datagrams silently instead, as many home routers do.
# Routers have a default route to the server, which does not forward: a phone's RTP sent to the
# other phone's private address reaches the server's wire (visible in a capture) and goes no
# further. Source this file to use nat_up/nat_down/nat_show from another script (it sets no shell
# options then); remove the namespaces in your trap with nat_down.
#
# Phones: baresip 1.0 in ${P}p1 wants `sip_listen 198.19.1.2:5060` and `net_interface 198.19.1.2`
# (its ctrl_tcp on 127.0.0.1 is reachable only from inside ${P}p1); linphonec in ${P}p2 needs its own
# HOME with .local/share/linphone created first. Capture on ${P}wan in ${P}srv (what the server
# sees) and on lan1/lan2 in the routers (what each phone sees).

P=${NAT_PREFIX:-fsn-}
NAT_UDP_TIMEOUT=${NAT_UDP_TIMEOUT:-30}
NAT_DROP_UNSOLICITED=${NAT_DROP_UNSOLICITED:-0}
NAT_STRANGER=${NAT_STRANGER:-0}

# One ICMP echo (no ping binary on the CI image), exit 0 on a reply within 2 s.
ICMP_PING='
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); s.settimeout(2)
h = struct.pack("!BBHHH", 8, 0, 0, 0x4242, 1) + b"fsnp"
c = sum(struct.unpack("!%dH" % (len(h) // 2), h)); c = (c >> 16) + (c & 0xFFFF); c = ~(c + (c >> 16)) & 0xFFFF
s.sendto(h[:2] + struct.pack("!H", c) + h[4:], (sys.argv[1], 0))
try:
    while True:
        d, a = s.recvfrom(1500)
        if a[0] == sys.argv[1] and d[20] == 0: sys.exit(0)
except OSError: sys.exit(1)
'

nat_down() {
  local ns
  for ns in "${P}x" "${P}p1" "${P}p2" "${P}r1" "${P}r2" "${P}srv"; do
    ip netns pids "$ns" >/dev/null 2>&1 && [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] \
      && echo "topology: processes still running in $ns: $(ip netns pids "$ns" | tr '\n' ' ')" >&2
    ip netns del "$ns" 2>/dev/null
  done
  return 0
}

nat_up() {
  nat_down
  # Built by a child shell with -e (errexit is ignored in a function called from `f || …`).
  NAT_PREFIX="$P" NAT_UDP_TIMEOUT="$NAT_UDP_TIMEOUT" NAT_DROP_UNSOLICITED="$NAT_DROP_UNSOLICITED" \
    NAT_STRANGER="$NAT_STRANGER" bash "${BASH_SOURCE[0]}" _build || { echo "topology: setup failed" >&2; nat_down; return 1; }
  # Sanity: each phone reaches the server through its router.
  local i
  for i in 1 2; do
    ip netns exec "${P}p$i" python3 -c "$ICMP_PING" 198.18.0.1 \
      || { echo "topology: ${P}p$i cannot reach 198.18.0.1" >&2; return 1; }
  done
}

_nat_build() {
  local ns i
  for ns in srv r1 r2 p1 p2; do
    ip netns add "${P}$ns"
    ip -n "${P}$ns" link set lo up
  done
  # WAN: a bridge in the server namespace, one veth leg per router.
  ip -n "${P}srv" link add "${P}wan" type bridge
  ip -n "${P}srv" link set "${P}wan" up
  ip -n "${P}srv" addr add 198.18.0.1/24 dev "${P}wan"
  for i in 1 2; do
    local r="${P}r$i" ph="${P}p$i"
    ip link add "w$i" netns "$r" type veth peer name "${P}w$i" netns "${P}srv"
    ip -n "${P}srv" link set "${P}w$i" master "${P}wan" up
    ip -n "$r" link set "w$i" up
    ip -n "$r" addr add "198.18.0.1$i/24" dev "w$i"
    ip -n "$r" route add default via 198.18.0.1
    # LAN: router <-> phone.
    ip link add "lan$i" netns "$r" type veth peer name eth0 netns "$ph"
    ip -n "$r" link set "lan$i" up
    ip -n "$r" addr add "198.19.$i.1/24" dev "lan$i"
    ip -n "$ph" link set eth0 up
    ip -n "$ph" addr add "198.19.$i.2/24" dev eth0
    ip -n "$ph" route add default via "198.19.$i.1"
    ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
    local drop=""
    if [ "$NAT_DROP_UNSOLICITED" = 1 ]; then
      drop="table ip filter {
  chain input { type filter hook input priority 0; policy accept;
    iifname \"w$i\" meta l4proto udp ct state new drop
  }
}"
    fi
    ip netns exec "$r" nft -f - <<NFT
table ip nat {
  chain postrouting { type nat hook postrouting priority 100; policy accept;
    oifname "w$i" masquerade; }
}
$drop
NFT
    # The conntrack sysctls exist once the nat table has loaded nf_conntrack.
    ip netns exec "$r" sysctl -qw net.netfilter.nf_conntrack_udp_timeout="$NAT_UDP_TIMEOUT"
    ip netns exec "$r" sysctl -qw net.netfilter.nf_conntrack_udp_timeout_stream="$NAT_UDP_TIMEOUT"
  done
  if [ "$NAT_STRANGER" = 1 ]; then
    ip netns add "${P}x"
    ip -n "${P}x" link set lo up
    ip link add eth0 netns "${P}x" type veth peer name "${P}wx" netns "${P}srv"
    ip -n "${P}srv" link set "${P}wx" master "${P}wan" up
    ip -n "${P}x" link set eth0 up
    ip -n "${P}x" addr add 198.18.0.99/24 dev eth0
    ip -n "${P}x" route add default via 198.18.0.1
  fi
}

nat_show() {
  local ns
  for ns in srv r1 r2 p1 p2; do
    echo "== ${P}$ns"
    ip -n "${P}$ns" -br addr
    ip -n "${P}$ns" route
  done
  for ns in r1 r2; do
    echo "== ${P}$ns nft + conntrack (udp)"
    ip netns exec "${P}$ns" nft list ruleset
    ip netns exec "${P}$ns" sysctl net.netfilter.nf_conntrack_udp_timeout
    ip netns exec "${P}$ns" conntrack -L -p udp 2>/dev/null
  done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  case "${1:-}" in
    up) nat_up && echo "topology up (prefix $P)" ;;
    down) nat_down ;;
    show) nat_show ;;
    _build) set -e; _nat_build ;;
    *) sed -n '2,/^$/p' "$0"; exit 2 ;;
  esac
fi
