//! Registration scenarios on a virtual clock: `Instant` arithmetic, no sleeps.

use super::*;
use crate::auth::{check_response, parse_credentials, Account, Credentials, DigestRequest, Secret};
use crate::sip::{response_to, set_to_tag};

const REALM: &str = "sip.example.net";

fn cfg() -> RegistrationConfig {
    RegistrationConfig {
        gateway: "provider".into(),
        registrar_uri: Uri::parse("sip:sip.example.net").unwrap(),
        aor: Uri::parse("sip:acct1234@sip.example.net").unwrap(),
        contact: Uri::parse("sip:acct1234@192.0.2.10:5060").unwrap(),
        expires: 600,
        creds: UacCredentials {
            username: "acct1234".into(),
            password: "s3cret".into(),
            realm: None,
        },
        transport: Transport::Udp,
        user_agent: "ferroswitch".into(),
        node_id: None,
    }
}

fn reply(req: &Request, status: u16) -> Response {
    let mut r = response_to(req, status, "");
    set_to_tag(&mut r, "reg1");
    r
}

fn challenge(req: &Request, nonce: &str) -> Response {
    let mut r = reply(req, 401);
    r.headers.push(
        HeaderName::WwwAuthenticate,
        format!(r#"Digest realm="{REALM}", nonce="{nonce}", algorithm=MD5, qop="auth""#),
    );
    r
}

fn ok(req: &Request, contact_expires: u32) -> Response {
    let mut r = reply(req, 200);
    r.headers.push(
        HeaderName::Contact,
        format!("<sip:acct1234@192.0.2.10:5060>;expires={contact_expires}"),
    );
    r
}

/// Whether `req` carries credentials the registrar would accept with `password`.
fn authorized(req: &Request, password: &str) -> bool {
    let Some(v) = req.headers.get_str(&HeaderName::Authorization) else {
        return false;
    };
    let Ok(Credentials::Digest(c)) = parse_credentials(v) else {
        return false;
    };
    assert_eq!(
        c.uri,
        req.uri_str().unwrap(),
        "digest-uri is the Request-URI"
    );
    let secret = Secret::Password(password.into());
    let dr = DigestRequest {
        method: "REGISTER",
        body: b"",
        realm: REALM,
    };
    let account = Account {
        username: "acct1234",
        secret: &secret,
    };
    check_response(&c, &dr, account) == Ok(true)
}

fn nc(req: &Request) -> Option<String> {
    let v = req.headers.get_str(&HeaderName::Authorization)?;
    match parse_credentials(v) {
        Ok(Credentials::Digest(c)) => c.nc.map(|n| n.text),
        _ => None,
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn register_401_200_refresh_200() {
    let t0 = Instant::now();
    let mut reg = Registration::new(cfg(), 1);
    assert_eq!(reg.state(), &RegState::Idle);
    let first = reg.poll_request(t0).expect("REGISTER at start");
    assert_eq!(reg.state(), &RegState::Registering);
    assert!(reg.poll_request(t0).is_none(), "one in flight");
    assert_eq!(reg.poll_timeout(), None);
    assert_eq!(first.method, Method::Register);
    assert_eq!(first.uri_str(), Some("sip:sip.example.net"));
    let h = &first.headers;
    assert_eq!(
        h.get_str(&HeaderName::To),
        Some("<sip:acct1234@sip.example.net>")
    );
    assert_eq!(
        h.get_str(&HeaderName::Contact),
        Some("<sip:acct1234@192.0.2.10:5060>")
    );
    assert_eq!(h.get_str(&HeaderName::Expires), Some("600"));
    assert_eq!(h.get_str(&HeaderName::UserAgent), Some("ferroswitch"));
    assert_eq!(h.cseq().unwrap().seq, 1);
    let via = h.top_via().unwrap();
    assert_eq!(
        (via.sent_by().as_str(), via.transport.as_str()),
        ("192.0.2.10:5060", "UDP")
    );
    assert!(via.has_rfc3261_branch());
    assert!(h.get(&HeaderName::Authorization).is_none());
    let call_id = h.call_id().unwrap().to_string();
    let tag = h.from_tag().unwrap();

    let t1 = t0 + Duration::from_millis(40);
    reg.handle_response(t1, &challenge(&first, "n1"));
    assert_eq!(reg.poll_timeout(), Some(t1), "the answer goes at once");
    let second = reg.poll_request(t1).expect("answered REGISTER");
    assert!(authorized(&second, "s3cret"));
    assert_eq!(nc(&second).as_deref(), Some("00000001"));
    let h2 = &second.headers;
    assert_eq!(h2.cseq().unwrap().seq, 2);
    assert_eq!(h2.call_id(), Some(call_id.as_str()));
    assert_eq!(h2.from_tag(), Some(tag.clone()));
    assert_ne!(h2.top_via().unwrap().branch(), via.branch());

    let t2 = t1 + Duration::from_millis(40);
    reg.handle_response(t2, &ok(&second, 600));
    assert_eq!(
        reg.state(),
        &RegState::Registered {
            expires_at: t2 + secs(600)
        }
    );
    assert_eq!(reg.poll_timeout(), Some(t2 + secs(540)));
    assert!(reg.poll_request(t2 + secs(539)).is_none());

    let t3 = t2 + secs(540);
    let refresh = reg.poll_request(t3).expect("refresh");
    assert!(
        matches!(reg.state(), RegState::Registered { .. }),
        "a refresh keeps the binding"
    );
    assert_eq!(refresh.headers.cseq().unwrap().seq, 3);
    assert_eq!(refresh.headers.call_id(), Some(call_id.as_str()));
    assert_eq!(refresh.headers.from_tag(), Some(tag));
    assert!(
        authorized(&refresh, "s3cret"),
        "the refresh reuses the nonce"
    );
    assert_eq!(nc(&refresh).as_deref(), Some("00000002"));
    reg.handle_response(t3, &ok(&refresh, 300));
    assert_eq!(
        reg.state(),
        &RegState::Registered {
            expires_at: t3 + secs(300)
        }
    );
    assert_eq!(reg.poll_timeout(), Some(t3 + secs(240)));
}

#[test]
fn wrong_password_backs_off_30_60_120_up_to_30_minutes() {
    let mut c = cfg();
    c.creds.password = "wrong".into();
    let mut reg = Registration::new(c, 7);
    let mut now = Instant::now();
    let mut waits = Vec::new();
    for _ in 0..9 {
        let r = reg.poll_request(now).expect("attempt");
        assert!(
            r.headers.get(&HeaderName::Authorization).is_none(),
            "fresh start"
        );
        reg.handle_response(now, &challenge(&r, "same"));
        let r = reg.poll_request(now).expect("answer");
        assert!(!authorized(&r, "s3cret"));
        reg.handle_response(now, &challenge(&r, "same"));
        let RegState::Failed { status, retry_at } = *reg.state() else {
            panic!("not failed: {:?}", reg.state())
        };
        assert_eq!(status, 401);
        assert_eq!(reg.poll_timeout(), Some(retry_at));
        assert!(reg
            .poll_request(retry_at - Duration::from_millis(1))
            .is_none());
        waits.push((retry_at - now).as_secs_f64());
        now = retry_at;
    }
    let bases = [
        30.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1800.0, 1800.0, 1800.0,
    ];
    for (w, b) in waits.iter().zip(bases) {
        assert!(
            *w >= b * 0.9 && *w <= b * 1.1,
            "{w} not within 10 % of {b}: {waits:?}"
        );
    }
    assert!(waits.windows(2).any(|p| p[0] != p[1]), "jittered");
}

#[test]
fn a_fresh_nonce_after_a_wrong_answer_is_a_failure_too() {
    let mut reg = Registration::new(cfg(), 2);
    let t = Instant::now();
    let r = reg.poll_request(t).unwrap();
    reg.handle_response(t, &challenge(&r, "n1"));
    let r = reg.poll_request(t).unwrap();
    reg.handle_response(t, &challenge(&r, "n2"));
    assert!(matches!(reg.state(), RegState::Failed { status: 401, .. }));
    assert!(reg.poll_request(t).is_none());
}

#[test]
fn rfc3261_10_3_423_raises_expires_to_min_expires() {
    let mut reg = Registration::new(cfg(), 3);
    let t = Instant::now();
    let r = reg.poll_request(t).unwrap();
    let mut brief = reply(&r, 423);
    brief.headers.push(HeaderName::MinExpires, "3600");
    reg.handle_response(t, &brief);
    let r2 = reg.poll_request(t).expect("at once");
    assert_eq!(r2.headers.get_str(&HeaderName::Expires), Some("3600"));
    assert_eq!(r2.headers.cseq().unwrap().seq, 2);
    reg.handle_response(t, &ok(&r2, 3600));
    assert_eq!(reg.poll_timeout(), Some(t + secs(3240)));
    // Refreshes keep asking for what the registrar wants.
    let r3 = reg.poll_request(t + secs(3240)).unwrap();
    assert_eq!(r3.headers.get_str(&HeaderName::Expires), Some("3600"));
    // A 423 without a Min-Expires above ours cannot be satisfied: a failure, no loop.
    reg.handle_response(t + secs(3240), &reply(&r3, 423));
    assert!(matches!(reg.state(), RegState::Failed { status: 423, .. }));
}

#[test]
fn a_timeout_backs_off_and_a_success_resets_the_back_off() {
    let mut reg = Registration::new(cfg(), 4);
    let t = Instant::now();
    let _ = reg.poll_request(t).unwrap();
    reg.handle_failure(t + secs(32), 408);
    let RegState::Failed {
        status: 408,
        retry_at,
    } = *reg.state()
    else {
        panic!("{:?}", reg.state())
    };
    assert!(retry_at >= t + secs(32 + 27) && retry_at <= t + secs(32 + 33));
    reg.handle_failure(retry_at, 408); // nothing in flight: ignored
    let r = reg.poll_request(retry_at).unwrap();
    reg.handle_failure(retry_at, 503);
    let RegState::Failed {
        status: 503,
        retry_at: again,
    } = *reg.state()
    else {
        panic!("{:?}", reg.state())
    };
    assert!(again >= retry_at + secs(54), "60 s ± 10 %");
    // A late 200 to the request we gave up on is a stray.
    reg.handle_response(again, &ok(&r, 600));
    assert!(matches!(reg.state(), RegState::Failed { .. }));
    let r = reg.poll_request(again).unwrap();
    reg.handle_response(again, &ok(&r, 600));
    assert!(matches!(reg.state(), RegState::Registered { .. }));
    let _ = reg.poll_request(again + secs(540)).unwrap();
    reg.handle_failure(again + secs(540), 503);
    let RegState::Failed { retry_at, .. } = *reg.state() else {
        panic!()
    };
    let wait = retry_at - (again + secs(540));
    assert!(
        wait >= secs(27) && wait <= secs(33),
        "back to 30 s: {wait:?}"
    );
}

#[test]
fn a_lost_refresh_is_retried_before_the_binding_lapses() {
    let mut reg = Registration::new(cfg(), 12);
    let t = Instant::now();
    let r = reg.poll_request(t).unwrap();
    reg.handle_response(t, &challenge(&r, "n1"));
    let r = reg.poll_request(t).unwrap();
    reg.handle_response(t, &ok(&r, 600));
    let _ = reg.poll_request(t + secs(540)).unwrap();
    // Timer F: 28 s of the binding left, so the retry goes in 14 s, not 30.
    reg.handle_failure(t + secs(572), 408);
    assert!(
        matches!(reg.state(), RegState::Failed { status: 408, retry_at } if *retry_at == t + secs(586))
    );
    let r = reg.poll_request(t + secs(586)).unwrap();
    assert!(
        authorized(&r, "s3cret"),
        "the nonce is kept after a timeout"
    );
    assert_eq!(nc(&r).as_deref(), Some("00000003"));
    // Lost again: 14 s left, 7 s; never less than 1 s; then the binding is gone: back-off.
    reg.handle_failure(t + secs(586), 408);
    assert!(matches!(reg.state(), RegState::Failed { retry_at, .. } if *retry_at == t + secs(593)));
    let _ = reg.poll_request(t + secs(593)).unwrap();
    reg.handle_failure(t + secs(599) + Duration::from_millis(900), 408);
    assert!(
        matches!(reg.state(), RegState::Failed { retry_at, .. } if *retry_at == t + secs(600) + Duration::from_millis(900))
    );
    let _ = reg.poll_request(t + secs(601)).unwrap();
    reg.handle_failure(t + secs(633), 408);
    let RegState::Failed { retry_at, .. } = *reg.state() else {
        panic!()
    };
    let wait = retry_at - (t + secs(633));
    assert!(
        wait >= secs(27) && wait <= secs(33),
        "the quick tries did not grow the back-off: {wait:?}"
    );
    // A 401 on a refresh is no hiccup: the usual back-off, and credentials start afresh.
    let mut reg = Registration::new(cfg(), 13);
    let r = reg.poll_request(t).unwrap();
    reg.handle_response(t, &challenge(&r, "n1"));
    let r = reg.poll_request(t).unwrap();
    reg.handle_response(t, &ok(&r, 600));
    let r = reg.poll_request(t + secs(540)).unwrap();
    reg.handle_response(t + secs(540), &reply(&r, 403));
    let RegState::Failed { retry_at, .. } = *reg.state() else {
        panic!()
    };
    assert!(retry_at >= t + secs(540 + 27));
    let r = reg.poll_request(retry_at).unwrap();
    assert!(r.headers.get(&HeaderName::Authorization).is_none());
}

#[test]
fn server_errors_back_off_and_honour_a_longer_retry_after() {
    let mut reg = Registration::new(cfg(), 5);
    let t = Instant::now();
    let r = reg.poll_request(t).unwrap();
    let mut busy = reply(&r, 503);
    busy.headers
        .push(HeaderName::RetryAfter, "300 (maintenance)");
    reg.handle_response(t, &busy);
    assert!(
        matches!(reg.state(), RegState::Failed { status: 503, retry_at } if *retry_at == t + secs(300))
    );
    let r = reg.poll_request(t + secs(300)).unwrap();
    reg.handle_response(t + secs(300), &reply(&r, 603));
    assert!(matches!(reg.state(), RegState::Failed { status: 603, .. }));
    let r = reg.poll_request(t + secs(1000)).unwrap();
    reg.handle_response(t + secs(1000), &reply(&r, 403));
    assert!(matches!(reg.state(), RegState::Failed { status: 403, .. }));
}

#[test]
fn strays_and_provisionals_are_ignored() {
    let mut reg = Registration::new(cfg(), 6);
    let t = Instant::now();
    let r = reg.poll_request(t).unwrap();
    reg.handle_response(t, &reply(&r, 100));
    let mut other = r.clone();
    other.headers.set(HeaderName::CSeq, "99 REGISTER");
    reg.handle_response(t, &ok(&other, 600));
    let mut other = r.clone();
    other.headers.set(
        HeaderName::Via,
        "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKelse",
    );
    reg.handle_response(t, &ok(&other, 600));
    let mut other = r.clone();
    other.headers.set(HeaderName::CallId, "someone-else");
    reg.handle_response(t, &ok(&other, 600));
    assert_eq!(reg.state(), &RegState::Registering);
    reg.handle_response(t, &ok(&r, 600));
    assert!(matches!(reg.state(), RegState::Registered { .. }));
}

#[test]
fn unregister_sends_expires_0_with_credentials_and_stops() {
    let mut reg = Registration::new(cfg(), 8);
    let t = Instant::now();
    let r = reg.poll_request(t).unwrap();
    reg.handle_response(t, &challenge(&r, "n1"));
    let r = reg.poll_request(t).unwrap();
    reg.handle_response(t, &ok(&r, 600));
    let bye = reg.unregister(t + secs(10)).expect("un-REGISTER");
    assert_eq!(bye.headers.get_str(&HeaderName::Expires), Some("0"));
    assert_eq!(bye.headers.cseq().unwrap().seq, 3);
    assert!(authorized(&bye, "s3cret"));
    // The nonce went stale meanwhile: answered once more, then done.
    let mut stale = reply(&bye, 401);
    stale.headers.push(
        HeaderName::WwwAuthenticate,
        format!(r#"Digest realm="{REALM}", nonce="n2", stale=true, qop="auth""#),
    );
    reg.handle_response(t + secs(10), &stale);
    let bye2 = reg
        .poll_request(t + secs(10))
        .expect("answered un-REGISTER");
    assert_eq!(bye2.headers.get_str(&HeaderName::Expires), Some("0"));
    reg.handle_response(t + secs(10), &ok(&bye2, 0));
    assert_eq!(reg.state(), &RegState::Idle);
    assert_eq!(reg.poll_timeout(), None);
    assert!(reg.poll_request(t + secs(10_000)).is_none());
    // Never registered: nothing to undo.
    let mut idle = Registration::new(cfg(), 9);
    assert!(idle.unregister(t).is_none());
    assert!(idle.poll_request(t).is_none());
}

#[test]
fn expires_comes_from_our_contact_then_the_header_then_the_request() {
    let ours = Uri::parse("sip:acct1234@192.0.2.10:5060").unwrap();
    let mut r = Response::new(200, "OK");
    assert_eq!(granted_expires(&r, &ours, 600), 600);
    r.headers.push(HeaderName::Expires, "450");
    assert_eq!(granted_expires(&r, &ours, 600), 450);
    // One Contact, rewritten by the registrar's NAT helper: still ours.
    r.headers.push(
        HeaderName::Contact,
        "<sip:acct1234@203.0.113.5:40000>;expires=120",
    );
    assert_eq!(granted_expires(&r, &ours, 600), 120);
    // Several bindings of the AOR: ours by URI equivalence (host case, param order aside).
    r.headers.set(
        HeaderName::Contact,
        "<sip:acct1234@198.51.100.7>;expires=3600, <sip:acct1234@192.0.2.10:5060>;expires=300",
    );
    assert_eq!(granted_expires(&r, &ours, 600), 300);
    // Several, none ours: the Expires header.
    r.headers.set(
        HeaderName::Contact,
        "<sip:a@198.51.100.7>;expires=3600, <sip:b@198.51.100.8>;expires=30",
    );
    assert_eq!(granted_expires(&r, &ours, 600), 450);
    // A malformed Contact list is not trusted.
    r.headers.set(
        HeaderName::Contact,
        "<sip:acct1234@192.0.2.10:5060;expires=1",
    );
    assert_eq!(granted_expires(&r, &ours, 600), 450);
}

#[test]
fn refresh_points() {
    assert_eq!(refresh_after(60), Duration::from_secs(30));
    assert_eq!(refresh_after(120), Duration::from_secs(60));
    assert_eq!(refresh_after(121), Duration::from_secs(61));
    assert_eq!(refresh_after(300), Duration::from_secs(240));
    assert_eq!(refresh_after(600), Duration::from_secs(540));
    assert_eq!(refresh_after(3600), Duration::from_secs(3240));
    assert_eq!(refresh_after(1), Duration::from_millis(500));
}

#[test]
fn a_granted_zero_is_a_failure_and_a_changed_contact_registers_again() {
    let mut reg = Registration::new(cfg(), 10);
    let t = Instant::now();
    let r = reg.poll_request(t).unwrap();
    reg.handle_response(t, &ok(&r, 0));
    assert!(matches!(reg.state(), RegState::Failed { status: 200, .. }));
    let RegState::Failed { retry_at, .. } = *reg.state() else {
        panic!()
    };
    let r = reg.poll_request(retry_at).unwrap();
    reg.handle_response(retry_at, &ok(&r, 600));
    reg.update_contact(Uri::parse("sip:acct1234@203.0.113.5:40000").unwrap());
    assert_eq!(reg.poll_timeout(), Some(retry_at));
    let r = reg
        .poll_request(retry_at)
        .expect("re-REGISTER with the new contact");
    assert_eq!(
        r.headers.get_str(&HeaderName::Contact),
        Some("<sip:acct1234@203.0.113.5:40000>")
    );
    assert_eq!(r.headers.top_via().unwrap().sent_by(), "203.0.113.5:40000");
}

#[test]
fn a_proxy_challenge_then_the_registrar_challenge_are_both_answered() {
    let mut reg = Registration::new(cfg(), 11);
    let t = Instant::now();
    let r = reg.poll_request(t).unwrap();
    let mut p = reply(&r, 407);
    p.headers.push(
        HeaderName::ProxyAuthenticate,
        r#"Digest realm="proxy.example.net", nonce="p1", qop="auth""#,
    );
    reg.handle_response(t, &p);
    let r = reg.poll_request(t).unwrap();
    assert_eq!(r.headers.count(&HeaderName::ProxyAuthorization), 1);
    reg.handle_response(t, &challenge(&r, "n1"));
    let r = reg.poll_request(t).unwrap();
    assert_eq!(r.headers.count(&HeaderName::ProxyAuthorization), 1);
    assert!(authorized(&r, "s3cret"));
    reg.handle_response(t, &ok(&r, 600));
    let refresh = reg.poll_request(t + secs(540)).unwrap();
    assert_eq!(refresh.headers.count(&HeaderName::ProxyAuthorization), 1);
    assert_eq!(refresh.headers.count(&HeaderName::Authorization), 1);
}

#[test]
fn the_same_seed_gives_the_same_requests() {
    let t = Instant::now();
    let a = Registration::new(cfg(), 42).poll_request(t);
    let b = Registration::new(cfg(), 42).poll_request(t);
    assert_eq!(a, b);
    let c = Registration::new(cfg(), 43).poll_request(t);
    assert_ne!(a, c);
}

#[test]
fn retry_now_sends_the_next_attempt_at_once_only_after_a_failure() {
    let mut r = Registration::new(cfg(), 7);
    let t = Instant::now();
    let first = r.poll_request(t).expect("the first REGISTER at start");
    assert!(!r.retry_now(), "one in flight");
    r.handle_failure(t + secs(32), 408);
    assert!(r.poll_request(t + secs(33)).is_none(), "backing off");
    assert!(r.retry_now());
    let second = r.poll_request(t + secs(33)).expect("at once");
    assert_eq!(
        second.headers.cseq().map(|c| c.seq),
        first.headers.cseq().map(|c| c.seq + 1)
    );
    r.handle_response(t + secs(34), &ok(&second, 600));
    assert!(!r.retry_now(), "registered: nothing to hurry");
    assert!(r.poll_request(t + secs(35)).is_none());
    // After unregister nothing but the un-REGISTER goes.
    let unreg = r.unregister(t + secs(36)).expect("bound: un-REGISTER");
    r.handle_failure(t + secs(68), 408);
    assert!(!r.retry_now());
    assert!(r.poll_request(t + secs(69)).is_none(), "{unreg:?}");
}
