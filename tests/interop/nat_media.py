#!/usr/bin/env python3
"""Helper of nat_media.sh (standard library only). Subcommands:

  options HOST PORT            exit 0 when one OPTIONS over UDP gets a 200 within 0.5 s
  call NS1 NS2 CTRL DOMAIN OUT [STRANGER_NS]
      Drives two headless baresip phones over ctrl_tcp (each listening on 127.0.0.1:CTRL inside
      its own network namespace; we enter each namespace to open the socket). Phone 1 (alice)
      dials bob@DOMAIN, bob answers automatically, media runs for a few seconds, alice hangs
      up. With STRANGER_NS, once the call has run 3 s (media latched), a stranger in that
      namespace sends RTP with SSRC 0xBADC0DE5 to every relay address both phones were given
      (read from their captures so far, see `analyze`). Writes the events and timings as JSON
      to OUT. Exit 0 when the call was established on both phones.
  analyze PCAP PHONE_IP        what one phone's LAN capture shows, as JSON: the SDP c=/m= each
      SIP message it received carried, RTP packets it received (count, sources), packets with
      the stranger's SSRC.
Every wait is bounded."""
import ctypes, json, os, socket, struct, sys, threading, time

STRANGER_SSRC = 0xBADC0DE5
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def enter_netns(name):
    """Moves this thread into network namespace NAME (sockets opened afterwards live there)."""
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")
    finally:
        os.close(fd)


# --- pcap reading ------------------------------------------------------------------------

