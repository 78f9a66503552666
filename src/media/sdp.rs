//! An SDP body (RFC 4566) read for what a relay needs: per `m=` line the media, port, port
//! count, proto and formats; `c=` at session and media level; `a=rtcp` (RFC 3605) and
//! `a=rtcp-mux` (RFC 5761); the direction attributes (RFC 3264 §5.1, §8.4) including the old
//! `c=0.0.0.0` hold. Everything else (codecs, `a=crypto`, `b=`) is not interpreted here: the
//! rewriter passes those lines through byte for byte.
//!
//! Accepts CRLF or bare LF line ends and lines that are not UTF-8 (they are skipped when read
//! and kept when rewritten). Never panics on input: what it cannot read is an [`SdpError`].

use std::net::{IpAddr, SocketAddr};
use thiserror::Error;

/// Why a body is not SDP we can relay.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    #[error("SDP does not start with v=0")]
    NoVersion,
    #[error("SDP has no usable o= line")]
    BadOrigin,
    #[error("malformed m= line {0:?}")]
    BadMedia(String),
    #[error("malformed c= line {0:?}")]
    BadConnection(String),
    #[error("malformed a=rtcp line {0:?}")]
    BadRtcp(String),
    #[error("{plans} stream plans for {streams} m= lines")]
    PlanMismatch { streams: usize, plans: usize },
}

/// RFC 3264 §5.1 direction of a stream, from the point of view of the SDP's sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The attribute name (`sendrecv` …) as it appears after `a=`.
    pub fn parse_attr(attr: &str) -> Option<Direction> {
        Some(match attr {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    /// The sender of this SDP will send media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// The sender of this SDP wants to receive media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// A `c=` line: `IN IP4 192.0.2.1` (a multicast `/ttl` suffix is kept in `address` only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `IP4` or `IP6` as written.
    pub addrtype: String,
    /// The address as written (may be a host name).
    pub address: String,
    /// The address when it is a literal IP.
    pub ip: Option<IpAddr>,
}

impl Connection {
    /// `IN IP4 0.0.0.0`: RFC 2543 hold (RFC 3264 §8.4 still asks us to understand it).
    pub fn is_hold(&self) -> bool {
        self.ip.is_some_and(|ip| ip.is_unspecified())
    }

    /// The part after `c=` (or after `a=rtcp:<port> `): `IN IP4 192.0.2.1`.
    pub(crate) fn parse(v: &str) -> Option<Connection> {
        let mut it = v.split_ascii_whitespace();
        let (net, addrtype, address) = (it.next()?, it.next()?, it.next()?);
        if !net.eq_ignore_ascii_case("IN") || it.next().is_some() {
            return None;
        }
        let host = address.split('/').next().unwrap_or("");
        let ip = match addrtype {
            t if t.eq_ignore_ascii_case("IP4") => {
                host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
            }
            t if t.eq_ignore_ascii_case("IP6") => {
                host.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
            }
            _ => return None,
        };
        if host.is_empty() {
            return None;
        }
        Some(Connection {
            addrtype: addrtype.to_string(),
            address: address.to_string(),
            ip,
        })
    }
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, `application` …
    pub media: String,
    /// 0: the stream is rejected or disabled (RFC 3264 §6).
    pub port: u16,
    /// The `/<number of ports>` suffix, if written.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF` …
    pub proto: String,
    pub formats: Vec<String>,
    /// Media-level `c=`.
    pub connection: Option<Connection>,
    /// RFC 3605 `a=rtcp:<port> [IN IP4 addr]`.
    pub rtcp_port: Option<u16>,
    pub rtcp_connection: Option<Connection>,
    /// RFC 5761 `a=rtcp-mux`.
    pub rtcp_mux: bool,
    /// A media-level direction attribute.
    pub direction: Option<Direction>,
}

impl MediaDescription {
    pub fn is_rejected(&self) -> bool {
        self.port == 0
    }
}

/// The parts of an SDP body the relay needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=` username, session id, session version, as written.
    pub origin_username: String,
    pub origin_session_id: String,
    pub origin_version: String,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// A session-level direction attribute.
    pub direction: Option<Direction>,
    pub media: Vec<MediaDescription>,
}

/// The lines of a body without their line ends (CRLF or LF), the last one even if unterminated;
/// empty trailing lines dropped.
pub(crate) fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = match body.iter().rposition(|&b| b != b'\r' && b != b'\n') {
        Some(end) => &body[..=end],
        None => &body[..0],
    };
    body.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
}

/// `(type, value)` of a line `x=value`, when it has that shape and is UTF-8.
pub(crate) fn split_line(line: &[u8]) -> Option<(u8, &str)> {
    if line.len() < 2 || line[1] != b'=' {
        return None;
    }
    Some((line[0], std::str::from_utf8(&line[2..]).ok()?))
}

