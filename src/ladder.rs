//! `ferroswitch ctl trace CALL`: a call's SIP as the daemon kept it (`engine::trace`), in three
//! shapes: the JSON records the control socket carries (`trace_json`, daemon side), a ladder
//! diagram for people (`render_ladder`: caller | ferroswitch | callee(s), one row per message
//! with its time offset, first line and direction) and a classic libpcap file
//! (`pcap`, LINKTYPE_RAW: synthesised IPv4/IPv6 and UDP headers around each message) that
//! Wireshark and tshark open as SIP.
//!
//! Pure functions of data: no socket, no file (the CLI writes what `pcap` returns). A record
//! that does not read as expected is rendered as best it can be, never a panic.

use crate::engine::CallTrace;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::UNIX_EPOCH;

/// The answer to `{"cmd":"trace"}`: the call's Call-IDs and every message, oldest first.
pub fn trace_json(t: &CallTrace) -> Value {
    let messages: Vec<Value> = t
        .records()
        .iter()
        .map(|r| {
            let us = r
                .wall
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64);
            json!({
                "time_us": us,
                "dir": r.direction,
                "leg": if t.call_id_of(r) == t.a_call_id { "a" } else { "b" },
                "transport": r.transport.as_str(),
                "remote": r.remote.to_string(),
                "local": r.local.map(|l| l.to_string()),
                "call_id": t.call_id_of(r),
                "text": String::from_utf8_lossy(t.bytes_of(r)),
            })
        })
        .collect();
    json!({
        "call": t.id, "a_call_id": t.a_call_id, "b_call_ids": t.b_call_ids,
        "status": t.status, "dropped": t.dropped, "messages": messages,
    })
}

struct Row<'a> {
    us: u64,
    inbound: bool,
    a_leg: bool,
    remote: Option<SocketAddr>,
    local: Option<SocketAddr>,
    text: &'a str,
}

