//! Stamping a received request's top Via with where it really came from: RFC 3261 §18.2.1
//! (`received` when the sent-by host is not the source address) and RFC 3581 §4 (fill a bare
//! `rport` with the source port, and then always add `received`).
//!
//! Pure text surgery on the first Via value: only the `rport` and `received` parameters are
//! touched, every other octet of the header line (other params, spacing, further Via values on
//! the same line) is kept as received. Never reads sockets; never fails on what a peer sent
//! (a missing or unreadable Via is reported, not panicked on).

use crate::sip::typed::unquoted_ranges;
use crate::sip::{HeaderName, Headers, Via};
use bytes::Bytes;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ViaError {
    #[error("request has no Via")]
    Missing,
    #[error("top Via is malformed")]
    Malformed,
}

/// Stamps the top Via of a request received from `source`. Returns whether the header
/// changed. On error the headers are left alone; the layer above rejects the request.
pub fn stamp_received(headers: &mut Headers, source: SocketAddr) -> Result<bool, ViaError> {
    let header = headers
        .first_mut(&HeaderName::Via)
        .ok_or(ViaError::Missing)?;
    let value = header.value_str().ok_or(ViaError::Malformed)?;
    match stamp_via_value(value, source)? {
        Some(new) => {
            header.value = Bytes::from(new);
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The same on one Via header value (possibly holding several comma-separated Vias, of which
/// only the first is touched). `Ok(None)` when nothing needs to change.
pub fn stamp_via_value(value: &str, source: SocketAddr) -> Result<Option<String>, ViaError> {
    // A value may open with empty list elements (`, SIP/2.0/UDP ...`); skip them as the Via
    // decoder does, so the Via we stamp is the one the layers above read.
    let start = value
        .find(|c: char| c != ',' && !c.is_whitespace())
        .ok_or(ViaError::Missing)?;
    let end = start + first_value_len(&value[start..]);
    let top = &value[start..end];
    let via = Via::parse(top).ok_or(ViaError::Malformed)?;
    let src_ip = source.ip().to_canonical();
    let src_text = src_ip.to_string();

    let params = scan_params(top);
    let bare_rport = params
        .iter()
        .find(|p| p.is("rport") && p.value.is_none())
        .map(|p| p.name.end);
    let received = params.iter().find(|p| p.is("received"));
    // RFC 3581 §4: with rport, `received` is added "even if it is identical to the value of
    // the sent-by component".
    let host_is_source = ip_of(&via.host) == Some(src_ip);
    let wants_received = !host_is_source || bare_rport.is_some();

    // (position, priority, replaced range end, text): applied in order of position; at equal
    // positions the rport value goes before an appended received.
    let mut edits: Vec<(usize, u8, usize, String)> = Vec::new();
    if let Some(at) = bare_rport {
        edits.push((at, 0, at, format!("={}", source.port())));
    }
    match received {
        // A received that names another address (forged, or stale) would misroute responses.
        Some(p) => {
            let current = p.value.clone().and_then(|v| ip_of(&top[v]));
            if current != Some(src_ip) {
                let (from, to) = match &p.value {
                    Some(v) => (v.start, v.end),
                    None => (p.name.end, p.name.end),
                };
                let text = if p.value.is_some() {
                    src_text
                } else {
                    format!("={src_text}")
                };
                edits.push((from, 1, to, text));
            }
        }
        None if wants_received => {
            let at = top.trim_end().len();
            // RFC 3261's via-received takes an IPv6address without brackets (RFC 5118 §4.5).
            edits.push((at, 1, at, format!(";received={src_text}")));
        }
        None => {}
    }
    if edits.is_empty() {
        return Ok(None);
    }
    edits.sort_by_key(|e| (e.0, e.1));
    let mut out = String::with_capacity(value.len() + 48);
    out.push_str(&value[..start]);
    let mut cursor = 0;
    for (at, _, to, text) in edits {
        out.push_str(&top[cursor..at]);
        out.push_str(&text);
        cursor = to;
    }
    out.push_str(&top[cursor..]);
    out.push_str(&value[end..]);
    Ok(Some(out))
}

/// Length of the first Via value: up to a comma outside quotes (a Via holds no `<...>`).
fn first_value_len(v: &str) -> usize {
    unquoted_ranges(v.as_bytes(), b',', false)
        .next()
        .map_or(v.len(), |r| r.end)
}

/// One `;name[=value]` of the top Via, as byte ranges into it (whitespace trimmed).
struct ParamSpan<'a> {
    text: &'a str,
    name: Range<usize>,
    value: Option<Range<usize>>,
}

impl ParamSpan<'_> {
    fn is(&self, name: &str) -> bool {
        self.text[self.name.clone()].eq_ignore_ascii_case(name)
    }
}

/// The parameters of one Via value. sent-protocol and sent-by hold no `;`, so the first one
/// starts the parameter list; quoted values may hold `;`.
fn scan_params(top: &str) -> Vec<ParamSpan<'_>> {
    let Some(first) = top.find(';') else {
        return Vec::new();
    };
    let rest = first + 1;
    unquoted_ranges(&top.as_bytes()[rest..], b';', false)
        .map(|r| rest + r.start..rest + r.end)
        .filter_map(|r| {
            let (name, value) = match top[r.clone()].find('=') {
                Some(eq) => (r.start..r.start + eq, Some(r.start + eq + 1..r.end)),
                None => (r, None),
            };
            let name = trim_range(top, name);
            if name.is_empty() {
                return None;
            }
            Some(ParamSpan {
                text: top,
                name,
                value: value.map(|v| trim_range(top, v)),
            })
        })
        .collect()
}

fn trim_range(s: &str, r: Range<usize>) -> Range<usize> {
    let piece = &s[r.clone()];
    let lead = piece.len() - piece.trim_start().len();
    let trail = piece.len() - piece.trim_end().len();
    r.start + lead..(r.end - trail).max(r.start + lead)
}

/// The IP address of a Via host or received value, brackets optional; `None` for names.
fn ip_of(host: &str) -> Option<IpAddr> {
    let h = host.trim();
    let h = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h);
    h.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(v: &str, src: &str) -> Option<String> {
        stamp_via_value(v, src.parse().unwrap()).unwrap()
    }

    #[test]
    fn same_host_without_rport_is_untouched() {
        assert_eq!(
            stamp(
                "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1",
                "192.0.2.1:5060"
            ),
            None
        );
        assert_eq!(
            stamp(
                "SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK1",
                "[2001:db8:0::1]:7"
            ),
            None
        );
    }

    #[test]
    fn domain_or_other_ip_gets_received_appended() {
        assert_eq!(
            stamp(
                "SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1",
                "192.0.2.4:5060"
            )
            .as_deref(),
            Some("SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1;received=192.0.2.4")
        );
        // No params at all.
        assert_eq!(
            stamp("SIP/2.0/TCP 10.0.0.1:5070", "192.0.2.4:1").as_deref(),
            Some("SIP/2.0/TCP 10.0.0.1:5070;received=192.0.2.4")
        );
    }

    #[test]
    fn bare_rport_is_filled_and_received_always_added() {
        // RFC 3581 §4 example, and received even though the host equals the source.
        assert_eq!(
            stamp(
                "SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bKkjshdyff",
                "192.0.2.1:9988"
            )
            .as_deref(),
            Some("SIP/2.0/UDP 10.1.1.1:4540;rport=9988;branch=z9hG4bKkjshdyff;received=192.0.2.1")
        );
        assert_eq!(
            stamp(
                "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;RPORT",
                "192.0.2.1:5060"
            )
            .as_deref(),
            Some("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;RPORT=5060;received=192.0.2.1")
        );
        // A filled rport is left alone.
        assert_eq!(
            stamp(
                "SIP/2.0/UDP 192.0.2.1;rport=1;branch=z9hG4bK1",
                "192.0.2.1:5060"
            ),
            None
        );
    }

    #[test]
    fn ipv6_received_has_no_brackets() {
        let out = stamp(
            "SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3;rport",
            "[2001:db8::9:255]:5062",
        );
        assert_eq!(
            out.as_deref(),
            Some(
                "SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3;rport=5062;received=2001:db8::9:255"
            )
        );
        let via = Via::parse(out.as_deref().unwrap()).unwrap();
        assert_eq!(via.received(), Some("2001:db8::9:255"));
        // A bracketed received naming the source is accepted as it is (RFC 5118 §4.5).
        assert_eq!(
            stamp(
                "SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bK",
                "[2001:db8::9:255]:5060"
            ),
            None
        );
        // IPv4-mapped source from a dual-stack socket compares as IPv4.
        assert_eq!(
            stamp(
                "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
                "[::ffff:192.0.2.1]:5060"
            ),
            None
        );
    }

    #[test]
    fn wrong_received_is_replaced_in_place() {
        assert_eq!(
            stamp(
                "SIP/2.0/UDP h.example;received=1.2.3.4 ;branch=z9hG4bK1",
                "192.0.2.9:5060"
            )
            .as_deref(),
            Some("SIP/2.0/UDP h.example;received=192.0.2.9 ;branch=z9hG4bK1")
        );
        assert_eq!(
            stamp(
                "SIP/2.0/UDP h.example;received;branch=z9hG4bK1",
                "192.0.2.9:5060"
            )
            .as_deref(),
            Some("SIP/2.0/UDP h.example;received=192.0.2.9;branch=z9hG4bK1")
        );
    }

    #[test]
    fn only_the_first_of_several_vias_is_touched() {
        let v = "SIP / 2.0 / UDP  a.example ; rport ; x=\"q;,r\" , SIP/2.0/UDP b.example;rport";
        assert_eq!(
            stamp(v, "192.0.2.7:1024").as_deref(),
            Some(
                "SIP / 2.0 / UDP  a.example ; rport=1024 ; x=\"q;,r\";received=192.0.2.7 , \
                 SIP/2.0/UDP b.example;rport"
            )
        );
    }

    #[test]
    fn headers_are_rewritten_and_errors_reported() {
        let src: SocketAddr = "192.0.2.7:1024".parse().unwrap();
        let mut h = Headers::new();
        h.push(HeaderName::CallId, "x");
        assert_eq!(stamp_received(&mut h, src), Err(ViaError::Missing));
        h.push(HeaderName::Via, "SIP/2.0/UDP a.example;rport");
        h.push(HeaderName::Via, "SIP/2.0/UDP b.example;rport");
        assert_eq!(stamp_received(&mut h, src), Ok(true));
        let vias = h.vias();
        assert_eq!(vias[0].rport(), Some(Some(1024)));
        assert_eq!(vias[0].received(), Some("192.0.2.7"));
        assert_eq!(vias[1].rport(), Some(None));
        let mut bad = Headers::new();
        bad.push(HeaderName::Via, "garbage");
        assert_eq!(stamp_received(&mut bad, src), Err(ViaError::Malformed));
        let mut binary = Headers::new();
        binary.push(HeaderName::Via, &b"SIP/2.0/UDP h\xff"[..]);
        assert_eq!(stamp_received(&mut binary, src), Err(ViaError::Malformed));
    }
}
