use super::*;
use crate::auth::digest::Algorithm;
use crate::sip::Method;
use std::collections::HashMap;

fn creds(user: &str, pw: &str) -> UacCredentials {
    UacCredentials {
        username: user.into(),
        password: pw.into(),
        realm: None,
    }
}

fn register() -> Request {
    let mut r = Request::new(Method::Register, "sip:sip.example.net");
    r.headers.push(
        HeaderName::Via,
        "SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bKfirst",
    );
    r.headers.push(HeaderName::MaxForwards, "70");
    r.headers
        .push(HeaderName::From, "<sip:acct@sip.example.net>;tag=f1");
    r.headers.push(HeaderName::To, "<sip:acct@sip.example.net>");
    r.headers.push(HeaderName::CallId, "c1@192.0.2.10");
    r.headers.push(HeaderName::CSeq, "7 REGISTER");
    r
}

fn challenge(status: u16, values: &[&str]) -> Response {
    let mut resp = Response::new(status, "");
    let name = if status == 407 {
        HeaderName::ProxyAuthenticate
    } else {
        HeaderName::WwwAuthenticate
    };
    for v in values {
        resp.headers.push(name.clone(), v.to_string());
    }
    resp
}

fn digest_of(value: &str) -> DigestCredentials {
    match parse_credentials(value) {
        Ok(Credentials::Digest(c)) => c,
        other => panic!("not digest credentials: {other:?} from {value}"),
    }
}

fn rows() -> Vec<HashMap<String, String>> {
    let text = include_str!("../../tests/data/digest_vectors.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            header
                .iter()
                .zip(l.split('\t'))
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect()
        })
        .collect()
}

/// Every vector that must verify, fed in as a challenge: our answer carries its response.
/// Rows with `nc=00000002` are answered once, then reused preemptively.
#[test]
fn answers_reproduce_the_digest_vectors() {
    let mut checked = 0;
    for row in rows() {
        if row["must_verify"] != "yes" {
            continue;
        }
        let mut ch = format!(
            "Digest realm={}, nonce={}, algorithm={}",
            crate::auth::params::quote(&row["realm"]),
            crate::auth::params::quote(&row["nonce"]),
            row["algorithm"]
        );
        if !row["qop"].is_empty() {
            ch.push_str(&format!(", qop=\"{}\"", row["qop"]));
        }
        if !row["opaque"].is_empty() {
            ch.push_str(&format!(", opaque=\"{}\"", row["opaque"]));
        }
        if !row["userhash"].is_empty() {
            ch.push_str(", userhash=true");
        }
        let mut req = Request::new(
            Method::from_token(&row["method"]),
            row["digest_uri"].clone(),
        );
        req.headers
            .push(HeaderName::CSeq, format!("1 {}", row["method"]));
        let mut auth = UacAuth::default();
        let c = creds(&row["username"], &row["password"]);
        let (name, mut value) = auth
            .answer(&c, &req, &challenge(401, &[&ch]), &row["cnonce"])
            .unwrap_or_else(|e| panic!("{}: {e}", row["id"]));
        assert_eq!(name, HeaderName::Authorization);
        if row["nc"] == "00000002" {
            (_, value) = auth
                .preemptive(&c, &row["method"], &row["digest_uri"], b"", &row["cnonce"])
                .unwrap();
        }
        let d = digest_of(&value);
        assert_eq!(d.response, row["expected_response"], "{}", row["id"]);
        assert_eq!(d.uri, row["digest_uri"]);
        if !row["nc"].is_empty() {
            assert_eq!(d.nc.unwrap().text, row["nc"], "{}", row["id"]);
        }
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} rows checked");
}

const MD5_CH: &str = r#"Digest realm="sip.example.net", nonce="n1", algorithm=MD5, qop="auth""#;