def udp_packets(path):
    """(time, src, sport, dst, dport, payload) of each IPv4 UDP packet in a classic pcap file
    (Ethernet or Linux cooked link types)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        t = sec + frac / (1e9 if nano else 1e6)
        if linktype == 1:
            if len(pkt) < 14 or pkt[12:14] != b"\x08\x00":
                continue
            ip = pkt[14:]
        elif linktype == 113:
            ip = pkt[16:]
        elif linktype == 101:
            ip = pkt
        else:
            continue
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 15) * 4
        src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
        sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
        yield t, src, sport, dst, dport, ip[ihl + 8:]


def is_rtp(payload):
    return len(payload) >= 12 and payload[0] >> 6 == 2 and (payload[1] & 0x7F) < 35


def analyze(path, phone_ip):
    res = {"sdp_received": [], "rtp_in": 0, "rtp_out": 0, "rtp_sources": {}, "stranger_rtp_in": 0,
           "first_rtp_in": None, "last_rtp_in": None}
    for t, src, sport, dst, dport, pl in udp_packets(path):
        if pl[:3] in (b"INV", b"SIP") or pl[:4] == b"ACK ":
            if dst != phone_ip or b"\r\n\r\nv=0" not in pl:
                continue
            body = pl.split(b"\r\n\r\n", 1)[1].decode("latin-1")
            first = pl.split(b"\r\n", 1)[0].decode("latin-1")
            c = [ln[2:].strip() for ln in body.splitlines() if ln.startswith("c=")]
            m = [ln[2:].strip() for ln in body.splitlines() if ln.startswith("m=audio")]
            a = [ln[2:].strip() for ln in body.splitlines()
                 if ln.startswith("a=") and ln[2:].strip() in ("sendrecv", "sendonly", "recvonly", "inactive")]
            res["sdp_received"].append({"t": t, "first_line": first, "from": f"{src}:{sport}",
                                        "c": c, "m": m, "dir": a})
        elif is_rtp(pl) and sport != 5060 and dport != 5060:
            ssrc = struct.unpack("!I", pl[8:12])[0]
            if dst == phone_ip:
                res["rtp_in"] += 1
                key = f"{src}:{sport}"
                res["rtp_sources"][key] = res["rtp_sources"].get(key, 0) + 1
                res["first_rtp_in"] = res["first_rtp_in"] or t
                res["last_rtp_in"] = t
                if ssrc == STRANGER_SSRC:
                    res["stranger_rtp_in"] += 1
            elif src == phone_ip:
                res["rtp_out"] += 1
    return res


def relay_targets(sdps):
    """(address, port) of the audio each received SDP names."""
    out = set()
    for s in sdps:
        if s["c"] and s["m"]:
            addr = s["c"][-1].split()[-1]
            port = int(s["m"][0].split()[1])
            if port:
                out.add((addr, port))
    return sorted(out)


# --- baresip control ---------------------------------------------------------------------

class Ctrl:
    def __init__(self, name, ns, port):
        self.name, self.events, self.lock = name, [], threading.Lock()
        enter_netns(ns)
        end = time.time() + 10
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                if time.time() > end:
                    raise SystemExit(f"cannot reach {name}'s ctrl_tcp in {ns}")
                time.sleep(0.1)
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
                msg, buf = rest[:int(n)], rest[int(n) + 1:]
                try:
                    obj = json.loads(msg)
                except ValueError:
                    continue
                obj["t"] = time.time()
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

    def has(self, etype):
        with self.lock:
            return any(e.get("type") == etype for e in self.events)


def send_stranger_rtp(ns, targets, count=150):
    """From namespace NS, COUNT packets (PCMU, 20 ms apart) to each target."""
    enter_netns(ns)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    for i in range(count):
        for addr, port in targets:
            hdr = struct.pack("!BBHII", 0x80, 0, (1000 + i) & 0xFFFF, 160 * i, STRANGER_SSRC)
            try:
                s.sendto(hdr + b"\xff" * 160, (addr, port))
                sent += 1
            except OSError:
                pass
        time.sleep(0.02)
    return sent


def call(ns1, ns2, ctrl, domain, out, stranger_ns=None, pcaps=None, phone_ips=None):
    res = {"established": False, "rtpestab": {}, "closed": False}
    alice, bob = Ctrl("alice", ns1, ctrl), Ctrl("bob", ns2, ctrl)
    for c in (alice, bob):
        c.send("reginfo")
    time.sleep(1.5)
    res["dial_t"] = time.time()
    alice.send("dial", f"sip:bob@{domain}")
    res["established"] = alice.wait("CALL_ESTABLISHED", 10) and bob.wait("CALL_ESTABLISHED", 10)
    if res["established"]:
        res["established_t"] = time.time()
        time.sleep(3)
        if stranger_ns and pcaps:
            # The relay addresses each phone was given, from its capture so far.
            targets = []
            for pcap, ip in zip(pcaps, phone_ips):
                targets += relay_targets(analyze(pcap, ip)["sdp_received"])
            targets = sorted(set(targets))
            res["stranger_targets"] = [f"{a}:{p}" for a, p in targets]
            res["stranger_start_t"] = time.time()
            res["stranger_sent"] = send_stranger_rtp(stranger_ns, targets) if targets else 0
            res["stranger_end_t"] = time.time()
            time.sleep(0.5)
        else:
            time.sleep(3)
        res["hangup_t"] = time.time()
        alice.send("hangup")
        res["closed"] = alice.wait("CALL_CLOSED", 10) and bob.wait("CALL_CLOSED", 10)
    for name, c in (("alice", alice), ("bob", bob)):
        res["rtpestab"][name] = c.has("CALL_RTPESTAB")
    json.dump(res, open(out, "w"), indent=1)
    return 0 if res["established"] else 1


def options(host, port):
    import random
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((host if host != "127.0.0.1" else "", 0))
    s.settimeout(0.5)
    lp = s.getsockname()[1]; b = "z9hG4bK%08x" % random.getrandbits(32)
    msg = (f"OPTIONS sip:{host}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {host}:{lp};branch={b};rport\r\n"
           f"Max-Forwards: 70\r\nFrom: <sip:probe@{host}>;tag=p{b}\r\nTo: <sip:{host}:{port}>\r\n"
           f"Call-ID: {b}@probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    s.sendto(msg.encode(), (host, int(port)))
    try:
        data, _ = s.recvfrom(65535)
        return 0 if data.startswith(b"SIP/2.0 200") else 1
    except OSError:
        return 1


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "options":
        return options(args[0], args[1])
    if cmd == "analyze":
        print(json.dumps(analyze(args[0], args[1])))
        return 0
    if cmd == "call":
        ns1, ns2, ctrl, domain, out = args[:5]
        stranger = args[5] if len(args) > 5 and args[5] else None
        pcaps = args[6:8] if len(args) > 7 else None
        ips = args[8:10] if len(args) > 9 else None
        return call(ns1, ns2, int(ctrl), domain, out, stranger, pcaps, ips)
    raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    sys.exit(main())
