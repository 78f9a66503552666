use super::*;
use crate::dialog::test_msgs::*;
use crate::dialog::{DialogError, ViaSpec};
use crate::net::Transport;
use crate::sip::response_to;

fn confirmed() -> Dialog {
    let inv = request(A_INVITE);
    let mut d = Dialog::from_uas(&inv, "cDg7NyjpeSg4m", our_contact()).unwrap();
    d.handle_sent_response(&response_to(&inv, 200, "OK"));
    d
}

fn accepted(v: RequestVerdict) -> Accepted {
    match v {
        RequestVerdict::Accept(a) => a,
        other => panic!("expected Accept, got {other:?}"),
    }
}

#[test]
fn ack_for_our_2xx_is_accepted_and_a_stale_one_dropped() {
    let mut d = confirmed();
    let a = accepted(d.handle_request(&a_in_dialog("ACK", 2, "")));
    assert_eq!(a.state, DialogState::Confirmed);
    assert_eq!(d.remote_cseq(), Some(2));
    assert_eq!(
        d.handle_request(&a_in_dialog("ACK", 1, "")),
        RequestVerdict::Drop
    );
}

#[test]
fn cseq_must_rise_12_2_2() {
    let mut d = confirmed();
    for (cseq, want) in [(2, Some(2)), (1, Some(2))] {
        assert_eq!(
            d.handle_request(&a_in_dialog("INFO", cseq, "")),
            RequestVerdict::Reject(DialogRejection::OutOfOrder { cseq, last: 2 })
        );
        assert_eq!(d.remote_cseq(), want);
    }
    accepted(d.handle_request(&a_in_dialog("INFO", 3, "")));
    // Gaps are fine (§12.2.2: only lower is out of order).
    accepted(d.handle_request(&a_in_dialog("INFO", 10, "")));
    assert_eq!(d.remote_cseq(), Some(10));
    // CANCEL carries the number of what it cancels and is not judged by it.
    accepted(d.handle_request(&a_in_dialog("CANCEL", 10, "")));
    let r = DialogRejection::OutOfOrder { cseq: 1, last: 2 };
    assert_eq!((r.status(), r.retry_after_max()), (500, None));
}

#[test]
fn reinvite_and_update_refresh_the_target_but_info_does_not() {
    let mut d = confirmed();
    let a = accepted(d.handle_request(&a_in_dialog(
        "INFO",
        3,
        "Contact: <sip:bob@203.0.113.5:26000>\n",
    )));
    assert!(!a.target_refreshed);
    assert_eq!(d.remote_target().as_str(), "sip:bob@192.168.4.4:26000");
    let a = accepted(d.handle_request(&a_in_dialog(
        "UPDATE",
        4,
        "Contact: <sip:bob@203.0.113.5:26000>\n",
    )));
    assert!(a.target_refreshed);
    assert_eq!(d.remote_target().as_str(), "sip:bob@203.0.113.5:26000");
    let a = accepted(d.handle_request(&a_in_dialog(
        "INVITE",
        5,
        "Contact: <sip:bob@198.51.100.9:5062>\n",
    )));
    assert!(a.target_refreshed);
    assert_eq!(d.remote_target().as_str(), "sip:bob@198.51.100.9:5062");
    assert_eq!(d.pending_incoming_invite(), Some(5));
    // A target refresh without Contact keeps the target.
    let mut d = confirmed();
    assert!(!accepted(d.handle_request(&a_in_dialog("UPDATE", 3, ""))).target_refreshed);
    assert_eq!(
        d.handle_request(&a_in_dialog("UPDATE", 4, "Contact: <sip:bob@h\n")),
        RequestVerdict::Reject(DialogRejection::BadRequest("malformed Contact"))
    );
}

#[test]
fn glare_gets_491_and_a_second_incoming_invite_500_with_retry_after_14_2() {
    let mut d = confirmed();
    let via = ViaSpec::new(Transport::Udp, "192.168.4.4", "z9hG4bKreinvite");
    d.new_request(Method::Invite, &via).unwrap();
    assert_eq!(d.pending_outgoing_invite(), Some(1));
    let inv = a_in_dialog("INVITE", 3, "Contact: <sip:bob@192.168.4.4:26000>\n");
    assert_eq!(
        d.handle_request(&inv),
        RequestVerdict::Reject(DialogRejection::Glare)
    );
    // The number was taken all the same (§12.2.2 comes before §14.2).
    assert_eq!(d.remote_cseq(), Some(3));
    let resp = DialogRejection::Glare.response_to(&inv, 7);
    assert_eq!(resp.status, 491);
    assert!(resp.headers.get(&HeaderName::RetryAfter).is_none());

    let mut d = confirmed();
    accepted(d.handle_request(&a_in_dialog("INVITE", 3, "")));
    let second = a_in_dialog("INVITE", 4, "");
    let v = d.handle_request(&second);
    assert_eq!(v, RequestVerdict::Reject(DialogRejection::InviteInProgress));
    let RequestVerdict::Reject(r) = v else {
        unreachable!()
    };
    assert_eq!(r.retry_after_max(), Some(10));
    let resp = r.response_to(&second, 25);
    assert_eq!(resp.status, 500);
    assert_eq!(resp.headers.get_str(&HeaderName::RetryAfter), Some("3"));
    assert_eq!(resp.headers.cseq().unwrap().seq, 4);
    // We cannot start one either while theirs is pending.
    assert_eq!(
        d.new_request(Method::Invite, &via),
        Err(DialogError::InviteInProgress)
    );
    // Once answered, theirs is no longer pending.
    let mut ok = response_to(&a_in_dialog("INVITE", 3, ""), 200, "OK");
    d.fill_response(&a_in_dialog("INVITE", 3, ""), &mut ok);
    d.handle_sent_response(&ok);
    assert_eq!(d.pending_incoming_invite(), None);
    accepted(d.handle_request(&a_in_dialog("INVITE", 5, "")));
}

#[test]
fn bye_ends_the_dialog_and_later_requests_get_481() {
    let mut d = confirmed();
    let a = accepted(d.handle_request(&a_in_dialog("BYE", 3, "")));
    assert_eq!(a.state, DialogState::Terminated);
    let info = a_in_dialog("INFO", 4, "");
    let v = d.handle_request(&info);
    assert_eq!(v, RequestVerdict::Reject(DialogRejection::NoDialog));
    let resp = DialogRejection::NoDialog.response_to(&info, 0);
    assert_eq!(resp.status, 481);
    assert_eq!(resp.reason.as_ref(), b"Call/Transaction Does Not Exist");
    assert_eq!(
        d.handle_request(&a_in_dialog("ACK", 2, "")),
        RequestVerdict::Drop
    );
}

#[test]
fn malformed_cseq_is_400_except_for_ack() {
    let mut d = confirmed();
    let mut r = a_in_dialog("INFO", 3, "");
    r.headers.set(HeaderName::CSeq, "three INFO");
    assert_eq!(
        d.handle_request(&r),
        RequestVerdict::Reject(DialogRejection::BadRequest("malformed CSeq"))
    );
    let mut ack = a_in_dialog("ACK", 2, "");
    ack.headers.set(HeaderName::CSeq, "x ACK");
    assert_eq!(d.handle_request(&ack), RequestVerdict::Drop);
}
