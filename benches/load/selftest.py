#!/usr/bin/env python3
"""Offline checks of the benchmark's parsers and report, no SIPp or server needed.

usage: python3 benches/load/selftest.py   (ends with "selftest: N passed, N failed")

Builds a pcap by hand for a proxy-style and a B2BUA-style call and checks the delays pdd.py
computes; feeds tools.py a SIPp statistics file and error file and checks the step verdicts;
renders the report and chart from synthetic records and checks the table, the ratios and the
health checks. Writes only into a temporary directory.
"""

import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import pdd  # noqa: E402
import report  # noqa: E402
import tools  # noqa: E402

results = []


def check(name, cond):
    results.append((name, bool(cond)))
    print(("ok   " if cond else "FAIL ") + name)


def udp_packet(sport, dport, payload):
    ip_len = 20 + 8 + len(payload)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, ip_len, 0, 0, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    udp = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0)
    return b"\0" * 12 + b"\x08\x00" + ip + udp + payload


def write_pcap(path, packets):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for t, data in packets:
            sec, usec = int(t), int(round((t - int(t)) * 1e6))
            f.write(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)


def sip(first, call_id, cseq, sdp_id=None):
    body = f"v=0\r\no=- {sdp_id} 1 IN IP4 127.0.0.1\r\n" if sdp_id is not None else ""
    return (f"{first}\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()


def test_pdd(tmp):
    caller, uas, server = 20000, 30000, 5060
    t0 = 1000.0
    pk = [
        # Proxy-style call: the same Call-ID on both legs. Caller's INVITE CSeq 2 at t0,
        # UAS gets it 1 ms later, answers 180 after 0.5 ms, the caller sees it 1 ms later.
        (t0 - 0.010, udp_packet(caller, server, sip("INVITE sip:1999@x SIP/2.0", "a", "1 INVITE", 7))),
        (t0, udp_packet(caller, server, sip("INVITE sip:1999@x SIP/2.0", "a", "2 INVITE", 7))),
        (t0 + 0.001, udp_packet(server, uas, sip("INVITE sip:1999@x SIP/2.0", "a", "2 INVITE", 7))),
        (t0 + 0.0015, udp_packet(uas, server, sip("SIP/2.0 180 Ringing", "a", "2 INVITE"))),
        (t0 + 0.0025, udp_packet(server, caller, sip("SIP/2.0 180 Ringing", "a", "2 INVITE"))),
        (t0 + 0.0030, udp_packet(server, caller, sip("SIP/2.0 200 OK", "a", "2 INVITE"))),
        # B2BUA-style call: B leg has its own Call-ID, matched through the SDP o= id (8).
        (t0 + 1.0, udp_packet(caller, server, sip("INVITE sip:1999@x SIP/2.0", "b", "2 INVITE", 8))),
        (t0 + 1.002, udp_packet(server, uas, sip("INVITE sip:1999@x SIP/2.0", "b-leg", "1 INVITE", 8))),
        (t0 + 1.003, udp_packet(uas, server, sip("SIP/2.0 180 Ringing", "b-leg", "1 INVITE"))),
        (t0 + 1.005, udp_packet(server, caller, sip("SIP/2.0 180 Ringing", "b", "2 INVITE"))),
        # A retransmitted 180 must not count twice; a non-UDP-looking record is skipped.
        (t0 + 1.006, udp_packet(server, caller, sip("SIP/2.0 180 Ringing", "b", "2 INVITE"))),
    ]
    path = os.path.join(tmp, "t.pcap")
    write_pcap(path, pk)
    res = pdd.analyse(path, caller, uas)
    check("pdd: both calls measured", res["pdd_n"] == 2 and res["added_n"] == 2)
    check("pdd: p50 is the proxy call's 2.5 ms", abs(res["pdd_p50_ms"] - 2.5) < 0.01)
    check("pdd: p99 is the B2BUA call's 5 ms", abs(res["pdd_p99_ms"] - 5.0) < 0.01)
    check("pdd: server-added excludes the UAS turnaround (2 ms and 4 ms)",
          abs(res["added_p50_ms"] - 2.0) < 0.01 and abs(res["added_p99_ms"] - 4.0) < 0.01)
    check("pdd: setup time from the 200", abs(res["setup_p50_ms"] - 3.0) < 0.01)


def test_record(tmp):
    stats = os.path.join(tmp, "s.csv")
    head = "StartTime;CurrentTime;SuccessfulCall(C);FailedCall(C);TotalCallCreated;CurrentCall;Retransmissions(C)"
    with open(stats, "w") as f:
        f.write(head + "\n")
        f.write("x\t1.0;x\t11.0;10000;0;10000;0;0\n")
    with open(os.path.join(tmp, "s.err"), "w") as f:
        f.write("")
    out = os.path.join(tmp, "r.jsonl")
    args = [out, stats, "server=ferroswitch", "test=register", "rate=1000", "expected=10000",
            "cpu_ns=500000000", "rcvbuf_errors=0", "sock_drops=0", "wall_s=10"]
    rc = subprocess.run([sys.executable, os.path.join(HERE, "tools.py"), "record"] + args,
                        capture_output=True).returncode
    rec = json.loads(open(out).read().splitlines()[-1])
    check("record: a complete step is clean (exit 0)", rc == 0 and rec["clean"])
    check("record: 50 µs of server CPU per operation", rec["cpu_us_per"] == 50.0)
    check("record: achieved rate from SIPp's own clock", rec["achieved"] == 1000.0)

    with open(stats, "w") as f:
        f.write(head + "\n")
        f.write("x\t1.0;x\t11.0;9000;1000;10000;0;5\n")
    with open(os.path.join(tmp, "s.err"), "w") as f:
        f.write("t: Aborting call on unexpected message for Call-Id '1': while expecting '401' "
                "(index 1), received 'SIP/2.0 503 Service Unavailable\n"
                "t: Dead call 1 (aborted at index 1), received 'SIP/2.0 503 Service Unavailable\n")
    args[7] = "rcvbuf_errors=3"
    rc = subprocess.run([sys.executable, os.path.join(HERE, "tools.py"), "record"] + args,
                        capture_output=True).returncode
    rec = json.loads(open(out).read().splitlines()[-1])
    check("record: failures make a step not clean (exit 1)", rc == 1 and not rec["clean"])
    check("record: the aborting response is counted once, dead-call answers not",
          rec["unexpected_codes"] == {"503": 1})
    check("record: drops not on the server's socket are blamed on SIPp",
          "3 UDP receive-buffer drops elsewhere" in rec["limit"])


def test_report(tmp):
    recs = [
        {"test": "meta", "mode": "full", "date": "2026-01-01T00:00:00Z", "nproc": 2},
        {"server": "ferroswitch", "test": "register", "rate": 1000, "secs": 8, "ok": 8000, "failed": 0,
         "retrans": 0, "achieved": 1000, "cpu_us_per": 20.0, "clean": True},
        {"server": "kamailio", "test": "register", "rate": 1000, "secs": 8, "ok": 8000, "failed": 0,
         "retrans": 0, "achieved": 1000, "cpu_us_per": 40.0, "clean": True},
        {"server": "ferroswitch", "test": "register_max", "max_clean": 3000, "confirm_secs": 40},
        {"server": "kamailio", "test": "register_max", "max_clean": 2000, "confirm_secs": 40},
        {"server": "ferroswitch", "test": "calls_support", "supported": False, "reason": "501"},
        {"server": "kamailio", "test": "calls_support", "supported": True},
        {"server": "kamailio", "test": "calls_max", "max_clean": 500},
        {"server": "kamailio", "test": "pdd", "rate": 100, "pdd_n": 10, "pdd_p50_ms": 0.2, "pdd_p99_ms": 0.5,
         "added_p50_ms": 0.1, "added_p99_ms": 0.3},
        {"server": "kamailio", "test": "memory", "bytes_per_call": 12, "held1": 10, "held2": 20},
    ]
    rows = report.summary_rows(recs)
    check("report: registration ratio 3000/2000", rows[0][3] == "1.50×")
    check("report: CPU compared at the common rate", rows[1][0].startswith("CPU per registration at 1,000/s")
          and rows[1][3] == "0.50×")
    check("report: ferroswitch calls shown as not supported", rows[3][1] == "not supported by this build")
    passed, failed, skipped, _ = report.checks(recs)
    check("report: health checks pass with ferroswitch calls skipped", (passed, failed, skipped) == (5, 0, 1))
    path = os.path.join(tmp, "r.jsonl")
    with open(path, "w") as f:
        f.write("\n".join(json.dumps(r) for r in recs) + "\n")
    outdir = os.path.join(tmp, "out")
    rc = subprocess.run([sys.executable, os.path.join(HERE, "report.py"), path, outdir],
                        capture_output=True).returncode
    svg = open(os.path.join(outdir, "latest-full.svg")).read()
    check("report: writes markdown and a well-formed SVG", rc == 0 and svg.startswith("<svg") and
          svg.rstrip().endswith("</svg>") and os.path.exists(os.path.join(outdir, "latest-full.md")))


def test_users(tmp):
    tools.users([tmp, "1000", "1002", "127.0.0.1"])
    kam = open(os.path.join(tmp, "kamailio-users.cfg")).read().splitlines()
    callers = open(os.path.join(tmp, "callers.csv")).read().splitlines()
    callee = open(os.path.join(tmp, "callee.csv")).read().splitlines()
    # HA1 of 1000:127.0.0.1:pw-1000-Xk9q, computed independently of tools.users.
    import hashlib
    ha1 = hashlib.md5(b"1000:127.0.0.1:pw-1000-Xk9q").hexdigest()
    check("users: Kamailio gets an HA1 per user", kam[0] == f'$sht(users=>1000) = "{ha1}";' and len(kam) == 3)
    check("users: callers exclude the callee", callers[0] == "SEQUENTIAL" and len(callers) == 3
          and callee[1].startswith("1002;127.0.0.1;[authentication username=1002 password="))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        test_pdd(tmp)
        test_record(tmp)
        test_report(tmp)
        test_users(tmp)
    p = sum(1 for _, ok in results if ok)
    f = len(results) - p
    print(f"selftest: {p} passed, {f} failed")
    sys.exit(1 if f else 0)
