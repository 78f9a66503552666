//! The stateful verifier end to end on a virtual clock: challenge, answer, verdict. Covers
//! the registrar's cases from issue 3 (right and wrong password, unknown user, stale nonce
//! after the lifetime, replayed nc, offered algorithms in the configured order, no-qop answers,
//! auth-int bodies, userhash) without any socket or real clock.

use ferroswitch::auth::{
    parse_challenges, Account, Action, Algorithm, Answer, Challenge, DigestChallenge,
    DigestCredentials, DigestRequest, NonceManager, NonceSecret, Outcome, Qop, Secret, Verifier,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::time::Duration;

const REALM: &str = "sip.example.org";
const T0: u64 = 1_700_000_000;

fn verifier(algs: &[Algorithm]) -> Verifier {
    let nonces = NonceManager::new(NonceSecret::from_bytes([42; 32]), Duration::from_secs(300));
    Verifier::new(nonces, algs, StdRng::seed_from_u64(2617))
}

fn register() -> DigestRequest<'static> {
    DigestRequest {
        method: "REGISTER",
        body: b"",
        realm: REALM,
    }
}

fn answer(ch: &DigestChallenge, password: &str, nc: u32) -> DigestCredentials {
    DigestCredentials::answer(
        ch,
        &Answer {
            username: "1000",
            password,
            method: "REGISTER",
            uri: "sip:sip.example.org;transport=UDP",
            body: b"",
            cnonce: "0a4f113b",
            nc,
        },
    )
}

fn account(secret: &Secret) -> Option<Account<'_>> {
    Some(Account {
        username: "1000",
        secret,
    })
}

#[test]
fn default_offers_md5_only_and_accepts_the_right_password() {
    let mut v = verifier(&[]);
    let chs = v.challenges(T0, REALM, false);
    assert_eq!(chs.len(), 1);
    assert_eq!(chs[0].algorithm, Algorithm::Md5);
    assert_eq!(chs[0].qop, vec![Qop::Auth]);
    let secret = Secret::Password("correct horse".into());
    let c = answer(&chs[0], "correct horse", 1);
    assert_eq!(
        v.verify(T0 + 1, &c, &register(), account(&secret)),
        Outcome::Ok
    );
    assert_eq!(v.stats().ok, 1);
}

#[test]
fn wrong_password_and_unknown_user_get_the_same_answer() {
    let mut v = verifier(&[]);
    let ch = &v.challenges(T0, REALM, false)[0];
    let secret = Secret::Password("correct horse".into());
    let c = answer(ch, "wrong", 1);
    let wrong = v.verify(T0, &c, &register(), account(&secret));
    let unknown = v.verify(T0, &c, &register(), None);
    assert_eq!(wrong, Outcome::WrongPassword);
    assert_eq!(unknown, Outcome::UnknownUser);
    assert_eq!(wrong.action(), unknown.action());
    assert_eq!(wrong.action(), Action::Forbidden);
}

#[test]
fn nonce_expires_into_a_stale_rechallenge() {
    let mut v = verifier(&[]);
    let ch = &v.challenges(T0, REALM, false)[0];
    let secret = Secret::Password("pw-123456".into());
    assert_eq!(
        v.verify(
            T0 + 300,
            &answer(ch, "pw-123456", 1),
            &register(),
            account(&secret)
        ),
        Outcome::Ok
    );
    let late = v.verify(
        T0 + 301,
        &answer(ch, "pw-123456", 2),
        &register(),
        account(&secret),
    );
    assert_eq!(late, Outcome::Stale);
    assert_eq!(late.action(), Action::Challenge { stale: true });
    // A stale nonce with the wrong password is still just a wrong password.
    assert_eq!(
        v.verify(
            T0 + 301,
            &answer(ch, "nope", 3),
            &register(),
            account(&secret)
        ),
        Outcome::WrongPassword
    );
    let again = v.challenges(T0 + 301, REALM, true);
    assert!(again[0].stale && again[0].to_string().contains(", stale=true, "));
    assert_ne!(again[0].nonce, ch.nonce);
}

