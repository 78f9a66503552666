//! RFC 4475 torture tests: every message of `tests/data/rfc4475/manifest.tsv` gets the
//! outcome the RFC names (parse, reject at parse, or the response `validate` chooses), and the
//! fields each §3.1.1 message is about come out right.

mod sip_util;

use ferroswitch::sip::{
    check_max_forwards, parse_datagram, validate_register, validate_request, validate_response,
    Contact, Frame, FrameError, HeaderError, HeaderName, Message, Method, ParseError, Policy,
    Rejection, Scheme, StreamFramer, UriError,
};
use sip_util::{data, manifest, parse, request, response};

#[derive(Debug, PartialEq)]
enum Expect {
    /// Parses; a request passes `validate_request`, a response `validate_response`.
    Valid,
    /// `parse_datagram` fails this way.
    Parse(ParseError),
    /// Parses; `validate_request` answers this status.
    Reject(u16),
    /// Parses; `validate_response` says to drop it.
    Drop,
}

/// What we do with each file, decided from the RFC text (see manifest.tsv).
fn expect(file: &str) -> Expect {
    use Expect::*;
    match file {
        // 3.1.1: valid.
        "wsinv.dat" | "intmeth.dat" | "esc01.dat" | "escnull.dat" | "esc02.dat" | "lwsdisp.dat"
        | "longreq.dat" | "dblreq.dat" | "semiuri.dat" | "transports.dat" | "mpart01.dat"
        | "unreason.dat" | "noreason.dat" => Valid,
        // 3.1.2: invalid.
        "clerr.dat" => Parse(ParseError::BodyTruncated),
        "ncl.dat" => Parse(ParseError::BadContentLength),
        "ltgtruri.dat" | "lwsruri.dat" | "lwsstart.dat" | "trws.dat" => {
            Parse(ParseError::BadStartLine("request-uri"))
        }
        "bigcode.dat" => Parse(ParseError::BadStartLine("status code")),
        "badinv01.dat" | "scalar02.dat" | "quotbal.dat" | "escruri.dat" | "regbadct.dat"
        | "badaspec.dat" | "baddn.dat" | "mismatch01.dat" | "mismatch02.dat" => Reject(400),
        "badvers.dat" => Reject(505),
        "scalarlg.dat" => Drop,
        // The RFC lets an element ignore a Date it does not use; we forward it unchanged.
        "baddate.dat" => Valid,
        // 3.2 - 3.4: well-formed; the application decides.
        "badbranch.dat" | "unksm2.dat" | "invut.dat" | "regaut01.dat" | "bcast.dat"
        | "zeromf.dat" | "cparam01.dat" | "cparam02.dat" | "regescrt.dat" | "sdp01.dat"
        | "inv2543.dat" => Valid,
        "bext01.dat" => Reject(420),
        "insuf.dat" | "multi01.dat" => Reject(400),
        "unkscm.dat" | "novelsc.dat" => Reject(416),
        "mcl01.dat" => Parse(ParseError::MultipleContentLength),
        other => panic!("{other} has no expectation"),
    }
}

/// The option tags a UAS would support: none of bext01's.
const UAS: Policy<'static> = Policy {
    supported: &["100rel", "timer", "path"],
    proxy: false,
    accepted_bodies: None,
};

fn outcome(raw: &[u8]) -> Expect {
    match parse_datagram(raw) {
        Err(e) => Expect::Parse(match e {
            // Which start-line part is named does not matter, only that it is the start line.
            ParseError::BadStartLine(_) if raw.starts_with(b"SIP/") => {
                ParseError::BadStartLine("status code")
            }
            ParseError::BadStartLine(_) => ParseError::BadStartLine("request-uri"),
            e => e,
        }),
        Ok(Message::Request(r)) => match validate_request(&r, &UAS) {
            Ok(()) => Expect::Valid,
            Err(rej) => Expect::Reject(rej.status()),
        },
        Ok(Message::Response(r)) => match validate_response(&r) {
            Ok(()) => Expect::Valid,
            Err(_) => Expect::Drop,
        },
    }
}

#[test]
fn every_manifest_message_gets_its_outcome() {
    let rows = manifest("rfc4475");
    assert_eq!(rows.len(), 49);
    let mut seen = 0;
    for (file, section, class) in &rows {
        let want = expect(file);
        if class == "valid" {
            assert_eq!(
                want,
                Expect::Valid,
                "{file} ({section}) is valid per the manifest"
            );
        }
        if class == "invalid" && *file != "baddate.dat" {
            assert_ne!(want, Expect::Valid, "{file} ({section}) must be refused");
        }
        let raw = data(&format!("rfc4475/{file}"));
        assert_eq!(outcome(&raw), want, "{file} ({section})");
        seen += 1;
    }
    assert_eq!(seen, 49);
    // The archive's stray 50th file (no SIP version) is refused too.
    assert!(parse_datagram(&data("rfc4475/archive-extra/test.dat")).is_err());
}

