#!/usr/bin/env python3
"""Results of benches/load/run.sh as one table (both servers, ratios, targets) and a chart.

usage: report.py RESULTS.jsonl OUTDIR

Prints the summary table, writes OUTDIR/<UTC date>-<mode>.md (summary, machine, every step)
and OUTDIR/<same>.svg (calls/s and registrations/s reached, server CPU per operation against
the offered rate), and copies both to OUTDIR/latest-<mode>.{md,svg}. Standard library only;
never runs anything, only reads the results file.
"""

import json
import os
import shutil
import sys

from chart import render_svg

A, B = "ferroswitch", "kamailio"
LABEL = {A: "ferroswitch", B: "Kamailio"}


def load(path):
    recs = []
    with open(path) as f:
        for ln in f:
            ln = ln.strip()
            if ln:
                recs.append(json.loads(ln))
    return recs


def pick(recs, server, test):
    return [r for r in recs if r.get("server") == server and r.get("test") == test]


def one(recs, server, test):
    r = pick(recs, server, test)
    return r[-1] if r else None


def max_clean(recs, server, test):
    m = one(recs, server, test + "_max")
    return m["max_clean"] if m else None


def cpu_at(recs, server, test, rate):
    for r in pick(recs, server, test):
        if r["rate"] == rate and r.get("clean"):
            return r.get("cpu_us_per")
    return None


def common_rate(recs, test):
    """The highest rate at which both servers ran a clean step (CPU per op falls with rate,
    so servers are compared at the same rate)."""
    clean = [{r["rate"] for r in pick(recs, s, test) if r.get("clean")} for s in (A, B)]
    both = clean[0] & clean[1]
    return max(both) if both else None


def fmt(v, unit="", nd=0):
    if v is None:
        return "n/a"
    if isinstance(v, float) and nd:
        return f"{v:,.{nd}f}{unit}"
    return f"{v:,.0f}{unit}" if isinstance(v, (int, float)) else f"{v}{unit}"


def ratio(a, b):
    if a is None or b is None or not b:
        return "n/a"
    return f"{a / b:.2f}×"


def calls_note(recs, server):
    s = one(recs, server, "calls_support")
    if s is None:
        return "not run"
    if s.get("skipped"):
        return "not measured (--no-calls)"
    if not s.get("supported"):
        return "not supported by this build"
    return None


def summary_rows(recs):
    # Targets: issue 15 (a B2BUA costing no more per call than Kamailio's proxy).
    rows = []
    ra, rb = max_clean(recs, A, "register"), max_clean(recs, B, "register")
    rows.append(("Digest registrations/s, 0 failures", fmt(ra), fmt(rb), ratio(ra, rb), "≥ 1.00×"))
    cr = common_rate(recs, "register")
    ca, cb = (cpu_at(recs, A, "register", cr), cpu_at(recs, B, "register", cr)) if cr else (None, None)
    rows.append((f"CPU per registration at {fmt(cr)}/s (µs)", fmt(ca, nd=1), fmt(cb, nd=1), ratio(ca, cb), "≤ 1.00×"))
    ma = cpu_at(recs, A, "register", ra) if ra else None
    mb = cpu_at(recs, B, "register", rb) if rb else None
    rows.append(("CPU per registration at own highest clean rate (µs)", fmt(ma, nd=1), fmt(mb, nd=1), "", ""))

    na, nb = calls_note(recs, A), calls_note(recs, B)
    ka, kb = max_clean(recs, A, "calls"), max_clean(recs, B, "calls")
    va, vb = na or fmt(ka), nb or fmt(kb)
    rows.append(("Calls/s (digest on the caller), 0 failures", va, vb, ratio(None if na else ka, None if nb else kb), "≥ 1.00×"))
    cr = common_rate(recs, "calls")
    if cr:
        ca, cb = cpu_at(recs, A, "calls", cr), cpu_at(recs, B, "calls", cr)
        what = f"CPU per call at {fmt(cr)}/s (µs)"
    else:
        # Only one server carried calls: each at its own highest clean rate, no ratio.
        ca = cpu_at(recs, A, "calls", ka) if ka else None
        cb = cpu_at(recs, B, "calls", kb) if kb else None
        what = "CPU per call at own highest clean rate (µs)"
    rows.append((what, na or fmt(ca, nd=1), nb or fmt(cb, nd=1), ratio(ca, cb) if cr else "", "≤ 1.00×"))

    pa, pb = one(recs, A, "pdd"), one(recs, B, "pdd")
    rate = (pa or pb or {}).get("rate")

    def pdd(p, note, k):
        if note:
            return note
        if not p or p.get(k + "_p50_ms") is None:
            return "n/a"
        return f"{p[k + '_p50_ms']:.2f} / {p[k + '_p99_ms']:.2f}"

    rows.append((f"Post-dial delay p50 / p99 at {fmt(rate)}/s, caller's view (ms)", pdd(pa, na, "pdd"), pdd(pb, nb, "pdd"), "", ""))
    rows.append((f"… of which added by the server p50 / p99 (ms)", pdd(pa, na, "added"), pdd(pb, nb, "added"), "", "p99 < 1 ms"))

    def mem(m, note):
        if note:
            return note
        if not m or m.get("bytes_per_call") is None:
            return "n/a"
        return f"{m['bytes_per_call']:,} B ({m['held1']:,}→{m['held2']:,} calls)"

    rows.append(("Memory per concurrent call (PSS delta / call delta)", mem(one(recs, A, "memory"), na), mem(one(recs, B, "memory"), nb), "", "≤ 3 KiB"))
    return rows


