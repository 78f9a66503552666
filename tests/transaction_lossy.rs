//! Whole transactions between a UAC and a UAS over a simulated network: losing any one
//! message, or a seeded random quarter of them with reordering, still completes the
//! transaction — the request reaches the UAS TU once, the final response reaches the UAC
//! TU (once, except for 2xx retransmissions, RFC 6026), nobody times out, both tables end
//! empty. Over TCP nothing is retransmitted.

mod transaction_common;

use ferroswitch::net::Transport;
use transaction_common::netem::{simulate, Loss, Outcome, Scenario};

const OPTIONS_200: Scenario = Scenario {
    method: "OPTIONS",
    final_status: 200,
    ringing: false,
    // Longer than T1, so the UDP client retransmits into the server's Trying state.
    answer_after_ms: 1000,
    transport: Transport::Udp,
};

const INVITE_486: Scenario = Scenario {
    method: "INVITE",
    final_status: 486,
    ringing: true,
    answer_after_ms: 300,
    transport: Transport::Udp,
};

const INVITE_200: Scenario = Scenario {
    method: "INVITE",
    final_status: 200,
    ringing: true,
    answer_after_ms: 300,
    transport: Transport::Udp,
};

fn assert_completed(s: Scenario, loss: Loss, o: &Outcome) {
    let ctx = || format!("{s:?} {loss:?}\n{}", o.log.join("\n"));
    assert_eq!(o.uas_requests, 1, "UAS TU requests: {}", ctx());
    assert!(!o.uac_finals.is_empty(), "no final at the UAC: {}", ctx());
    assert!(
        o.uac_finals.iter().all(|&f| f == s.final_status),
        "finals {:?}: {}",
        o.uac_finals,
        ctx()
    );
    if s.method == "INVITE" && s.final_status < 300 {
        assert!(o.uas_acks >= 1, "the 2xx was never ACKed: {}", ctx());
    } else {
        assert_eq!(o.uac_finals.len(), 1, "final passed up twice: {}", ctx());
    }
    assert_eq!(o.timeouts, 0, "timeout: {}", ctx());
    assert_eq!((o.left_uac, o.left_uas), (0, 0), "leftovers: {}", ctx());
}

/// Runs the scenario once without loss, then once per message with that message dropped.
fn drop_each_message(s: Scenario) {
    let base = simulate(s, Loss::None);
    assert_completed(s, Loss::None, &base);
    assert!(base.messages >= 3, "{}", base.log.join("\n"));
    for k in 0..base.messages {
        let o = simulate(s, Loss::Index(k));
        assert_eq!(o.dropped, 1);
        assert_completed(s, Loss::Index(k), &o);
    }
}

#[test]
fn rfc3261_17_1_2_and_17_2_2_non_invite_survives_loss_of_any_one_message() {
    drop_each_message(OPTIONS_200);
}

#[test]
fn rfc3261_17_1_1_and_17_2_1_invite_non2xx_survives_loss_of_any_one_message() {
    drop_each_message(INVITE_486);
}

#[test]
fn rfc6026_invite_2xx_survives_loss_of_any_one_message() {
    drop_each_message(INVITE_200);
}

#[test]
fn seeded_random_loss_and_reordering_still_complete() {
    for s in [OPTIONS_200, INVITE_486, INVITE_200] {
        let mut lost = 0;
        for seed in 0..40 {
            let loss = Loss::Random {
                seed,
                percent: 25,
                jitter_ms: 40,
            };
            let o = simulate(s, loss);
            assert_completed(s, loss, &o);
            lost += o.dropped;
        }
        assert!(lost >= 20, "the emulator dropped only {lost} messages");
    }
}

#[test]
fn rfc3261_17_1_1_2_reliable_transport_never_retransmits() {
    for s in [OPTIONS_200, INVITE_486, INVITE_200] {
        let s = Scenario {
            transport: Transport::Tcp,
            answer_after_ms: 2000,
            ..s
        };
        let o = simulate(s, Loss::None);
        assert_completed(s, Loss::None, &o);
        assert_eq!(o.retransmissions, 0, "{}", o.log.join("\n"));
    }
}