/// `m=audio 49170/2 RTP/AVP 0 8`.
pub(crate) fn parse_media_line(v: &str) -> Option<MediaDescription> {
    let mut it = v.split_ascii_whitespace();
    let media = it.next()?.to_string();
    let port_field = it.next()?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((p, n)) => (p.parse().ok()?, Some(n.parse().ok()?)),
        None => (port_field.parse().ok()?, None),
    };
    let proto = it.next()?.to_string();
    let formats = it.map(str::to_string).collect();
    Some(MediaDescription {
        media,
        port,
        port_count,
        proto,
        formats,
        connection: None,
        rtcp_port: None,
        rtcp_connection: None,
        rtcp_mux: false,
        direction: None,
    })
}

/// `a=rtcp:53020` or `a=rtcp:53020 IN IP4 126.16.64.4` (the part after `rtcp:`).
pub(crate) fn parse_rtcp(v: &str) -> Option<(u16, Option<Connection>)> {
    let v = v.trim();
    let (port, rest) = match v.split_once(' ') {
        Some((p, r)) => (p, Some(r)),
        None => (v, None),
    };
    let port = port.parse().ok()?;
    let conn = match rest {
        Some(r) => Some(Connection::parse(r)?),
        None => None,
    };
    Some((port, conn))
}

impl SessionDescription {
    /// Reads `body`; an error when it is not SDP (no `v=0` first, no `o=`, a malformed `m=`,
    /// `c=` or `a=rtcp` line).
    pub fn parse(body: &[u8]) -> Result<SessionDescription, SdpError> {
        let mut it = lines(body);
        match it.next().and_then(split_line) {
            Some((b'v', v)) if v.trim() == "0" => {}
            _ => return Err(SdpError::NoVersion),
        }
        let mut sd = SessionDescription {
            origin_username: String::new(),
            origin_session_id: String::new(),
            origin_version: String::new(),
            connection: None,
            direction: None,
            media: Vec::new(),
        };
        let mut have_origin = false;
        for line in it {
            let Some((kind, v)) = split_line(line) else {
                continue;
            };
            match kind {
                b'o' => {
                    let f: Vec<&str> = v.split_ascii_whitespace().collect();
                    if f.len() != 6 || have_origin || !sd.media.is_empty() {
                        return Err(SdpError::BadOrigin);
                    }
                    sd.origin_username = f[0].to_string();
                    sd.origin_session_id = f[1].to_string();
                    sd.origin_version = f[2].to_string();
                    have_origin = true;
                }
                b'm' => {
                    let m = parse_media_line(v).ok_or_else(|| SdpError::BadMedia(v.into()))?;
                    sd.media.push(m);
                }
                b'c' => {
                    let c =
                        Connection::parse(v).ok_or_else(|| SdpError::BadConnection(v.into()))?;
                    match sd.media.last_mut() {
                        Some(m) => m.connection = Some(c),
                        None => sd.connection = Some(c),
                    }
                }
                b'a' => {
                    let (name, value) = match v.split_once(':') {
                        Some((n, val)) => (n, Some(val)),
                        None => (v.trim(), None),
                    };
                    if let Some(d) = Direction::parse_attr(name) {
                        match sd.media.last_mut() {
                            Some(m) => m.direction = Some(d),
                            None => sd.direction = Some(d),
                        }
                    } else if let Some(m) = sd.media.last_mut() {
                        if name == "rtcp-mux" {
                            m.rtcp_mux = true;
                        } else if name == "rtcp" {
                            let (p, c) = value
                                .and_then(parse_rtcp)
                                .ok_or_else(|| SdpError::BadRtcp(v.into()))?;
                            m.rtcp_port = Some(p);
                            m.rtcp_connection = c;
                        }
                    }
                }
                _ => {}
            }
        }
        if !have_origin {
            return Err(SdpError::BadOrigin);
        }
        Ok(sd)
    }

    /// The `c=` that applies to stream `i`: its own, else the session's.
    pub fn connection(&self, i: usize) -> Option<&Connection> {
        let m = self.media.get(i)?;
        m.connection.as_ref().or(self.connection.as_ref())
    }

    /// Stream `i`'s direction: the media-level attribute over the session-level one over
    /// sendrecv; a `c=0.0.0.0` (RFC 2543 hold: "do not send to me") turns sending into
    /// sendonly and receiving-only into inactive.
    pub fn direction(&self, i: usize) -> Direction {
        let Some(m) = self.media.get(i) else {
            return Direction::Inactive;
        };
        let d = m.direction.or(self.direction).unwrap_or_default();
        if self.connection(i).is_some_and(Connection::is_hold) {
            return if d.sends() {
                Direction::SendOnly
            } else {
                Direction::Inactive
            };
        }
        d
    }

