#!/usr/bin/env python3
"""Helpers of benches/load/media.sh, standard library only.

  wav PATH                       a 2 s 440 Hz tone as a mu-law (PCMU) WAV for SIPp's rtp_stream
  rss PID                        resident set of PID in KiB (VmRSS)
  wait PID                       nanoseconds PID's threads have waited on a run queue (schedstat
                                 field 2): how long the relay was starved of a CPU
  counters                       packets to / from the relay port range so far, from the nft
                                 counters media.sh installed (JSON {"to": n, "from": n})
  latency PCAP LO HI             added latency through a relay listening on ports LO..HI, from a
                                 capture on lo: each RTP packet sent to the relay is matched with
                                 the relay's copy of it (same SSRC, sequence number and
                                 timestamp, sent from a relay port within 2 s after); prints
                                 JSON with p50/p99/max in microseconds and the counts
  record RESULTS KEY=JSON...     appends one JSON object to RESULTS
  report RESULTS OUT_MD          the table (markdown) of every media step, to stdout and OUT_MD
"""
import json, math, os, re, struct, subprocess, sys


def wav(path):
    def ulaw(sample):
        # G.711 mu-law encoder (the one audioop had), on a 16-bit linear sample.
        bias, clip = 0x84, 32635
        sign = 0x80 if sample < 0 else 0
        sample = min(abs(sample), clip) + bias
        exp, mask = 7, 0x4000
        while exp > 0 and not sample & mask:
            exp -= 1
            mask >>= 1
        mant = (sample >> (exp + 3)) & 0x0F
        return ~(sign | (exp << 4) | mant) & 0xFF
    data = bytes(ulaw(int(8000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(16000))
    fmt = struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE")
        f.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def wait_ns(pid):
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[1])
        except (OSError, ValueError, IndexError):
            pass
    return total


def counters():
    out = subprocess.run(["nft", "list", "table", "inet", "fsbench_media"], capture_output=True, text=True).stdout
    res = {"to": 0, "from": 0}
    for ln in out.splitlines():
        m = re.search(r'udp (dport|sport) \S+ counter packets (\d+)', ln)
        if m:
            res["to" if m.group(1) == "dport" else "from"] = int(m.group(2))
    return res


def pcap_udp(path):
    """(time, sport, dport, payload) of each IPv4 UDP packet of a pcap on lo (Ethernet link
    type, as dumpcap writes for lo)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = struct.unpack("<I", data[:4])[0]
    e = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    link = struct.unpack(e + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(e + "IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ip = pkt[14:] if link == 1 else pkt[16:] if link == 113 else pkt
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 15) * 4
        sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
        yield sec + frac / (1e9 if nano else 1e6), sport, dport, ip[ihl + 8:]


def latency(path, lo, hi):
    lo, hi = int(lo), int(hi)
    pending = {}  # (ssrc, seq, ts) -> times the packet went in, not yet matched
    lat, n_in, n_out, unmatched_out = [], 0, 0, 0
    for t, sport, dport, pl in pcap_udp(path):
        if len(pl) < 12 or pl[0] >> 6 != 2:
            continue
        seq, ts, ssrc = struct.unpack("!HII", pl[2:12])
        key = (ssrc, seq, ts)
        to_relay, from_relay = lo <= dport <= hi, lo <= sport <= hi
        if to_relay and not from_relay:
            n_in += 1
            pending.setdefault(key, []).append(t)
        elif from_relay and not to_relay:
            n_out += 1
            ins = pending.get(key)
            # The earliest copy that went in at most 2 s before (an echo reuses the key; a
            # starved relay on a busy machine can queue for hundreds of ms).
            while ins and t - ins[0] > 2.0:
                ins.pop(0)
            if ins and ins[0] <= t:
                lat.append((t - ins.pop(0)) * 1e6)
            else:
                unmatched_out += 1
    lat.sort()

    def pct(p):
        return round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))], 1) if lat else None
    return {"lat_n": len(lat), "cap_in": n_in, "cap_out": n_out, "unmatched_out": unmatched_out,
            "lat_p50_us": pct(50), "lat_p99_us": pct(99), "lat_max_us": round(lat[-1], 1) if lat else None}


def record(results, pairs):
    rec = {}
    for p in pairs:
        k, v = p.split("=", 1)
        try:
            rec[k] = json.loads(v)
        except ValueError:
            rec[k] = v
    with open(results, "a") as f:
        f.write(json.dumps(rec) + "\n")


def ms(us):
    return "-" if us is None else f"{us / 1000:.2f}" if us < 10000 else f"{us / 1000:.0f}"


def report(results, out_md):
    recs = [json.loads(ln) for ln in open(results) if ln.strip()]
    meta = next((r for r in recs if r.get("test") == "media_meta"), {})
    lines = [f"# Media relay benchmark ({meta.get('date', '?')})", "",
             f"{meta.get('nproc', '?')} cores ({meta.get('cpu', '?')}), kernel {meta.get('kernel', '?')}, "
             f"SIPp {meta.get('sipp', '?')}, rtpengine {meta.get('rtpengine', '?')}, Kamailio {meta.get('kamailio', '?')}, "
             f"ferroswitch {meta.get('ferroswitch', '?')}. Each call: PCMU 20 ms (50 packets/s) each way "
             f"(SIPp rtp_stream, echoed by the callee), measured over {meta.get('window_s', '?')} s with all calls up. "
             "Relay CPU from /proc/PID/task/*/schedstat of the relay process, packet counts from nft counters on "
             "lo (loss = packets into the relay not sent out), latency from a capture on lo (same SSRC+seq+timestamp "
             "in and out). Expected = calls x 100 packets/s; less reaching the relay means SIPp did not keep up. "
             "\"Relay waited for CPU\" = run-queue wait of the relay's threads (schedstat) / window: high means the "
             "relay was starved by other load on its core (shared machine), not slow. Server CPU = Kamailio's "
             "processes (SIP; for ferroswitch the relay is the server).", ""]
    for r in recs:
        if r.get("test") == "media_skip":
            lines.append(f"- {r['server']}: skipped: {r['reason']}")
    lines += ["", "| server | calls held | expected pkt/s through relay | relayed pkt/s | loss % | relay CPU µs/pkt "
              "| relay CPU % of a core | latency p50 ms | p99 ms | RSS per call KiB | failed calls | cores busy % (relay/SIPp) "
              "| relay waited for CPU % | server CPU % (SIP) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in recs:
        if r.get("test") != "media":
            continue
        lines.append(f"| {r['server']} | {r['held']} | {r['expected_pps']} | {r['relayed_pps']} | {r['loss_pct']} "
                     f"| {r['cpu_us_per_pkt']} | {r['cpu_pct']} | {ms(r.get('lat_p50_us'))} | {ms(r.get('lat_p99_us'))} "
                     f"| {r['rss_kib_per_call']} | {r['failed']} | {r.get('relay_core_busy_pct')}/{r.get('sipp_core_busy_pct')} "
                     f"| {r.get('relay_wait_pct')} | {r.get('server_cpu_pct')} |")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(out_md, "w") as f:
        f.write(text)


def main():
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "wav":
        wav(a[0])
    elif cmd == "rss":
        print(rss(a[0]))
    elif cmd == "wait":
        print(wait_ns(a[0]))
    elif cmd == "counters":
        print(json.dumps(counters()))
    elif cmd == "latency":
        print(json.dumps(latency(*a)))
    elif cmd == "record":
        record(a[0], a[1:])
    elif cmd == "report":
        report(a[0], a[1])
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
