//! The seed trace's two real exchanges (FreeSWITCH with Zoiper and X-Lite, see
//! /work/shared/seed/trace/README.md; the messages are inlined byte for byte): our challenges
//! render like FreeSWITCH's 401/407, and the phones' credentials verify with password 1234
//! and fail with any other.

use ferroswitch::auth::{
    parse_challenges, parse_credentials, verify, Account, Action, Algorithm, Challenge,
    Credentials, DigestChallenge, DigestCredentials, DigestRequest, NonceStatus, Outcome, Secret,
};
use ferroswitch::sip::{parse_datagram, HeaderName, Message, Request};

/// trace/03-alice-register-authorization.sip (846 bytes).
const REGISTER_03: &str = concat!(
    "REGISTER sip:192.168.4.4;transport=UDP SIP/2.0\r\n",
    "Via: SIP/2.0/UDP 192.168.4.4:5090;branch=z9hG4bK-d8754z-dae1693be9f8c10d-1---d8754z-;rport\r\n",
    "Max-Forwards: 70\r\n",
    "Contact: <sip:alice@192.168.4.4:5090;rinstance=d42207a765c0626b;transport=UDP>\r\n",
    "To: <sip:alice@192.168.4.4;transport=UDP>\r\n",
    "From: <sip:alice@192.168.4.4;transport=UDP>;tag=9c709222\r\n",
    "Call-ID: NmFjNzA3MWY1MDI3NGViMjY1N2QwZDlmZWQ5ZGY2OGE.\r\n",
    "CSeq: 2 REGISTER\r\n",
    "Expires: 3600\r\n",
    "Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n",
    "User-Agent: Zoiper rev.5415\r\n",
    "Authorization: Digest username=\"alice\",realm=\"192.168.4.4\",nonce=\"62fb812c-71d2-4a36-93d6-e0008e6a63ee\",uri=\"sip:192.168.4.4;transport=UDP\",response=\"32b5ddaea8647a3becd25cb84346b1c3\",cnonce=\"b4c6ac7e57fc76b85df9440994e2ede8\",nc=00000001,qop=auth,algorithm=MD5\r\n",
    "Allow-Events: presence\r\n",
    "Content-Length: 0\r\n",
    "\r\n",
);

/// trace/09-bob-invite-proxy-authorization.headers (782 bytes).
const INVITE_09_HEAD: &str = concat!(
    "INVITE sip:alice@192.168.4.4 SIP/2.0\r\n",
    "Via: SIP/2.0/UDP 192.168.4.4:26000;branch=z9hG4bK-d8754z-87d60b47b6627c3a-1---d8754z-;rport\r\n",
    "Max-Forwards: 70\r\n",
    "Contact: <sip:bob@192.168.4.4:26000>\r\n",
    "To: \"alice\"<sip:alice@192.168.4.4>\r\n",
    "From: \"Bob\"<sip:bob@192.168.4.4>;tag=15c8325a\r\n",
    "Call-ID: YWEwYjNlZTZjOWZjNDg3ZjU3MjQ3MTA1ZmQ1MDM5YmQ.\r\n",
    "CSeq: 2 INVITE\r\n",
    "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO\r\n",
    "Content-Type: application/sdp\r\n",
    "Proxy-Authorization: Digest username=\"bob\",realm=\"192.168.4.4\",nonce=\"31c5c3e0-cc6e-46c8-a661-599b0c7f87d8\",uri=\"sip:alice@192.168.4.4\",response=\"327887635344405bcd545da06763c466\",cnonce=\"c164b74f625ff2161bd8d47dba3a0ee2\",nc=00000001,qop=auth,algorithm=MD5\r\n",
    "User-Agent: X-Lite release 1014k stamp 47051\r\n",
    "Content-Length: 594\r\n",
    "\r\n",
);