    /// Where stream `i`'s sender wants RTP: its `c=` address and `m=` port; `None` for a
    /// rejected stream, a hold address or a host name.
    pub fn rtp_addr(&self, i: usize) -> Option<SocketAddr> {
        let m = self.media.get(i)?;
        let ip = self.connection(i)?.ip?;
        if m.port == 0 || ip.is_unspecified() {
            return None;
        }
        Some(SocketAddr::new(ip, m.port))
    }

    /// Where it wants RTCP: the RTP address with rtcp-mux, else `a=rtcp` (RFC 3605, with its
    /// own address if it names one), else the RTP port + 1 (RFC 3550 §11).
    pub fn rtcp_addr(&self, i: usize) -> Option<SocketAddr> {
        let m = self.media.get(i)?;
        let rtp = self.rtp_addr(i)?;
        if m.rtcp_mux {
            return Some(rtp);
        }
        match (m.rtcp_port, m.rtcp_connection.as_ref().and_then(|c| c.ip)) {
            (Some(p), Some(ip)) => Some(SocketAddr::new(ip, p)),
            (Some(p), None) => Some(SocketAddr::new(rtp.ip(), p)),
            (None, _) => Some(SocketAddr::new(rtp.ip(), rtp.port().checked_add(1)?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC4566_EXAMPLE: &str = "v=0\r\no=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\r\n\
        s=SDP Seminar\r\ni=A Seminar\r\nc=IN IP4 224.2.17.12/127\r\nt=2873397496 2873404696\r\n\
        a=recvonly\r\nm=audio 49170 RTP/AVP 0\r\nm=video 51372/2 RTP/AVP 99\r\n\
        a=rtpmap:99 h263-1998/90000\r\n";

    #[test]
    fn rfc4566_5_reads_the_example_session() {
        let sd = SessionDescription::parse(RFC4566_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(sd.origin_version, "2890842807");
        assert_eq!(sd.media.len(), 2);
        assert_eq!(sd.media[1].port_count, Some(2));
        assert_eq!(sd.media[1].formats, ["99"]);
        assert_eq!(sd.connection.as_ref().unwrap().address, "224.2.17.12/127");
        assert_eq!(sd.direction(0), Direction::RecvOnly);
        assert_eq!(sd.rtp_addr(0), Some("224.2.17.12:49170".parse().unwrap()));
        assert_eq!(sd.rtcp_addr(0), Some("224.2.17.12:49171".parse().unwrap()));
    }

    #[test]
    fn rfc3605_2_1_rtcp_attribute_with_and_without_address() {
        let body = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n\
            m=audio 49170 RTP/AVP 0\na=rtcp:53020\nm=audio 49180 RTP/AVP 0\n\
            a=rtcp:53020 IN IP4 126.16.64.4\nm=audio 49190 RTP/AVP 0\na=rtcp-mux\n";
        let sd = SessionDescription::parse(body.as_bytes()).unwrap();
        assert_eq!(sd.rtcp_addr(0), Some("192.0.2.1:53020".parse().unwrap()));
        assert_eq!(sd.rtcp_addr(1), Some("126.16.64.4:53020".parse().unwrap()));
        assert_eq!(sd.rtcp_addr(2), Some("192.0.2.1:49190".parse().unwrap()));
    }

    #[test]
    fn rfc3264_8_4_hold_by_attribute_and_by_zero_address() {
        let body = "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
            m=audio 49170 RTP/AVP 0\r\nm=audio 49172 RTP/AVP 0\r\na=inactive\r\n\
            m=audio 49174 RTP/AVP 0\r\nc=IN IP4 192.0.2.1\r\na=sendonly\r\n";
        let sd = SessionDescription::parse(body.as_bytes()).unwrap();
        assert_eq!(sd.direction(0), Direction::SendOnly);
        assert_eq!(sd.direction(1), Direction::Inactive);
        assert_eq!(sd.direction(2), Direction::SendOnly);
        assert_eq!(sd.rtp_addr(0), None);
        assert_eq!(sd.rtp_addr(2), Some("192.0.2.1:49174".parse().unwrap()));
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        for bad in [
            "",
            "\r\n",
            "o=- 1 1 IN IP4 1.2.3.4\r\n",
            "v=1\r\n",
            "v=0\r\n",
            "v=0\r\no=- 1\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 1/x RTP/AVP 0\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=XX IP4 1.2.3.4\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\na=rtcp:x\r\n",
        ] {
            assert!(
                SessionDescription::parse(bad.as_bytes()).is_err(),
                "{bad:?}"
            );
        }
        let odd =
            b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=\xff\xfe\r\nx\r\n=\r\nm=audio 9 RTP/AVP 0\r\n";
        assert!(SessionDescription::parse(odd).is_ok());
    }
}
