//! RFC 3665 §3 call flows, dialog side: both user agents keep their own `Dialog` built from
//! the flow's messages, and the requests each builds must match what the RFC shows and
//! reach the other through the record-routing proxies.

mod dialog_common;

use dialog_common::*;
use ferroswitch::dialog::{Dialog, DialogError};
use ferroswitch::dialog::{DialogKey, DialogRole, DialogState, RequestVerdict, ViaSpec};
use ferroswitch::net::Transport;
use ferroswitch::sip::{cancel_for, response_to, HeaderName, Method};

const CALL_ID: &str = "3848276298220188511@atlanta.example.com";

/// §3.2 F4 as Alice sent it (after the 407, hence CSeq 2).
const F4_AS_SENT: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9
Max-Forwards: 70
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
To: Bob <sip:bob@biloxi.example.com>
Call-ID: 3848276298220188511@atlanta.example.com
CSeq: 2 INVITE
Contact: <sip:alice@client.atlanta.example.com;transport=tcp>
Content-Length: 0

";

/// §3.2 F7 as Bob received it, through ss1 then ss2.
const F7_AS_RECEIVED: &str = "INVITE sip:bob@client.biloxi.example.com SIP/2.0
Via: SIP/2.0/TCP ss2.biloxi.example.com:5060;branch=z9hG4bK721e4.1
Via: SIP/2.0/TCP ss1.atlanta.example.com:5060;branch=z9hG4bK2d4790.1;received=192.0.2.111
Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;received=192.0.2.101
Max-Forwards: 68
Record-Route: <sip:ss2.biloxi.example.com;lr>, <sip:ss1.atlanta.example.com;lr>
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
To: Bob <sip:bob@biloxi.example.com>
Call-ID: 3848276298220188511@atlanta.example.com
CSeq: 2 INVITE
Contact: <sip:alice@client.atlanta.example.com;transport=tcp>
Content-Length: 0

";

/// §3.2 F12/F14: Bob's 180 or 200 as Alice receives it.
fn to_alice(status: &str) -> ferroswitch::sip::Response {
    response(&format!(
        "SIP/2.0 {status}
Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;received=192.0.2.101
Record-Route: <sip:ss2.biloxi.example.com;lr>, <sip:ss1.atlanta.example.com;lr>
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
To: Bob <sip:bob@biloxi.example.com>;tag=314159
Call-ID: 3848276298220188511@atlanta.example.com
CSeq: 2 INVITE
Contact: <sip:bob@client.biloxi.example.com;transport=tcp>
Content-Length: 0

"
    ))
}

fn tcp(host: &str) -> ViaSpec {
    ViaSpec::new(Transport::Tcp, host, dialog_common::fresh_branch())
}