/// trace/02-fs-401-www-authenticate.sip (664 bytes).
const RESPONSE_02: &str = concat!(
    "SIP/2.0 401 Unauthorized\r\n",
    "Via: SIP/2.0/UDP 192.168.4.4:5090;branch=z9hG4bK-d8754z-d9ed3bbae47e568b-1---d8754z-;rport=5090\r\n",
    "From: <sip:alice@192.168.4.4;transport=UDP>;tag=9c709222\r\n",
    "To: <sip:alice@192.168.4.4;transport=UDP>;tag=QFXyg6gcByvUH\r\n",
    "Call-ID: NmFjNzA3MWY1MDI3NGViMjY1N2QwZDlmZWQ5ZGY2OGE.\r\n",
    "CSeq: 1 REGISTER\r\n",
    "User-Agent: FreeSWITCH-mod_sofia/1.0.trunk-16981M\r\n",
    "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, UPDATE, INFO, REGISTER, REFER, NOTIFY, PUBLISH, SUBSCRIBE\r\n",
    "Supported: timer, precondition, path, replaces\r\n",
    "WWW-Authenticate: Digest realm=\"192.168.4.4\", nonce=\"62fb812c-71d2-4a36-93d6-e0008e6a63ee\", algorithm=MD5, qop=\"auth\"\r\n",
    "Content-Length: 0\r\n",
    "\r\n",
);

/// trace/07-fs-407-proxy-authenticate.sip (826 bytes).
const RESPONSE_07: &str = concat!(
    "SIP/2.0 407 Proxy Authentication Required\r\n",
    "Via: SIP/2.0/UDP 192.168.4.4:26000;branch=z9hG4bK-d8754z-56adad736231f024-1---d8754z-;rport=26000\r\n",
    "From: \"Bob\"<sip:bob@192.168.4.4>;tag=15c8325a\r\n",
    "To: \"alice\" <sip:alice@192.168.4.4>;tag=B4pem31jHgtHS\r\n",
    "Call-ID: YWEwYjNlZTZjOWZjNDg3ZjU3MjQ3MTA1ZmQ1MDM5YmQ.\r\n",
    "CSeq: 1 INVITE\r\n",
    "User-Agent: FreeSWITCH-mod_sofia/1.0.trunk-16981M\r\n",
    "Accept: application/sdp\r\n",
    "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, UPDATE, INFO, REGISTER, REFER, NOTIFY, PUBLISH, SUBSCRIBE\r\n",
    "Supported: timer, precondition, path, replaces\r\n",
    "Allow-Events: talk, presence, dialog, line-seize, call-info, sla, include-session-description, presence.winfo, message-summary, refer\r\n",
    "Proxy-Authenticate: Digest realm=\"192.168.4.4\", nonce=\"31c5c3e0-cc6e-46c8-a661-599b0c7f87d8\", algorithm=MD5, qop=\"auth\"\r\n",
    "Content-Length: 0\r\n",
    "\r\n",
);

fn request(text: &str) -> Request {
    match parse_datagram(text.as_bytes()).expect("seed message parses") {
        Message::Request(r) => r,
        Message::Response(_) => panic!("expected a request"),
    }
}

/// trace/09 without the 594-byte SDP the book left out; any body will do for qop=auth.
fn invite_09() -> Request {
    let text = format!("{INVITE_09_HEAD}{}", "v".repeat(594));
    request(&text)
}

fn credentials(req: &Request, name: &HeaderName) -> DigestCredentials {
    let value = req.headers.get_str(name).expect("header present");
    match parse_credentials(value).expect("credentials parse") {
        Credentials::Digest(c) => c,
        Credentials::Other(v) => panic!("unexpected scheme {}", v.scheme),
    }
}

fn outcome(req: &Request, creds: &DigestCredentials, user: &str, secret: &Secret) -> Outcome {
    let d = DigestRequest {
        method: req.method.as_str(),
        body: &req.body,
        realm: "192.168.4.4",
    };
    let account = Account {
        username: user,
        secret,
    };
    verify(creds, &d, Some(account), NonceStatus::Valid)
}

#[test]
fn register_authorization_verifies_with_1234() {
    let req = request(REGISTER_03);
    assert_eq!(REGISTER_03.len(), 846);
    let c = credentials(&req, &HeaderName::Authorization);
    assert_eq!(c.username, "alice");
    assert_eq!(c.uri, "sip:192.168.4.4;transport=UDP");
    assert_eq!(c.nc.as_ref().map(|n| n.value), Some(1));
    let ok = Secret::Password("1234".into());
    assert_eq!(outcome(&req, &c, "alice", &ok), Outcome::Ok);
    let wrong = Secret::Password("12345".into());
    assert_eq!(outcome(&req, &c, "alice", &wrong), Outcome::WrongPassword);
    assert_eq!(
        outcome(&req, &c, "alice", &wrong).action(),
        Action::Forbidden
    );
}