fn rows(v: &Value) -> Vec<Row<'_>> {
    v["messages"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| Row {
                    us: m["time_us"].as_u64().unwrap_or(0),
                    inbound: m["dir"] == "in",
                    a_leg: m["leg"] == "a",
                    remote: m["remote"].as_str().and_then(|s| s.parse().ok()),
                    local: m["local"].as_str().and_then(|s| s.parse().ok()),
                    text: m["text"].as_str().unwrap_or(""),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// "INVITE" for a request, "180 Ringing" for a response.
fn summary(text: &str) -> String {
    let first = text.lines().next().unwrap_or("");
    match first.strip_prefix("SIP/2.0 ") {
        Some(status) => status.to_string(),
        None => first.split(' ').next().unwrap_or("").to_string(),
    }
}

/// Width of one arrow.
const W: usize = 38;

fn arrow(label: &str, right: bool) -> String {
    let label: String = label.chars().take(W - 4).collect();
    let fill = "─".repeat(W - label.chars().count() - 2);
    if right {
        format!("{label} {fill}▶")
    } else {
        format!("◀{fill} {label}")
    }
}

/// The ladder; `full` adds each message's text under its row.
pub fn render_ladder(v: &Value, full: bool) -> String {
    let rows = rows(v);
    let Some(first) = rows.first() else {
        return "no messages kept for this call\n".into();
    };
    let t0 = first.us;
    let mut callees: Vec<String> = Vec::new();
    for r in rows.iter().filter(|r| !r.a_leg) {
        if let Some(a) = r.remote.map(|a| a.to_string()) {
            if !callees.contains(&a) {
                callees.push(a);
            }
        }
    }
    let caller = rows
        .iter()
        .find(|r| r.a_leg)
        .and_then(|r| r.remote)
        .map_or("-".into(), |a| a.to_string());
    let mut out = format!(
        "call {}  a-leg {}  b-leg {}\n",
        v["call"],
        v["a_call_id"].as_str().unwrap_or("-"),
        v["b_call_ids"]
            .as_array()
            .map(|b| b
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","))
            .unwrap_or_default()
    );
    let head_caller = format!("caller({caller})");
    // The time column: "+0.000" and two spaces, wider for long calls.
    let offset = |r: &Row| format!("+{:.3}", r.us.saturating_sub(t0) as f64 / 1e6);
    let tw = rows
        .iter()
        .map(|r| offset(r).len() + 2)
        .max()
        .unwrap_or(8)
        .max(8);
    out += &format!(
        "{:tw$}{:<w$}{:<w$}callee({})\n",
        "",
        head_caller,
        "ferroswitch",
        callees.join(", "),
        w = W + 2
    );
    for r in &rows {
        let label = summary(r.text);
        let cell = match (r.a_leg, r.inbound) {
            (true, true) => arrow(&label, true),
            (true, false) => arrow(&label, false),
            (false, inbound) => format!("{:w$}{}", "", arrow(&label, !inbound), w = W + 2),
        };
        out += &format!("{:<tw$}{cell}\n", offset(r));
        if full {
            for line in r.text.lines() {
                out += &format!("{:tw$}| {line}\n", "");
            }
        }
    }
    if v["dropped"].as_u64().unwrap_or(0) > 0 {
        out += &format!(
            "({} later messages not kept: [trace] max_bytes)\n",
            v["dropped"]
        );
    }
    out
}

/// The call's messages as a libpcap file (microsecond timestamps, LINKTYPE_RAW), one
/// IPv4/IPv6 + UDP packet per message whatever the transport it crossed; our address on a
/// message we sent is the local socket of the leg's received messages (else unspecified).
pub fn pcap(v: &Value) -> Vec<u8> {
    let rows = rows(v);
    let local_of = |a_leg: bool| {
        let known = |r: &&Row| r.local.is_some();
        rows.iter()
            .filter(known)
            .find(|r| r.a_leg == a_leg)
            .or_else(|| rows.iter().find(known))
            .and_then(|r| r.local)
    };
    let (local_a, local_b) = (local_of(true), local_of(false));
    let mut out = Vec::new();
    for x in [
        0xa1b2_c3d4u32.to_le_bytes().as_slice(),
        &2u16.to_le_bytes(),
        &4u16.to_le_bytes(),
    ] {
        out.extend_from_slice(x);
    }
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&262_144u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&101u32.to_le_bytes()); // LINKTYPE_RAW
    for r in &rows {
        let Some(remote) = r.remote else { continue };
        let unspecified = match remote.ip() {
            IpAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 5060)),
            IpAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 5060)),
        };
        let local = r
            .local
            .or(if r.a_leg { local_a } else { local_b })
            .unwrap_or(unspecified);
        let (src, dst) = if r.inbound {
            (remote, local)
        } else {
            (local, remote)
        };
        let packet = ip_udp(src, dst, r.text.as_bytes());
        out.extend_from_slice(&((r.us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((r.us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(packet.len() as u32).to_le_bytes());
        out.extend_from_slice(&(packet.len() as u32).to_le_bytes());
        out.extend_from_slice(&packet);
    }
    out
}

/// One's-complement sum of 16-bit words (RFC 1071), folded.
fn sum16(mut acc: u32, data: &[u8]) -> u32 {
    for c in data.chunks(2) {
        acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

fn ip_udp(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let mut udp = Vec::with_capacity(udp_len);
    udp.extend_from_slice(&src.port().to_be_bytes());
    udp.extend_from_slice(&dst.port().to_be_bytes());
    udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    // Both ends in one family: an IPv4 end beside an IPv6 one is written IPv4-mapped.
    let v6 = |ip: IpAddr| match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    };
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            // UDP checksum 0: none (allowed over IPv4).
            let mut ip = vec![0x45, 0];
            ip.extend_from_slice(&((20 + udp_len) as u16).to_be_bytes());
            ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            let ck = !(sum16(0, &ip) as u16);
            ip[10..12].copy_from_slice(&ck.to_be_bytes());
            ip.extend_from_slice(&udp);
            ip
        }
        (s, d) => {
            let (s, d) = (v6(s), v6(d));
            // Over IPv6 the UDP checksum is mandatory (RFC 8200 §8.1).
            let mut pseudo = Vec::with_capacity(40);
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&(udp_len as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, 17]);
            let ck = !(sum16(sum16(0, &pseudo), &udp) as u16);
            let ck = if ck == 0 { 0xffff } else { ck };
            udp[6..8].copy_from_slice(&ck.to_be_bytes());
            let mut ip = vec![0x60, 0, 0, 0];
            ip.extend_from_slice(&(udp_len as u16).to_be_bytes());
            ip.extend_from_slice(&[17, 64]);
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            ip.extend_from_slice(&udp);
            ip
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        let m = |us: u64, dir: &str, leg: &str, remote: &str, text: &str| {
            json!({"time_us": us, "dir": dir, "leg": leg, "remote": remote,
                   "local": if dir == "in" { json!("192.0.2.1:5060") } else { Value::Null },
                   "text": text})
        };
        json!({"call": 1, "a_call_id": "a", "b_call_ids": ["b"], "dropped": 0, "messages": [
            m(1_000_000, "in", "a", "192.0.2.10:26000", "INVITE sip:alice@x SIP/2.0\r\n\r\n"),
            m(1_000_400, "out", "a", "192.0.2.10:26000", "SIP/2.0 407 Proxy Authentication Required\r\n\r\n"),
            m(1_012_000, "out", "b", "[2001:db8::20]:5062", "INVITE sip:alice@y SIP/2.0\r\n\r\n"),
            m(1_020_000, "in", "b", "[2001:db8::20]:5062", "SIP/2.0 180 Ringing\r\n\r\n"),
        ]})
    }

    #[test]
    fn ladder_rows_have_offsets_directions_and_first_lines() {
        let text = render_ladder(&sample(), false);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].contains("caller(192.0.2.10:26000)"), "{text}");
        assert!(lines[1].contains("callee([2001:db8::20]:5062)"), "{text}");
        assert!(
            lines[2].starts_with("+0.000  INVITE ─") && lines[2].ends_with('▶'),
            "{text}"
        );
        assert!(
            lines[3].starts_with("+0.000  ◀─")
                && lines[3].ends_with(" 407 Proxy Authentication Required"),
            "{text}"
        );
        assert!(
            lines[4].starts_with("+0.012  ") && lines[4].trim_end().ends_with('▶'),
            "{text}"
        );
        let col = |l: &str, c: char| l.chars().position(|x| x == c).unwrap();
        assert!(
            col(lines[4], 'I') > col(lines[2], '▶'),
            "b-leg column: {text}"
        );
        assert!(
            lines[5].starts_with("+0.020") && lines[5].ends_with("180 Ringing"),
            "{text}"
        );
        let full = render_ladder(&sample(), true);
        assert!(full.contains("| SIP/2.0 180 Ringing"), "{full}");
    }

    #[test]
    fn pcap_has_one_packet_per_message_with_consistent_lengths_and_checksums() {
        let bytes = pcap(&sample());
        assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_le_bytes());
        assert_eq!(u32::from_le_bytes(bytes[20..24].try_into().unwrap()), 101);
        let mut at = 24;
        let mut n = 0;
        while at < bytes.len() {
            let field =
                |o: usize| u32::from_le_bytes(bytes[at + o..at + o + 4].try_into().unwrap());
            let (secs, incl) = (field(0), field(8) as usize);
            assert_eq!(secs, 1);
            let p = &bytes[at + 16..at + 16 + incl];
            if p[0] >> 4 == 4 {
                assert_eq!(u16::from_be_bytes([p[2], p[3]]) as usize, incl);
                assert_eq!(sum16(0, &p[..20]), 0xffff, "IPv4 header checksum");
                assert_eq!(u16::from_be_bytes([p[24], p[25]]) as usize, incl - 20);
            } else {
                assert_eq!(p[0] >> 4, 6);
                assert_eq!(u16::from_be_bytes([p[4], p[5]]) as usize, incl - 40);
                let mut pseudo = p[8..40].to_vec();
                pseudo.extend_from_slice(&((incl - 40) as u32).to_be_bytes());
                pseudo.extend_from_slice(&[0, 0, 0, 17]);
                assert_eq!(sum16(sum16(0, &pseudo), &p[40..]), 0xffff, "UDP checksum");
            }
            at += 16 + incl;
            n += 1;
        }
        assert_eq!(n, 4);
    }
}