#[test]
fn wsinv_short_tortuous_invite() {
    let r = request("rfc4475/wsinv.dat");
    let h = &r.headers;
    assert_eq!(r.method, Method::Invite);
    assert_eq!(h.max_forwards(), Some(68));
    let c = h.core().unwrap();
    assert_eq!((c.cseq.seq, &c.cseq.method), (9, &Method::Invite));
    assert_eq!(c.call_id, "wsinv.ndaksdj@192.0.2.1");
    assert_eq!(c.to.tag(), Some("1918181833n"));
    assert_eq!(c.to.uri.as_str(), "sip:vivekg@chair-dnrc.example.com");
    assert_eq!(&c.from.display_name().unwrap()[..], br#"J Rosenberg \""#);
    assert_eq!(c.from.tag(), Some("98asjd8"));
    assert_eq!(
        (c.via.host.as_str(), c.via.branch()),
        ("192.0.2.2", Some("390skdjuw"))
    );
    let vias = h.try_vias().unwrap();
    let sent: Vec<_> = vias
        .iter()
        .map(|v| (v.transport.as_str(), v.host.as_str()))
        .collect();
    assert_eq!(
        sent,
        [
            ("UDP", "192.0.2.2"),
            ("TCP", "spindle.example.com"),
            ("UDP", "192.168.255.111")
        ]
    );
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(h.get_str(&HeaderName::Subject), Some(""));
    let other = |n: &str| h.get_str(&HeaderName::from_wire(n)).unwrap().to_string();
    assert_eq!(
        other("NewFangledHeader"),
        "newfangled value continued newfangled value"
    );
    assert_eq!(other("UnknownHeaderWithUnusualValue"), ";;,,;;,;");
    let m = &h.contacts().unwrap()[0];
    let m = m.address().unwrap();
    assert_eq!(&m.display_name().unwrap()[..], br#"Quoted string """#);
    assert_eq!(m.params.get("newparam"), Some(Some("newvalue")));
    assert_eq!(m.q(), Some(0.33));
    let route = &h.routes().unwrap()[0];
    assert_eq!(route.uri.param("unknownwith"), Some(Some("value")));
    assert!(route.uri.has_param("unknown-no-value"));
    assert_eq!(r.request_uri().unwrap().param("unknownparam"), Some(None));
    assert_eq!(r.body.len(), 150);
    assert!(r.body.starts_with(b"v=0\r\n"));
}

#[test]
fn intmeth_wide_range_of_valid_characters() {
    let r = request("rfc4475/intmeth.dat");
    let m = "!interesting-Method0123456789_*+`.%indeed'~";
    assert_eq!(r.method, Method::Other(m.into()));
    assert!(!r.method.is_known(), "the UAS answers 501");
    let u = r.request_uri().unwrap();
    assert_eq!(
        u.user(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        u.password(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    let c = r.headers.core().unwrap();
    assert_eq!(
        &c.to.display_name().unwrap()[..],
        b"BEL:\x07 NUL:\x00 DEL:\x7f"
    );
    assert_eq!(
        &c.from.display_name().unwrap()[..],
        b"token1~` token2'+_ token3*%!.-"
    );
    assert_eq!(
        c.from.params.get_unquoted("fromParam''~+*_!.-%"),
        Some("работающий")
    );
    assert_eq!(c.from.tag(), Some("_token~1'+`*%!-."));
    assert_eq!(c.call_id, r#"intmeth.word%ZK-!.*_+'@word`~)(><:\/"][?}{"#);
    assert_eq!(c.cseq.method, Method::Other(m.into()));
    assert_eq!(c.via.branch(), Some("z9hG4bK-.!%66*_+`'~"));
    let ext = HeaderName::from_wire("extensionHeader-!.%*+_`'~");
    assert_eq!(r.headers.get_str(&ext), Some("\u{feff}大停電"));
    assert_eq!(r.headers.max_forwards(), Some(255));
}

#[test]
fn esc01_escapes_decode_once() {
    let r = request("rfc4475/esc01.dat");
    let u = r.request_uri().unwrap();
    assert_eq!(&u.decoded_user().unwrap()[..], b"sips:user@example.com");
    assert_eq!(u.host(), "example.net");
    let h = &r.headers;
    assert_eq!(&h.to().unwrap().uri.decoded_user().unwrap()[..], b"user");
    assert_eq!(
        &h.from().unwrap().uri.decoded_user().unwrap()[..],
        b"I have spaces"
    );
    let contact = h.contacts().unwrap().remove(0);
    let cu = &contact.address().unwrap().uri;
    assert_eq!(&cu.decoded_user().unwrap()[..], b"caller");
    let params: Vec<_> = cu
        .params()
        .map(|(k, v)| {
            let dec = |s: &str| ferroswitch::sip::uri::percent_decode(s).into_owned();
            (dec(k), v.map(dec))
        })
        .collect();
    assert_eq!(params[0], (b"lr".to_vec(), None));
    assert_eq!(params[1], (b"name".to_vec(), Some(b"value%41".to_vec())));
    assert_eq!(
        cu.as_str(),
        "sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31"
    );
}

#[test]
fn escnull_two_distinct_contacts() {
    let r = request("rfc4475/escnull.dat");
    assert_eq!(r.method, Method::Register);
    let to = r.headers.to().unwrap();
    assert_eq!(&to.uri.decoded_user().unwrap()[..], b"null-\0-null");
    let cs = r.headers.contacts().unwrap();
    assert_eq!(cs.len(), 2);
    let (a, b) = (&cs[0].address().unwrap().uri, &cs[1].address().unwrap().uri);
    assert_eq!(&a.decoded_user().unwrap()[..], b"\0");
    assert_eq!(&b.decoded_user().unwrap()[..], b"\0\0");
    assert!(!a.equivalent(b), "distinct bindings");
}

#[test]
fn esc02_percent_that_is_not_an_escape() {
    let r = request("rfc4475/esc02.dat");
    assert_eq!(r.method, Method::Other("RE%47IST%45R".into()));
    assert_ne!(r.method, Method::Register, "must not register");
    let c = r.headers.core().unwrap();
    assert_eq!(&c.to.display_name().unwrap()[..], b"%Z%45");
    assert_eq!(c.via.branch(), Some("z9hG4bK209%fzsnel234"));
    let hosts: Vec<_> = r
        .headers
        .contacts()
        .unwrap()
        .iter()
        .map(|c| c.address().unwrap().uri.host().to_string())
        .collect();
    assert_eq!(hosts, ["host1.example.com", "host3.example.com"]);
    let escaped = HeaderName::from_wire("C%6Fntact");
    assert_eq!(
        r.headers.get_str(&escaped),
        Some("<sip:alias2@host2.example.com>")
    );
}

#[test]
fn lwsdisp_longreq_dblreq_semiuri_transports() {
    let from = request("rfc4475/lwsdisp.dat").headers.from().unwrap();
    assert_eq!(&from.display_name().unwrap()[..], b"caller");

    let long = request("rfc4475/longreq.dat");
    assert_eq!(long.headers.try_vias().unwrap().len(), 34);
    let c = long.headers.core().unwrap();
    assert_eq!(c.via.host, "sip33.example.com");
    let name = c.to.display_name_lossy().unwrap();
    assert_eq!(
        name,
        format!("I have a user name of {} proportion", "extreme".repeat(10))
    );
    assert_eq!(c.to.uri.port(), Some(6000));
    let no_value = format!("very{}ParameterNameWithNoValue", "long".repeat(25));
    assert_eq!(c.to.uri.param(&no_value), Some(None));
    assert_eq!(c.to.uri.params().count(), 3);
    assert_eq!(c.call_id.len(), 141);
    assert!(c.from.tag().unwrap().len() > 150);
    let vias = long.headers.try_vias().unwrap();
    assert_eq!(vias[33].received(), Some("192.0.2.5"));
    assert_eq!(long.body.len(), 150);

    let dbl = request("rfc4475/dblreq.dat");
    assert_eq!(dbl.method, Method::Register);
    assert!(
        dbl.body.is_empty(),
        "the INVITE after the REGISTER is discarded"
    );
    assert_eq!(
        dbl.headers.call_id(),
        Some("dblreq.0ha0isndaksdj99sdfafnl3lk233412")
    );
    assert_eq!(dbl.headers.count(&HeaderName::Via), 1);

    let semi = request("rfc4475/semiuri.dat");
    let u = semi.request_uri().unwrap();
    assert_eq!(u.user(), Some("user;par=u%40example.net"));
    assert_eq!((u.host(), u.params().count()), ("example.com", 0));
    let accept: Vec<_> = semi.headers.tokens(&HeaderName::Accept).collect();
    assert_eq!(accept.len(), 6);
    assert_eq!(accept[5], "message/sipfrag");

    let t = request("rfc4475/transports.dat");
    let ts: Vec<_> = t
        .headers
        .try_vias()
        .unwrap()
        .into_iter()
        .map(|v| v.transport)
        .collect();
    assert_eq!(ts, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
}

#[test]
fn mpart01_body_is_octets() {
    let raw = data("rfc4475/mpart01.dat");
    let r = request("rfc4475/mpart01.dat");
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(r.body.len(), 553);
    assert_eq!(&r.body[..], &raw[head_end..head_end + 553]);
    assert!(
        std::str::from_utf8(&r.body).is_err(),
        "binary S/MIME part kept as octets"
    );
    let ct = r.headers.content_type().unwrap();
    assert!(ct.is("multipart/mixed"));
    assert_eq!(ct.params.get("boundary"), Some(Some("7a9cbec02ceef655")));
}

#[test]
fn unreason_and_noreason_phrases() {
    let raw = data("rfc4475/unreason.dat");
    let first_line = &raw[..raw.windows(2).position(|w| w == b"\r\n").unwrap()];
    let r = response("rfc4475/unreason.dat");
    assert_eq!(r.status, 200);
    assert_eq!(&r.reason[..], &first_line[b"SIP/2.0 200 ".len()..]);
    let phrase = std::str::from_utf8(&r.reason).unwrap();
    assert!(phrase.starts_with("= 2**3 * 5**2 но"));
    assert_eq!(r.body.len(), 154);
    let n = response("rfc4475/noreason.dat");
    assert_eq!((n.status, n.reason.len()), (100, 0));
}

#[test]
fn invalid_messages_are_refused_for_the_right_reason() {
    let rej = |f: &str| validate_request(&request(&format!("rfc4475/{f}")), &UAS).unwrap_err();
    let malformed = |f: &str, name: HeaderName| match rej(f) {
        Rejection::BadHeader(HeaderError::Malformed(n, _)) => assert_eq!(n, name, "{f}"),
        other => panic!("{f}: {other:?}"),
    };
    malformed("badinv01.dat", HeaderName::Via);
    malformed("scalar02.dat", HeaderName::CSeq);
    malformed("quotbal.dat", HeaderName::To);
    malformed("badaspec.dat", HeaderName::To);
    malformed("baddn.dat", HeaderName::From);
    malformed("regbadct.dat", HeaderName::Contact);
    assert_eq!(rej("escruri.dat"), Rejection::RequestUriHeaders);
    assert_eq!(
        rej("badvers.dat"),
        Rejection::VersionNotSupported("SIP/7.0".into())
    );
    assert_eq!(
        rej("mismatch01.dat"),
        Rejection::MethodMismatch {
            method: Method::Options,
            cseq: Method::Invite
        }
    );
    assert_eq!(
        rej("mismatch02.dat"),
        Rejection::MethodMismatch {
            method: Method::Other("NEWMETHOD".into()),
            cseq: Method::Invite
        }
    );
    let s2 = request("rfc4475/scalar02.dat");
    assert_eq!(s2.headers.max_forwards(), Some(300));
    assert_eq!(
        s2.headers.expires(),
        None,
        "beyond 2^32-1: the registrar's default applies"
    );
    assert_eq!(
        s2.headers.contacts().unwrap()[0]
            .address()
            .unwrap()
            .expires(),
        None
    );
    let lg = response("rfc4475/scalarlg.dat");
    assert!(validate_response(&lg).is_err());
    assert_eq!(lg.status, 503);
    let date = request("rfc4475/baddate.dat");
    assert_eq!(
        date.headers.get_str(&HeaderName::Date),
        Some("Fri, 01 Jan 2010 16:00:00 EST")
    );
    assert!(date
        .to_bytes()
        .windows(29)
        .any(|w| w == b"Fri, 01 Jan 2010 16:00:00 EST"));
}

#[test]
fn content_length_errors_on_a_stream() {
    let frame = |f: &str| {
        let mut fr = StreamFramer::default();
        fr.push(&data(&format!("rfc4475/{f}")));
        fr.pop()
    };
    assert_eq!(
        frame("clerr.dat"),
        Ok(None),
        "TCP can only wait for the 9999 octets"
    );
    assert_eq!(frame("ncl.dat"), Err(FrameError::BadContentLength));
    assert_eq!(frame("mcl01.dat"), Err(FrameError::MultipleContentLength));
    assert!(matches!(frame("wsinv.dat"), Ok(Some(Frame::Message(_)))));
}

#[test]
fn application_semantics_sections_3_2_to_3_4() {
    let r = |f: &str| request(&format!("rfc4475/{f}"));
    assert!(!r("badbranch.dat")
        .headers
        .top_via()
        .unwrap()
        .has_rfc3261_branch());
    let insuf = validate_request(&r("insuf.dat"), &UAS).unwrap_err();
    assert!(matches!(
        insuf,
        Rejection::BadHeader(HeaderError::Missing(_))
    ));
    let unk = validate_request(&r("unkscm.dat"), &UAS).unwrap_err();
    assert_eq!(
        unk,
        Rejection::UnsupportedScheme("nobodyKnowsThisScheme".into())
    );
    assert_eq!(
        r("novelsc.dat").request_uri().unwrap().scheme(),
        &Scheme::Other("soap.beep".into())
    );

    let unksm2 = r("unksm2.dat");
    assert_eq!(
        unksm2.headers.to().unwrap().uri.scheme(),
        &Scheme::Other("isbn".into())
    );
    assert_eq!(
        unksm2.headers.from().unwrap().uri.as_str(),
        "http://www.example.com"
    );
    assert_eq!(validate_register(&unksm2).unwrap_err().status(), 400);

    let bext = r("bext01.dat");
    let e = validate_request(&bext, &UAS).unwrap_err();
    let resp = e.response_to(&bext, &UAS, Some("x"));
    assert_eq!(resp.status, 420);
    assert_eq!(
        resp.headers.get_str(&HeaderName::Unsupported),
        Some("nothingSupportsThis, nothingSupportsThisEither")
    );
    let proxy = Policy { proxy: true, ..UAS };
    assert_eq!(
        validate_request(&bext, &proxy),
        Err(Rejection::BadExtension(vec![
            "noProxiesSupportThis".into(),
            "norDoAnyProxiesSupportThis".into()
        ]))
    );

    let invut = r("invut.dat");
    let sdp_only = Policy {
        accepted_bodies: Some(&["application/sdp"]),
        ..UAS
    };
    let e = validate_request(&invut, &sdp_only).unwrap_err();
    assert_eq!(e.status(), 415);
    let resp = e.response_to(&invut, &sdp_only, None);
    assert_eq!(
        resp.headers.get_str(&HeaderName::Accept),
        Some("application/sdp")
    );

    let regaut = r("regaut01.dat");
    assert_eq!(
        regaut.headers.get_str(&HeaderName::Authorization),
        Some("NoOneKnowsThisScheme opaque-data=here")
    );
    assert_eq!(validate_register(&regaut), Ok(()));

    let multi = validate_request(&r("multi01.dat"), &UAS).unwrap_err();
    assert!(matches!(
        multi,
        Rejection::BadHeader(HeaderError::Multiple(_))
    ));

    let bcast = response("rfc4475/bcast.dat");
    assert_eq!(bcast.headers.vias()[1].host, "255.255.255.255");

    let zero = r("zeromf.dat");
    assert_eq!(check_max_forwards(&zero).unwrap_err().status(), 483);

    let c1 = r("cparam01.dat").headers.contacts().unwrap().remove(0);
    let c1 = c1.address().unwrap();
    assert_eq!(c1.uri.as_str(), "sip:+19725552222@gw1.example.net");
    assert!(c1.params.contains("unknownparam"));
    let c2 = r("cparam02.dat").headers.contacts().unwrap().remove(0);
    assert_eq!(
        c2.address().unwrap().uri.as_str(),
        "sip:+19725552222@gw1.example.net;unknownparam"
    );
    let esc = r("regescrt.dat").headers.contacts().unwrap().remove(0);
    let Contact::Address(esc) = esc else {
        panic!("wildcard")
    };
    assert_eq!(esc.uri.headers(), Some("Route=%3Csip:sip.example.com%3E"));
    assert_eq!(validate_register(&r("regescrt.dat")), Ok(()));

    assert!(
        !r("sdp01.dat").headers.accepts("application/sdp"),
        "UAS may answer 406"
    );

    let old = r("inv2543.dat");
    let raw = data("rfc4475/inv2543.dat");
    assert!(
        raw.ends_with(&old.body),
        "no Content-Length: body runs to the datagram end"
    );
    assert!(!old.body.is_empty());
    assert_eq!(old.headers.max_forwards(), None);
    assert_eq!(old.headers.from().unwrap().tag(), None);
    assert_eq!(old.headers.top_via().unwrap().branch(), None);
}

#[test]
fn uri_errors_are_typed() {
    let ipv6_bad = "sip:2001:db8::10";
    assert_eq!(ferroswitch::sip::Uri::parse(ipv6_bad), Err(UriError::Port));
    assert!(parse("rfc4475/wsinv.dat").as_request().is_some());
}
