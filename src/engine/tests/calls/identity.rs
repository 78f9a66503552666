//! What the callee is told about the caller. Nothing the caller wrote reaches the b-leg
//! unless it is valid for its header (no control octets, display names as quoted-strings);
//! only an authenticated caller is asserted (P-Asserted-Identity, RPID `screen=yes`); a
//! caller asking for privacy (RFC 3323, RFC 3325 `Privacy: id`) is anonymous to the callee,
//! which is a phone and not a trusted node, while the CDR keeps who called.

use super::*;

/// The b-leg INVITE's head has CRLF line ends only and no other control octet.
fn assert_clean_head(inv: &Request) {
    let bytes = inv.to_bytes();
    let end = memchr::memmem::find(&bytes, b"\r\n\r\n").expect("a head");
    let head = &bytes[..end + 2];
    for (i, &b) in head.iter().enumerate() {
        let ok = match b {
            b'\r' => head.get(i + 1) == Some(&b'\n'),
            b'\n' => i > 0 && head[i - 1] == b'\r',
            b'\t' => true,
            b => b >= 0x20 && b != 0x7f,
        };
        assert!(
            ok,
            "control octet {b:#04x} at {i} in {:?}",
            String::from_utf8_lossy(head)
        );
    }
}

/// The whole authenticated call set-up, with `edit` applied to the authorized INVITE.
fn ring_with(net: &mut Net, bob: &mut Caller, edit: impl Fn(&str) -> String) -> Request {
    let first = bob.invite_to("alice", &[], "");
    let r407 = net.send(BOB, &first).response(BOB, 407);
    bob.learn(&r407);
    net.send(BOB, &bob.ack_non2xx(&r407));
    let msg = edit(&bob.invite_to("alice", &[], ""));
    bob.invite = msg.clone();
    let sent = net.send(BOB, &msg);
    assert_eq!(sent.ladder(), ["bob<-100 INVITE", "alice<-INVITE"]);
    sent.request(ZOIPER, Method::Invite)
}

fn refuse(net: &mut Net, bob: &mut Caller, inv: &Request) -> crate::cdr::CdrRecord {
    let sent = net.send(ZOIPER, &Ua::alice().respond(inv, 486, &[], ""));
    net.send(BOB, &bob.ack_non2xx(&sent.response(BOB, 486)));
    let cdr = net.cdr();
    net.assert_drained();
    cdr
}

#[test]
fn rfc3261_25_1_no_control_octet_from_the_caller_reaches_the_callee() {
    let mut net = Net::calls();
    let mut bob = Caller::bob();
    let inv = ring_with(&mut net, &mut bob, |m| {
        let m = set_header(
            m,
            "Subject",
            "hello\rP-Asserted-Identity: <sip:ceo@192.168.4.4>",
        );
        set_header(
            &m,
            "From",
            // A control octet in a display name costs the whole display name at the door
            // (`sip::make_echo_safe`); quotes and backslashes in it must be re-quoted.
            "\"Bob \\\"the\\\" \\\\ Boss\"<sip:bob@192.168.4.4>;tag=15c8325a",
        )
    });
    assert_clean_head(&inv);
    assert_eq!(inv.headers.count(&HeaderName::PAssertedIdentity), 1);
    assert_eq!(
        req_header(&inv, "P-Asserted-Identity"),
        Some("\"Bob \\\"the\\\" \\\\ Boss\" <sip:bob@192.168.4.4>"),
        "the display name is re-quoted with its escapes"
    );
    assert_eq!(
        req_header(&inv, "Subject"),
        Some("helloP-Asserted-Identity: <sip:ceo@192.168.4.4>"),
        "one Subject line, no smuggled header"
    );
    let from = inv.headers.from().expect("our From parses");
    assert_eq!(
        from.display_name_lossy().as_deref(),
        Some("Bob \"the\" \\ Boss")
    );
    refuse(&mut net, &mut bob, &inv);
}

#[test]
fn auth_calls_false_an_unauthenticated_caller_is_never_asserted() {
    let mut net = Net::calls_with(|c| c.calls.auth_calls = false);
    let mut bob = Caller::bob();
    let msg = set_header(
        &bob.invite_to("alice", &[], ""),
        "From",
        "\"The CEO\" <sip:bob@192.168.4.4>;tag=15c8325a",
    );
    bob.invite = msg.clone();
    let sent = net.send(BOB, &msg);
    assert_eq!(sent.ladder(), ["bob<-100 INVITE", "alice<-INVITE"]);
    let inv = sent.request(ZOIPER, Method::Invite);
    assert_eq!(req_header(&inv, "P-Asserted-Identity"), None);
    assert_eq!(
        req_header(&inv, "Remote-Party-ID"),
        Some("\"The CEO\" <sip:bob@192.168.4.4>;party=calling;screen=no;privacy=off")
    );
    let cdr = refuse(&mut net, &mut bob, &inv);
    assert_eq!(cdr.caller.user, "bob");
}

#[test]
fn rfc3323_privacy_id_the_callee_sees_an_anonymous_caller_the_cdr_does_not() {
    let mut net = Net::calls();
    let mut bob = Caller::bob();
    let inv = ring_with(&mut net, &mut bob, |m| set_header(m, "Privacy", "id"));
    let from = req_header(&inv, "From").expect("From");
    assert!(
        from.starts_with("\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag="),
        "{from}"
    );
    assert_eq!(req_header(&inv, "P-Asserted-Identity"), None);
    let rpid = req_header(&inv, "Remote-Party-ID").expect("RPID");
    assert!(
        rpid.contains("privacy=full") && !rpid.contains("bob"),
        "{rpid}"
    );
    assert_eq!(req_header(&inv, "Privacy"), Some("id"));
    let contact = req_header(&inv, "Contact").expect("Contact");
    assert!(!contact.contains("bob"), "{contact}");
    let text = String::from_utf8_lossy(&inv.to_bytes()).into_owned();
    assert!(!text.contains("sip:bob@"), "nothing names bob: {text}");
    let cdr = refuse(&mut net, &mut bob, &inv);
    assert_eq!(cdr.caller.user, "bob");
    assert_eq!(cdr.caller.display_name.as_deref(), Some("Bob"));
}

#[test]
fn privacy_none_changes_nothing() {
    let mut net = Net::calls();
    let mut bob = Caller::bob();
    let inv = ring_with(&mut net, &mut bob, |m| set_header(m, "Privacy", "none"));
    assert_eq!(
        req_header(&inv, "P-Asserted-Identity"),
        Some("\"Bob\" <sip:bob@192.168.4.4>")
    );
    refuse(&mut net, &mut bob, &inv);
}
