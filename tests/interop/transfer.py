#!/usr/bin/env python3
"""Blind transfer carried out by the daemon with real phones (RFC 3515 REFER, RFC 5589 §6).
The transferor's REFER is answered by the daemon, which calls carol as the transferee and
releases the transferor when she answers: the transferee never sees a REFER.

usage: transfer.py MODE SIP_PORT WORK LINPHONE_SIP_PORT CTRL_PORT...
  linphone-transferee CTRL_BOB CTRL_CAROL: linphonec (alice) calls baresip bob, bob transfers
      alice to carol (user 1000, baresip), carol answers.
  baresip-transferee CTRL_ALICE CTRL_CAROL: baresip alice calls linphonec bob, bob transfers
      alice to carol, carol answers.
  caller-transfers CTRL_ALICE CTRL_CAROL CTRL_BOB: baresip alice calls baresip bob, alice (the
      CALLER) transfers bob to carol, carol answers; bob and carol talk, bob hangs up.
baresip is driven over ctrl_tcp (baresip_call.Ctrl), linphonec over stdin (its own HOME with
.local/share/linphone created first, see INTEROP-NOTES). Every wait is bounded; exits 0 when
carol's call from alice is established and then closed cleanly."""
import os, re, subprocess, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from baresip_call import Ctrl  # noqa: E402


