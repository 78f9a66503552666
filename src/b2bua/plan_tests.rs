//! The call core's routing steps (`plan`), driven directly: sequential groups, forwarding on
//! busy and on no answer, a callee's 3xx, a trunk's digest challenge, and the hop bound.

use super::core_tests::{a_key, admitted, answer, arrival, binding, core, drain, invite};
use super::*;
use crate::auth::uac::UacCredentials;
use crate::cdr::Party;
use crate::sip::{HeaderName, Request, Response};
use crate::transaction::{TransactionKey, TransactionLayer};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

const WALL: SystemTime = SystemTime::UNIX_EPOCH;

fn party(user: &str) -> Party {
    Party {
        user: user.into(),
        display_name: None,
    }
}

fn plan(legs: Vec<LegTarget>, timeout: Option<Duration>, next: Vec<Next>) -> Route {
    Route::Plan(Box::new(Plan {
        callee: party("sales"),
        legs,
        timeout,
        next,
        caller_id: None,
        empty_status: 480,
    }))
}

fn contact(port: u16) -> LegTarget {
    LegTarget::from(&binding(port))
}

fn start(core: &mut B2bua, now: Instant, route: Route) -> Vec<Command> {
    core.handle_invite(now, WALL, a_key(), invite(), arrival(), admitted(), route);
    drain(core)
}

fn invites(out: &[Command]) -> Vec<(TransactionKey, Request, crate::net::Peer)> {
    out.iter()
        .filter_map(|c| match c {
            Command::SendRequest { key, request, to }
                if request.method == crate::sip::Method::Invite =>
            {
                Some((key.clone(), request.clone(), *to))
            }
            _ => None,
        })
        .collect()
}

fn lookups(out: &[Command]) -> Vec<Lookup> {
    out.iter()
        .filter_map(|c| match c {
            Command::Route(l) => Some(l.clone()),
            _ => None,
        })
        .collect()
}

fn caller_statuses(out: &[Command]) -> Vec<u16> {
    out.iter()
        .filter_map(|c| match c {
            Command::Respond { key, response } if *key == a_key() => Some(response.status),
            _ => None,
        })
        .collect()
}

fn respond(
    core: &mut B2bua,
    now: Instant,
    leg: &(TransactionKey, Request, crate::net::Peer),
    r: Response,
) -> Vec<Command> {
    let tx = TransactionLayer::new(Default::default());
    assert!(core.handle_client_response(now, WALL, &tx, &leg.0, r));
    drain(core)
}

#[test]
fn a_sequential_group_rings_the_next_member_when_the_step_times_out() {
    let mut core = core();
    let t0 = Instant::now();
    let step = Duration::from_secs(15);
    let next = vec![Next::Member {
        user: "1001".into(),
        timeout: step,
    }];
    let out = start(&mut core, t0, plan(vec![contact(5070)], Some(step), next));
    let first = invites(&out);
    assert_eq!(first.len(), 1);
    assert!(
        lookups(&out).is_empty(),
        "nothing routed before the step ends"
    );
    // Not yet: the step rings its full 15 s.
    core.handle_timeout(t0 + step - Duration::from_millis(1), WALL);
    assert!(drain(&mut core).is_empty());
    core.handle_timeout(t0 + step, WALL);
    let out = drain(&mut core);
    assert!(
        out.iter()
            .any(|c| matches!(c, Command::Cancel { key } if *key == first[0].0)),
        "the first member is cancelled: {out:?}"
    );
    let l = lookups(&out);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].query, Query::User("1001".into()));
    assert_eq!(l[0].hops, 1);
    assert!(caller_statuses(&out).is_empty(), "the caller keeps waiting");
    core.continue_call(
        t0 + step,
        WALL,
        l[0].call,
        Route::User {
            callee: party("1001"),
            bindings: vec![binding(5080)],
        },
    );
    let out = drain(&mut core);
    let second = invites(&out);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].2.addr.port(), 5080);
    // The first member's 487 arrives late: it changes nothing for the caller.
    let late = respond(
        &mut core,
        t0 + step,
        &first[0],
        answer(&first[0].1, 487, "m1", false),
    );
    assert!(caller_statuses(&late).is_empty(), "{late:?}");
    // The second member answers: the caller is connected to it.
    let out = respond(
        &mut core,
        t0 + step,
        &second[0],
        answer(&second[0].1, 200, "m2", true),
    );
    assert_eq!(caller_statuses(&out), vec![200]);
}

#[test]
fn the_last_member_timing_out_ends_the_call_with_480() {
    let mut core = core();
    let t0 = Instant::now();
    let step = Duration::from_secs(10);
    let out = start(&mut core, t0, plan(vec![contact(5070)], Some(step), vec![]));
    assert_eq!(invites(&out).len(), 1);
    core.handle_timeout(t0 + step, WALL);
    let out = drain(&mut core);
    assert_eq!(caller_statuses(&out), vec![480], "{out:?}");
}