#[test]
fn section_3_2_session_through_two_proxies() {
    // Bob answers: his dialog is the UAS side of F7, confirmed by his 200.
    let f7 = request(F7_AS_RECEIVED);
    let mut bob = Dialog::from_uas(
        &f7,
        "314159",
        addr("<sip:bob@client.biloxi.example.com;transport=tcp>"),
    )
    .unwrap();
    let bob_key = bob.key().clone();
    let mut f9 = response_to(&f7, 200, "OK");
    bob.fill_response(&f7, &mut f9);
    assert_eq!(f9.headers.record_routes().unwrap().len(), 2);
    assert_eq!(bob.handle_sent_response(&f9), DialogState::Confirmed);

    // Alice gets 180 then 200 through the proxies.
    let f4 = request(F4_AS_SENT);
    let mut alice = Dialog::from_uac(&f4, &to_alice("180 Ringing")).unwrap();
    assert_eq!(alice.state(), DialogState::Early);
    let ok = alice.handle_response(&to_alice("200 OK")).unwrap();
    assert_eq!(ok.state, DialogState::Confirmed);
    let alice_key = DialogKey::new(CALL_ID, "9fxced76sl", "314159");
    assert_eq!(alice.key(), &alice_key);
    assert_eq!(bob_key, DialogKey::new(CALL_ID, "314159", "9fxced76sl"));

    // F15: Alice's ACK, as in the RFC: to Bob's Contact, via ss1 then ss2, CSeq 2 ACK.
    let a = &mut alice;
    assert_eq!(a.role(), DialogRole::Uac);
    let mut ack = a
        .new_request(
            Method::Ack,
            &ViaSpec::new(
                Transport::Tcp,
                "client.atlanta.example.com:5060",
                "z9hG4bK74b76",
            ),
        )
        .unwrap();
    assert_eq!(
        ack.uri_str(),
        Some("sip:bob@client.biloxi.example.com;transport=tcp")
    );
    assert_eq!(
        route_uris(&ack),
        [
            "sip:ss1.atlanta.example.com;lr",
            "sip:ss2.biloxi.example.com;lr"
        ]
    );
    assert_eq!(header(&ack, HeaderName::CSeq), "2 ACK");
    assert_eq!(
        header(&ack, HeaderName::From),
        "Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl"
    );
    assert_eq!(
        header(&ack, HeaderName::To),
        "Bob <sip:bob@biloxi.example.com>;tag=314159"
    );
    let hop = a.next_hop().unwrap();
    assert_eq!(
        (hop.host.as_str(), hop.addr),
        ("ss1.atlanta.example.com", None)
    );

    // Through ss1 and ss2 (each pops its Route), to Bob, who takes it.
    assert_eq!(pop_route(&mut ack), "sip:ss1.atlanta.example.com;lr");
    assert_eq!(pop_route(&mut ack), "sip:ss2.biloxi.example.com;lr");
    let verdict = bob.handle_request(&over_the_wire(&ack));
    assert_eq!(accepted(verdict).key, bob_key);

    // F18: Bob hangs up: to Alice's Contact, via ss2 then ss1, CSeq 1 BYE (his first).
    let b = &mut bob;
    let mut bye = b
        .new_request(
            Method::Bye,
            &ViaSpec::new(
                Transport::Tcp,
                "client.biloxi.example.com:5060",
                "z9hG4bKnashds7",
            ),
        )
        .unwrap();
    assert_eq!(
        bye.uri_str(),
        Some("sip:alice@client.atlanta.example.com;transport=tcp")
    );
    assert_eq!(
        route_uris(&bye),
        [
            "sip:ss2.biloxi.example.com;lr",
            "sip:ss1.atlanta.example.com;lr"
        ]
    );
    assert_eq!(header(&bye, HeaderName::CSeq), "1 BYE");
    assert_eq!(
        header(&bye, HeaderName::From),
        "Bob <sip:bob@biloxi.example.com>;tag=314159"
    );
    assert_eq!(b.state(), DialogState::Terminated);

    pop_route(&mut bye);
    pop_route(&mut bye);
    let verdict = alice.handle_request(&over_the_wire(&bye));
    assert_eq!(accepted(verdict).state, DialogState::Terminated);
    assert_eq!(alice.remote_cseq(), Some(1), "Alice took Bob's first CSeq");
    // A BYE retransmitted past the transaction layer finds no live dialog.
    assert_eq!(
        alice.handle_request(&over_the_wire(&bye)),
        RequestVerdict::Reject(ferroswitch::dialog::DialogRejection::NoDialog)
    );
}

#[test]
fn section_3_6_busy_makes_no_dialog() {
    let f4 = request(F4_AS_SENT);
    let busy = to_alice("486 Busy Here");
    assert_eq!(
        Dialog::from_uac(&f4, &busy),
        Err(DialogError::NotDialogCreating(486))
    );
}

#[test]
fn section_3_8_no_answer_cancel_ends_the_early_dialogs() {
    // Alice: 180 makes an early dialog; she cancels; the 487 ends it.
    let f4 = request(F4_AS_SENT);
    let mut alice = Dialog::from_uac(&f4, &to_alice("180 Ringing")).unwrap();
    assert_eq!(
        alice.key(),
        &DialogKey::new(CALL_ID, "9fxced76sl", "314159")
    );
    assert_eq!(alice.state(), DialogState::Early);
    // The CANCEL copies the INVITE (same branch), not the dialog (§9.1).
    assert_eq!(
        alice.new_request(Method::Cancel, &tcp("client.atlanta.example.com")),
        Err(DialogError::CancelNotFromDialog)
    );
    let cancel = cancel_for(&f4);
    assert_eq!(header(&cancel, HeaderName::CSeq), "2 CANCEL");
    let ended = alice
        .handle_response(&to_alice("487 Request Terminated"))
        .unwrap();
    assert_eq!(ended.state, DialogState::Terminated);

    // Bob: his early dialog ends with the 487 he sends.
    let f7 = request(F7_AS_RECEIVED);
    let mut bob =
        Dialog::from_uas(&f7, "314159", addr("<sip:bob@client.biloxi.example.com>")).unwrap();
    let mut ringing = response_to(&f7, 180, "Ringing");
    bob.fill_response(&f7, &mut ringing);
    assert_eq!(bob.handle_sent_response(&ringing), DialogState::Early);
    let mut terminated = response_to(&f7, 487, "Request Terminated");
    bob.fill_response(&f7, &mut terminated);
    assert_eq!(
        bob.handle_sent_response(&terminated),
        DialogState::Terminated
    );
}
