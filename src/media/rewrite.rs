//! Rewriting an SDP body so that a phone sends its media to our relay ports.
//!
//! Changed: `c=` at session and media level (our address), the `m=` port of relayed streams,
//! `a=rtcp` (our RTCP port, and our address if the line carried one), and the `o=` line, which
//! becomes ours (RFC 3264 §8: one origin per leg, its version raised only when the body
//! changes; see [`LegOrigin`]). Removed: ICE (`a=candidate`, `a=ice-ufrag`, `a=ice-pwd`,
//! `a=ice-options`, `a=ice-lite`, `a=end-of-candidates`, `a=remote-candidates`): the candidates
//! name the phone's own addresses, which the other phone must not try. Every other line —
//! codecs, payload types, `a=rtpmap`/`a=fmtp`, `a=crypto` (relayed opaque), direction, `b=` —
//! is copied byte for byte. A rejected stream (port 0) stays port 0; a `c=0.0.0.0` (old-style
//! hold) stays, so the hold reaches the other phone. Output lines end in CRLF.
//!
//! Never panics on input; a body [`SessionDescription::parse`] refuses is refused here too.

use super::sdp::{lines, split_line, SdpError, SessionDescription};
use std::net::IpAddr;

/// Where RTCP of a relayed stream goes to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpPlan {
    /// Our separate RTCP port (the odd one of the pair).
    Port(u16),
    /// RTCP shares the RTP port (RFC 5761); offered only when the phone's SDP had rtcp-mux.
    Mux,
}

/// Our end of one relayed stream, as written into the SDP for one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPlan {
    pub addr: IpAddr,
    pub rtp_port: u16,
    pub rtcp: RtcpPlan,
}

impl StreamPlan {
    fn rtcp_port(&self) -> u16 {
        match self.rtcp {
            RtcpPlan::Port(p) => p,
            RtcpPlan::Mux => self.rtp_port,
        }
    }
}

/// Our `o=` line towards one leg (RFC 3264 §8: "the origin line ... MUST be the same except
/// for the version, which is incremented by one when the session description changes").
/// Remembers the last body sent on the leg, so an unchanged re-offer keeps its version.
#[derive(Debug, Clone)]
pub struct LegOrigin {
    session_id: u64,
    version: u64,
    /// The last body sent with its `o=` line left out.
    last: Option<Vec<u8>>,
}

impl LegOrigin {
    /// `o=` username: RFC 4566 §5.2's "-" for hosts without user ids (nothing about us).
    pub const USERNAME: &'static str = "-";

    /// A new leg's origin. `session_id` should be random per leg (from the engine's seeded
    /// RNG); old phones parse ten digits at most, so keep it below 2^32.
    pub fn new(session_id: u64) -> LegOrigin {
        LegOrigin {
            session_id,
            version: 1,
            last: None,
        }
    }

    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// The version of the last body sent (1 before any).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Records `without_o` as the body being sent; raises the version if it differs from the
    /// last one.
    fn settle(&mut self, without_o: &[u8]) -> u64 {
        match &self.last {
            Some(last) if last.as_slice() == without_o => {}
            Some(_) => {
                self.version = self.version.wrapping_add(1);
                self.last = Some(without_o.to_vec());
            }
            None => self.last = Some(without_o.to_vec()),
        }
        self.version
    }
}

/// ICE attributes (RFC 8839) that leave with the phone's candidates.
const ICE: &[&str] = &[
    "candidate",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "ice-mismatch",
    "end-of-candidates",
    "remote-candidates",
];

