//! RFC 4028 session timers on the seed call's two legs, on a virtual clock: the a-leg where
//! we answer a phone that never asked (`Session-Expires: 120;refresher=uas`, as the seed's
//! FreeSWITCH did) and refresh it ourselves, the b-leg where the callee refreshes and we
//! tear the call down when its refreshes stop, and the 422 retry.

mod dialog_common;

use dialog_common::*;
use ferroswitch::dialog::session_timer::MIN_SE_FLOOR;
use ferroswitch::dialog::{
    too_small_response, Dialog, DialogState, Refresher, SessionDeadline, SessionTimer,
    SessionTimerConfig, SessionTimerError, ViaSpec,
};
use ferroswitch::net::Transport;
use ferroswitch::sip::{response_to, HeaderName, Method};
use std::time::{Duration, Instant};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn udp() -> ViaSpec {
    ViaSpec::new(Transport::Udp, "192.168.4.4", dialog_common::fresh_branch())
}

#[test]
fn a_leg_we_answer_120_refresher_uas_and_refresh_at_60s() {
    let config = SessionTimerConfig::new(120, MIN_SE_FLOOR).unwrap();
    let inv = seed_a_leg_invite();
    assert!(inv.headers.get(&HeaderName::SessionExpires).is_none());
    let timer = SessionTimer::negotiate_uas(&inv.headers, &config).unwrap();

    let mut a =
        Dialog::from_uas(&inv, "cDg7NyjpeSg4m", addr("<sip:alice@192.168.4.4:5060>")).unwrap();
    let mut ok = response_to(&inv, 200, "OK");
    a.fill_response(&inv, &mut ok);
    timer.write_response_headers(&mut ok.headers, &config);
    assert_eq!(
        ok.headers.get_str(&HeaderName::SessionExpires),
        Some("120;refresher=uas"),
        "the seed's 200 to bob"
    );
    a.handle_sent_response(&ok);
    a.set_session_timer(Some(timer));

    let t0 = Instant::now();
    let timer = *a.session_timer().unwrap();
    assert_eq!(
        timer.next_deadline(t0),
        SessionDeadline::Refresh(t0 + secs(60))
    );

    // At 60 s we refresh with a re-INVITE in the dialog, carrying the timer headers.
    let mut refresh = a.new_request(Method::Invite, &udp()).unwrap();
    timer.write_refresh_headers(&mut refresh.headers, &config);
    assert_eq!(header(&refresh, HeaderName::CSeq), "1 INVITE");
    assert_eq!(
        header(&refresh, HeaderName::SessionExpires),
        "120;refresher=uac"
    );
    assert_eq!(header(&refresh, HeaderName::Supported), "timer");
    // X-Lite answers without Session-Expires: we keep our timer and refresh again at 60 s.
    let t1 = t0 + secs(60) + Duration::from_millis(150);
    let bob_ok = response(&format!(
        "SIP/2.0 200 OK
Via: {}
To: \"Bob\" <sip:bob@192.168.4.4>;tag=15c8325a
From: \"alice\" <sip:alice@192.168.4.4>;tag=cDg7NyjpeSg4m
Call-ID: YWEwYjNlZTZjOWZjNDg3ZjU3MjQ3MTA1ZmQ1MDM5YmQ.
CSeq: 1 INVITE
Contact: <sip:bob@192.168.4.4:26000>
Content-Length: 0

",
        header(&refresh, HeaderName::Via)
    ));
    a.handle_response(&bob_ok).unwrap();
    let timer = timer.refreshed_by(&bob_ok.headers).unwrap();
    a.set_session_timer(Some(timer));
    assert_eq!(
        timer.next_deadline(t1),
        SessionDeadline::Refresh(t1 + secs(60))
    );
    assert_eq!(a.pending_outgoing_invite(), None);
}

