"""SVG chart of a benches/load run, standard library only (no matplotlib on a fresh machine).

Three panels: the highest clean registrations/s and calls/s per server (bars), and the server's
CPU time per registration and per call against the offered rate (short steps as dots on a line,
long hold steps as squares; filled is clean, hollow had failures or drops). Pure function of the results records;
writes nothing itself.
"""

import math
from xml.sax.saxutils import escape

COLORS = ("#d9480f", "#1c7ed6")
W, H = 1220, 420
PANEL_W, PANEL_H = 320, 280
TOP, LEFT0 = 70, 70


def nice_max(v):
    if v <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * e >= v:
            return m * e
    return 10 * e


def ticks(vmax, n=5):
    return [vmax * i / n for i in range(n + 1)]


def label(v):
    if v >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


def text(x, y, s, size=12, anchor="middle", weight="normal", rotate=None):
    rot = f' transform="rotate({rotate} {x} {y})"' if rotate else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" font-family="sans-serif"{rot}>{escape(str(s))}</text>')


def axes(x0, title, xlab, ylab, xmax, ymax):
    out = [text(x0 + PANEL_W / 2, TOP - 20, title, 14, weight="bold")]
    y0 = TOP + PANEL_H
    out.append(f'<line x1="{x0}" y1="{y0}" x2="{x0 + PANEL_W}" y2="{y0}" stroke="#333"/>')
    out.append(f'<line x1="{x0}" y1="{TOP}" x2="{x0}" y2="{y0}" stroke="#333"/>')
    for t in ticks(ymax):
        y = y0 - t / ymax * PANEL_H
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + PANEL_W}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(text(x0 - 6, y + 4, label(round(t, 2)), 11, anchor="end"))
    if xmax is not None:
        for t in ticks(xmax):
            x = x0 + t / xmax * PANEL_W
            out.append(text(x, y0 + 16, label(round(t)), 11))
    out.append(text(x0 + PANEL_W / 2, y0 + 34, xlab, 12))
    out.append(text(x0 - 48, TOP + PANEL_H / 2, ylab, 12, rotate=-90))
    return out


def bars(x0, recs, servers, labels):
    groups = [("register", "registrations/s"), ("calls", "calls/s")]
    vals = {}
    for s in servers:
        for g, _ in groups:
            m = [r for r in recs if r.get("server") == s and r.get("test") == g + "_max"]
            vals[(s, g)] = m[-1]["max_clean"] if m else 0
    ymax = nice_max(max(vals.values()) if vals else 1)
    out = axes(x0, "Highest clean rate", "", "per second", None, ymax)
    gw = PANEL_W / len(groups)
    bw = gw / (len(servers) + 1)
    y0 = TOP + PANEL_H
    for gi, (g, name) in enumerate(groups):
        for si, s in enumerate(servers):
            v = vals[(s, g)]
            h = v / ymax * PANEL_H
            x = x0 + gi * gw + bw / 2 + si * bw
            out.append(f'<rect x="{x:.1f}" y="{y0 - h:.1f}" width="{bw * 0.9:.1f}" height="{h:.1f}" fill="{COLORS[si]}"/>')
            out.append(text(x + bw * 0.45, y0 - h - 4, label(v) if v else "n/a", 11))
        out.append(text(x0 + gi * gw + gw / 2, y0 + 16, name, 12))
    return out


def lines(x0, recs, servers, test, title, ylab):
    """CPU per operation against the offered rate: the short step-up steps joined by a line,
    the long hold steps (a different duration) as squares."""
    steps = [r for r in recs if r.get("test") == test and r.get("cpu_us_per") is not None]
    xmax = nice_max(max((r["rate"] for r in steps), default=1))
    ymax = nice_max(max((r["cpu_us_per"] for r in steps), default=1))
    out = axes(x0, title, "offered rate (per second)", ylab, xmax, ymax)
    y0 = TOP + PANEL_H
    if not steps:
        out.append(text(x0 + PANEL_W / 2, TOP + PANEL_H / 2, "no data", 13))
    for si, s in enumerate(servers):
        mine = [r for r in steps if r.get("server") == s]
        if not mine:
            continue
        short = min(r.get("secs", 0) for r in mine)

        def xy(r):
            return x0 + r["rate"] / xmax * PANEL_W, y0 - r["cpu_us_per"] / ymax * PANEL_H

        line = sorted((r for r in mine if r.get("secs", 0) == short), key=lambda r: r["rate"])
        if len(line) > 1:
            d = " ".join("%.1f,%.1f" % xy(r) for r in line)
            out.append(f'<polyline points="{d}" fill="none" stroke="{COLORS[si]}" stroke-width="2"/>')
        for r in mine:
            x, y = xy(r)
            fill = COLORS[si] if r.get("clean") else "white"
            if r.get("secs", 0) == short:
                out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{fill}" stroke="{COLORS[si]}" stroke-width="2"/>')
            else:
                out.append(f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{fill}" stroke="{COLORS[si]}" stroke-width="2"/>')
    return out


def render_svg(recs, servers, labels):
    meta = next((r for r in recs if r.get("test") == "meta"), {})
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           text(W / 2, 22, f"ferroswitch vs Kamailio — {meta.get('date', '')} — "
                f"{meta.get('nproc', '?')} cores, {meta.get('cpu', '')} ({meta.get('mode', '')} run)", 14)]
    step = PANEL_W + 80
    out += bars(LEFT0, recs, servers, labels)
    out += lines(LEFT0 + step, recs, servers, "register", "Server CPU per registration", "µs")
    out += lines(LEFT0 + 2 * step, recs, servers, "calls", "Server CPU per call", "µs")
    for si, s in enumerate(servers):
        x = LEFT0 + si * 170
        out.append(f'<rect x="{x}" y="{H - 22}" width="14" height="14" fill="{COLORS[si]}"/>')
        out.append(text(x + 20, H - 10, labels[s], 12, anchor="start"))
    out.append(text(LEFT0 + 360, H - 10, "dot: short step, square: long hold step; filled: clean, hollow: failures or drops", 12, anchor="start"))
    out.append("</svg>")
    return "\n".join(out) + "\n"