#[test]
fn replayed_or_decreasing_nc_is_refused() {
    let mut v = verifier(&[]);
    let ch = &v.challenges(T0, REALM, false)[0];
    let secret = Secret::Password("pw-123456".into());
    let first = answer(ch, "pw-123456", 1);
    let second = answer(ch, "pw-123456", 2);
    assert_eq!(
        v.verify(T0, &first, &register(), account(&secret)),
        Outcome::Ok
    );
    assert_eq!(
        v.verify(T0, &second, &register(), account(&secret)),
        Outcome::Ok
    );
    assert_eq!(
        v.verify(T0, &second, &register(), account(&secret)),
        Outcome::Replayed
    );
    assert_eq!(
        v.verify(T0, &first, &register(), account(&secret)),
        Outcome::Replayed
    );
    // A wrong answer with a fresh nc does not consume it.
    assert_eq!(
        v.verify(T0, &answer(ch, "bad", 3), &register(), account(&secret)),
        Outcome::WrongPassword
    );
    assert_eq!(
        v.verify(
            T0,
            &answer(ch, "pw-123456", 3),
            &register(),
            account(&secret)
        ),
        Outcome::Ok
    );
}

#[test]
fn foreign_nonce_and_wrong_realm_are_challenged() {
    let mut v = verifier(&[]);
    let secret = Secret::Password("pw".into());
    let foreign = DigestChallenge::new(
        REALM,
        "62fb812c-71d2-4a36-93d6-e0008e6a63ee",
        Algorithm::Md5,
    );
    let out = v.verify(
        T0,
        &answer(&foreign, "pw", 1),
        &register(),
        account(&secret),
    );
    assert_eq!(out, Outcome::InvalidNonce);
    assert_eq!(out.action(), Action::Challenge { stale: false });
    // A nonce issued for another realm is not valid here either.
    let other = v.challenges(T0, "other.example.org", false);
    let mut c = answer(&other[0], "pw", 1);
    assert_eq!(
        v.verify(T0, &c, &register(), account(&secret)),
        Outcome::WrongRealm
    );
    c.realm = REALM.into();
    assert_eq!(
        v.verify(T0, &c, &register(), account(&secret)),
        Outcome::InvalidNonce
    );
}

#[test]
fn several_algorithms_are_offered_in_the_configured_order_and_enforced() {
    // RFC 8760: the server offers in its (the operator's) order of preference.
    let mut v = verifier(&[Algorithm::Md5, Algorithm::Sha256, Algorithm::Md5]);
    assert_eq!(v.algorithms(), &[Algorithm::Md5, Algorithm::Sha256]);
    let w = verifier(&[Algorithm::Sha256, Algorithm::Md5]);
    assert_eq!(w.algorithms(), &[Algorithm::Sha256, Algorithm::Md5]);
    let chs = v.challenges(T0, REALM, false);
    assert_eq!(chs.len(), 2);
    assert_eq!(chs[0].nonce, chs[1].nonce);
    let secret = Secret::Password("pw".into());
    // One nonce shared by both challenges, so nc keeps counting across them.
    for (nc, ch) in (1..).zip(&chs) {
        let c = answer(ch, "pw", nc);
        assert_eq!(
            v.verify(T0, &c, &register(), account(&secret)),
            Outcome::Ok,
            "{ch}"
        );
        // Each challenge goes in its own header and parses back.
        assert_eq!(
            parse_challenges(&ch.to_string()).unwrap(),
            vec![Challenge::Digest(ch.clone())]
        );
    }
    let mut sess = chs[0].clone();
    sess.algorithm = Algorithm::Md5Sess;
    let out = v.verify(T0, &answer(&sess, "pw", 3), &register(), account(&secret));
    assert_eq!(out, Outcome::AlgorithmNotOffered(Algorithm::Md5Sess));
}

#[test]
fn stored_ha1_serves_md5_and_md5_sess_but_not_sha256() {
    let mut v = verifier(&[Algorithm::Sha256, Algorithm::Md5Sess, Algorithm::Md5]);
    let ha1 = ferroswitch::auth::hash_password("1000", REALM, "pw-123456");
    let stored = Secret::Ha1 {
        hex: ha1,
        realm: Some(REALM.into()),
    };
    let chs = v.challenges(T0, REALM, false);
    let by = |a| chs.iter().find(|c| c.algorithm == a).unwrap();
    for (alg, nc) in [(Algorithm::Md5, 1), (Algorithm::Md5Sess, 2)] {
        let c = answer(by(alg), "pw-123456", nc);
        assert_eq!(v.verify(T0, &c, &register(), account(&stored)), Outcome::Ok);
    }
    let c = answer(by(Algorithm::Sha256), "pw-123456", 3);
    let out = v.verify(T0, &c, &register(), account(&stored));
    assert!(matches!(out, Outcome::CannotVerify(_)), "{out:?}");
    assert_eq!(out.action(), Action::Forbidden);
}

