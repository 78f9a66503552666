#!/usr/bin/env python3
"""Drives two headless baresip instances over ctrl_tcp (netstring JSON): alice dials bob
through the daemon, bob answers automatically, both must see RTP (CALL_RTPESTAB), then alice
hangs up and both must see the call closed. Every wait is bounded."""
import json, socket, sys, threading, time

def connect(port, deadline):
    while time.time() < deadline:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=1)
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"cannot connect to baresip ctrl_tcp on {port}")

class Ctrl:
    def __init__(self, name, port):
        self.name, self.sock, self.events, self.lock = name, connect(port, time.time() + 10), [], threading.Lock()
        self.sock.settimeout(None)
        threading.Thread(target=self.reader, daemon=True).start()

    def reader(self):
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b":" in buf:
                n, rest = buf.split(b":", 1)
                if not n.isdigit() or len(rest) < int(n) + 1:
                    break
                msg, buf = rest[: int(n)], rest[int(n) + 1 :]
                try:
                    obj = json.loads(msg)
                except ValueError:
                    continue
                with self.lock:
                    self.events.append(obj)
                if obj.get("event"):
                    print(f"     {self.name}: {obj.get('type')} {obj.get('param', '')}".rstrip(), flush=True)

    def send(self, command, params=""):
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        self.sock.sendall(str(len(body)).encode() + b":" + body + b",")

    def wait(self, etype, timeout):
        end = time.time() + timeout
        while time.time() < end:
            with self.lock:
                if any(e.get("type") == etype for e in self.events):
                    return True
            time.sleep(0.05)
        return False

def main():
    alice_port, bob_port = map(int, sys.argv[1:3])
    # The third argument: the daemon's port (bob is sip:bob@127.0.0.1:PORT), or bob's whole
    # URI when the call goes through a proxy (tests/interop/cluster.sh).
    target = sys.argv[3] if sys.argv[3].startswith("sip:") else f"sip:bob@127.0.0.1:{sys.argv[3]}"
    alice, bob = Ctrl("alice", alice_port), Ctrl("bob", bob_port)
    # Both must be registered before the call.
    for c in (alice, bob):
        c.send("reginfo")
    time.sleep(1.5)
    alice.send("dial", target)
    ok = alice.wait("CALL_ESTABLISHED", 10) and bob.wait("CALL_ESTABLISHED", 10)
    if not ok:
        print("     call was not established on both sides")
        return 1
    if not (alice.wait("CALL_RTPESTAB", 10) and bob.wait("CALL_RTPESTAB", 10)):
        print("     RTP did not flow both ways")
        return 1
    time.sleep(2)
    alice.send("hangup")
    if not (alice.wait("CALL_CLOSED", 10) and bob.wait("CALL_CLOSED", 10)):
        print("     the call did not close on both sides")
        return 1
    return 0

if __name__ == "__main__":
    sys.exit(main())