class Linphone:
    def __init__(self, name, home, sip_port, autoanswer, sip_extra=""):
        self.name, self.lines, self.lock = name, [], threading.Lock()
        os.makedirs(os.path.join(home, ".local/share/linphone"), exist_ok=True)
        rc = os.path.join(home, "linphonerc")
        with open(rc, "w") as f:
            f.write(f"[sip]\nsip_port={sip_port}\nsip_tcp_port=-1\nsip_tls_port=-1\n{sip_extra}"
                    f"[rtp]\naudio_rtp_port={sip_port + 10}\n[sound]\nechocancellation=0\n")
        args = ["linphonec", "-c", rc] + (["-a"] if autoanswer else [])
        self.log = open(os.path.join(home, "out.log"), "w")
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, bufsize=1,
                                  env={**os.environ, "HOME": home})
        threading.Thread(target=self.reader, daemon=True).start()

    def reader(self):
        for line in self.p.stdout:
            self.log.write(line)
            self.log.flush()
            with self.lock:
                self.lines.append(line.rstrip("\n"))
            if "liblinphone-" not in line and line.strip():
                print(f"     {self.name}: {line.strip()}", flush=True)

    def send(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()

    def wait(self, pattern, timeout, start=0):
        """Index of the first output line from `start` on matching `pattern`, or None."""
        end = time.time() + timeout
        rx = re.compile(pattern)
        while time.time() < end:
            with self.lock:
                for i in range(start, len(self.lines)):
                    if rx.search(self.lines[i]):
                        return i
            time.sleep(0.05)
        return None

    def mark(self):
        with self.lock:
            return len(self.lines)

    def close(self):
        try:
            self.send("quit")
            self.p.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait()


def step(ok, what):
    print(f"     {'ok ' if ok else 'BAD'} {what}", flush=True)
    if not ok:
        raise SystemExit(1)


def linphone_register(lp, user, port):
    lp.send("soundcard use files")
    lp.send(f"register sip:{user}@127.0.0.1 sip:127.0.0.1:{port} pw-{user}-Xk9q")
    # linphonec prints nothing when the registration succeeds: ask.
    for _ in range(30):
        mark = lp.mark()
        lp.send("status register")
        if lp.wait(r"^(linphonec> )?registered,", 0.5, mark) is not None:
            return step(True, f"linphonec registers as {user}")
    step(False, f"linphonec registers as {user}")


def linphone_transferee(port, work, lp_port, ctrl_bob, ctrl_carol):
    bob, carol = Ctrl("bob", ctrl_bob), Ctrl("carol", ctrl_carol)
    lp = Linphone("alice(linphonec)", os.path.join(work, "lp-alice"), lp_port, autoanswer=False)
    try:
        linphone_register(lp, "alice", port)
        for c in (bob, carol):
            c.send("reginfo")
        time.sleep(1.5)
        lp.send(f"call sip:bob@127.0.0.1:{port}")
        step(bob.wait("CALL_ESTABLISHED", 15), "bob (baresip) answers alice")
        step(lp.wait(r"(?i)connected", 10) is not None, "alice (linphonec) is connected")
        time.sleep(1)
        bob.send("transfer", f"sip:1000@127.0.0.1:{port}")
        step(carol.wait("CALL_ESTABLISHED", 20), "carol answers the transferred call")
        # linphonec sends no RTP in this setup (bob gets none either): carol's RTP reaching
        # alice through the relay is checked from the CDR's counters (transfer.sh).
        step(bob.wait("CALL_CLOSED", 15), "bob's call with alice is released after the transfer")
        # 2.5 s of carol's RTP (~125 packets at 50/s) before alice hangs up: transfer.sh wants
        # clearly more than bob's ~1 s before the transfer, even when the machine is loaded.
        time.sleep(2.5)
        with lp.lock:
            heard = [l for l in lp.lines if re.search(r"(?i)transfer|refer", l)]
        step(not heard, f"alice (linphonec) never got a REFER {heard[:2]}")
        lp.send("terminate")
        step(carol.wait("CALL_CLOSED", 10), "alice hangs up, carol sees the call closed")
    finally:
        lp.close()


def baresip_transferee(port, work, lp_port, ctrl_alice, ctrl_carol):
    alice, carol = Ctrl("alice", ctrl_alice), Ctrl("carol", ctrl_carol)
    lp = Linphone("bob(linphonec)", os.path.join(work, "lp-bob"), lp_port, autoanswer=True)
    try:
        linphone_register(lp, "bob", port)
        for c in (alice, carol):
            c.send("reginfo")
        time.sleep(1.5)
        mark = lp.mark()
        alice.send("dial", f"sip:bob@127.0.0.1:{port}")
        step(alice.wait("CALL_ESTABLISHED", 15), "bob (linphonec) answers alice (baresip)")
        step(lp.wait(r"(?i)connected", 10, mark) is not None, "bob (linphonec) is connected")
        time.sleep(1)
        mark = lp.mark()
        lp.send(f"transfer sip:1000@127.0.0.1:{port}")
        step(carol.wait("CALL_ESTABLISHED", 20), "carol answers the transferred call")
        step(carol.wait("CALL_RTPESTAB", 10), "carol gets alice's RTP through the relay")
        step(lp.wait(r"(?i)ended|terminated|released", 15, mark) is not None,
             "bob (linphonec) is released after the transfer")
        step(not alice.wait("CALL_TRANSFER", 0.1), "alice (baresip) never got a REFER")
        time.sleep(2.5)
        alice.send("hangup")
        step(carol.wait("CALL_CLOSED", 10), "alice hangs up, carol sees the call closed")
    finally:
        lp.close()


def caller_transfers(port, work, lp_port, ctrl_alice, ctrl_carol, ctrl_bob):
    alice, carol = Ctrl("alice", ctrl_alice), Ctrl("carol", ctrl_carol)
    bob = Ctrl("bob", ctrl_bob)
    for c in (alice, bob, carol):
        c.send("reginfo")
    time.sleep(1.5)
    alice.send("dial", f"sip:bob@127.0.0.1:{port}")
    step(alice.wait("CALL_ESTABLISHED", 15), "bob (baresip) answers alice (baresip)")
    step(bob.wait("CALL_RTPESTAB", 10), "bob gets alice's RTP")
    time.sleep(1)
    # The caller transfers its callee.
    alice.send("transfer", f"sip:1000@127.0.0.1:{port}")
    step(carol.wait("CALL_ESTABLISHED", 20), "carol answers the transferred call")
    step(carol.wait("CALL_RTPESTAB", 10), "carol gets bob's RTP through the relay")
    step(alice.wait("CALL_CLOSED", 15), "alice's call with bob is released after the transfer")
    step(not bob.wait("CALL_TRANSFER", 0.1), "bob (baresip) never got a REFER")
    step(not bob.wait("CALL_CLOSED", 0.1), "bob's call goes on")
    # bob's 5 s tone runs out ~3.5 s after the transfer, when baresip hangs up by itself:
    # either way bob's BYE ends the call.
    time.sleep(3)
    bob.send("hangup")
    step(carol.wait("CALL_CLOSED", 10), "bob hangs up, carol sees the call closed")


def main():
    mode, port, work, lp_port, c1, c2 = sys.argv[1:7]
    port, lp_port, c1, c2 = int(port), int(lp_port), int(c1), int(c2)
    if mode == "caller-transfers":
        caller_transfers(port, work, lp_port, c1, c2, int(sys.argv[7]))
        return 0
    {"linphone-transferee": linphone_transferee,
     "baresip-transferee": baresip_transferee}[mode](port, work, lp_port, c1, c2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