#[test]
fn forwarding_on_busy_routes_the_number_in_the_users_context_and_not_on_no_answer() {
    let mut core = core();
    let t0 = Instant::now();
    let next = vec![
        Next::OnNoAnswer {
            number: "voicemail".into(),
            context: "default".into(),
        },
        Next::OnBusy {
            number: "1002".into(),
            context: "office".into(),
        },
    ];
    let out = start(&mut core, t0, plan(vec![contact(5070)], None, next));
    let leg = &invites(&out)[0];
    let out = respond(&mut core, t0, leg, answer(&leg.1, 486, "b", false));
    assert!(caller_statuses(&out).is_empty(), "{out:?}");
    let l = lookups(&out);
    assert_eq!(
        l[0].query,
        Query::Dial {
            context: "office".into(),
            number: "1002".into()
        },
        "busy skips the no-answer forward"
    );
    // The forward target is busy too, and nothing else follows: the caller hears busy.
    core.continue_call(
        t0,
        WALL,
        l[0].call,
        Route::User {
            callee: party("1002"),
            bindings: vec![binding(5090)],
        },
    );
    let out = drain(&mut core);
    let leg2 = &invites(&out)[0];
    let out = respond(&mut core, t0, leg2, answer(&leg2.1, 486, "c", false));
    assert_eq!(caller_statuses(&out), vec![486]);
    let cdr = out.iter().find_map(|c| match c {
        Command::Cdr(r) => Some(r),
        _ => None,
    });
    assert_eq!(cdr.expect("a CDR").hangup_cause, "USER_BUSY");
}

#[test]
fn forwarding_loops_stop_after_max_hops_with_the_last_failure() {
    let mut core = core();
    let t0 = Instant::now();
    let busy_fwd = |n: &str| Next::OnBusy {
        number: n.into(),
        context: "default".into(),
    };
    let out = start(
        &mut core,
        t0,
        plan(vec![contact(5070)], None, vec![busy_fwd("b")]),
    );
    let mut leg = invites(&out).remove(0);
    let mut routed = 0;
    loop {
        let out = respond(&mut core, t0, &leg, answer(&leg.1, 486, "x", false));
        let l = lookups(&out);
        if l.is_empty() {
            assert_eq!(
                caller_statuses(&out),
                vec![486],
                "the loop ends busy: {out:?}"
            );
            break;
        }
        routed += 1;
        assert!(
            routed <= MAX_HOPS as usize,
            "never more than {MAX_HOPS} hops"
        );
        // Each forward target forwards on busy again: a loop.
        let r = plan(
            vec![contact(5070 + 2 * routed as u16)],
            None,
            vec![busy_fwd("a")],
        );
        core.continue_call(t0, WALL, l[0].call, r);
        leg = invites(&drain(&mut core)).remove(0);
    }
    assert_eq!(routed, MAX_HOPS as usize);
}

#[test]
fn a_callees_302_is_followed_through_the_callers_context() {
    let mut core = core();
    let t0 = Instant::now();
    let out = start(
        &mut core,
        t0,
        Route::User {
            callee: party("alice"),
            bindings: vec![binding(5070)],
        },
    );
    let leg = &invites(&out)[0];
    let mut r = crate::sip::response_to(&leg.1, 302, "Moved Temporarily");
    crate::sip::set_to_tag(&mut r, "r");
    r.headers
        .push(HeaderName::Contact, "<sip:1003@198.51.100.9>");
    let out = respond(&mut core, t0, leg, r);
    assert!(caller_statuses(&out).is_empty(), "{out:?}");
    let l = lookups(&out);
    assert_eq!(
        l[0].query,
        Query::Dial {
            context: "default".into(),
            number: "1003".into()
        }
    );
    // The new target does not exist: the caller gets 404.
    core.continue_call(
        t0,
        WALL,
        l[0].call,
        Route::NoSuchUser {
            user: "1003".into(),
        },
    );
    assert_eq!(caller_statuses(&drain(&mut core)), vec![404]);
}

fn trunk_leg() -> LegTarget {
    LegTarget {
        ruri: "sip:+15551234567@127.0.0.1:5099".into(),
        peer: super::core_tests::peer("127.0.0.1:5099"),
        advertised: "127.0.0.1:5060".into(),
        route: Vec::new(),
        user: None,
        gateway: Some(Arc::new(GatewayLeg {
            name: "provider".into(),
            domain: "127.0.0.1".into(),
            number: "+15551234567".into(),
            creds: UacCredentials {
                username: "acct1234".into(),
                password: "secret".into(),
                realm: None,
            },
            from_user: "acct1234".into(),
            caller_id_in_from: false,
            targets: vec![super::core_tests::peer("127.0.0.1:5099")],
        })),
    }
}

