use super::*;

fn u(s: &str) -> Uri {
    Uri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn components_and_round_trip() {
    let x = u("sips:alice:secret@Atlanta.example.com:5061;transport=tcp;lr?subject=a%20b&x=y");
    assert_eq!(x.scheme(), &Scheme::Sips);
    assert_eq!(x.user(), Some("alice"));
    assert_eq!(x.password(), Some("secret"));
    assert_eq!(x.host(), "Atlanta.example.com");
    assert_eq!(x.port(), Some(5061));
    assert_eq!(x.transport(), Some("tcp"));
    assert_eq!(x.param("LR"), Some(None));
    assert_eq!(x.headers(), Some("subject=a%20b&x=y"));
    assert_eq!(x.header_pairs().count(), 2);
    assert_eq!(
        x.to_string(),
        "sips:alice:secret@Atlanta.example.com:5061;transport=tcp;lr?subject=a%20b&x=y"
    );
    let h = u("sip:example.com");
    assert_eq!((h.user(), h.host(), h.port()), (None, "example.com", None));
    assert_eq!(h.params().count(), 0);
}

#[test]
fn semicolon_in_user_part_rfc4475_semiuri() {
    let x = u("sip:user;par=u%40example.net@example.com");
    assert_eq!(x.user(), Some("user;par=u%40example.net"));
    assert_eq!(x.host(), "example.com");
    assert_eq!(x.params().count(), 0);
    assert_eq!(&x.decoded_user().unwrap()[..], b"user;par=u@example.net");
}

#[test]
fn escapes_decode_once_rfc4475_esc01() {
    let x = u("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31");
    assert_eq!(&x.decoded_user().unwrap()[..], b"caller");
    let (k, v) = x.params().nth(1).unwrap();
    assert_eq!(&percent_decode(k)[..], b"name");
    assert_eq!(&percent_decode(v.unwrap())[..], b"value%41");
    let n = u("sip:null-%00-null@example.com");
    assert_eq!(&n.decoded_user().unwrap()[..], b"null-\0-null");
    assert!(Uri::parse("sip:a%4@b").is_err());
    assert!(Uri::parse("sip:a%zz@b").is_err());
}

#[test]
fn ipv6_brackets_kept_rfc5118() {
    let x = u("sip:[2001:db8::10]:5070;transport=udp");
    assert_eq!(x.host(), "[2001:db8::10]");
    assert_eq!(x.port(), Some(5070));
    assert_eq!(x.host_ip(), Some("2001:db8::10".parse().unwrap()));
    assert_eq!(x.to_string(), "sip:[2001:db8::10]:5070;transport=udp");
    let amb = u("sip:[2001:db8::10:5070]");
    assert_eq!((amb.host(), amb.port()), ("[2001:db8::10:5070]", None));
    let three = u("sip:[2001:db8:::192.0.2.1]");
    assert_eq!(
        three.host_ip(),
        None,
        "tolerated but not an RFC 4291 address"
    );
    assert_eq!(Uri::parse("sip:2001:db8::10"), Err(UriError::Port));
    assert!(Uri::parse("sip:[2001:db8::10").is_err());
    assert!(Uri::parse("sip:[zz]").is_err());
}

#[test]
fn unusual_but_legal_rfc4475_intmeth() {
    let s = "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com";
    let x = u(s);
    assert_eq!(
        x.user(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        x.password(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(x.host(), "example.com");
    assert_eq!(x.as_str(), s);
}

#[test]
fn tel_and_opaque_schemes() {
    let t = u("tel:+1-201-555-0123;phone-context=example.com");
    assert_eq!(t.scheme(), &Scheme::Tel);
    assert_eq!(t.user(), Some("+1-201-555-0123"));
    assert_eq!(t.param("phone-context"), Some(Some("example.com")));
    for s in [
        "nobodyKnowsThisScheme:totallyopaquecontent",
        "soap.beep://192.0.2.103:3002",
        "isbn:2983792873",
        "http://www.example.com",
        "name:John_Smith",
    ] {
        let x = u(s);
        assert!(!x.is_sip(), "{s}");
        assert!(matches!(x.scheme(), Scheme::Other(_)));
        assert_eq!(x.to_string(), s);
    }
    assert_eq!(u("SIP:a@b").scheme(), &Scheme::Sip);
}

#[test]
fn rejects_broken_uris() {
    for s in [
        "",
        "nocolon",
        "1sip:a@b",
        "sip:",
        "sip:@host",
        "sip:a@",
        "sip:a@b:",
        "sip:a@b:99999",
        "sip:a@b;",
        "sip:a@b;;x",
        "sip:a@b;x=",
        "sip:a@b c",
        "sip:a@b?x",
        "sip:a b@c",
        "sip:<a@b>",
        "tel:",
        "foo:<x>",
    ] {
        assert!(Uri::parse(s).is_err(), "{s:?} should fail");
    }
}

#[test]
fn with_param_keeps_the_rest() {
    let x = u("sip:%61b@[::1]:5060;transport=udp?h=v");
    let y = x.with_param("lr", None).unwrap();
    assert_eq!(y.as_str(), "sip:%61b@[::1]:5060;transport=udp;lr?h=v");
    let z = y.with_param("TRANSPORT", Some("tcp")).unwrap();
    assert_eq!(z.as_str(), "sip:%61b@[::1]:5060;lr;TRANSPORT=tcp?h=v");
}

#[test]
fn equivalence_examples_of_rfc3261_19_1_4() {
    let eq = |a: &str, b: &str| u(a).equivalent(&u(b)) && u(b).equivalent(&u(a));
    assert!(eq(
        "sip:%61lice@atlanta.com;transport=TCP",
        "sip:alice@AtLanTa.CoM;Transport=tcp"
    ));
    assert!(eq(
        "sip:carol@chicago.com",
        "sip:carol@chicago.com;newparam=5"
    ));
    assert!(eq(
        "sip:carol@chicago.com",
        "sip:carol@chicago.com;security=on"
    ));
    assert!(eq(
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
    ));
    assert!(eq(
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x"
    ));
    assert!(eq("sip:a@[::1]", "sip:a@[0:0::1]"));
    assert!(!eq(
        "SIP:ALICE@AtLanTa.CoM;Transport=udp",
        "sip:alice@AtLanTa.CoM;Transport=UDP"
    ));
    assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
    assert!(!eq(
        "sip:bob@biloxi.com",
        "sip:bob@biloxi.com;transport=udp"
    ));
    assert!(!eq(
        "sip:bob@biloxi.com",
        "sip:bob@biloxi.com:6000;transport=tcp"
    ));
    assert!(!eq(
        "sip:carol@chicago.com",
        "sip:carol@chicago.com?Subject=next%20meeting"
    ));
    assert!(!eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
    assert!(!eq(
        "sip:carol@chicago.com;security=on",
        "sip:carol@chicago.com;security=off"
    ));
    assert!(!eq("sip:a@b", "sips:a@b"));
}
