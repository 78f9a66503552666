//! Digest authentication of REGISTER (RFC 3261 §22, RFC 7616): the seed's exchange, the
//! answers that must not tell accounts apart, nc replay and stale nonces on the virtual clock.

use super::*;

const SEED_01: &str = include_str!("../../../tests/data/trace/01-alice-register-noauth.sip");
const SEED_03: &str = include_str!("../../../tests/data/trace/03-alice-register-authorization.sip");
const SEED_CNONCE: &str = "b4c6ac7e57fc76b85df9440994e2ede8";
const SEED_URI: &str = "sip:192.168.4.4;transport=UDP";

/// The seed's Authorization value, rebuilt by our client code for `challenge`.
fn seed_authorization(challenge: &DigestChallenge) -> String {
    DigestCredentials::answer(
        challenge,
        &Answer {
            username: "alice",
            password: "1234",
            method: "REGISTER",
            uri: SEED_URI,
            body: b"",
            cnonce: SEED_CNONCE,
            nc: 1,
        },
    )
    .to_string()
}

/// Seed message 03 with its Authorization line replaced by `auth`.
fn seed_03_with(auth: &str) -> String {
    SEED_03
        .split("\r\n")
        .map(|l| {
            if l.starts_with("Authorization:") {
                format!("Authorization: {auth}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[test]
fn seed_client_side_renders_zoipers_authorization_byte_for_byte() {
    // With the seed's own nonce our client code must produce exactly Zoiper's header,
    // so the engine tests below speak like the real phone.
    let seed = DigestChallenge::new(
        "192.168.4.4",
        "62fb812c-71d2-4a36-93d6-e0008e6a63ee",
        crate::auth::Algorithm::Md5,
    );
    let line = SEED_03
        .split("\r\n")
        .find(|l| l.starts_with("Authorization: "))
        .expect("seed 03 has Authorization");
    assert_eq!(
        format!("Authorization: {}", seed_authorization(&seed)),
        line
    );
}

#[test]
fn rfc3261_22_seed_register_flow_401_then_200() {
    let mut net = Net::new();
    let zoiper = addr(ZOIPER);

    // 01 → 401 with realm, a fresh nonce, algorithm=MD5, qop="auth", in the seed's layout.
    let r401 = net.ask(zoiper, SEED_01);
    assert_eq!((r401.status, reason(&r401).as_str()), (401, "Unauthorized"));
    let ch = challenge_of(&r401);
    assert_eq!(ch.realm, "192.168.4.4");
    assert!(!ch.stale);
    assert_eq!(
        header(&r401, "WWW-Authenticate").unwrap(),
        format!(
            "Digest realm=\"192.168.4.4\", nonce=\"{}\", algorithm=MD5, qop=\"auth\"",
            ch.nonce
        )
    );
    let via = header(&r401, "Via").unwrap();
    assert!(via.contains("rport=5090"), "{via}");
    assert!(r401.headers.to_tag().is_some());
    assert_eq!(r401.headers.cseq().unwrap().seq, 1);
    assert_eq!(
        r401.headers.call_id(),
        Some("NmFjNzA3MWY1MDI3NGViMjY1N2QwZDlmZWQ5ZGY2OGE.")
    );
    assert!(net.aor_contacts("alice@192.168.4.4").is_empty());

    // 03 with the answer to our nonce → 200 listing the contact, and a Date.
    let r200 = net.ask(zoiper, &seed_03_with(&seed_authorization(&ch)));
    assert_eq!((r200.status, reason(&r200).as_str()), (200, "OK"));
    assert_eq!(
        headers(&r200, "Contact"),
        ["<sip:alice@192.168.4.4:5090;rinstance=d42207a765c0626b;transport=UDP>;expires=3600"]
    );
    assert_eq!(header(&r200, "Date"), Some("Tue, 27 Apr 2010 12:30:57 GMT"));
    assert_eq!(r200.headers.cseq().unwrap().seq, 2);

    let bindings = net.store.lookup("alice@192.168.4.4", net.now);
    assert_eq!(bindings.len(), 1);
    let b = &bindings[0];
    assert_eq!(
        b.contact,
        "sip:alice@192.168.4.4:5090;rinstance=d42207a765c0626b;transport=UDP"
    );
    assert_eq!(b.source, Peer::new(Transport::Udp, zoiper));
    assert_eq!(b.local, addr(SERVER));
    assert!(!b.nat, "Via matches the source: no NAT");
    assert_eq!(b.user_agent.as_deref(), Some("Zoiper rev.5415"));
    assert_eq!(b.expires_at, net.now + Duration::from_secs(3600));

    let s = net.engine.stats();
    assert_eq!(
        (s.registrations, s.auth_challenges, s.auth_failures),
        (1, 1, 0)
    );
}

/// SIPp finds a response's CSeq method with `strstr(msg, "CSeq")`: a To tag that happened to
/// contain "CSeq" made it misread a 401 and abort the call (seen once in CI). Our tags are
/// lower-case hex, so no tag can spell a header name.
#[test]
fn to_tags_are_lower_case_hex_and_spell_no_header_name() {
    let mut net = Net::new();
    let zoiper = addr(ZOIPER);
    let mut tags = std::collections::HashSet::new();
    for i in 0..300 {
        let msg = SEED_01.replace(
            "NmFjNzA3MWY1MDI3NGViMjY1N2QwZDlmZWQ5ZGY2OGE.",
            &format!("tag-test-{i}"),
        );
        let r401 = net.ask(zoiper, &msg);
        assert_eq!(r401.status, 401);
        let tag = r401
            .headers
            .to_tag()
            .expect("401 carries a To tag")
            .to_string();
        assert_eq!(tag.len(), 16, "{tag}");
        assert!(
            tag.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{tag}"
        );
        tags.insert(tag);
    }
    assert_eq!(tags.len(), 300, "every 401 gets a fresh tag");
}

#[test]
fn rfc3261_22_wrong_password_is_403() {
    let mut net = Net::new();
    let mut phone = Phone::new("alice", "4321", ZOIPER);
    let r = net.register(&mut phone, addr(ZOIPER), &[]);
    assert_eq!((r.status, reason(&r).as_str()), (403, "Forbidden"));
    assert!(net.aor_contacts("alice@192.168.4.4").is_empty());
    assert_eq!(net.engine.stats().auth_failures, 1);
    assert_eq!(net.engine.stats().registrations, 0);
}

#[test]
fn unknown_user_gets_the_same_answers_as_a_wrong_password() {
    let mut net = Net::new();
    let mut wrong = Phone::new("alice", "4321", "192.168.4.10:5060");
    let mut nobody = Phone::new("mallory", "1234", "192.168.4.11:5060");

    let c1 = net.ask(addr("192.168.4.10:5060"), &wrong.register(&[]));
    let c2 = net.ask(addr("192.168.4.11:5060"), &nobody.register(&[]));
    assert_eq!((c1.status, c2.status), (401, 401));
    assert_eq!(header_names(&c1), header_names(&c2));
    wrong.learn(&c1);
    nobody.learn(&c2);

    let f1 = net.ask(addr("192.168.4.10:5060"), &wrong.register(&[]));
    let f2 = net.ask(addr("192.168.4.11:5060"), &nobody.register(&[]));
    assert_eq!(f1.status, 403);
    assert_eq!(f1.status, f2.status);
    assert_eq!(f1.reason, f2.reason);
    assert_eq!(header_names(&f1), header_names(&f2));
    assert_eq!(net.store.counts(), (0, 0));
}

#[test]
fn disabled_user_with_the_right_password_is_403() {
    let mut net = Net::new();
    let mut carol = Phone::new("carol", "carol-secret-99", "192.168.4.12:5060");
    let r = net.register(&mut carol, addr("192.168.4.12:5060"), &[]);
    assert_eq!((r.status, reason(&r).as_str()), (403, "Forbidden"));
    assert_eq!(net.store.counts(), (0, 0));
}

#[test]
fn authenticated_as_another_user_is_403() {
    // bob's credentials on a REGISTER for alice's address-of-record.
    let mut net = Net::new();
    let mut bob = Phone::new("bob", "1234", ZOIPER);
    let ch = challenge_of(&net.ask(addr(ZOIPER), &bob.register(&[])));
    let creds = bob.credentials(&ch, "REGISTER", 1);
    let mut alice = Phone::new("alice", "1234", ZOIPER);
    let msg = alice.register(&[]).replace(
        "User-Agent:",
        &format!("Authorization: {creds}\r\nUser-Agent:"),
    );
    let r = net.ask(addr(ZOIPER), &msg);
    assert_eq!(r.status, 403);
    assert!(net.aor_contacts("alice@192.168.4.4").is_empty());
}

#[test]
fn rfc7616_replayed_nc_gets_401_stale() {
    let mut net = Net::new();
    let src = addr(ZOIPER);
    let mut phone = Phone::new("alice", "1234", ZOIPER);
    assert_eq!(net.register(&mut phone, src, &[]).status, 200);
    let nonce = phone.challenge.clone().unwrap().nonce;

    // The same nonce with the next nc is fine: phones refresh like that.
    assert_eq!(phone.nc, 1);
    assert_eq!(net.ask(src, &phone.register(&[])).status, 200);

    // nc 2 again (a new transaction, so the registrar sees it): a replay.
    phone.nc = 1;
    let r = net.ask(src, &phone.register(&[]));
    let ch = challenge_of(&r);
    assert!(
        ch.stale,
        "a replay from someone who knows the password: stale=true"
    );
    assert_ne!(ch.nonce, nonce, "a fresh nonce");
    // A decreasing nc is refused the same way.
    phone.nc = 0;
    assert!(challenge_of(&net.ask(src, &phone.register(&[]))).stale);

    phone.learn(&r);
    assert_eq!(net.ask(src, &phone.register(&[])).status, 200);
    assert_eq!(net.engine.stats().registrations, 3);
}

#[test]
fn rfc7616_stale_nonce_after_its_lifetime_then_reregister() {
    let mut net = Net::new();
    let src = addr(ZOIPER);
    let mut phone = Phone::new("alice", "1234", ZOIPER);
    let first = net.ask(src, &phone.register(&[]));
    phone.learn(&first);
    let nonce = phone.challenge.clone().unwrap().nonce;

    // Valid up to and including its lifetime …
    net.advance(NONCE_LIFETIME);
    assert_eq!(net.ask(src, &phone.register(&[])).status, 200);
    // … one second later it is stale: the right password earns a new nonce with stale=true.
    net.advance(Duration::from_secs(1));
    let r = net.ask(src, &phone.register(&[]));
    let ch = challenge_of(&r);
    assert!(ch.stale);
    assert_ne!(ch.nonce, nonce);
    assert_eq!(ch.realm, "192.168.4.4");

    // A wrong password on the stale nonce is not told that it was only stale.
    let mut guesser = Phone::new("alice", "0000", ZOIPER);
    guesser.branches = 100; // its own transactions, not retransmissions of the phone's
    guesser.challenge = Some(DigestChallenge::new(
        "192.168.4.4",
        &nonce,
        crate::auth::Algorithm::Md5,
    ));
    assert_eq!(net.ask(src, &guesser.register(&[])).status, 403);
    // From another address the nonce (bound to the phone's) is simply not ours.
    let elsewhere = addr("192.168.4.20:5060");
    assert!(!challenge_of(&net.ask(elsewhere, &guesser.register(&[]))).stale);

    // The phone re-registers with the new nonce without asking its user.
    phone.learn(&r);
    let ok = net.ask(src, &phone.register(&[]));
    assert_eq!(ok.status, 200);
    assert_eq!(net.aor_contacts("alice@192.168.4.4").len(), 1);
}

#[test]
fn credentials_for_another_realm_get_a_fresh_challenge() {
    let mut net = Net::new();
    let src = addr(ZOIPER);
    let mut phone = Phone::new("alice", "1234", ZOIPER);
    phone.challenge = Some(DigestChallenge::new(
        "elsewhere.example",
        "0123456789abcdef",
        crate::auth::Algorithm::Md5,
    ));
    let r = net.ask(src, &phone.register(&[]));
    let ch = challenge_of(&r);
    assert_eq!(ch.realm, "192.168.4.4");
    assert!(!ch.stale);
    assert_eq!(net.engine.stats().auth_failures, 0);
}

#[test]
fn configured_domain_is_the_realm_and_other_domains_are_refused() {
    let mut net = Net::with(|c| c.domain = Some("ferro.example".into()));
    let src = addr(ZOIPER);
    let mut phone = Phone::new("alice", "1234", ZOIPER);
    phone.domain = "ferro.example".into();
    let r = net.ask(src, &phone.register(&[]));
    assert_eq!(challenge_of(&r).realm, "ferro.example");
    phone.learn(&r);
    assert_eq!(net.ask(src, &phone.register(&[])).status, 200);
    assert_eq!(net.aor_contacts("alice@ferro.example").len(), 1);

    // The request URI may name our address, but the To must be in our domain.
    let mut stranger = Phone::new("alice", "1234", "192.168.4.21:5060");
    stranger.domain = "other.example".into();
    let r = net.ask(addr("192.168.4.21:5060"), &stranger.register(&[]));
    assert_eq!(r.status, 403);
    assert_eq!(net.engine.stats().auth_challenges, 1);
}

#[test]
fn rfc7616_3_4_issue_17_6_answer_without_qop_is_refused() {
    // qop="auth" was offered; an RFC 2069 answer (no qop, nc, cnonce) has no count and would
    // replay freely for the nonce's lifetime, so it is refused, and not as a password guess.
    let mut net = Net::with(|c| {
        c.security = crate::security::SecurityConfig {
            max_auth_failures: 1,
            ..Default::default()
        }
    });
    let src = addr(ZOIPER);
    let mut phone = Phone::new("alice", "1234", ZOIPER);
    let r = net.ask(src, &phone.register(&[]));
    phone.learn(&r);
    if let Some(ch) = phone.challenge.as_mut() {
        ch.qop.clear();
    }
    let msg = phone.register(&[]);
    assert!(!msg.contains("nc=") && !msg.contains("qop="), "{msg}");
    assert_eq!(net.ask(src, &msg).status, 403);
    assert_eq!(net.ask(src, &msg).status, 403, "and again: not banned");
    assert!(net.aor_contacts("alice@192.168.4.4").is_empty());
    assert_eq!(net.engine.guard.failures(src.ip()), 0);
}

#[test]
fn rfc8760_issue_9_13_algorithms_offered_in_the_configured_order() {
    use crate::auth::Algorithm;
    for order in [
        [Algorithm::Md5, Algorithm::Sha256],
        [Algorithm::Sha256, Algorithm::Md5],
    ] {
        let mut net = Net::with(|c| c.digest_algorithms = order.to_vec());
        let mut phone = Phone::new("alice", "1234", ZOIPER);
        let r = net.ask(addr(ZOIPER), &phone.register(&[]));
        let offered: Vec<Algorithm> = headers(&r, "WWW-Authenticate")
            .into_iter()
            .flat_map(|v| crate::auth::parse_challenges(v).unwrap())
            .map(|c| match c {
                Challenge::Digest(d) => d.algorithm,
                Challenge::Other(o) => panic!("unexpected {o:?}"),
            })
            .collect();
        assert_eq!(offered, order, "the operator's order, not strongest first");
    }
}

#[test]
fn rfc8760_several_algorithms_and_sha256_answered() {
    use crate::auth::Algorithm;
    let mut net = Net::with(|c| c.digest_algorithms = vec![Algorithm::Sha256, Algorithm::Md5]);
    let src = addr(ZOIPER);
    let mut phone = Phone::new("alice", "1234", ZOIPER);
    let r = net.ask(src, &phone.register(&[]));
    assert_eq!(r.status, 401);
    let offered: Vec<DigestChallenge> = headers(&r, "WWW-Authenticate")
        .into_iter()
        .flat_map(|v| crate::auth::parse_challenges(v).unwrap())
        .map(|c| match c {
            Challenge::Digest(d) => d,
            Challenge::Other(o) => panic!("unexpected {o:?}"),
        })
        .collect();
    let algs: Vec<Algorithm> = offered.iter().map(|c| c.algorithm).collect();
    assert_eq!(algs, [Algorithm::Sha256, Algorithm::Md5]);
    assert_eq!(offered[0].nonce, offered[1].nonce);

    phone.challenge = Some(offered[0].clone());
    let msg = phone.register(&[]);
    assert!(msg.contains("algorithm=SHA-256"), "{msg}");
    assert_eq!(net.ask(src, &msg).status, 200);
    // MD5 answers stay acceptable while MD5 is offered.
    phone.challenge = Some(offered[1].clone());
    phone.nc = 1;
    assert_eq!(net.ask(src, &phone.register(&[])).status, 200);
}

#[test]
fn password_guessing_bans_the_source_and_no_one_else() {
    let mut net = Net::with(|c| {
        c.security = crate::security::SecurityConfig {
            max_auth_failures: 3,
            ..Default::default()
        }
    });
    let guesser = addr("203.0.113.66:5060");
    let mut wrong = Phone::new("alice", "4321", "203.0.113.66:5060");
    for _ in 0..3 {
        let r = net.register(&mut wrong, guesser, &[]);
        assert_eq!(r.status, 403);
    }
    // Banned: even a request with no credentials at all gets no answer now.
    assert!(net.udp(guesser, &wrong.register(&[])).is_empty());
    assert!(net.engine.stats().dropped >= 1);
    // Others are served: alice from her own phone registers fine.
    let mut alice = Phone::new("alice", "1234", ZOIPER);
    assert_eq!(net.register(&mut alice, addr(ZOIPER), &[]).status, 200);
    // The ban ends after ban_time (600 s by default) on the engine's timer.
    net.advance(Duration::from_secs(601));
    assert_eq!(net.udp(guesser, &wrong.register(&[])).len(), 1);
}

#[test]
fn scanner_user_agents_are_dropped_silently() {
    let mut net = Net::with(|c| c.security = crate::security::SecurityConfig::default());
    let mut scanner = Phone::new("100", "x", "198.51.100.7:5060");
    let probe = scanner.register(&["User-Agent: friendly-scanner"]);
    assert!(net.udp(addr("198.51.100.7:5060"), &probe).is_empty());
    let normal = scanner.register(&["User-Agent: Zoiper rev.5415"]);
    assert_eq!(net.ask(addr("198.51.100.7:5060"), &normal).status, 401);
}

/// A REGISTER from `phone` carrying credentials computed for digest uri `uri`.
fn register_with_uri(phone: &mut Phone, uri: &str) -> String {
    phone.nc += 1;
    let ch = phone.challenge.clone().expect("challenged first");
    let creds = DigestCredentials::answer(
        &ch,
        &Answer {
            username: &phone.user,
            password: &phone.password,
            method: "REGISTER",
            uri,
            body: b"",
            cnonce: SEED_CNONCE,
            nc: phone.nc,
        },
    );
    let saved = phone.challenge.take();
    let msg = phone.register(&[]).replace(
        "User-Agent:",
        &format!("Authorization: {creds}\r\nUser-Agent:"),
    );
    phone.challenge = saved;
    msg
}

#[test]
fn rfc2617_3_2_2_5_issue_17_6_digest_uri_must_name_this_request() {
    let mut net = Net::new();
    let src = addr(ZOIPER);
    let mut phone = Phone::new("alice", "1234", ZOIPER);
    let r = net.ask(src, &phone.register(&[]));
    phone.learn(&r);
    // Right password, but hashed for another URI: 400 (RFC 7616 §3.4.6), not a failure.
    let r = net.ask(src, &register_with_uri(&mut phone, "sip:unrelated.example"));
    assert_eq!(r.status, 400, "{}", reason(&r));
    let r = net.ask(src, &register_with_uri(&mut phone, "tel:+15551234"));
    assert_eq!(r.status, 400);
    assert!(net.aor_contacts("alice@192.168.4.4").is_empty());
    assert_eq!(net.engine.stats().auth_failures, 0);
    // SIPp's form, `sip:remote_ip:remote_port`: one of our hosts, accepted.
    let r = net.ask(src, &register_with_uri(&mut phone, "sip:192.168.4.4:5060"));
    assert_eq!(r.status, 200, "{}", reason(&r));
    // The Request-URI itself, written with other case and an explicit transport.
    let r = net.ask(src, &register_with_uri(&mut phone, "SIP:192.168.4.4"));
    assert_eq!(r.status, 200, "{}", reason(&r));
}

#[test]
fn issue_17_6_nonce_presented_from_another_source_gets_a_fresh_challenge() {
    let mut net = Net::with(|c| c.security = crate::security::SecurityConfig::default());
    let mut phone = Phone::new("alice", "1234", ZOIPER);
    let r = net.ask(addr(ZOIPER), &phone.register(&[]));
    phone.learn(&r);
    let nonce = phone.challenge.clone().unwrap().nonce;
    // The right answer, sniffed and sent from elsewhere: not accepted, not counted.
    let sniffer = addr("198.51.100.9:5060");
    let r = net.ask(sniffer, &phone.register(&[]));
    let ch = challenge_of(&r);
    assert_ne!(ch.nonce, nonce);
    assert!(!ch.stale);
    assert!(net.aor_contacts("alice@192.168.4.4").is_empty());
    assert_eq!(net.engine.guard.failures(sniffer.ip()), 0);
    // From the address it was issued to, the same nonce still works.
    assert_eq!(net.ask(addr(ZOIPER), &phone.register(&[])).status, 200);
}

#[test]
fn nonce_binding_can_be_turned_off() {
    let mut net = Net::with(|c| c.registrar.nonce_bind_source = false);
    let mut phone = Phone::new("alice", "1234", ZOIPER);
    let r = net.ask(addr(ZOIPER), &phone.register(&[]));
    phone.learn(&r);
    let r = net.ask(addr("198.51.100.9:5060"), &phone.register(&[]));
    assert_eq!(r.status, 200);
}

#[test]
fn issue_17_3_foreign_host_register_is_refused_before_authentication() {
    let mut net = Net::new();
    let src = addr(ZOIPER);
    let mut phone = Phone::new("alice", "1234", ZOIPER);
    phone.domain = "evil.example".into();
    let r = net.ask(src, &phone.register(&[]));
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "Forbidden - Domain Not Served")
    );
    // Even with valid credentials for that "realm" (a client making one up).
    phone.challenge = Some(DigestChallenge::new(
        "evil.example",
        &net.engine.verifier.nonces().issue_with(
            &mut rand::rngs::mock::StepRng::new(1, 1),
            SEED_WALL,
            "evil.example",
            None,
        ),
        crate::auth::Algorithm::Md5,
    ));
    assert_eq!(net.ask(src, &phone.register(&[])).status, 403);
    assert_eq!(net.engine.stats().auth_challenges, 0, "no digest work");
    assert_eq!(net.store.counts(), (0, 0));
    // An IP that is not ours is refused too; our own address in another spelling is served.
    phone.domain = "192.168.4.5".into();
    assert_eq!(net.ask(src, &phone.register(&[])).status, 403);
    phone.domain = "[::ffff:192.168.4.4]".into();
    phone.challenge = None;
    let r = net.ask(src, &phone.register(&[]));
    assert_eq!(challenge_of(&r).realm, "192.168.4.4", "canonical realm");
}

#[test]
fn issue_17_3_aliases_are_served() {
    let mut net = Net::with(|c| {
        c.registrar.served = crate::registrar::ServedHosts::new(
            [],
            ["sip.example.org".to_string(), "203.0.113.5".to_string()],
            [5060],
        )
    });
    let mut phone = Phone::new("alice", "1234", ZOIPER);
    for host in ["sip.example.org", "SIP.example.org.", "203.0.113.5"] {
        phone.domain = host.into();
        phone.challenge = None;
        let r = net.register(&mut phone, addr(ZOIPER), &[]);
        assert_eq!(r.status, 200, "{host}: {}", reason(&r));
    }
    assert_eq!(net.aor_contacts("alice@sip.example.org").len(), 1);
    assert_eq!(net.aor_contacts("alice@203.0.113.5").len(), 1);
    assert_eq!(net.store.counts().0, 2, "one AOR per served host, no more");
}

#[test]
fn issue_17_11_spoofed_failures_do_not_ban_the_victim() {
    let mut net = Net::with(|c| {
        c.security = crate::security::SecurityConfig {
            max_auth_failures: 3,
            allow: Vec::new(),
            ..Default::default()
        }
    });
    let attacker = addr("203.0.113.66:5060");
    let victim = addr(ZOIPER);
    // The attacker gets a nonce at its own address, then sends wrong answers "from" the
    // victim (spoofed UDP source).
    let mut wrong = Phone::new("alice", "4321", ZOIPER);
    wrong.branches = 100;
    let r = net.ask(attacker, &wrong.register(&[]));
    wrong.learn(&r);
    for _ in 0..10 {
        let r = net.ask(victim, &wrong.register(&[]));
        assert_eq!(r.status, 401, "a fresh challenge to the victim, not a 403");
    }
    assert_eq!(net.engine.guard.failures(victim.ip()), 0);
    assert!(!net.engine.guard.is_banned(net.now, victim.ip()));
    let mut alice = Phone::new("alice", "1234", ZOIPER);
    assert_eq!(net.register(&mut alice, victim, &[]).status, 200);
}

#[test]
fn issue_17_11_responses_from_a_banned_source_still_reach_our_transactions() {
    let mut net = Net::with(|c| {
        c.calls.auth_calls = false;
        c.security = crate::security::SecurityConfig {
            max_auth_failures: 3,
            allow: Vec::new(),
            ..Default::default()
        }
    });
    let callee = addr(ZOIPER);
    let mut alice = Phone::new("alice", "1234", ZOIPER);
    assert_eq!(net.register(&mut alice, callee, &[]).status, 200);
    // The callee's address gets banned (three real failures from it).
    let mut wrong = Phone::new("bob", "4321", ZOIPER);
    for _ in 0..3 {
        assert_eq!(net.register(&mut wrong, callee, &[]).status, 403);
    }
    assert!(net.engine.guard.is_banned(net.now, callee.ip()));
    // bob calls alice; the b-leg INVITE goes out to the banned address …
    let caller = addr("192.0.2.50:5070");
    let invite = [
        "INVITE sip:alice@192.168.4.4 SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.50:5070;branch=z9hG4bK-ban-1;rport",
        "Max-Forwards: 70",
        "To: <sip:alice@192.168.4.4>",
        "From: <sip:bob@192.168.4.4>;tag=bob-ban",
        "Call-ID: ban-call-1",
        "CSeq: 1 INVITE",
        "Contact: <sip:bob@192.0.2.50:5070>",
        "Content-Length: 0",
        "",
        "",
    ]
    .join("\r\n");
    let out = net.udp(caller, &invite);
    let b_invite = out
        .iter()
        .find(|t| t.to.addr == callee)
        .map(|t| match parse_datagram(&t.bytes) {
            Ok(Message::Request(r)) => r,
            other => panic!("expected the b-leg INVITE, got {other:?}"),
        })
        .expect("an INVITE to alice");
    // … and alice's 180 from it reaches bob.
    let mut ringing = crate::sip::response_to(&b_invite, 180, "Ringing");
    crate::sip::set_to_tag(&mut ringing, "alice-ban");
    ringing
        .headers
        .push(HeaderName::Contact, "<sip:alice@192.168.4.4:5090>");
    let out = net.deliver(Transport::Udp, callee, None, &ringing.to_bytes());
    let to_bob: Vec<u16> = out
        .iter()
        .filter(|t| t.to.addr == caller)
        .map(|t| response(t).status)
        .collect();
    assert_eq!(to_bob, [180], "the banned callee's ringing is relayed");
}

#[test]
fn issue_17_11_a_ban_does_not_cut_off_an_authenticated_tcp_connection() {
    let mut net = Net::with(|c| {
        c.security = crate::security::SecurityConfig {
            max_auth_failures: 3,
            allow: Vec::new(),
            ..Default::default()
        }
    });
    let phone_addr = addr(ZOIPER);
    let tcp = |net: &mut Net, conn: u64, raw: &str| -> Vec<Response> {
        net.deliver(Transport::Tcp, phone_addr, Some(conn), raw.as_bytes())
            .iter()
            .map(response)
            .collect()
    };
    // alice registers over TCP connection 7 (challenge, then credentials).
    let mut alice = Phone::new("alice", "1234", ZOIPER);
    alice.transport = "TCP";
    let r = tcp(&mut net, 7, &alice.register(&[]));
    assert_eq!(r[0].status, 401);
    alice.learn(&r[0]);
    let r = tcp(&mut net, 7, &alice.register(&[]));
    assert_eq!(r[0].status, 200);
    // Three failures from the same address (another phone behind the same NAT, or
    // a guesser) ban it.
    let mut wrong = Phone::new("bob", "4321", ZOIPER);
    for _ in 0..3 {
        assert_eq!(net.register(&mut wrong, phone_addr, &[]).status, 403);
    }
    assert!(net.engine.guard.is_banned(net.now, phone_addr.ip()));
    // The authenticated connection is still served …
    let r = tcp(&mut net, 7, &alice.register(&[]));
    assert_eq!(
        r.len(),
        1,
        "the refresh on the authenticated connection is answered"
    );
    assert_eq!(r[0].status, 200);
    // … a new connection from the banned address is not, nor is one that has closed.
    assert!(tcp(&mut net, 8, &alice.register(&[])).is_empty());
    net.engine
        .handle_connection_closed(crate::net::ConnectionId(7));
    assert!(tcp(&mut net, 7, &alice.register(&[])).is_empty());
}

#[test]
fn issue_10_a_seeded_engine_issues_the_same_nonces_every_run() {
    let nonces = || {
        let mut net = Net::new();
        let mut phone = Phone::new("alice", "1234", ZOIPER);
        (0..3)
            .map(|_| {
                headers(
                    &net.ask(addr(ZOIPER), &phone.register(&[])),
                    "WWW-Authenticate",
                )[0]
                .to_string()
            })
            .collect::<Vec<String>>()
    };
    let first = nonces();
    assert_eq!(first, nonces());
    assert_ne!(first[0], first[1], "each challenge has a fresh nonce");
}