#[test]
fn b_leg_callee_refreshes_and_a_silent_callee_is_torn_down_at_88s() {
    // alice's 200 sets a 120 s timer that she (the UAS) refreshes.
    let ok = seed_b_response(
        "200 OK",
        Some("3813e926"),
        "Session-Expires: 120;refresher=uas\nMin-SE: 120\nRequire: timer\n",
    );
    let mut b = Dialog::from_uac(&request(SEED_B_INVITE), &ok).unwrap();
    let timer = SessionTimer::negotiate_uac(&ok.headers).unwrap().unwrap();
    assert_eq!(
        (timer.interval_secs, timer.refresher),
        (120, Refresher::Uas)
    );
    assert!(!timer.local_refresher);
    b.set_session_timer(Some(timer));
    let t0 = Instant::now();
    // 120 − min(32, 120/3) = 88 s.
    assert_eq!(
        timer.next_deadline(t0),
        SessionDeadline::Expire(t0 + secs(88))
    );

    // She refreshes at 60 s with a re-INVITE (now she is the UAC of the refresh).
    let t1 = t0 + secs(60);
    let refresh = request(
        "INVITE sip:mod_sofia@192.168.4.4:5060 SIP/2.0
Via: SIP/2.0/UDP 192.168.4.4:5090;branch=z9hG4bK-refresh1;rport
Max-Forwards: 70
Contact: <sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP>
To: \"Bob\"<sip:bob@192.168.4.4>;tag=Dp9ZQS3SB26pg
From: <sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP>;tag=3813e926
Call-ID: 0d74ac35-cca4-122d-81a2-2990e5b2bd3e
CSeq: 3 INVITE
Supported: timer
Session-Expires: 120;refresher=uac
Min-SE: 120
Content-Length: 0

",
    );
    assert!(matches!(
        b.handle_request(&refresh),
        ferroswitch::dialog::RequestVerdict::Accept(_)
    ));
    let config = SessionTimerConfig::default();
    let renewed = SessionTimer::negotiate_uas(&refresh.headers, &config).unwrap();
    assert_eq!(
        (renewed.interval_secs, renewed.refresher),
        (120, Refresher::Uac)
    );
    assert!(!renewed.local_refresher, "she still refreshes");
    assert_eq!(
        renewed.next_deadline(t1),
        SessionDeadline::Expire(t1 + secs(88))
    );
    let mut ok = response_to(&refresh, 200, "OK");
    b.fill_response(&refresh, &mut ok);
    renewed.write_response_headers(&mut ok.headers, &config);
    assert_eq!(header_of(&ok, HeaderName::Require), "timer");
    b.handle_sent_response(&ok);
    b.set_session_timer(Some(renewed));

    // Then silence: at 60 + 88 s the timer fires and the B2BUA hangs up this leg.
    let fire = t1 + secs(88);
    let SessionDeadline::Expire(at) = b.session_timer().unwrap().next_deadline(t1) else {
        panic!("we do not refresh this leg")
    };
    assert_eq!(at, fire);
    let bye = b.new_request(Method::Bye, &udp()).unwrap();
    assert_eq!(header(&bye, HeaderName::CSeq), "130069215 BYE");
    assert_eq!(b.state(), DialogState::Terminated);
}

fn header_of(resp: &ferroswitch::sip::Response, name: HeaderName) -> &str {
    resp.headers.get_str(&name).unwrap()
}

#[test]
fn interval_below_min_se_gets_422_and_the_uac_retries_higher() {
    // Our b-leg offer asks for 90 s; alice's side wants at least 120 s.
    let ours = SessionTimerConfig::new(90, 90).unwrap();
    let mut inv = request(SEED_B_INVITE);
    ours.write_offer(&mut inv.headers);
    assert_eq!(header(&inv, HeaderName::SessionExpires), "90");
    assert_eq!(header(&inv, HeaderName::Supported), "timer");

    let theirs = SessionTimerConfig::new(1800, 120).unwrap();
    let err = SessionTimer::negotiate_uas(&inv.headers, &theirs).unwrap_err();
    assert_eq!(err, SessionTimerError::TooSmall { min_se: 120 });
    let rejection = too_small_response(&inv, 120);
    assert_eq!(rejection.status, 422);

    let retry_config = ours.retry_after_422(&rejection.headers).unwrap();
    let mut retry = request(SEED_B_INVITE);
    retry.headers.set(HeaderName::CSeq, "130069215 INVITE");
    retry_config.write_offer(&mut retry.headers);
    assert_eq!(header(&retry, HeaderName::SessionExpires), "120");
    assert_eq!(header(&retry, HeaderName::MinSe), "120");
    let timer = SessionTimer::negotiate_uas(&retry.headers, &theirs).unwrap();
    assert_eq!(
        (timer.interval_secs, timer.refresher),
        (120, Refresher::Uac)
    );
    // The UAC is the refresher, so the 2xx must require the extension (§9).
    let mut ok = response_to(&retry, 200, "OK");
    timer.write_response_headers(&mut ok.headers, &theirs);
    let back = SessionTimer::negotiate_uac(&ok.headers).unwrap().unwrap();
    assert!(back.local_refresher, "we asked, we refresh");
    let t0 = Instant::now();
    assert_eq!(
        back.next_deadline(t0),
        SessionDeadline::Refresh(t0 + secs(60))
    );
    // A second 422 naming nothing larger ends the retries.
    assert_eq!(retry_config.retry_after_422(&rejection.headers), None);
}