def limits(recs):
    """One line per server and test: the highest clean rate and what stopped the next step."""
    out = []
    for s in (A, B):
        for test in ("register", "calls"):
            m = one(recs, s, test + "_max")
            if not m:
                continue
            failed = [r for r in pick(recs, s, test) if not r.get("clean")]
            why = "; ".join(f"{r['rate']}/s for {r.get('secs', '?')} s: {r.get('limit', '')}" for r in failed)
            held = (f"held for {m['confirm_secs']} s (short steps reached {m.get('short_step_max')}/s)"
                    if m.get("confirm_secs") else "in short steps, no hold step")
            out.append(f"- {LABEL[s]} {test}: {m['max_clean']}/s {held}"
                       + (f"; not clean: {why}" if why else "; no step failed (raise the rates)"))
    return "\n".join(out)


def checks(recs):
    """The suite's own health, for CI: (passed, failed, skipped, lines)."""
    res = []
    memory_only = any(r.get("test") == "meta" and r.get("mode") == "memory" for r in recs)
    for s in (A, B):
        if not any(r.get("server") == s for r in recs):
            continue
        if memory_only:
            mem = one(recs, s, "memory")
            res.append((f"{LABEL[s]} memory per call measured", bool(mem and mem.get("bytes_per_call") is not None)))
            continue
        m = one(recs, s, "register_max")
        res.append((f"{LABEL[s]} registered cleanly at some rate", bool(m and m["max_clean"] > 0)))
        sup = one(recs, s, "calls_support")
        if not sup or sup.get("skipped") or (s == A and not sup.get("supported")):
            # ferroswitch may not carry calls yet; that is reported, not a failure.
            res.append((f"{LABEL[s]} calls ({calls_note(recs, s)})", None))
            continue
        m = one(recs, s, "calls_max")
        res.append((f"{LABEL[s]} carried calls cleanly at some rate", bool(m and m["max_clean"] > 0)))
        p = one(recs, s, "pdd")
        res.append((f"{LABEL[s]} post-dial delay measured", bool(p and p.get("pdd_n"))))
        mem = one(recs, s, "memory")
        res.append((f"{LABEL[s]} memory per call measured", bool(mem and mem.get("bytes_per_call") is not None)))
    lines = [("ok   " if ok else "skip " if ok is None else "FAIL ") + name for name, ok in res]
    passed = sum(1 for _, ok in res if ok)
    failed = sum(1 for _, ok in res if ok is False)
    skipped = sum(1 for _, ok in res if ok is None)
    return passed, failed, skipped, lines


