//! Media anchored (issue 11) through the engine, with the in-memory relay on the virtual
//! clock: each phone gets SDP naming our relay ports (its codecs untouched), RTP sent to
//! those ports reaches the other phone, a silent call is hung up with MEDIA_TIMEOUT while a
//! held one is not, the ports come back when the call ends, and an empty pool gives 503.

use super::*;
use crate::media::{MediaConfig, MediaControl, MemoryRelay, PortRange};
use std::sync::Mutex;

/// The in-memory relay shared between the engine and the test, which delivers packets.
#[derive(Clone)]
pub(super) struct Shared(Arc<Mutex<MemoryRelay>>);

impl Shared {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, MemoryRelay> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl MediaControl for Shared {
    fn allocate(
        &mut self,
        relay: &[bool],
        sip_ip: std::net::IpAddr,
    ) -> Result<crate::media::Allocation, crate::media::MediaError> {
        self.lock().allocate(relay, sip_ip)
    }
    fn update_side(
        &mut self,
        now: Instant,
        id: crate::media::SessionId,
        stream: usize,
        side: crate::media::Side,
        signal: crate::media::SideSignal,
    ) -> Result<(), crate::media::MediaError> {
        self.lock().update_side(now, id, stream, side, signal)
    }
    fn release(
        &mut self,
        id: crate::media::SessionId,
    ) -> Result<crate::media::SessionStats, crate::media::MediaError> {
        self.lock().release(id)
    }
    fn stats(&self, id: crate::media::SessionId) -> Option<crate::media::SessionStats> {
        self.lock().stats(id)
    }
    fn poll_event(&mut self) -> Option<crate::media::MediaEvent> {
        self.lock().poll_event()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        MemoryRelay::poll_timeout(&self.lock())
    }
    fn handle_timeout(&mut self, now: Instant) {
        MemoryRelay::handle_timeout(&mut self.lock(), now)
    }
}

pub(super) fn relayed_net(tweak: impl FnOnce(&mut MediaConfig)) -> (Net, Shared) {
    let mut cfg = MediaConfig {
        media_timeout: Duration::from_secs(5),
        hold_timeout: Duration::from_secs(1800),
        ..MediaConfig::default()
    };
    tweak(&mut cfg);
    let relay = Shared(Arc::new(Mutex::new(MemoryRelay::new(cfg))));
    // No RFC 4028 refreshes in these calls: their timers would muddle the ladders.
    let mut net = Net::calls_with(|c| c.calls.session.session_expires = 3600);
    net.engine.set_media(Box::new(relay.clone()));
    (net, relay)
}

/// The `m=audio` port of an SDP body.
pub(super) fn audio_port(body: &[u8]) -> u16 {
    std::str::from_utf8(body)
        .expect("SDP text")
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("an m=audio line")
}

/// An RTP packet (version 2, PCMU) with sequence number `seq`.
pub(super) fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xff; 160]);
    p
}

/// bob (8000) calls alice (9000) with the relay on; returns the ports the phones were told
/// (bob's view, alice's view) and the dialogs.
pub(super) fn anchored_call(
    net: &mut Net,
    bob: &mut Caller,
    alice: &mut Ua,
) -> (u16, u16, Dlg, Dlg) {
    let offer = sdp("bob", 8000, "");
    let inv = ring_alice(net, bob, &offer);
    let to_alice = audio_port(&inv.body);
    assert!(
        (16384..=32767).contains(&to_alice),
        "alice is told a relay port"
    );
    let body = std::str::from_utf8(&inv.body).unwrap();
    assert!(body.contains("a=rtpmap:0 PCMU/8000"), "codecs pass: {body}");
    assert!(body.starts_with("v=0\r\no=- "), "our origin: {body}");
    let answer = sdp("alice", 9000, "");
    let sent = net.send(ZOIPER, &alice.respond(&inv, 200, &[], &answer));
    assert_eq!(sent.ladder(), ["alice<-ACK", "bob<-200 INVITE"]);
    let ok = sent.response(BOB, 200);
    let to_bob = audio_port(&ok.body);
    assert!((16384..=32767).contains(&to_bob));
    assert_ne!(to_bob, to_alice, "each leg has its own relay ports");
    let a = bob.dialog(&ok);
    assert!(net.send(BOB, &bob.ack(&a, "")).is_empty());
    let b = alice.uas_dialog(&inv);
    (to_bob, to_alice, a, b)
}

