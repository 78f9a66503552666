use super::*;

fn na(s: &[u8]) -> NameAddr {
    NameAddr::parse(s).unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(s)))
}

#[test]
fn quoted_display_with_escapes_rfc4475_wsinv() {
    let a = na(br#""J Rosenberg \\\""       <sip:jdrosen@example.com> ; tag = 98asjd8"#);
    assert_eq!(a.display_raw(), Some(&br#""J Rosenberg \\\"""#[..]));
    assert_eq!(&a.display_name().unwrap()[..], br#"J Rosenberg \""#);
    assert_eq!(a.uri.as_str(), "sip:jdrosen@example.com");
    assert_eq!(a.tag(), Some("98asjd8"));
    let m = na(br#""Quoted string \"\"" <sip:jdrosen@example.com> ; newparam = newvalue ; secondparam ; q = 0.33"#);
    assert_eq!(&m.display_name().unwrap()[..], br#"Quoted string """#);
    assert_eq!(m.params.get("newparam"), Some(Some("newvalue")));
    assert_eq!(m.params.get("secondparam"), Some(None));
    assert_eq!(m.q(), Some(0.33));
}

#[test]
fn token_display_names() {
    let a = na(b"caller<sip:caller@example.com>;tag=323");
    assert_eq!(&a.display_name().unwrap()[..], b"caller");
    assert_eq!(a.tag(), Some("323"));
    let b = na(b"token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;tag=_token~1'+`*%!-.");
    assert_eq!(
        &b.display_name().unwrap()[..],
        b"token1~` token2'+_ token3*%!.-"
    );
    assert_eq!(b.tag(), Some("_token~1'+`*%!-."));
    let c = na(b"<sip:a@b>");
    assert_eq!(c.display_name(), None);
}

#[test]
fn non_utf8_display_name_kept_as_octets() {
    let raw = b"\"\xff\xfeBob\" <sip:bob@example.com>;tag=1";
    let a = na(raw);
    assert_eq!(&a.display_name().unwrap()[..], b"\xff\xfeBob");
    assert_eq!(a.to_bytes(), raw.to_vec());
    assert_eq!(a.display_name_lossy().unwrap(), "\u{fffd}\u{fffd}Bob");
}

#[test]
fn addr_spec_params_are_header_params_rfc4475_cparam01_02() {
    let c1 = na(b"sip:+19725552222@gw1.example.net;unknownparam");
    assert_eq!(c1.uri.as_str(), "sip:+19725552222@gw1.example.net");
    assert!(c1.params.contains("unknownparam"));
    let c2 = na(b"<sip:+19725552222@gw1.example.net;unknownparam>");
    assert!(c2.uri.has_param("unknownparam"));
    assert!(c2.params.is_empty());
    let ws = na(b"sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n");
    assert_eq!(ws.uri.host(), "chair-dnrc.example.com");
    assert_eq!(ws.tag(), Some("1918181833n"));
}

#[test]
fn quoted_params_and_instance() {
    let c = na(br#"<sip:alice@[2001:db8::1]:5070;ob>;expires=3600;+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";reg-id=1"#);
    assert_eq!(
        c.instance(),
        Some("<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>")
    );
    assert_eq!(c.expires(), Some(3600));
    assert_eq!(c.uri.host(), "[2001:db8::1]");
    let s = na(br#"sip:a@b;+sip.instance="<urn:x>""#);
    assert_eq!(s.instance(), Some("<urn:x>"));
    let big = na(b"<sip:user@host129.example.com>;expires=280297596632815");
    assert_eq!(big.expires(), None, "beyond 2^32-1: treated as absent");
}

#[test]
fn rejects_rfc4475_broken_addresses() {
    let cases: [(&[u8], AddrError); 8] = [
        (
            b"\"Mr. J. User <sip:j.user@example.com>",
            AddrError::UnterminatedQuote,
        ),
        (
            b"Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            AddrError::BadDisplayName,
        ),
        (
            b"\"Watson, Thomas\" < sip:t.watson@example.org >",
            AddrError::Uri(UriError::Scheme),
        ),
        (
            b"sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            AddrError::NeedsAngle,
        ),
        (b"\"Joe\" <sip:joe@example.org>;;;;", AddrError::BadParams),
        (b"\"Joe\" sip:joe@example.org", AddrError::MissingAngle),
        (b"<sip:joe@example.org", AddrError::UnclosedAngle),
        (b"  ", AddrError::Empty),
    ];
    for (raw, want) in cases {
        assert_eq!(
            NameAddr::parse(raw),
            Err(want),
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn display_round_trips() {
    for raw in [
        &br#""A \"B\"" <sip:a@b;lr>;tag=x;q=0.5"#[..],
        b"Bob <sips:bob@[::1]:5061>",
        b"sip:c@d;expires=60",
    ] {
        let a = na(raw);
        assert_eq!(na(&a.to_bytes()), a);
        assert_eq!(na(a.to_string().as_bytes()), a);
    }
    let built = NameAddr::new(Uri::parse("sip:x@y").unwrap()).with_display_name(b"Al \"Q\"");
    assert_eq!(built.to_string(), r#""Al \"Q\"" <sip:x@y>"#);
    assert_eq!(
        &na(built.to_string().as_bytes()).display_name().unwrap()[..],
        br#"Al "Q""#
    );
}

#[test]
fn list_split_keeps_empty_elements() {
    let v: Vec<_> = split_list(br#""a, b" <sip:x@y;p=1,2>;q=1, <sip:z@w>;i="<u,v>",,"#).collect();
    assert_eq!(v.len(), 4);
    assert_eq!(v[1], br#"<sip:z@w>;i="<u,v>""#);
    assert!(v[2].is_empty() && v[3].is_empty());
}