def table(rows):
    head = ("", LABEL[A], LABEL[B], "ratio", "target (ratio)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join(r) + " |")
    return "\n".join(lines)


def plain(rows):
    head = ("", LABEL[A], LABEL[B], "ratio", "target")
    w = [max(len(str(x[i])) for x in [head] + rows) for i in range(len(head))]
    out = []
    for r in [head] + rows:
        out.append("  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)))
    return "\n".join(out)


def steps_table(recs):
    lines = ["| server | test | rate/s | s | ok | failed | retrans | UDP rcvbuf errors (server socket) | "
             "achieved/s | server CPU µs/op | server CPU % | core busy % (server / SIPp) | SIPp CPU s | "
             "clean, or why not |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in recs:
        if r.get("test") not in ("register", "calls"):
            continue
        lines.append(
            f"| {r['server']} | {r['test']} | {r['rate']} | {r.get('secs', '')} | {r['ok']} | {r['failed']} | "
            f"{r['retrans']} | {r.get('rcvbuf_errors', 0)} ({r.get('sock_drops', 0)}) | {r['achieved']} | "
            f"{fmt(r.get('cpu_us_per'), nd=1)} | {r.get('server_cpu_pct', '')} | "
            f"{r.get('server_core_busy_pct', '?')} / {r.get('sipp_core_busy_pct', '?')} | "
            f"{r.get('sipp_cpu_s', '')} | {'yes' if r.get('clean') else r.get('limit', 'no')} |")
    return "\n".join(lines)


def main(path, outdir):
    recs = load(path)
    meta = next((r for r in recs if r.get("test") == "meta"), {})
    rows = summary_rows(recs)
    print(plain(rows))
    print(limits(recs))
    for s in (A, B):
        sup = one(recs, s, "calls_support")
        if sup and not sup.get("supported") and not sup.get("skipped"):
            print(f"{LABEL[s]} calls: not supported by this build ({sup.get('reason', '')})")
    stamp = meta.get("date", "unknown").replace(":", "").replace("-", "")[:13]
    mode = meta.get("mode", "run")
    base = os.path.join(outdir, f"{stamp}-{mode}")
    machine = (f"{meta.get('nproc', '?')} cores, {meta.get('cpu', '?')}, Linux {meta.get('kernel', '?')}; "
               f"SIPp {meta.get('sipp', '?')}, Kamailio {meta.get('kamailio', '?')}, "
               f"ferroswitch {meta.get('ferroswitch', '?')}")
    md = [
        f"# ferroswitch vs Kamailio, {meta.get('date', '?')} ({mode} run)",
        "",
        f"Machine: {machine}.",
        f"Each server pinned to core 0, SIPp to core 1, all on 127.0.0.1; {meta.get('users', '?')} users "
        f"with digest (MD5, qop=auth); steps of {meta.get('step_secs', '?')} s; calls held "
        f"{meta.get('hold_ms', '?')} ms; Kamailio with {meta.get('kam_children', '?')} UDP workers, "
        "`-m 2048 -x fm`. A step is clean with 0 failed, 0 UdpRcvbufErrors and ≥ 90 % of the "
        "asked rate reached. CPU is the server's own (schedstat of every thread), per successful "
        "operation; ratios are ferroswitch / Kamailio.",
        "",
        table(rows),
        "",
        limits(recs),
        "",
        f"![chart]({os.path.basename(base)}.svg)",
        "",
        "## Every step",
        "",
        steps_table(recs),
        "",
        "Reproduce: `benches/load/run.sh` (full) or `benches/load/run.sh --smoke`.",
        "",
    ]
    os.makedirs(outdir, exist_ok=True)
    with open(base + ".md", "w") as f:
        f.write("\n".join(md))
    with open(base + ".svg", "w") as f:
        f.write(render_svg(recs, (A, B), LABEL))
    shutil.copyfile(base + ".md", os.path.join(outdir, f"latest-{mode}.md"))
    shutil.copyfile(base + ".svg", os.path.join(outdir, f"latest-{mode}.svg"))
    # latest-<mode>.md points at its own copy of the chart.
    with open(os.path.join(outdir, f"latest-{mode}.md")) as f:
        text = f.read().replace(f"({os.path.basename(base)}.svg)", f"(latest-{mode}.svg)")
    with open(os.path.join(outdir, f"latest-{mode}.md"), "w") as f:
        f.write(text)
    print(f"written: {base}.md, {base}.svg (and latest-{mode}.*)")
    passed, failed, skipped, lines = checks(recs)
    print("\n".join(lines))
    print(f"bench: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    sys.exit(main(sys.argv[1], sys.argv[2]))
