#!/usr/bin/env python3
"""Post-dial delay from a packet capture on lo, standard library only.

usage: pdd.py CAPTURE.pcap CALLER_PORT UAS_PORT  -> one JSON object on stdout

SIPp's own clock moves in 4 ms steps on this machine, so latencies are taken from the
capture's timestamps instead. Per call, at the caller's port:
  pdd    = authenticated INVITE (CSeq 2) sent -> first 180 received   (RFC 6076 SRD-like)
  setup  = authenticated INVITE sent          -> first 200 received
At the callee's (SIPp UAS) port, its own turnaround (INVITE in -> 180 out) is subtracted to
give the delay the server adds. The two legs are matched by Call-ID (a proxy keeps it) or,
failing that, by the SDP session id (o= line), which the caller sets to its call number and a
B2BUA that does not touch media passes through. Only reads the file; never raises on a
truncated or foreign packet (it is skipped).
"""

import json
import re
import struct
import sys

CALL_ID = re.compile(rb"^(?:Call-ID|i)[ \t]*:[ \t]*(\S+)", re.I | re.M)
CSEQ = re.compile(rb"^CSeq[ \t]*:[ \t]*(\d+)[ \t]+(\w+)", re.I | re.M)
SDP_O = re.compile(rb"^o=\S+ (\S+) ", re.M)


def packets(path):
    """Yields (time, src_port, dst_port, payload) for each IPv4/UDP packet of a pcap file."""
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            return
        magic = struct.unpack("<I", head[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            endian = "<"
        elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
            endian = ">"
        else:
            raise SystemExit("not a pcap file (capture with dumpcap -P)")
        nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
        linktype = struct.unpack(endian + "I", head[20:24])[0]
        # 1 = Ethernet (lo shows as Ethernet with zero MACs), 113 = Linux cooked, 101 = raw IP.
        l2 = {1: 14, 113: 16, 101: 0}.get(linktype)
        if l2 is None:
            raise SystemExit(f"unsupported link type {linktype}")
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, incl, _orig = struct.unpack(endian + "IIII", rec)
            data = f.read(incl)
            if len(data) < incl:
                return
            t = sec + frac / (1e9 if nano else 1e6)
            ip = data[l2:]
            if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            ihl = (ip[0] & 0x0F) * 4
            udp = ip[ihl:]
            if len(udp) < 8:
                continue
            sport, dport = struct.unpack(">HH", udp[:4])
            yield t, sport, dport, udp[8:]


def first_line(payload):
    end = payload.find(b"\r\n")
    return payload[: end if end >= 0 else 80]


def percentile(values, q):
    if not values:
        return None
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(q / 100.0 * (len(v) - 1)))))
    return v[k]


def analyse(path, caller_port, uas_port):
    a_inv, a_180, a_200, a_sdp = {}, {}, {}, {}
    b_inv, b_180, b_sdp = {}, {}, {}
    for t, sport, dport, payload in packets(path):
        line = first_line(payload)
        cid = CALL_ID.search(payload)
        cseq = CSEQ.search(payload)
        if not cid or not cseq:
            continue
        cid = cid.group(1)
        num, method = int(cseq.group(1)), cseq.group(2).upper()
        if method != b"INVITE":
            continue
        sdp = SDP_O.search(payload)
        if sport == caller_port and line.startswith(b"INVITE ") and num == 2:
            a_inv.setdefault(cid, t)
            if sdp:
                a_sdp.setdefault(sdp.group(1), cid)
        elif dport == caller_port and line.startswith(b"SIP/2.0 180"):
            a_180.setdefault(cid, t)
        elif dport == caller_port and line.startswith(b"SIP/2.0 200"):
            a_200.setdefault(cid, t)
        elif dport == uas_port and line.startswith(b"INVITE "):
            b_inv.setdefault(cid, t)
            if sdp:
                b_sdp.setdefault(cid, sdp.group(1))
        elif sport == uas_port and line.startswith(b"SIP/2.0 180"):
            b_180.setdefault(cid, t)

    pdd, setup, added = [], [], []
    for cid, t0 in a_inv.items():
        if cid in a_180 and a_180[cid] >= t0:
            pdd.append(a_180[cid] - t0)
        if cid in a_200 and a_200[cid] >= t0:
            setup.append(a_200[cid] - t0)
    # The UAS's own turnaround, per A-leg Call-ID.
    turn = {}
    for bcid, tin in b_inv.items():
        if bcid not in b_180:
            continue
        acid = bcid if bcid in a_inv else a_sdp.get(b_sdp.get(bcid))
        if acid is not None:
            turn[acid] = b_180[bcid] - tin
    for cid, t0 in a_inv.items():
        if cid in a_180 and cid in turn:
            added.append(a_180[cid] - t0 - turn[cid])

    def ms(v):
        return None if v is None else round(v * 1000.0, 3)

    return {
        "calls": len(a_inv),
        "pdd_n": len(pdd),
        "pdd_p50_ms": ms(percentile(pdd, 50)),
        "pdd_p99_ms": ms(percentile(pdd, 99)),
        "setup_p50_ms": ms(percentile(setup, 50)),
        "setup_p99_ms": ms(percentile(setup, 99)),
        "added_n": len(added),
        "added_p50_ms": ms(percentile(added, 50)),
        "added_p99_ms": ms(percentile(added, 99)),
    }


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__.split("\n\n")[1])
    print(json.dumps(analyse(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
