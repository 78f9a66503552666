//! SDP rewriting on the corpus of phones' bodies in `tests/data/sdp/` (see its README): every
//! codec, crypto, direction and bandwidth line survives byte for byte and in order, ICE goes,
//! `c=`, `m=` ports and `a=rtcp` carry our address and ports, the output is CRLF, re-parses,
//! and our `o=` version moves only when the body does (RFC 3264 §8).

use super::rewrite::{rewrite, LegOrigin, RtcpPlan, StreamPlan};
use super::sdp::{lines, Direction, SessionDescription};
use std::net::IpAddr;
use std::path::Path;

fn read(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sdp")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const OURS: &str = "203.0.113.7";

/// One relay per non-rejected stream: RTP 30000 + 10·i, RTCP one above.
fn plans(sd: &SessionDescription, addr: IpAddr) -> Vec<Option<StreamPlan>> {
    (0..sd.media.len())
        .map(|i| {
            let port = 30000 + 10 * i as u16;
            (!sd.media[i].is_rejected()).then_some(StreamPlan {
                addr,
                rtp_port: port,
                rtcp: RtcpPlan::Port(port + 1),
            })
        })
        .collect()
}

const ICE: &[&str] = &[
    "a=candidate",
    "a=ice-ufrag",
    "a=ice-pwd",
    "a=ice-options",
    "a=ice-lite",
    "a=end-of-candidates",
    "a=remote-candidates",
];

fn is_ice(l: &[u8]) -> bool {
    ICE.iter().any(|p| l.starts_with(p.as_bytes()))
}

/// Lines the rewriter must leave alone: all but `o=`, `c=`, `m=`, `a=rtcp:` and ICE.
fn kept(body: &[u8]) -> Vec<Vec<u8>> {
    lines(body)
        .filter(|l| {
            !(l.starts_with(b"o=")
                || l.starts_with(b"c=")
                || l.starts_with(b"m=")
                || l.starts_with(b"a=rtcp:")
                || is_ice(l))
        })
        .map(<[u8]>::to_vec)
        .collect()
}

/// Rewrites `name` for a leg and checks everything every body must satisfy; returns the
/// input's and the output's parse and the output text.
fn check(name: &str, ours: &str) -> (SessionDescription, SessionDescription, String) {
    let body = read(name);
    let addr: IpAddr = ours.parse().unwrap();
    let sd = SessionDescription::parse(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
    let plan = plans(&sd, addr);
    let mut origin = LegOrigin::new(31337);
    let out = rewrite(&body, &plan, &mut origin).unwrap_or_else(|e| panic!("{name}: {e}"));
    let text = String::from_utf8(out.clone()).unwrap();
    // CRLF everywhere, nothing lost at the end.
    assert!(text.ends_with("\r\n"), "{name}");
    assert!(!text.replace("\r\n", "").contains('\n'), "{name}: bare LF");
    // Byte-identical, in order: codecs, crypto, direction, b=, everything else.
    assert_eq!(kept(&body), kept(&out), "{name}");
    assert!(!lines(&out).any(is_ice), "{name}: ICE left\n{text}");
    let fam = if addr.is_ipv6() { "IP6" } else { "IP4" };
    assert!(
        text.starts_with(&format!("v=0\r\no=- 31337 1 IN {fam} {ours}\r\n")),
        "{name}\n{text}"
    );
    let new = SessionDescription::parse(&out).unwrap();
    assert_eq!(new.media.len(), sd.media.len(), "{name}");
    for (i, (m, n)) in sd.media.iter().zip(&new.media).enumerate() {
        assert_eq!(
            (&m.media, &m.proto, &m.formats),
            (&n.media, &n.proto, &n.formats)
        );
        assert_eq!(
            sd.direction(i),
            new.direction(i),
            "{name} stream {i} direction"
        );
        assert_eq!(m.rtcp_mux, n.rtcp_mux, "{name}");
        if m.is_rejected() {
            assert_eq!(n.port, 0, "{name}: a rejected stream stays rejected");
            continue;
        }
        let p = plan[i].unwrap();
        assert_eq!(n.port, p.rtp_port, "{name} stream {i}");
        let c = new.connection(i).unwrap();
        if sd.connection(i).unwrap().is_hold() {
            assert!(
                c.is_hold(),
                "{name}: old-style hold must reach the other phone"
            );
        } else {
            assert_eq!(c.ip, Some(addr), "{name} stream {i}");
            assert_eq!(new.rtp_addr(i), Some((addr, p.rtp_port).into()), "{name}");
        }
        if m.rtcp_port.is_some() {
            assert_eq!(n.rtcp_port, Some(p.rtp_port + 1), "{name} a=rtcp");
            assert_eq!(n.rtcp_connection.is_some(), m.rtcp_connection.is_some());
            if let Some(c) = &n.rtcp_connection {
                assert_eq!(c.ip, Some(addr), "{name}");
            }
        }
    }
    // The same body again (or the phone's next version of it): our version stays 1.
    let again = rewrite(&body, &plan, &mut origin).unwrap();
    assert_eq!(again, out, "{name}: unchanged body, unchanged o=");
    (sd, new, text)
}

#[test]
fn corpus_baresip_1_0_offer() {
    let (sd, _, text) = check("baresip-1.0-offer.sdp", OURS);
    assert_eq!(sd.media[0].formats, ["96", "9", "0", "8", "101"]);
    assert!(text.contains("c=IN IP4 203.0.113.7\r\nt=0 0\r\na=tool:baresip 1.0.0\r\n"));
    assert!(text.contains("m=audio 30000 RTP/AVP 96 9 0 8 101\r\nb=AS:64\r\n"));
    assert!(text.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"));
    assert!(
        !text.contains("a=rtcp:"),
        "no a=rtcp added where there was none"
    );
}

#[test]
fn corpus_linphone_5_offer_loses_ice_keeps_rtcp_mux() {
    let (sd, new, text) = check("linphone-5-offer.sdp", OURS);
    assert!(sd.media.iter().all(|m| m.rtcp_mux));
    assert!(
        text.contains("a=rtcp-mux\r\na=rtcp:30001\r\na=rtcp-fb:* trr-int 1000\r\n"),
        "{text}"
    );
    assert!(text.contains("m=video 30010 RTP/AVP 96 97\r\nc=IN IP4 203.0.113.7\r\nb=AS:1500\r\n"));
    assert!(
        !text.contains("ice") && !text.contains("candidate"),
        "{text}"
    );
    assert!(text
        .contains("a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n"));
    assert_eq!(
        new.rtcp_addr(0),
        Some(("203.0.113.7".parse::<IpAddr>().unwrap(), 30000).into())
    );
}

#[test]
fn corpus_sipp_uac_offer_with_bare_lf() {
    let (_, _, text) = check("sipp-uac-offer.sdp", OURS);
    assert_eq!(
        text,
        "v=0\r\no=- 31337 1 IN IP4 203.0.113.7\r\ns=-\r\nc=IN IP4 203.0.113.7\r\nt=0 0\r\n\
         m=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    );
}

#[test]
fn corpus_rfc4317_audio_and_video_each_get_their_relay() {
    let (sd, _, text) = check("rfc4317-audio-video-offer.sdp", OURS);
    assert_eq!(
        sd.rtp_addr(0),
        None,
        "a host name is not an address we latch on"
    );
    assert!(text.contains("m=audio 30000 RTP/AVP 0 8 97\r\n"));
    assert!(text.contains("m=video 30010 RTP/AVP 31 32\r\n"));
    assert!(!text.contains("atlanta"), "{text}");
}

#[test]
fn corpus_rfc4317_a_rejected_video_stays_port_0() {
    let (_, new, text) = check("rfc4317-video-rejected-answer.sdp", OURS);
    assert!(text.contains("m=audio 30000 RTP/AVP 0\r\n"));
    assert!(text.contains("m=video 0 RTP/AVP 32\r\na=rtpmap:32 MPV/90000\r\n"));
    assert!(new.media[1].is_rejected());
}

#[test]
fn corpus_sdes_crypto_is_relayed_opaque() {
    let (_, _, text) = check("sdes-crypto-offer.sdp", OURS);
    assert!(text.contains("m=audio 30000 RTP/SAVP 8 0 101\r\n"));
    assert!(text.contains(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n"
    ));
    assert!(text.contains("a=crypto:2 AES_CM_128_HMAC_SHA1_32"));
}

#[test]
fn corpus_ipv6_connection_and_rtcp_address() {
    let (sd, _, text) = check("ipv6-offer.sdp", "2001:db8:ff::7");
    assert_eq!(
        sd.rtp_addr(0),
        Some("[2001:db8:10::23]:16424".parse().unwrap())
    );
    assert!(text.contains("c=IN IP6 2001:db8:ff::7\r\n"));
    assert!(
        text.contains("a=rtcp:30001 IN IP6 2001:db8:ff::7\r\n"),
        "{text}"
    );
    // Our IPv4 relay for an IPv6 phone: every address follows our family.
    let (_, _, text) = check("ipv6-offer.sdp", OURS);
    assert!(
        text.contains("c=IN IP4 203.0.113.7\r\n") && !text.contains("IP6"),
        "{text}"
    );
}

#[test]
fn corpus_session_and_media_level_connection() {
    let (sd, new, text) = check("media-level-connection.sdp", OURS);
    assert_eq!(sd.rtp_addr(1), Some("192.0.2.11:5006".parse().unwrap()));
    assert_eq!(sd.direction(1), Direction::RecvOnly);
    assert!(text.contains(
        "m=video 30010 RTP/AVP 96\r\ni=camera\r\nc=IN IP4 203.0.113.7\r\nb=TIAS:512000\r\n"
    ));
    assert!(!text.contains("192.0.2."), "{text}");
    assert_eq!(new.direction(1), Direction::RecvOnly);
}

#[test]
fn corpus_hold_by_sendonly_and_by_zero_address() {
    let (sd, _, text) = check("hold-sendonly-reinvite.sdp", OURS);
    assert_eq!(sd.direction(0), Direction::SendOnly);
    assert!(text.contains("a=sendonly\r\n"));
    let (sd, new, text) = check("hold-c0-reinvite.sdp", OURS);
    assert_eq!(sd.direction(0), Direction::SendOnly);
    assert!(text.contains("c=IN IP4 0.0.0.0\r\n"), "{text}");
    assert_eq!(new.direction(0), Direction::SendOnly);
    assert!(text.contains("m=audio 30000 RTP/AVP 0 8 101\r\n"));
}

#[test]
fn rfc3264_8_hold_then_resume_on_one_leg_bumps_the_version_each_time() {
    let addr: IpAddr = OURS.parse().unwrap();
    let mut origin = LegOrigin::new(9);
    let mut version = |name: &str| {
        let body = read(name);
        let sd = SessionDescription::parse(&body).unwrap();
        let out = rewrite(&body, &plans(&sd, addr), &mut origin).unwrap();
        let o = lines(&out)
            .nth(1)
            .map(|l| String::from_utf8_lossy(l).into_owned());
        o.unwrap()
    };
    assert_eq!(
        version("baresip-1.0-offer.sdp"),
        "o=- 9 1 IN IP4 203.0.113.7"
    );
    assert_eq!(
        version("baresip-1.0-offer.sdp"),
        "o=- 9 1 IN IP4 203.0.113.7"
    );
    assert_eq!(
        version("hold-sendonly-reinvite.sdp"),
        "o=- 9 2 IN IP4 203.0.113.7"
    );
    assert_eq!(
        version("baresip-1.0-offer.sdp"),
        "o=- 9 3 IN IP4 203.0.113.7"
    );
}

#[test]
fn every_body_in_the_corpus_rewrites_and_truncations_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sdp");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "sdp") {
            continue;
        }
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        check(&name, OURS);
        let body = std::fs::read(&p).unwrap();
        for cut in 0..body.len() {
            let part = &body[..cut];
            if let Ok(sd) = SessionDescription::parse(part) {
                let plan = plans(&sd, OURS.parse().unwrap());
                let _ = rewrite(part, &plan, &mut LegOrigin::new(1));
            }
        }
        n += 1;
    }
    assert!(n >= 11, "{n} bodies");
}

proptest::proptest! {
    /// Never a panic, whatever lines a peer strings together or whatever bytes it sends.
    #[test]
    fn any_sdp_line_soup_parses_or_errs_and_rewrites_without_panicking(
        picks in proptest::collection::vec(0usize..SOUP.len(), 0..40),
        junk in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        crlf in proptest::bool::ANY,
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut body = Vec::new();
        body.extend_from_slice(b"v=0");
        body.extend_from_slice(eol.as_bytes());
        for &i in &picks {
            body.extend_from_slice(SOUP[i].as_bytes());
            body.extend_from_slice(eol.as_bytes());
        }
        body.extend_from_slice(&junk);
        if let Ok(sd) = SessionDescription::parse(&body) {
            for i in 0..sd.media.len() + 1 {
                let _ = (sd.direction(i), sd.rtp_addr(i), sd.rtcp_addr(i));
            }
            let plan = plans(&sd, OURS.parse().unwrap());
            let out = rewrite(&body, &plan, &mut LegOrigin::new(5));
            let out = out.expect("what parses, rewrites");
            proptest::prop_assert!(SessionDescription::parse(&out).is_ok());
        }
        let _ = SessionDescription::parse(&junk);
    }
}

const SOUP: &[&str] = &[
    "o=- 1 1 IN IP4 192.0.2.1",
    "o=- 1 1 IN IP6 ::1",
    "s=-",
    "c=IN IP4 192.0.2.1",
    "c=IN IP4 0.0.0.0",
    "c=IN IP6 2001:db8::1",
    "c=IN IP4 host.example.org",
    "c=IN IP4 224.2.1.1/127/3",
    "t=0 0",
    "m=audio 4000 RTP/AVP 0 8 101",
    "m=audio 0 RTP/AVP 0",
    "m=video 65535/2 RTP/AVP 96",
    "m=application 9 UDP/BFCP *",
    "m=audio 1 x",
    "a=rtcp:4001",
    "a=rtcp:65535 IN IP4 192.0.2.9",
    "a=rtcp-mux",
    "a=sendonly",
    "a=recvonly",
    "a=inactive",
    "a=sendrecv",
    "a=candidate:1 1 UDP 2130706431 10.0.0.1 4000 typ host",
    "a=ice-ufrag:abcd",
    "a=rtpmap:0 PCMU/8000",
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA",
    "b=AS:64",
    "i=x",
    "x",
    "=",
    "a=",
    "a=rtcp:",
    "",
];