fn addrtype(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

fn push_line(out: &mut Vec<u8>, line: &[u8]) {
    out.extend_from_slice(line);
    out.extend_from_slice(b"\r\n");
}

/// `body` with our addresses and ports: `plans[i]` for the `i`th `m=` line (`None`: not
/// relayed, left pointing at the phone). The origin of the leg the body goes to provides the
/// `o=` line and remembers the body.
pub fn rewrite(
    body: &[u8],
    plans: &[Option<StreamPlan>],
    origin: &mut LegOrigin,
) -> Result<Vec<u8>, SdpError> {
    let sd = SessionDescription::parse(body)?;
    if plans.len() != sd.media.len() {
        return Err(SdpError::PlanMismatch {
            streams: sd.media.len(),
            plans: plans.len(),
        });
    }
    let relayed = |i: usize| plans[i].filter(|_| !sd.media[i].is_rejected());
    let ours = (0..plans.len()).find_map(relayed).map(|p| p.addr);
    let session_c_rewritten =
        ours.is_some() && sd.connection.as_ref().is_some_and(|c| !c.is_hold());
    let mut out = Vec::with_capacity(body.len() + 64);
    let mut origin_at = None;
    let mut origin_addr: Option<String> = None;
    // -1: session level; else the index of the current m= section.
    let mut section: isize = -1;
    // A c= line a section must get before its first c/b/k/a line (or its end).
    let mut pending_c: Option<Vec<u8>> = None;
    for line in lines(body) {
        let parsed = split_line(line);
        let kind = parsed.map(|(k, _)| k);
        if matches!(kind, Some(b'c' | b'b' | b'k' | b'a' | b'm')) {
            if let Some(c) = pending_c.take() {
                push_line(&mut out, &c);
            }
        }
        let plan = usize::try_from(section).ok().and_then(relayed);
        match parsed {
            Some((b'o', v)) => {
                origin_at = Some(out.len());
                let f: Vec<&str> = v.split_ascii_whitespace().collect();
                origin_addr = f.get(4..6).map(|a| format!("{} {}", a[0], a[1]));
            }
            Some((b'm', v)) => {
                section += 1;
                let i = section as usize;
                let m = &sd.media[i];
                match relayed(i) {
                    Some(p) => {
                        // Only the port token changes: `m=<media> <port>[/n] <rest>`.
                        let (media, rest) = v.split_once(' ').unwrap_or((v, ""));
                        let rest = rest.trim_start();
                        let after_port = rest.find(' ').map_or("", |j| &rest[j..]);
                        let count = m.port_count.map(|n| format!("/{n}")).unwrap_or_default();
                        let l = format!("m={media} {}{count}{after_port}", p.rtp_port);
                        push_line(&mut out, l.as_bytes());
                        // No c= applies at all (invalid, but seen): give it ours. A session
                        // c=0.0.0.0 is a hold and is inherited as it is.
                        if m.connection.is_none() && sd.connection.is_none() {
                            let c = format!("c=IN {} {}", addrtype(p.addr), p.addr);
                            pending_c = Some(c.into_bytes());
                        }
                    }
                    None => {
                        push_line(&mut out, line);
                        if !m.is_rejected() && m.connection.is_none() && session_c_rewritten {
                            // Not relayed: keep it pointing at the phone's session address.
                            let c = sd
                                .connection
                                .as_ref()
                                .map(|c| format!("c=IN {} {}", c.addrtype, c.address).into_bytes());
                            pending_c = c;
                        }
                    }
                }
            }
            Some((b'c', _)) if section < 0 => match ours {
                Some(a) if session_c_rewritten => {
                    push_line(&mut out, format!("c=IN {} {a}", addrtype(a)).as_bytes())
                }
                _ => push_line(&mut out, line),
            },
            Some((b'c', _)) => {
                let hold = sd.media[section as usize]
                    .connection
                    .as_ref()
                    .is_some_and(|c| c.is_hold());
                match plan {
                    Some(p) if !hold => {
                        let l = format!("c=IN {} {}", addrtype(p.addr), p.addr);
                        push_line(&mut out, l.as_bytes())
                    }
                    _ => push_line(&mut out, line),
                }
            }
            Some((b'a', v)) => {
                let name = v.split(':').next().unwrap_or("").trim();
                if ICE.contains(&name) {
                    continue;
                }
                match plan {
                    Some(p) if name == "rtcp" => {
                        let m = &sd.media[section as usize];
                        let mut l = format!("a=rtcp:{}", p.rtcp_port());
                        if m.rtcp_connection.is_some() {
                            l.push_str(&format!(" IN {} {}", addrtype(p.addr), p.addr));
                        }
                        push_line(&mut out, l.as_bytes());
                    }
                    _ => push_line(&mut out, line),
                }
            }
            _ => push_line(&mut out, line),
        }
    }
    if let Some(c) = pending_c.take() {
        push_line(&mut out, &c);
    }
    let version = origin.settle(&out);
    let at = origin_at.ok_or(SdpError::BadOrigin)?;
    let addr = match ours {
        Some(a) => format!("IN {} {a}", addrtype(a)),
        None => origin_addr.map_or_else(|| "IN IP4 0.0.0.0".into(), |a| format!("IN {a}")),
    };
    let o = format!(
        "o={} {} {version} {addr}\r\n",
        LegOrigin::USERNAME,
        origin.session_id
    );
    out.splice(at..at, o.into_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(port: u16) -> Option<StreamPlan> {
        Some(StreamPlan {
            addr: "203.0.113.7".parse().unwrap(),
            rtp_port: port,
            rtcp: RtcpPlan::Port(port + 1),
        })
    }

    const OFFER: &str = "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.168.1.10\r\ns=-\r\n\
        c=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 101\r\n\
        a=rtpmap:101 telephone-event/8000\r\na=rtcp:49171\r\n";

    #[test]
    fn rfc3264_8_version_moves_only_when_our_body_changes() {
        let mut o = LegOrigin::new(4242);
        let first =
            String::from_utf8(rewrite(OFFER.as_bytes(), &[plan(20000)], &mut o).unwrap()).unwrap();
        assert!(
            first.contains("o=- 4242 1 IN IP4 203.0.113.7\r\n"),
            "{first}"
        );
        // The phone raises its own version without changing anything we relay: ours stays.
        let again = OFFER.replace("2890844526 IN", "2890844527 IN");
        let second =
            String::from_utf8(rewrite(again.as_bytes(), &[plan(20000)], &mut o).unwrap()).unwrap();
        assert_eq!(first, second);
        // Hold changes the body: version 2, same session id.
        let hold = format!("{OFFER}a=sendonly\r\n");
        let third =
            String::from_utf8(rewrite(hold.as_bytes(), &[plan(20000)], &mut o).unwrap()).unwrap();
        assert!(
            third.contains("o=- 4242 2 IN IP4 203.0.113.7\r\n"),
            "{third}"
        );
        assert_eq!(o.version(), 2);
    }

    #[test]
    fn rfc4566_5_7_a_stream_with_no_c_line_at_all_gets_ours_after_i() {
        let body = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n\
            m=audio 4000 RTP/AVP 0\r\ni=voice\r\na=ptime:20\r\n";
        let out = rewrite(body.as_bytes(), &[plan(20000)], &mut LegOrigin::new(1)).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.ends_with(
                "m=audio 20000 RTP/AVP 0\r\ni=voice\r\nc=IN IP4 203.0.113.7\r\na=ptime:20\r\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn a_stream_left_out_of_the_plan_keeps_the_phone_address() {
        let body = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
            m=audio 4000 RTP/AVP 0\r\nm=application 5000 UDP/BFCP *\r\na=setup:actpass\r\n";
        let mut o = LegOrigin::new(1);
        let out = rewrite(body.as_bytes(), &[plan(20000), None], &mut o).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("c=IN IP4 203.0.113.7\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0\r\n"));
        assert!(out.contains("m=application 5000 UDP/BFCP *\r\nc=IN IP4 192.0.2.1\r\na=setup"));
        let err = rewrite(body.as_bytes(), &[plan(20000)], &mut o).unwrap_err();
        assert_eq!(
            err,
            SdpError::PlanMismatch {
                streams: 2,
                plans: 1
            }
        );
    }
}