#[test]
fn register_verifies_with_the_stored_ha1_from_hash_password() {
    let req = request(REGISTER_03);
    let c = credentials(&req, &HeaderName::Authorization);
    let ha1 = ferroswitch::auth::hash_password("alice", "192.168.4.4", "1234");
    let stored = Secret::Ha1 {
        hex: ha1.to_ascii_uppercase(),
        realm: Some("192.168.4.4".into()),
    };
    assert_eq!(outcome(&req, &c, "alice", &stored), Outcome::Ok);
    let other_realm = Secret::Ha1 {
        hex: ha1,
        realm: Some("example.org".into()),
    };
    assert!(matches!(
        outcome(&req, &c, "alice", &other_realm),
        Outcome::CannotVerify(_)
    ));
}

#[test]
fn invite_proxy_authorization_verifies_with_1234() {
    let req = invite_09();
    assert_eq!(req.body.len(), 594);
    let c = credentials(&req, &HeaderName::ProxyAuthorization);
    assert_eq!(
        (c.username.as_str(), c.uri.as_str()),
        ("bob", "sip:alice@192.168.4.4")
    );
    let ok = Secret::Password("1234".into());
    assert_eq!(outcome(&req, &c, "bob", &ok), Outcome::Ok);
    let wrong = Secret::Password("4321".into());
    assert_eq!(outcome(&req, &c, "bob", &wrong), Outcome::WrongPassword);
    // The same credentials do not authenticate another method: HA2 covers it.
    let mut as_bye = req.clone();
    as_bye.method = ferroswitch::sip::Method::Bye;
    assert_eq!(outcome(&as_bye, &c, "bob", &ok), Outcome::WrongPassword);
}

#[test]
fn tampered_uri_or_username_case_fails() {
    let req = request(REGISTER_03);
    let ok = Secret::Password("1234".into());
    let mut c = credentials(&req, &HeaderName::Authorization);
    c.uri = "sip:192.168.4.4;transport=udp".into();
    assert_eq!(outcome(&req, &c, "alice", &ok), Outcome::WrongPassword);
    let mut c = credentials(&req, &HeaderName::Authorization);
    c.username = "Alice".into();
    assert_eq!(outcome(&req, &c, "alice", &ok), Outcome::WrongPassword);
}

#[test]
fn credentials_render_back_byte_for_byte() {
    for (req, name) in [
        (request(REGISTER_03), HeaderName::Authorization),
        (invite_09(), HeaderName::ProxyAuthorization),
    ] {
        let sent = req.headers.get_str(&name).unwrap();
        assert_eq!(credentials(&req, &name).to_string(), sent);
    }
}

#[test]
fn our_challenges_render_like_freeswitch() {
    for (text, name, nonce) in [
        (
            RESPONSE_02,
            HeaderName::WwwAuthenticate,
            "62fb812c-71d2-4a36-93d6-e0008e6a63ee",
        ),
        (
            RESPONSE_07,
            HeaderName::ProxyAuthenticate,
            "31c5c3e0-cc6e-46c8-a661-599b0c7f87d8",
        ),
    ] {
        let Message::Response(resp) = parse_datagram(text.as_bytes()).unwrap() else {
            panic!("expected a response")
        };
        let sent = resp.headers.get_str(&name).unwrap();
        let ours = DigestChallenge::new("192.168.4.4", nonce, Algorithm::Md5);
        assert_eq!(ours.to_string(), sent);
        assert_eq!(
            parse_challenges(sent).unwrap(),
            vec![Challenge::Digest(ours)]
        );
    }
}

#[test]
fn rfc4475_regaut01_unknown_scheme_is_challenged() {
    let c = parse_credentials("NoOneKnowsThisScheme opaque-data=here").unwrap();
    let Credentials::Other(v) = c else {
        panic!("parsed as digest")
    };
    assert_eq!(v.scheme, "NoOneKnowsThisScheme");
    assert_eq!(
        Outcome::UnsupportedScheme(v.scheme).action(),
        Action::Challenge { stale: false }
    );
}
