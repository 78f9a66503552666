use super::*;
use crate::dialog::test_msgs::*;
use crate::sip::{response_to, HeaderName};

fn key(remote: &str) -> DialogKey {
    DialogKey::new(B_CALL_ID, "Dp9ZQS3SB26pg", remote)
}

#[test]
fn forked_invite_makes_one_early_dialog_per_remote_tag_and_one_wins() {
    let inv = request(B_INVITE);
    let mut t = Dialogs::new(10);
    assert_eq!(
        t.handle_invite_response(&inv, &b_response("100 Trying", None)),
        Ok(InviteOutcome::NoDialog)
    );
    for (tag, created) in [("a", true), ("b", true), ("a", false)] {
        let out = t
            .handle_invite_response(&inv, &b_response("180 Ringing", Some(tag)))
            .unwrap();
        assert_eq!(
            out,
            InviteOutcome::Early {
                key: key(tag),
                created,
                target_refreshed: false
            }
        );
    }
    assert_eq!(t.len(), 2);
    assert_eq!(t.dialog_set(B_CALL_ID, "Dp9ZQS3SB26pg").count(), 2);

    let first = t
        .handle_invite_response(&inv, &b_response("200 OK", Some("b")))
        .unwrap();
    assert_eq!(
        first,
        InviteOutcome::Confirmed {
            key: key("b"),
            first: true
        }
    );
    assert_eq!(t.get(&key("b")).unwrap().state(), DialogState::Confirmed);
    assert_eq!(t.get(&key("a")).unwrap().state(), DialogState::Early);
    // A retransmitted 2xx of the winner is still the winner's.
    let again = t
        .handle_invite_response(&inv, &b_response("200 OK", Some("b")))
        .unwrap();
    assert_eq!(
        again,
        InviteOutcome::Confirmed {
            key: key("b"),
            first: true
        }
    );
    // The other fork answers too, and a third one never seen before: both lose.
    for tag in ["a", "c"] {
        let late = t
            .handle_invite_response(&inv, &b_response("200 OK", Some(tag)))
            .unwrap();
        assert_eq!(
            late,
            InviteOutcome::Confirmed {
                key: key(tag),
                first: false
            }
        );
    }
    let s = t.stats();
    assert_eq!((s.created, s.confirmed, s.late_forks), (3, 3, 2));
}

#[test]
fn final_failure_removes_the_early_dialogs_and_completion_the_leftovers() {
    let inv = request(B_INVITE);
    let mut t = Dialogs::new(10);
    for tag in ["a", "b"] {
        t.handle_invite_response(&inv, &b_response("183 Session Progress", Some(tag)))
            .unwrap();
    }
    let out = t
        .handle_invite_response(&inv, &b_response("486 Busy Here", Some("b")))
        .unwrap();
    let InviteOutcome::Failed { mut removed } = out else {
        panic!("{out:?}")
    };
    removed.sort_by(|x, y| x.remote_tag.cmp(&y.remote_tag));
    assert_eq!(removed, [key("a"), key("b")]);
    assert!(t.is_empty());

    for tag in ["a", "b"] {
        t.handle_invite_response(&inv, &b_response("180 Ringing", Some(tag)))
            .unwrap();
    }
    t.handle_invite_response(&inv, &b_response("200 OK", Some("a")))
        .unwrap();
    assert_eq!(t.invite_completed(B_CALL_ID, "Dp9ZQS3SB26pg"), [key("b")]);
    assert_eq!(t.len(), 1);
    assert!(t.contains(&key("a")));
    assert_eq!(t.stats().removed, 3);
}

#[test]
fn reinvite_responses_do_not_go_through_the_fork_logic() {
    let mut t = Dialogs::new(10);
    let reinvite =
        request(&B_INVITE.replace("transport=UDP>\nCall-ID", "transport=UDP>;tag=a\nCall-ID"));
    assert_eq!(
        t.handle_invite_response(&reinvite, &b_response("200 OK", Some("a"))),
        Err(DialogError::AlreadyInDialog)
    );
    assert_eq!(
        t.handle_response(&b_response("200 OK", Some("a"))),
        Err(DialogError::Mismatch)
    );
}

#[test]
fn requests_are_routed_by_key_with_481_for_strangers() {
    let inv = request(A_INVITE);
    let mut t = Dialogs::new(10);
    let d = Dialog::from_uas(&inv, "cDg7NyjpeSg4m", our_contact()).unwrap();
    let key = d.key().clone();
    t.insert(d).unwrap();
    let mut ok = response_to(&inv, 200, "OK");
    t.get(&key).unwrap().fill_response(&inv, &mut ok);
    assert_eq!(
        t.handle_sent_response(&key, &ok),
        Some(DialogState::Confirmed)
    );

    assert!(matches!(
        t.handle_request(&a_in_dialog("INFO", 3, "")),
        Ok(RequestVerdict::Accept(_))
    ));
    let mut stranger = a_in_dialog("INFO", 4, "");
    stranger.headers.set(HeaderName::CallId, "nobody@nowhere");
    assert_eq!(
        t.handle_request(&stranger),
        Ok(RequestVerdict::Reject(DialogRejection::NoDialog))
    );
    let mut stray_ack = a_in_dialog("ACK", 2, "");
    stray_ack.headers.set(HeaderName::CallId, "nobody@nowhere");
    assert_eq!(t.handle_request(&stray_ack), Ok(RequestVerdict::Drop));
    assert_eq!(
        t.handle_request(&a_in_dialog("INFO", 3, "")),
        Ok(RequestVerdict::Reject(DialogRejection::OutOfOrder {
            cseq: 3,
            last: 3
        }))
    );
    assert_eq!(t.handle_request(&inv), Err(DialogError::NotInDialog));
    let s = t.stats();
    assert_eq!(
        (
            s.requests_accepted,
            s.rejected_no_dialog,
            s.dropped_acks,
            s.rejected_out_of_order,
            s.confirmed
        ),
        (1, 1, 1, 1, 1)
    );
}

#[test]
fn table_is_bounded_and_keys_are_unique() {
    let inv = request(B_INVITE);
    let mut t = Dialogs::new(1);
    t.insert(Dialog::from_uac(&inv, &b_response("180 Ringing", Some("a"))).unwrap())
        .unwrap();
    assert_eq!(
        t.insert(Dialog::from_uac(&inv, &b_response("180 Ringing", Some("a"))).unwrap())
            .err(),
        Some(DialogError::Duplicate)
    );
    assert_eq!(
        t.handle_invite_response(&inv, &b_response("180 Ringing", Some("b"))),
        Err(DialogError::Full(1))
    );
    assert_eq!(t.stats().rejected_full, 1);
    assert!(t.remove(&key("a")).is_some());
    assert!(t.remove(&key("a")).is_none());
    assert_eq!(t.dialog_set(B_CALL_ID, "Dp9ZQS3SB26pg").count(), 0);
    assert_eq!(t.max(), 1);
}