#[test]
fn nc_counts_on_one_nonce_and_restarts_on_a_new_one() {
    let c = creds("acct", "pw");
    let mut auth = UacAuth::default();
    let req = register();
    let (_, v) = auth
        .answer(&c, &req, &challenge(401, &[MD5_CH]), "cn")
        .unwrap();
    assert_eq!(digest_of(&v).nc.unwrap().text, "00000001");
    let (name, v) = auth
        .preemptive(&c, "REGISTER", "sip:sip.example.net", b"", "cn2")
        .unwrap();
    assert_eq!(name, HeaderName::Authorization);
    assert_eq!(digest_of(&v).nc.unwrap().text, "00000002");
    let v = &auth.preemptive_all(&c, "REGISTER", "sip:sip.example.net", b"", "cn3")[0].1;
    assert_eq!(digest_of(v).nc.unwrap().text, "00000003");
    // The reused nonce expired: a stale challenge with a new nonce starts again at 1.
    let sent = retry(&req, (HeaderName::Authorization, v.clone()), "z9hG4bKx");
    let stale = r#"Digest realm="sip.example.net", nonce="n2", stale=true, qop="auth""#;
    let (_, v) = auth
        .answer(&c, &sent, &challenge(401, &[stale]), "cn4")
        .unwrap();
    let d = digest_of(&v);
    assert_eq!(
        (d.nonce.as_str(), d.nc.unwrap().text.as_str()),
        ("n2", "00000001")
    );
}

#[test]
fn a_second_challenge_on_the_same_nonce_gives_up() {
    let c = creds("acct", "Xyzzy-42");
    let mut auth = UacAuth::default();
    let first = register();
    let h = auth
        .answer(&c, &first, &challenge(401, &[MD5_CH]), "cn")
        .unwrap();
    let second = retry(&first, h, "z9hG4bK2");
    let err = auth
        .answer(&c, &second, &challenge(401, &[MD5_CH]), "cn")
        .unwrap_err();
    assert!(matches!(err, UacAuthError::Rejected { ref realm, .. } if realm == "sip.example.net"));
    assert!(
        !err.to_string().contains("Xyzzy-42"),
        "no password in {err}"
    );
}