#[test]
fn answers_without_qop_are_refused_because_qop_was_offered() {
    // RFC 7616 §3.4: qop was offered, so it is required; without it there is no nc and the
    // answer would replay freely for the nonce's lifetime (issue 17.6).
    let mut v = verifier(&[]);
    let mut ch = v.challenges(T0, REALM, false).remove(0);
    ch.qop.clear();
    let c = answer(&ch, "pw", 1);
    assert!(c.qop.is_none() && c.nc.is_none() && c.cnonce.is_none());
    let secret = Secret::Password("pw".into());
    let out = v.verify(T0, &c, &register(), account(&secret));
    assert_eq!(out, Outcome::QopMissing);
    assert_eq!(out.action(), Action::Forbidden);
    // Even with a wrong password the verdict is the same: no oracle.
    let wrong = answer(&ch, "nope", 1);
    assert_eq!(
        v.verify(T0, &wrong, &register(), account(&secret)),
        Outcome::QopMissing
    );
}

#[test]
fn bound_nonces_verify_only_from_the_address_they_were_issued_to() {
    let mut v = verifier(&[]);
    let here: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    let there: std::net::IpAddr = "192.0.2.8".parse().unwrap();
    let ch = v.challenges_for(T0, REALM, false, Some(here)).remove(0);
    let secret = Secret::Password("pw".into());
    let c = answer(&ch, "pw", 1);
    assert_eq!(
        v.verify_from(T0, &c, &register(), account(&secret), Some(there)),
        Outcome::InvalidNonce
    );
    assert_eq!(
        v.verify(T0, &c, &register(), account(&secret)),
        Outcome::InvalidNonce
    );
    assert_eq!(
        v.verify_from(T0, &c, &register(), account(&secret), Some(here)),
        Outcome::Ok
    );
}

#[test]
fn auth_int_covers_the_body() {
    let mut v = verifier(&[]);
    let mut ch = v.challenges(T0, REALM, false).remove(0);
    ch.qop = vec![Qop::AuthInt];
    let body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n";
    let a = Answer {
        username: "1000",
        password: "pw",
        method: "INVITE",
        uri: "sip:2000@sip.example.org",
        body,
        cnonce: "c",
        nc: 1,
    };
    let c = DigestCredentials::answer(&ch, &a);
    let secret = Secret::Password("pw".into());
    let invite = |body: &'static [u8]| DigestRequest {
        method: "INVITE",
        body,
        realm: REALM,
    };
    let tampered: &'static [u8] = b"v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\n";
    assert_eq!(
        v.verify(T0, &c, &invite(tampered), account(&secret)),
        Outcome::WrongPassword
    );
    assert_eq!(
        v.verify(T0, &c, &invite(body), account(&secret)),
        Outcome::Ok
    );
}

#[test]
fn userhash_hides_the_username() {
    let mut v = verifier(&[Algorithm::Sha256]);
    let mut ch = v.challenges(T0, REALM, false).remove(0);
    ch.userhash = true;
    let c = answer(&ch, "pw", 1);
    assert!(c.userhash && c.username.len() == 64 && c.username != "1000");
    let secret = Secret::Password("pw".into());
    assert_eq!(v.verify(T0, &c, &register(), account(&secret)), Outcome::Ok);
    let other = Account {
        username: "1001",
        secret: &secret,
    };
    let c2 = answer(&ch, "pw", 2);
    assert_eq!(
        v.verify(T0, &c2, &register(), Some(other)),
        Outcome::WrongPassword
    );
}

#[test]
fn header_entry_point_handles_garbage_and_other_schemes() {
    let mut v = verifier(&[]);
    let secret = Secret::Password("pw".into());
    let req = register();
    let lookup = |_: &DigestCredentials| account(&secret);
    let out = v.verify_header(T0, "Digest username=\"1000\", realm=", &req, lookup);
    assert!(matches!(out, Outcome::Malformed(_)), "{out:?}");
    assert_eq!(out.action(), Action::BadRequest);
    let out = v.verify_header(T0, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", &req, lookup);
    assert_eq!(out, Outcome::UnsupportedScheme("Basic".into()));
    let out = v.verify_header(
        T0,
        "Digest username=\"1000\",realm=\"sip.example.org\",nonce=\"x\",uri=\"sip:x\",response=\"00000000000000000000000000000000\",algorithm=SHA-1",
        &req,
        lookup,
    );
    assert_eq!(out.action(), Action::Challenge { stale: false });
    let ch = &v.challenges(T0, REALM, false)[0];
    let good = answer(ch, "pw", 1).to_string();
    assert_eq!(v.verify_header(T0, &good, &req, lookup), Outcome::Ok);
}
