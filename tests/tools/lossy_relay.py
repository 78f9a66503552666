#!/usr/bin/env python3
"""A lossy UDP relay for tests on loopback: seeded random loss, duplication, reordering and delay.

It stands between SIP peers and the daemon and rewrites nothing. Each peer ("client") that
sends to the relay's --listen port gets its own upstream socket, and that socket's address is
what the daemon sees as the source: the daemon's responses (rport) and its requests to a binding
registered through the relay (NAT: the binding's source) come back to that socket, and the relay
passes them to the client from the listen port. So a callee that registers through a relay is
reached through it, and a caller that sends its INVITE through one hears every answer through it.
With --source the upstream sockets bind to another loopback address (say 127.0.0.2), so a tool
that cannot choose its source address appears to the daemon as that address.

Loss, duplication and reordering are drawn per datagram and per direction from one RNG seeded
with --seed ("up" = client -> target, "down" = target -> client). A reordered datagram is held
--hold ms longer than its delay, so datagrams sent after it overtake it. Counters go to --stats
(JSON, rewritten every second and on exit) and to stdout at exit (SIGTERM/SIGINT).

Python 3 standard library only. Only 127.0.0.0/8 addresses are accepted.
"""

import argparse
import heapq
import ipaddress
import json
import os
import random
import selectors
import signal
import socket
import sys
import time

MAX_DATAGRAM = 65535


def loopback_addr(text):
    host, _, port = text.rpartition(":")
    if not ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).version != 4:
        raise argparse.ArgumentTypeError(f"{text}: only 127.0.0.0/8 addresses are allowed")
    return host, int(port)


def probability(text):
    p = float(text)
    if not 0.0 <= p <= 1.0:
        raise argparse.ArgumentTypeError(f"{text}: not a probability")
    return p


def delay_range(text):
    lo, _, hi = text.partition(":")
    lo, hi = float(lo), float(hi or lo)
    if lo < 0 or hi < lo:
        raise argparse.ArgumentTypeError(f"{text}: want MIN:MAX milliseconds")
    return lo / 1000.0, hi / 1000.0


class Direction:
    """Impairments and counters of one direction."""

    def __init__(self, name, loss, dup, reorder):
        self.name, self.loss, self.dup, self.reorder = name, loss, dup, reorder
        self.received = self.sent = self.dropped = self.duplicated = self.reordered = 0

    def counters(self):
        return {
            "received": self.received,
            "sent": self.sent,
            "dropped": self.dropped,
            "duplicated": self.duplicated,
            "reordered": self.reordered,
        }


class Relay:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.sel = selectors.DefaultSelector()
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.front.bind(args.listen)
        self.front.setblocking(False)
        self.sel.register(self.front, selectors.EVENT_READ, None)
        self.clients = {}  # client address -> its upstream socket
        self.queue = []  # (due, seq, socket, data, destination, direction)
        self.seq = 0
        up_loss = args.loss if args.loss_up is None else args.loss_up
        down_loss = args.loss if args.loss_down is None else args.loss_down
        self.up = Direction("up", up_loss, args.dup, args.reorder)
        self.down = Direction("down", down_loss, args.dup, args.reorder)
        self.overflow = 0
        self.running = True

    def upstream(self, client):
        sock = self.clients.get(client)
        if sock is None:
            if len(self.clients) >= self.args.max_clients:
                return None
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.bind((self.args.source or self.args.listen[0], 0))
            sock.setblocking(False)
            self.sel.register(sock, selectors.EVENT_READ, client)
            self.clients[client] = sock
        return sock

    def impair(self, data, out_sock, dest, d):
        """Schedules `data` (or not, or twice) on `out_sock` to `dest`."""
        d.received += 1
        if self.rng.random() < d.loss:
            d.dropped += 1
            return
        copies = 2 if self.rng.random() < d.dup else 1
        if copies == 2:
            d.duplicated += 1
        lo, hi = self.args.delay
        for _ in range(copies):
            delay = self.rng.uniform(lo, hi)
            if self.rng.random() < d.reorder:
                d.reordered += 1
                delay += self.args.hold / 1000.0
            self.seq += 1
            heapq.heappush(self.queue, (time.monotonic() + delay, self.seq, out_sock, data, dest, d))

    def flush_due(self):
        now = time.monotonic()
        while self.queue and self.queue[0][0] <= now:
            _, _, sock, data, dest, d = heapq.heappop(self.queue)
            try:
                sock.sendto(data, dest)
                d.sent += 1
            except OSError:
                # A full socket buffer or an unreachable port is loss too.
                d.dropped += 1

    def readable(self, sock, client):
        for _ in range(256):
            try:
                data, src = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # ICMP port unreachable from an earlier send: nothing to relay.
                continue
            if client is None:
                up = self.upstream(src)
                if up is None:
                    self.overflow += 1
                    continue
                self.impair(data, up, self.args.target, self.up)
            else:
                self.impair(data, self.front, client, self.down)

    def stats(self):
        return {
            "listen": "%s:%d" % self.args.listen,
            "target": "%s:%d" % self.args.target,
            "source": self.args.source or self.args.listen[0],
            "seed": self.args.seed,
            "clients": len(self.clients),
            "refused_clients": self.overflow,
            "queued": len(self.queue),
            "up": self.up.counters(),
            "down": self.down.counters(),
        }

    def write_stats(self):
        if self.args.stats:
            tmp = self.args.stats + ".tmp"
            with open(tmp, "w") as f:
                json.dump(self.stats(), f)
            # Atomic replace: a reader never sees half a file.
            os.replace(tmp, self.args.stats)

    def run(self):
        print("lossy_relay listening on %s:%d -> %s:%d" % (self.args.listen + self.args.target), flush=True)
        next_stats = time.monotonic()
        while self.running:
            now = time.monotonic()
            timeout = 0.2
            if self.queue:
                timeout = max(0.0, min(timeout, self.queue[0][0] - now))
            for key, _ in self.sel.select(timeout):
                self.readable(key.fileobj, key.data)
            self.flush_due()
            if time.monotonic() >= next_stats:
                self.write_stats()
                next_stats = time.monotonic() + 1.0
        self.flush_due()
        self.write_stats()
        print("lossy_relay " + json.dumps(self.stats()), flush=True)
        for sock in [self.front, *self.clients.values()]:
            self.sel.unregister(sock)
            sock.close()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", type=loopback_addr, required=True, help="127.x.y.z:PORT clients send to")
    p.add_argument("--target", type=loopback_addr, required=True, help="127.x.y.z:PORT of the daemon")
    p.add_argument("--source", type=lambda t: loopback_addr(t + ":0")[0],
                   help="127.x.y.z the upstream sockets bind to (default: the listen address)")
    p.add_argument("--loss", type=probability, default=0.0, help="loss probability, each direction")
    p.add_argument("--loss-up", type=probability, help="client -> target loss (overrides --loss)")
    p.add_argument("--loss-down", type=probability, help="target -> client loss (overrides --loss)")
    p.add_argument("--dup", type=probability, default=0.0, help="duplication probability")
    p.add_argument("--reorder", type=probability, default=0.0, help="probability a datagram is held back")
    p.add_argument("--hold", type=float, default=40.0, help="extra ms a held-back datagram waits")
    p.add_argument("--delay", type=delay_range, default=(0.0, 0.0), help="MIN:MAX ms of delay, uniform")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-clients", type=int, default=256)
    p.add_argument("--stats", help="JSON counters file")
    return p.parse_args(argv)


def main(argv=None):
    relay = Relay(parse_args(argv))

    def stop(*_):
        relay.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    relay.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