#[test]
fn a_new_nonce_without_stale_after_a_fresh_answer_gives_up_but_stale_retries() {
    let c = creds("acct", "pw");
    let mut auth = UacAuth::default();
    let first = register();
    let h = auth
        .answer(&c, &first, &challenge(401, &[MD5_CH]), "cn")
        .unwrap();
    let second = retry(&first, h, "z9hG4bK2");
    // pjsip answers a wrong password with a fresh nonce and no stale: not another loop.
    let n2 = r#"Digest realm="sip.example.net", nonce="n2", qop="auth""#;
    assert!(matches!(
        auth.clone()
            .answer(&c, &second, &challenge(401, &[n2]), "cn"),
        Err(UacAuthError::Rejected { .. })
    ));
    // stale=true: the answer was right, the nonce old; retry, up to MAX_STALE_IN_A_ROW.
    let mut req = second;
    for i in 0..MAX_STALE_IN_A_ROW {
        let ch = format!(r#"Digest realm="sip.example.net", nonce="s{i}", stale=true"#);
        let h = auth
            .answer(&c, &req, &challenge(401, &[&ch]), "cn")
            .unwrap();
        req = retry(&req, h, &format!("z9hG4bKs{i}"));
    }
    let ch = r#"Digest realm="sip.example.net", nonce="s9", stale=TRUE"#;
    assert!(matches!(
        auth.answer(&c, &req, &challenge(401, &[ch]), "cn"),
        Err(UacAuthError::TooManyStale(_))
    ));
}

#[test]
fn a_new_nonce_after_a_preemptive_answer_is_answered() {
    let c = creds("acct", "pw");
    let mut auth = UacAuth::default();
    auth.answer(&c, &register(), &challenge(401, &[MD5_CH]), "cn")
        .unwrap();
    let h = auth
        .preemptive(&c, "REGISTER", "sip:sip.example.net", b"", "cn")
        .unwrap();
    let mut refresh = register();
    refresh.headers.push(h.0, h.1);
    let n2 = r#"Digest realm="sip.example.net", nonce="n2", qop="auth""#;
    let (_, v) = auth
        .answer(&c, &refresh, &challenge(401, &[n2]), "cn")
        .unwrap();
    assert_eq!(digest_of(&v).nonce, "n2");
}

#[test]
fn the_realm_filter_refuses_other_realms() {
    let mut c = creds("acct", "pw");
    c.realm = Some("provider.example".into());
    let err = UacAuth::default()
        .answer(&c, &register(), &challenge(401, &[MD5_CH]), "cn")
        .unwrap_err();
    assert_eq!(
        err,
        UacAuthError::RealmMismatch {
            wanted: "provider.example".into(),
            offered: "\"sip.example.net\"".into()
        }
    );
    // Of two realms, the configured one is answered (case aside); empty means any.
    let other = r#"Digest realm="Provider.Example", nonce="p1", qop="auth""#;
    let (_, v) = UacAuth::default()
        .answer(&c, &register(), &challenge(401, &[MD5_CH, other]), "cn")
        .unwrap();
    assert_eq!(digest_of(&v).realm, "Provider.Example");
    c.realm = Some(String::new());
    assert!(UacAuth::default()
        .answer(&c, &register(), &challenge(401, &[MD5_CH]), "cn")
        .is_ok());
}

#[test]
fn sha256_is_preferred_and_unusable_challenges_are_skipped() {
    let c = creds("acct", "pw");
    let resp = challenge(
        401,
        &[
            r#"Basic realm="x""#,
            r#"Digest realm="r", nonce="a", algorithm=SHA-1, qop="auth""#,
            MD5_CH,
            r#"Digest realm="sip.example.net", nonce="s", algorithm=SHA-256, qop="auth""#,
        ],
    );
    let (_, v) = UacAuth::default()
        .answer(&c, &register(), &resp, "cn")
        .unwrap();
    let d = digest_of(&v);
    assert_eq!((d.algorithm, d.nonce.as_str()), (Algorithm::Sha256, "s"));
    assert_eq!(d.response.len(), 64);
    let only_odd = challenge(
        401,
        &[r#"Basic realm="x", Digest realm="r", nonce="a", algorithm=SHA-1"#],
    );
    assert_eq!(
        UacAuth::default().answer(&c, &register(), &only_odd, "cn"),
        Err(UacAuthError::Unsupported("Basic, Digest(SHA-1)".into()))
    );
}

#[test]
fn malformed_or_missing_challenges_are_errors_not_panics() {
    let c = creds("acct", "pw");
    let req = register();
    let mut auth = UacAuth::default();
    for bad in [
        "Digest",
        "Digest realm=",
        r#"Digest realm="r""#,
        r#"Digest nonce="n""#,
        r#"Digest realm="r, nonce="n""#,
        r#"Digest realm="r", realm="s", nonce="n""#,
        r#"Digest realm="r", nonce="n", stale=maybe"#,
        ",,,",
        "\u{0}",
    ] {
        assert!(
            matches!(
                auth.answer(&c, &req, &challenge(401, &[bad]), "cn"),
                Err(UacAuthError::Malformed(_) | UacAuthError::Unsupported(_))
            ),
            "{bad:?}"
        );
    }
    let mut resp = challenge(401, &[]);
    resp.headers.push(
        HeaderName::WwwAuthenticate,
        &b"Digest realm=\"\xff\", nonce=\"n\""[..],
    );
    assert!(matches!(
        auth.answer(&c, &req, &resp, "cn"),
        Err(UacAuthError::Malformed(_))
    ));
    assert_eq!(
        auth.answer(&c, &req, &challenge(401, &[]), "cn"),
        Err(UacAuthError::NoChallenge(401, "WWW-Authenticate"))
    );
    assert_eq!(
        auth.answer(&c, &req, &challenge(403, &[]), "cn"),
        Err(UacAuthError::NotAChallenge(403))
    );
    // A broken line beside a good one: the good one is answered.
    assert!(auth
        .answer(&c, &req, &challenge(401, &["Digest realm=", MD5_CH]), "cn")
        .is_ok());
}

#[test]
fn a_407_is_answered_with_proxy_authorization() {
    let c = creds("acct", "pw");
    let mut invite = register();
    invite.method = Method::Invite;
    invite.uri = "sip:+15551230000@sip.example.net".into();
    invite.headers.set(HeaderName::CSeq, "7 INVITE");
    let (name, v) = UacAuth::default()
        .answer(&c, &invite, &challenge(407, &[MD5_CH]), "cn")
        .unwrap();
    assert_eq!(name, HeaderName::ProxyAuthorization);
    let d = digest_of(&v);
    assert_eq!(d.uri, "sip:+15551230000@sip.example.net");
    let expected = d.expected_response(
        &crate::auth::digest::ha1(Algorithm::Md5, "acct", "sip.example.net", "pw"),
        "INVITE",
        b"",
    );
    assert_eq!(d.response, expected);
}

/// RFC 3261 §22.3: a proxy challenges (407), then the registrar (401); the second retry
/// carries both credentials, and a re-challenge by the proxy replaces only its own.
#[test]
fn rfc3261_22_3_proxy_then_registrar_keeps_both_credentials() {
    let c = creds("acct", "pw");
    let mut auth = UacAuth::default();
    let first = register();
    let proxy = r#"Digest realm="proxy.example.net", nonce="p1", qop="auth""#;
    let h = auth
        .answer(&c, &first, &challenge(407, &[proxy]), "cn1")
        .unwrap();
    let second = retry(&first, h, "z9hG4bK2");
    let h = auth
        .answer(&c, &second, &challenge(401, &[MD5_CH]), "cn2")
        .unwrap();
    let third = retry(&second, h, "z9hG4bK3");
    assert_eq!(third.headers.count(&HeaderName::ProxyAuthorization), 1);
    assert_eq!(third.headers.count(&HeaderName::Authorization), 1);
    assert_eq!(third.headers.cseq().unwrap().seq, 9);
    let realms = |r: &Request, n: &HeaderName| -> Vec<String> {
        r.headers
            .get_all(n)
            .map(|h| digest_of(h.value_str().unwrap()).realm)
            .collect()
    };
    assert_eq!(
        realms(&third, &HeaderName::ProxyAuthorization),
        ["proxy.example.net"]
    );
    // The proxy's nonce went stale: its credentials are replaced, the registrar's kept.
    let proxy2 = r#"Digest realm="proxy.example.net", nonce="p2", stale=true, qop="auth""#;
    let h = auth
        .answer(&c, &third, &challenge(407, &[proxy2]), "cn3")
        .unwrap();
    let fourth = retry(&third, h, "z9hG4bK4");
    assert_eq!(fourth.headers.count(&HeaderName::ProxyAuthorization), 1);
    let pa = fourth
        .headers
        .get_str(&HeaderName::ProxyAuthorization)
        .unwrap();
    assert_eq!(digest_of(pa).nonce, "p2");
    assert_eq!(
        realms(&fourth, &HeaderName::Authorization),
        ["sip.example.net"]
    );
    // A refresh sends both, each with its next nc.
    let all = auth.preemptive_all(&c, "REGISTER", "sip:sip.example.net", b"", "cn5");
    let names: Vec<_> = all.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(
        names,
        [HeaderName::ProxyAuthorization, HeaderName::Authorization]
    );
    assert_eq!(digest_of(&all[1].1).nc.unwrap().value, 2);
}

#[test]
fn retry_bumps_cseq_rebranches_and_keeps_the_dialog_identifiers() {
    let mut first = register();
    first.body = bytes::Bytes::from_static(b"v=0\r\n");
    first.headers.push(HeaderName::Authorization, "Basic abc");
    let r = retry(
        &first,
        (HeaderName::Authorization, "Digest username=\"a\",realm=\"r\",nonce=\"n\",uri=\"sip:x\",response=\"00000000000000000000000000000000\"".into()),
        "z9hG4bKnew",
    );
    assert_eq!(r.headers.cseq().unwrap().to_string(), "8 REGISTER");
    let via = r.headers.top_via().unwrap();
    assert_eq!(via.branch(), Some("z9hG4bKnew"));
    assert_eq!(via.sent_by(), "192.0.2.10:5060");
    assert_eq!(via.rport(), Some(None));
    assert_eq!(r.headers.call_id(), Some("c1@192.0.2.10"));
    assert_eq!(r.headers.from_tag().as_deref(), Some("f1"));
    assert_eq!(r.uri, first.uri);
    assert_eq!(r.body, first.body);
    // Credentials of another scheme or realm are not ours to remove.
    assert_eq!(r.headers.count(&HeaderName::Authorization), 2);
    // A Via line with several values keeps the others.
    let mut two = register();
    two.headers.set(
        HeaderName::Via,
        "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2",
    );
    let r = retry(&two, (HeaderName::Authorization, "x".into()), "z9hG4bK3");
    let vias: Vec<_> = r
        .headers
        .vias()
        .iter()
        .map(|v| v.branch().unwrap().to_string())
        .collect();
    assert_eq!(vias, ["z9hG4bK3", "z9hG4bK2"]);
}

#[test]
fn the_password_stays_out_of_debug_output() {
    let c = creds("acct", "s3cret");
    assert!(!format!("{c:?}").contains("s3cret"));
}