#[test]
fn both_phones_get_our_ports_and_rtp_crosses_the_relay_both_ways() {
    let (mut net, relay) = relayed_net(|_| {});
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (to_bob, to_alice, mut a, _b) = anchored_call(&mut net, &mut bob, &mut alice);
    let now = net.now;
    // bob sends to the port he was told; it leaves towards alice's SDP address.
    let t = relay
        .lock()
        .handle_packet(now, to_bob, addr("192.168.4.4:8000"), &rtp(1, 11))
        .expect("bob's RTP is relayed");
    assert_eq!(t.to, addr("192.168.4.4:9000"));
    assert_eq!(t.from.port(), to_alice, "from the port alice was told");
    let t = relay
        .lock()
        .handle_packet(now, to_alice, addr("192.168.4.4:9000"), &rtp(1, 22))
        .expect("alice's RTP is relayed");
    assert_eq!(t.to, addr("192.168.4.4:8000"));
    assert_eq!(t.from.port(), to_bob);

    let free_during = relay.lock().pool_free();
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "BYE", None, &[], ""));
    assert_eq!(sent.ladder(), ["bob<-200 BYE", "alice<-BYE"]);
    let cdr = net.cdr();
    let media = cdr.media.expect("per-leg media figures");
    assert_eq!((media.caller.rx_packets, media.callee.rx_packets), (1, 1));
    assert_eq!(media.caller.rx_bytes, 172);
    let r = relay.lock();
    assert_eq!(r.pool_free(), r.pool_capacity(), "every port pair is back");
    assert!(free_during < r.pool_capacity());
}

#[test]
fn a_silent_call_is_hung_up_with_media_timeout() {
    let (mut net, relay) = relayed_net(|_| {});
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (to_bob, _to_alice, _a, _b) = anchored_call(&mut net, &mut bob, &mut alice);
    let now = net.now;
    let _ = relay
        .lock()
        .handle_packet(now, to_bob, addr("192.168.4.4:8000"), &rtp(1, 11));
    let sent = net.after(Duration::from_secs(4));
    assert!(sent.is_empty(), "within media_timeout: {:?}", sent.ladder());
    // Silence for 5 s from the last packet: BYE to both phones (and their retransmissions,
    // since these phones do not answer).
    let sent = net.after(Duration::from_secs(2));
    let mut ladder = sent.ladder();
    ladder.sort();
    ladder.dedup();
    assert_eq!(ladder, ["alice<-BYE", "bob<-BYE"]);
    let bye = sent.requests(BOB, Method::Bye).remove(0);
    assert_eq!(
        req_header(&bye, "Reason"),
        Some("Q.850;cause=604;text=\"MEDIA_TIMEOUT\"")
    );
    let cdr = net.cdr();
    assert_eq!(cdr.hangup_cause, "MEDIA_TIMEOUT");
    assert_eq!(cdr.hangup_side, crate::cdr::Side::System);
    let r = relay.lock();
    assert_eq!(r.pool_free(), r.pool_capacity());
}

#[test]
fn a_held_call_is_not_timed_out_by_media_timeout() {
    let (mut net, _relay) = relayed_net(|_| {});
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (_to_bob, _to_alice, mut a, _b) = anchored_call(&mut net, &mut bob, &mut alice);
    // bob puts alice on hold: a re-INVITE with sendonly, relayed and answered.
    let hold = sdp("bob", 8000, "a=sendonly\r\n");
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "INVITE", None, &[], &hold));
    let reinv = sent.request(ZOIPER, Method::Invite);
    assert!(std::str::from_utf8(&reinv.body)
        .unwrap()
        .contains("a=sendonly"));
    let held = sdp("alice", 9000, "a=recvonly\r\n");
    let sent = net.send(ZOIPER, &alice.respond(&reinv, 200, &[], &held));
    let ok = sent.response(BOB, 200);
    assert!(std::str::from_utf8(&ok.body)
        .unwrap()
        .contains("a=recvonly"));
    let d = bob.dialog(&ok);
    let _ = net.send(
        BOB,
        &bob.ua.in_dialog(
            &mut d.clone(),
            "ACK",
            ok.headers.cseq().map(|c| c.seq),
            &[],
            "",
        ),
    );
    let sent = net.after(Duration::from_secs(30));
    assert!(
        sent.requests(BOB, Method::Bye).is_empty() && sent.requests(ZOIPER, Method::Bye).is_empty(),
        "a held call outlives media_timeout: {:?}",
        sent.ladder()
    );
}

#[test]
fn an_empty_port_pool_refuses_the_call_with_503_and_a_cdr() {
    // One pair: not enough for a call (two per stream: one facing each phone).
    let (mut net, relay) = relayed_net(|c| c.rtp_ports = PortRange::new(16384, 16385).unwrap());
    let mut bob = Caller::bob();
    let sent = authorized_invite(&mut net, &mut bob, &sdp("bob", 8000, ""));
    let r = sent.response(BOB, 503);
    assert_eq!(header(&r, "Retry-After"), Some("5"));
    assert!(
        sent.requests(ZOIPER, Method::Invite).is_empty(),
        "nothing rings"
    );
    let cdr = net.cdr();
    assert_eq!(cdr.sip_status, 503);
    assert_eq!(relay.lock().pool_free(), 1);
}
