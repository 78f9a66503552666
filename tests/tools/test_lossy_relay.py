"""Checks of lossy_relay.py on loopback (python3 -m unittest discover -s tests/tools): pass-through
both ways, one upstream socket per client, seeded loss near its rate and repeatable, duplication,
reordering, and the loopback-only rule. Every wait is bounded."""

import contextlib
import io
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lossy_relay  # noqa: E402

# The relay reports on stdout; keep the test output to the test runner's.
lossy_relay.print = lambda *args, **kwargs: None


def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", 0))
    return s


def drain(sock, expect, quiet=0.3):
    """Datagrams read until `expect` arrived or none came for `quiet` s (10 s at most)."""
    got = []
    sock.settimeout(quiet)
    deadline = time.monotonic() + 10
    while len(got) < expect and time.monotonic() < deadline:
        try:
            got.append(sock.recvfrom(65535))
        except socket.timeout:
            break
    return got


class RelayTest(unittest.TestCase):
    def relay(self, *options):
        """A running relay in front of a fresh sink socket; returns (relay address, sink)."""
        sink = udp()
        self.addCleanup(sink.close)
        free = udp()
        port = free.getsockname()[1]
        free.close()
        argv = ["--listen", f"127.0.0.1:{port}", "--target", "127.0.0.1:%d" % sink.getsockname()[1]]
        relay = lossy_relay.Relay(lossy_relay.parse_args(argv + list(options)))
        thread = threading.Thread(target=relay.run, daemon=True)
        thread.start()

        def stop():
            relay.running = False
            thread.join(5)

        self.addCleanup(stop)
        self.current = relay
        return ("127.0.0.1", port), sink

    def send_numbered(self, sock, to, n):
        for i in range(n):
            sock.sendto(b"%06d" % i, to)
            if i % 200 == 199:
                time.sleep(0.01)  # stay under the socket buffers

    def test_relays_both_ways_through_one_upstream_socket_per_client(self):
        addr, sink = self.relay()
        a, b = udp(), udp()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        a.sendto(b"from-a", addr)
        b.sendto(b"from-b", addr)
        got = dict((data, src) for data, src in drain(sink, 2))
        self.assertEqual(set(got), {b"from-a", b"from-b"})
        self.assertNotEqual(got[b"from-a"], got[b"from-b"])
        self.assertNotIn(got[b"from-a"], (a.getsockname(), b.getsockname()))
        # The target answers each upstream socket; each client hears its own answer, from the
        # relay's listen address.
        sink.sendto(b"to-a", got[b"from-a"])
        sink.sendto(b"to-b", got[b"from-b"])
        self.assertEqual(drain(a, 1), [(b"to-a", addr)])
        self.assertEqual(drain(b, 1), [(b"to-b", addr)])
        # A request the target sends first (to a registered client) takes the same way.
        sink.sendto(b"request-to-a", got[b"from-a"])
        self.assertEqual(drain(a, 1), [(b"request-to-a", addr)])

    def test_source_address_of_the_upstream_sockets(self):
        addr, sink = self.relay("--source", "127.0.0.2")
        c = udp()
        self.addCleanup(c.close)
        c.sendto(b"x", addr)
        ((_, up),) = drain(sink, 1)
        self.assertEqual(up[0], "127.0.0.2")
        sink.sendto(b"y", up)
        self.assertEqual(drain(c, 1), [(b"y", addr)])

    def test_seeded_loss_is_near_its_rate_and_repeatable(self):
        counts = []
        for _ in range(2):
            addr, sink = self.relay("--loss", "0.1", "--seed", "7")
            c = udp()
            self.addCleanup(c.close)
            self.send_numbered(c, addr, 2000)
            got = drain(sink, 2000)
            counts.append(len(got))
            self.assertEqual(self.current.stats()["up"]["dropped"], 2000 - len(got))
        self.assertTrue(1700 <= counts[0] <= 1900, counts)
        self.assertEqual(counts[0], counts[1], "same seed, same losses")

    def test_loss_each_direction_separately(self):
        addr, sink = self.relay("--loss-up", "0", "--loss-down", "1")
        c = udp()
        self.addCleanup(c.close)
        c.sendto(b"x", addr)
        ((_, up),) = drain(sink, 1)
        sink.sendto(b"y", up)
        self.assertEqual(drain(c, 1, quiet=0.3), [])
        self.assertEqual(self.current.stats()["down"]["dropped"], 1)

    def test_duplication_and_reordering(self):
        addr, sink = self.relay("--dup", "1")
        c = udp()
        self.addCleanup(c.close)
        self.send_numbered(c, addr, 50)
        self.assertEqual(len(drain(sink, 100)), 100)

        addr, sink = self.relay("--reorder", "0.3", "--hold", "30", "--seed", "3")
        self.send_numbered(c, addr, 200)
        seen = [int(d) for d, _ in drain(sink, 200)]
        self.assertEqual(sorted(seen), list(range(200)), "nothing lost")
        self.assertNotEqual(seen, list(range(200)), "some overtaken")

    def test_only_loopback(self):
        for listen, target in [("0.0.0.0:5060", "127.0.0.1:5060"), ("127.0.0.1:5060", "10.0.0.1:5060")]:
            with self.assertRaises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
                lossy_relay.parse_args(["--listen", listen, "--target", target])
        args = lossy_relay.parse_args(["--listen", "127.0.0.2:5060", "--target", "127.0.0.1:5"])
        self.assertEqual(args.listen, ("127.0.0.2", 5060))
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
            lossy_relay.parse_args(["--listen", "127.0.0.1:1", "--target", "127.0.0.1:2", "--source", "192.0.2.1"])


if __name__ == "__main__":
    unittest.main()
