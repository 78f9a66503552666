//! Round-trip properties of the message layer, on generated input (proptest):
//! - requests and responses with random start lines, header values and bodies survive
//!   `to_bytes` → `parse_datagram` (Content-Length aside, which serialisation adds);
//! - `Via`, `NameAddr` and `Uri` values display to text that parses back to the same value
//!   and the same parts;
//! - any split of a stream of valid messages (with keep-alives between them) yields exactly
//!   those messages from the framer.
//!
//! The fuzz targets (`fuzz/`) check the same round trips from the other side: arbitrary bytes
//! that happen to parse. Here every generated message is valid, so every case checks
//! something.

use bytes::Bytes;
use ferroswitch::sip::{
    parse_datagram, parse_framed, Frame, HeaderName, Message, Method, NameAddr, Params, Request,
    Response, StreamFramer, Uri, Via,
};
use proptest::collection::vec;
use proptest::prelude::*;

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9.!%*_+`'~-]{0,11}"
}

fn domain() -> impl Strategy<Value = String> {
    vec("[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", 1..4).prop_map(|labels| labels.join("."))
}

/// Hosts as written: a domain, an IPv4 address or a bracketed IPv6 reference.
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        domain(),
        any::<[u8; 4]>().prop_map(|o| format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3])),
        any::<[u16; 8]>().prop_map(|s| format!("[{}]", std::net::Ipv6Addr::from(s))),
    ]
}

/// `;name[=value]` parameters with token or quoted values.
fn params() -> impl Strategy<Value = Params> {
    let value = prop_oneof![
        Just(None),
        token().prop_map(Some),
        "[a-zA-Z0-9 ;,:<>@=/-]{0,12}".prop_map(|v| Some(format!("\"{v}\""))),
    ];
    vec((token(), value), 0..4).prop_map(Params::from_pairs)
}

/// Visible ASCII and UTF-8 text, inner spaces and tabs, no CR/LF, nothing to trim.
fn header_value() -> impl Strategy<Value = String> {
    "[!-~\u{a0}-\u{2ff}]([!-~ \t\u{a0}-\u{2ff}]{0,40}[!-~])?"
}

/// sip:/sips: URIs from parts, returned with the parts for checking.
#[derive(Debug, Clone)]
struct UriParts {
    scheme: &'static str,
    user: Option<String>,
    host: String,
    port: Option<u16>,
    params: Vec<(String, Option<String>)>,
}

impl UriParts {
    fn text(&self) -> String {
        let mut s = format!("{}:", self.scheme);
        if let Some(u) = &self.user {
            s.push_str(u);
            s.push('@');
        }
        s.push_str(&self.host);
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        for (k, v) in &self.params {
            s.push(';');
            s.push_str(k);
            if let Some(v) = v {
                s.push('=');
                s.push_str(v);
            }
        }
        s
    }
}

fn uri_parts() -> impl Strategy<Value = UriParts> {
    let user = proptest::option::of("[a-zA-Z0-9+][a-zA-Z0-9._!~*'()&=+$,;?/-]{0,10}");
    let param = (
        "[a-z][a-z0-9-]{0,7}",
        proptest::option::of("[a-zA-Z0-9.-]{1,8}"),
    );
    (
        prop_oneof![Just("sip"), Just("sips")],
        user,
        host(),
        proptest::option::of(1u16..),
        vec(param, 0..3),
    )
        .prop_map(|(scheme, user, host, port, params)| UriParts {
            scheme,
            user,
            host,
            port,
            params,
        })
}

fn via() -> impl Strategy<Value = Via> {
    (
        prop_oneof![
            Just("UDP"),
            Just("TCP"),
            Just("TLS"),
            Just("WS"),
            Just("SCTP")
        ],
        host(),
        proptest::option::of(1u16..),
        params(),
    )
        .prop_map(|(t, host, port, params)| Via {
            transport: t.to_string(),
            host,
            port,
            params,
        })
}

fn name_addr() -> impl Strategy<Value = NameAddr> {
    (
        uri_parts(),
        proptest::option::of("[ -~\u{a0}-\u{2ff}]{1,16}"),
        params(),
    )
        .prop_map(|(u, display, params)| {
            let mut na = NameAddr::new(Uri::parse(&u.text()).expect("generated URI parses"));
            if let Some(d) = display {
                na = na.with_display_name(d.as_bytes());
            }
            na.params = params;
            na
        })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Invite),
        Just(Method::Register),
        Just(Method::Options),
        Just(Method::Bye),
        Just(Method::Ack),
        Just(Method::Message),
        "[A-Z][A-Z0-9_-]{0,9}".prop_map(|m| Method::from_token(&m)),
    ]
}

/// Header names as phones write them: known ones (also compact and odd case) and extensions.
fn header_name() -> impl Strategy<Value = HeaderName> {
    prop_oneof![
        Just("Call-ID"),
        Just("i"),
        Just("subject"),
        Just("USER-AGENT"),
        Just("Allow"),
        Just("Supported"),
        Just("X-Custom"),
    ]
    .prop_map(HeaderName::from_wire)
    .boxed()
    .prop_union(token().prop_map(|n| HeaderName::from_wire(&n)).boxed())
}

fn headers() -> impl Strategy<Value = Vec<(HeaderName, Bytes)>> {
    let typed = prop_oneof![
        via().prop_map(|v| (HeaderName::Via, v.to_string())),
        name_addr().prop_map(|n| (HeaderName::From, n.to_string())),
        name_addr().prop_map(|n| (HeaderName::To, n.to_string())),
        name_addr().prop_map(|n| (HeaderName::Contact, n.to_string())),
        (1u32..).prop_map(|n| (HeaderName::CSeq, format!("{n} INVITE"))),
    ];
    let free = (header_name(), header_value())
        .prop_filter("Content-Length is rewritten", |(n, _)| {
            *n != HeaderName::ContentLength
        });
    vec(prop_oneof![typed, free], 0..12).prop_map(|hs| {
        hs.into_iter()
            .map(|(n, v)| (n, Bytes::from(v.into_bytes())))
            .collect()
    })
}

fn body() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..200).prop_map(Bytes::from)
}

fn request() -> impl Strategy<Value = Request> {
    (method(), uri_parts(), headers(), body()).prop_map(|(m, u, hs, body)| {
        let mut r = Request::new(m, u.text());
        for (n, v) in hs {
            r.headers.push(n, v);
        }
        r.body = body;
        r
    })
}

fn response() -> impl Strategy<Value = Response> {
    (
        100u16..700,
        vec(prop_oneof![0x20u8..0x7f, 0x80u8..=0xff, Just(b'\t')], 0..30),
        headers(),
        body(),
    )
        .prop_map(|(status, reason, hs, body)| {
            let mut r = Response::new(status, reason);
            for (n, v) in hs {
                r.headers.push(n, v);
            }
            r.body = body;
            r
        })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        request().prop_map(Message::Request),
        response().prop_map(Message::Response)
    ]
}

/// What a parse of `m`'s serialisation must give: `m` with the Content-Length it gains.
fn with_content_length(m: &Message) -> Message {
    let mut m = m.clone();
    let len = m.body().len().to_string();
    m.headers_mut().push(HeaderName::ContentLength, len);
    m
}

proptest! {
    #[test]
    fn messages_survive_serialisation(m in message()) {
        let wire = m.to_bytes();
        let parsed = parse_datagram(&wire).expect("our output parses");
        prop_assert_eq!(&parsed, &with_content_length(&m));
        prop_assert_eq!(parsed.to_bytes(), wire.clone());
        // Leading CRLFs (RFC 3261 §7.5) change nothing.
        let mut padded = b"\r\n\r\n".to_vec();
        padded.extend_from_slice(&wire);
        prop_assert_eq!(parse_datagram(&padded).expect("padded parses"), parsed);
    }

    #[test]
    fn via_displays_and_parses_back(v in via()) {
        let text = v.to_string();
        prop_assert_eq!(Via::parse(&text), Some(v), "{}", text);
    }

    #[test]
    fn name_addr_displays_and_parses_back(na in name_addr()) {
        let text = na.to_string();
        prop_assert_eq!(NameAddr::parse(text.as_bytes()).expect("parses"), na.clone());
        prop_assert_eq!(NameAddr::parse(&na.to_bytes()).expect("parses"), na);
    }

    #[test]
    fn non_utf8_display_names_survive_to_bytes(
        u in uri_parts(),
        name in vec(any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'), 1..20),
    ) {
        let na = NameAddr::new(Uri::parse(&u.text()).unwrap()).with_display_name(&name);
        let back = NameAddr::parse(&na.to_bytes()).expect("parses");
        let shown = back.display_name().map(|d| d.into_owned());
        prop_assert_eq!(shown, Some(name.clone()));
        prop_assert_eq!(back, na);
    }

    #[test]
    fn uri_parts_survive_display_and_parse(p in uri_parts()) {
        let text = p.text();
        let uri = Uri::parse(&text).expect("generated URI parses");
        prop_assert_eq!(uri.to_string(), text.clone());
        prop_assert_eq!(Uri::parse(&uri.to_string()).unwrap(), uri.clone());
        prop_assert_eq!(uri.user(), p.user.as_deref());
        prop_assert_eq!(uri.host(), p.host.as_str());
        prop_assert_eq!(uri.port(), p.port);
        for (k, _) in &p.params {
            // The first parameter of a name wins when a name repeats.
            let first = p.params.iter().find(|(k2, _)| k2.eq_ignore_ascii_case(k)).unwrap();
            prop_assert_eq!(uri.param(k), Some(first.1.as_deref()), "{} in {}", k, text);
        }
    }

    #[test]
    fn any_split_of_a_stream_yields_the_same_messages(
        msgs in vec(message(), 1..6),
        keepalives in vec(prop_oneof![Just(&b""[..]), Just(&b"\r\n"[..]), Just(&b"\r\n\r\n"[..])], 6),
        cuts in vec(1usize..300, 1..20),
    ) {
        let wires: Vec<Bytes> = msgs.iter().map(Message::to_bytes).collect();
        let mut stream = Vec::new();
        for (w, k) in wires.iter().zip(&keepalives) {
            stream.extend_from_slice(k);
            stream.extend_from_slice(w);
        }
        let mut f = StreamFramer::default();
        let mut got = Vec::new();
        let (mut pos, mut i) = (0, 0);
        while pos < stream.len() {
            let n = cuts[i % cuts.len()].min(stream.len() - pos);
            i += 1;
            f.push(&stream[pos..pos + n]);
            pos += n;
            while let Some(frame) = f.pop().expect("valid stream") {
                if let Frame::Message(m) = frame {
                    got.push(m);
                }
            }
        }
        prop_assert_eq!(&got, &wires);
        prop_assert_eq!(f.buffered(), 0);
        for (g, m) in got.into_iter().zip(&msgs) {
            prop_assert_eq!(parse_framed(g).expect("framed parses"), with_content_length(m));
        }
    }
}