fn challenge(req: &Request, nonce: &str) -> Response {
    let mut r = crate::sip::response_to(req, 407, "Proxy Authentication Required");
    crate::sip::set_to_tag(&mut r, "p");
    r.headers.push(
        HeaderName::ProxyAuthenticate,
        format!("Digest realm=\"provider\", nonce=\"{nonce}\", qop=\"auth\", algorithm=MD5"),
    );
    r
}

#[test]
fn a_trunk_leg_answers_the_providers_407_with_the_gateway_credentials_once() {
    let mut core = core();
    let t0 = Instant::now();
    let mut p = Plan {
        callee: party("+15551234567"),
        legs: vec![trunk_leg()],
        timeout: None,
        next: vec![],
        caller_id: Some(CallerId {
            number: Some("+15551230000".into()),
            name: Some("Example Ltd".into()),
        }),
        empty_status: 503,
    };
    p.legs[0].ruri = "sip:+15551234567@127.0.0.1:5099".into();
    let out = start(&mut core, t0, Route::Plan(Box::new(p)));
    let leg = invites(&out).remove(0);
    let h = &leg.1.headers;
    assert_eq!(leg.1.uri_str(), Some("sip:+15551234567@127.0.0.1:5099"));
    let to = h
        .get(&HeaderName::To)
        .and_then(|v| v.value_str())
        .unwrap_or_default()
        .to_string();
    assert_eq!(to, "<sip:+15551234567@127.0.0.1>");
    let from = h
        .get(&HeaderName::From)
        .and_then(|v| v.value_str())
        .unwrap_or_default()
        .to_string();
    assert!(
        from.starts_with("\"Example Ltd\" <sip:acct1234@127.0.0.1>;tag="),
        "{from}"
    );
    let pai = h
        .get(&HeaderName::PAssertedIdentity)
        .and_then(|v| v.value_str())
        .unwrap_or_default()
        .to_string();
    assert_eq!(pai, "\"Example Ltd\" <sip:+15551230000@127.0.0.1>");
    assert!(h.get(&HeaderName::ProxyAuthorization).is_none());

    let out = respond(&mut core, t0, &leg, challenge(&leg.1, "n1"));
    assert!(
        caller_statuses(&out).is_empty(),
        "the caller sees nothing of it: {out:?}"
    );
    let retried = invites(&out);
    assert_eq!(retried.len(), 1, "{out:?}");
    let r = &retried[0].1;
    assert_ne!(retried[0].0, leg.0, "a new transaction");
    assert_eq!(
        r.headers.call_id(),
        leg.1.headers.call_id(),
        "the same dialog"
    );
    let auth = r
        .headers
        .get(&HeaderName::ProxyAuthorization)
        .and_then(|v| v.value_str())
        .unwrap_or_default()
        .to_string();
    assert!(auth.contains("username=\"acct1234\""), "{auth}");
    assert!(auth.contains("realm=\"provider\""), "{auth}");
    assert!(
        !auth.contains("bob"),
        "the caller's credentials never leave: {auth}"
    );

    // The provider refuses them (same nonce again): no third try; the caller gets 503,
    // never a challenge it could only answer with its own password.
    let out = respond(&mut core, t0, &retried[0], challenge(r, "n1"));
    assert!(invites(&out).is_empty(), "{out:?}");
    assert_eq!(caller_statuses(&out), vec![503]);
}

#[test]
fn forwarding_on_no_answer_cancels_the_user_at_its_timeout_and_rings_the_target() {
    let mut core = core();
    let t0 = Instant::now();
    let wait = Duration::from_secs(20);
    let next = vec![
        Next::OnBusy {
            number: "1002".into(),
            context: "default".into(),
        },
        Next::OnNoAnswer {
            number: "95551234567".into(),
            context: "office".into(),
        },
    ];
    let out = start(&mut core, t0, plan(vec![contact(5070)], Some(wait), next));
    let leg = invites(&out).remove(0);
    let out = respond(&mut core, t0, &leg, answer(&leg.1, 180, "r", false));
    assert_eq!(caller_statuses(&out), vec![180]);
    core.handle_timeout(t0 + wait, WALL);
    let out = drain(&mut core);
    assert!(
        out.iter()
            .any(|c| matches!(c, Command::Cancel { key } if *key == leg.0)),
        "{out:?}"
    );
    assert_eq!(
        lookups(&out)[0].query,
        Query::Dial {
            context: "office".into(),
            number: "95551234567".into()
        },
        "no answer skips the busy forward and runs the number in the user's context"
    );
    assert!(caller_statuses(&out).is_empty(), "the caller keeps ringing");
}
