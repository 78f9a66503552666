//! Calls through the B2BUA on the virtual clock: the harness shared by the call scenarios.
//!
//! Phones are scripted by the test, message by message, as plain SIP text (bob calls from
//! the seed's X-Lite address, alice answers at Zoiper's), so every scenario reads like a
//! ladder diagram. `Ua` keeps what a phone knows of its dialog; `Sent` sorts what the engine
//! put on the wire by destination. After each scenario `assert_drained` checks that the call
//! table is empty and that the transaction layer drains without sending anything more.
//!
//! Scenario files: `flow` (the seed's call, RFC 3665 §3.2), `endings` (cancel, refusals,
//! timeouts, forks), `in_dialog` (re-INVITE, INFO, 500/481/491, session timers), `checks`
//! (483, 482, 503, 404/480 after auth, with their CDRs), `loss` (each single message of the
//! call lost), `admission` (the stateless 407, `auth_calls` for MESSAGE, per-user and
//! per-source limits), `identity` (what the callee is told about the caller: header
//! injection, unauthenticated callers, RFC 3323 privacy), `transfer` (blind transfer carried
//! out by the switch: REFER answered, NOTIFYs, the target's leg, the transferor released).

mod admission;
mod caller_transfer;
mod checks;
mod drain;
mod endings;
mod failover;
mod flow;
mod identity;
mod in_dialog;
mod loss;
mod media;
mod path;
mod reinvite;
mod routing;
mod routing_calls;
mod shutdown;
mod trace;
mod transfer;

use super::*;
use crate::sip::{Method, Request};

/// bob's X-Lite in the seed.
const BOB: &str = "192.168.4.4:26000";
/// alice's registered contact, as in the seed (Zoiper on 5090 with an rinstance).
const ALICE_CONTACT: &str = "sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP";
/// A second phone registered as alice (parallel forking).
const ALICE2: &str = "192.168.4.4:5092";
const ALICE2_CONTACT: &str = "sip:alice@192.168.4.4:5092;transport=UDP";
/// dave's phone: where a transfer sends the caller.
const DAVE: &str = "192.168.4.4:5094";
const DAVE_CONTACT: &str = "sip:dave@192.168.4.4:5094;transport=UDP";

const SEED_06: &str = include_str!("../../../tests/data/trace/06-bob-invite-noauth.headers");
const SEED_08: &str = include_str!("../../../tests/data/trace/08-bob-ack-407.sip");
const SEED_09: &str =
    include_str!("../../../tests/data/trace/09-bob-invite-proxy-authorization.headers");
const SEED_CNONCE: &str = "c164b74f625ff2161bd8d47dba3a0ee2";

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);

/// An SDP body of `who` with media on `port` (RTP bypasses the switch, so it passes as is).
fn sdp(who: &str, port: u16, extra: &str) -> String {
    format!(
        "v=0\r\no={who} 1 1 IN IP4 192.168.4.4\r\ns=call\r\nc=IN IP4 192.168.4.4\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n{extra}"
    )
}

/// A message head (ending in CRLF or CRLF CRLF) with `body` and a Content-Length to match.
fn with_body(headers: &str, body: &str) -> String {
    let head = headers.trim_end_matches("\r\n");
    let lines: Vec<String> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("content-length:"))
        .map(str::to_string)
        .collect();
    format!(
        "{}\r\nContent-Length: {}\r\n\r\n{body}",
        lines.join("\r\n"),
        body.len()
    )
}

/// Sets header `name` of a text message to `value` (replacing the line, or adding it before
/// Content-Length).
fn set_header(msg: &str, name: &str, value: &str) -> String {
    let (head, body) = msg.split_once("\r\n\r\n").expect("a message head");
    let prefix = format!("{}:", name.to_ascii_lowercase());
    let mut lines: Vec<String> = head.split("\r\n").map(str::to_string).collect();
    match lines
        .iter()
        .position(|l| l.to_ascii_lowercase().starts_with(&prefix))
    {
        Some(i) => lines[i] = format!("{name}: {value}"),
        None => lines.insert(lines.len() - 1, format!("{name}: {value}")),
    }
    format!("{}\r\n\r\n{body}", lines.join("\r\n"))
}

/// What the engine sent in one step, parsed, in order.
#[derive(Debug, Default)]
struct Sent(Vec<(SocketAddr, Message)>);

impl Sent {
    fn from(out: Vec<Transmit>) -> Sent {
        Sent(
            out.into_iter()
                .map(|t| {
                    assert_eq!(t.to.transport, Transport::Udp, "UDP in these scenarios");
                    let m = parse_datagram(&t.bytes).expect("the engine sends parseable SIP");
                    (t.to.addr, m)
                })
                .collect(),
        )
    }

    /// `"bob<-180"`, `"alice<-INVITE"` … for order assertions.
    fn ladder(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(to, m)| {
                let who = name_of(*to);
                match m {
                    Message::Request(r) => format!("{who}<-{}", r.method.as_str()),
                    Message::Response(r) => format!(
                        "{who}<-{} {}",
                        r.status,
                        r.headers.cseq().map(|c| c.method).unwrap_or(Method::Ack)
                    ),
                }
            })
            .collect()
    }

    fn requests(&self, to: &str, method: Method) -> Vec<Request> {
        self.0
            .iter()
            .filter(|(a, _)| *a == addr(to))
            .filter_map(|(_, m)| match m {
                Message::Request(r) if r.method == method => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    /// The one `method` request sent to `to`.
    fn request(&self, to: &str, method: Method) -> Request {
        let mut found = self.requests(to, method.clone());
        assert_eq!(
            found.len(),
            1,
            "one {} to {to} expected; sent {:?}",
            method.as_str(),
            self.ladder()
        );
        found.remove(0)
    }

    fn responses(&self, to: &str) -> Vec<Response> {
        self.0
            .iter()
            .filter(|(a, _)| *a == addr(to))
            .filter_map(|(_, m)| match m {
                Message::Response(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    /// The one response with `status` sent to `to`.
    fn response(&self, to: &str, status: u16) -> Response {
        let mut found: Vec<_> = self
            .responses(to)
            .into_iter()
            .filter(|r| r.status == status)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one {status} to {to} expected; sent {:?}",
            self.ladder()
        );
        found.remove(0)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn name_of(a: SocketAddr) -> &'static str {
    match a.to_string().as_str() {
        BOB => "bob",
        ZOIPER => "alice",
        ALICE2 => "alice2",
        DAVE => "dave",
        _ => "other",
    }
}

fn req_header<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.headers.get_str(&HeaderName::from_wire(name))
}

fn text(m: &impl ToBytes) -> String {
    String::from_utf8(m.bytes().to_vec()).expect("UTF-8 test messages")
}

trait ToBytes {
    fn bytes(&self) -> Bytes;
}
impl ToBytes for Request {
    fn bytes(&self) -> Bytes {
        self.to_bytes()
    }
}
impl ToBytes for Response {
    fn bytes(&self) -> Bytes {
        self.to_bytes()
    }
}

/// What a phone knows of one dialog it is in: its own and the peer's address with tags, the
/// peer's target, the Call-ID and its CSeq counter.
#[derive(Debug, Clone)]
struct Dlg {
    call_id: String,
    local: String,
    remote: String,
    target: String,
    cseq: u32,
}

/// A scripted phone at `addr`.
struct Ua {
    addr: SocketAddr,
    /// The Contact value it puts in requests and responses.
    contact: String,
    tag: String,
    branches: u32,
}

impl Ua {
    fn new(at: &str, contact: &str, tag: &str) -> Ua {
        Ua {
            addr: addr(at),
            contact: format!("<{contact}>"),
            tag: tag.into(),
            branches: 0,
        }
    }

    fn bob() -> Ua {
        Ua::new(BOB, "sip:bob@192.168.4.4:26000", "15c8325a")
    }

    fn alice() -> Ua {
        Ua::new(ZOIPER, ALICE_CONTACT, "3813e926")
    }

    fn branch(&mut self) -> String {
        self.branches += 1;
        format!("z9hG4bK-d8754z-{}-{}", self.addr.port(), self.branches)
    }

    /// A response to a request the engine sent us; 1xx/2xx get our Contact, all but 100
    /// our tag.
    fn respond(&self, req: &Request, status: u16, extra: &[&str], body: &str) -> String {
        let mut r = crate::sip::response_to(req, status, crate::sip::reason_phrase(status));
        if status > 100 {
            crate::sip::set_to_tag(&mut r, &self.tag);
        }
        if (101..300).contains(&status) {
            r.headers.push(HeaderName::Contact, self.contact.clone());
        }
        for l in extra {
            let (n, v) = l.split_once(": ").expect("Name: value");
            r.headers.push(HeaderName::from_wire(n), v.to_string());
        }
        if !body.is_empty() && !extra.iter().any(|l| l.starts_with("Content-Type")) {
            r.headers.push(HeaderName::ContentType, "application/sdp");
        }
        r.body = Bytes::copy_from_slice(body.as_bytes());
        text(&r)
    }

    /// The dialog we are in as the UAS of `invite` (alice after answering a b-leg INVITE).
    fn uas_dialog(&self, invite: &Request) -> Dlg {
        let to = req_header(invite, "To").expect("To");
        Dlg {
            call_id: invite.headers.call_id().expect("Call-ID").into(),
            local: format!("{to};tag={}", self.tag),
            remote: req_header(invite, "From").expect("From").into(),
            target: contact_uri(req_header(invite, "Contact").expect("Contact")),
            cseq: 0,
        }
    }

    /// A request in `d` with the next CSeq (or `cseq` when given), `extra` lines and `body`.
    fn in_dialog(
        &mut self,
        d: &mut Dlg,
        method: &str,
        cseq: Option<u32>,
        extra: &[&str],
        body: &str,
    ) -> String {
        let seq = cseq.unwrap_or_else(|| {
            d.cseq += 1;
            d.cseq
        });
        let branch = self.branch();
        let mut lines = vec![
            format!("{method} {} SIP/2.0", d.target),
            format!("Via: SIP/2.0/UDP {};branch={branch};rport", self.addr),
            "Max-Forwards: 70".into(),
            format!("From: {}", d.local),
            format!("To: {}", d.remote),
            format!("Call-ID: {}", d.call_id),
            format!("CSeq: {seq} {method}"),
            format!("Contact: {}", self.contact),
        ];
        lines.extend(extra.iter().map(|l| l.to_string()));
        if !body.is_empty() && !extra.iter().any(|l| l.starts_with("Content-Type")) {
            lines.push("Content-Type: application/sdp".into());
        }
        with_body(&(lines.join("\r\n") + "\r\n"), body)
    }
}

/// The URI inside a Contact value.
fn contact_uri(v: &str) -> String {
    let start = v.find('<').map_or(0, |i| i + 1);
    let end = v[start..].find('>').map_or(v.len(), |i| start + i);
    v[start..end].to_string()
}

/// bob's side of the call: the seed's INVITEs, answered challenges, the a-leg dialog.
struct Caller {
    ua: Ua,
    /// The account it authenticates as (and puts in its From).
    user: String,
    password: String,
    challenge: Option<DigestChallenge>,
    nc: u32,
    /// The last INVITE sent (for its ACK and CANCEL).
    invite: String,
    cseq: u32,
}

/// "Bob" for "bob": the display name a test phone puts in its From.
fn capitalised(user: &str) -> String {
    let mut c = user.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

impl Caller {
    /// Another phone: `user` (password 1234) calling from `at`.
    fn as_user(user: &str, at: &str) -> Caller {
        Caller {
            ua: Ua::new(at, &format!("sip:{user}@{at}"), &format!("tag-{user}-{at}")),
            user: user.into(),
            ..Caller::bob()
        }
    }

    /// A MESSAGE to `user` (new branch and Call-ID, next CSeq), with credentials when
    /// challenged.
    fn message_to(&mut self, user: &str, body: &str) -> String {
        self.cseq += 1;
        let ruri = format!("sip:{user}@192.168.4.4");
        let branch = self.ua.branch();
        let mut lines = vec![
            format!("MESSAGE {ruri} SIP/2.0"),
            format!("Via: SIP/2.0/UDP {};branch={branch};rport", self.ua.addr),
            "Max-Forwards: 70".into(),
            format!("To: <{ruri}>"),
            format!("From: <sip:{}@192.168.4.4>;tag={}", self.user, self.ua.tag),
            format!("Call-ID: msg-{branch}@192.168.4.4"),
            format!("CSeq: {} MESSAGE", self.cseq),
            "Content-Type: text/plain".into(),
        ];
        if self.challenge.is_some() {
            let auth = self.credentials("MESSAGE", &ruri, body);
            lines.push(format!("Proxy-Authorization: {auth}"));
        }
        with_body(&(lines.join("\r\n") + "\r\n"), body)
    }

    fn bob() -> Caller {
        Caller {
            ua: Ua::bob(),
            user: "bob".into(),
            password: "1234".into(),
            challenge: None,
            nc: 0,
            invite: String::new(),
            cseq: 0,
        }
    }

    /// The seed's first INVITE (message 06) with `body`.
    fn seed_invite(&mut self, body: &str) -> String {
        self.cseq = 1;
        self.invite = with_body(SEED_06, body);
        self.invite.clone()
    }

    /// The seed's second INVITE (message 09) with credentials for our nonce and `body`.
    fn seed_invite_authorized(&mut self, body: &str) -> String {
        self.cseq = 2;
        let auth = self.credentials("INVITE", "sip:alice@192.168.4.4", body);
        let msg = set_header(SEED_09, "Proxy-Authorization", &auth);
        self.invite = with_body(&msg, body);
        self.invite.clone()
    }

    /// A fresh INVITE to `user` (new branch, next CSeq) with credentials when challenged.
    fn invite_to(&mut self, user: &str, extra: &[&str], body: &str) -> String {
        self.cseq += 1;
        let ruri = format!("sip:{user}@192.168.4.4");
        let branch = self.ua.branch();
        let mut lines = vec![
            format!("INVITE {ruri} SIP/2.0"),
            format!("Via: SIP/2.0/UDP {};branch={branch};rport", self.ua.addr),
            "Max-Forwards: 70".into(),
            format!("Contact: {}", self.ua.contact),
            format!("To: <{ruri}>"),
            format!(
                "From: \"{}\"<sip:{}@192.168.4.4>;tag={}",
                capitalised(&self.user),
                self.user,
                self.ua.tag
            ),
            format!("Call-ID: call-{branch}@192.168.4.4"),
            format!("CSeq: {} INVITE", self.cseq),
        ];
        lines.extend(extra.iter().map(|l| l.to_string()));
        if !body.is_empty() {
            lines.push("Content-Type: application/sdp".into());
        }
        if self.challenge.is_some() {
            let auth = self.credentials("INVITE", &ruri, body);
            lines.push(format!("Proxy-Authorization: {auth}"));
        }
        self.invite = with_body(&(lines.join("\r\n") + "\r\n"), body);
        self.invite.clone()
    }

    fn credentials(&mut self, method: &str, uri: &str, body: &str) -> String {
        let ch = self.challenge.clone().expect("challenged first");
        self.nc += 1;
        DigestCredentials::answer(
            &ch,
            &Answer {
                username: &self.user,
                password: &self.password,
                method,
                uri,
                body: body.as_bytes(),
                cnonce: SEED_CNONCE,
                nc: self.nc,
            },
        )
        .to_string()
    }

    fn learn(&mut self, r407: &Response) {
        assert_eq!(r407.status, 407, "{}", reason(r407));
        let values = headers(r407, "Proxy-Authenticate");
        assert_eq!(values.len(), 1, "{values:?}");
        self.challenge = match crate::auth::parse_challenges(values[0])
            .expect("challenge parses")
            .as_slice()
        {
            [Challenge::Digest(c)] => Some(c.clone()),
            other => panic!("not one Digest challenge: {other:?}"),
        };
        self.nc = 0;
    }

    fn invite_req(&self) -> Request {
        match parse_datagram(self.invite.as_bytes()).expect("our INVITE parses") {
            Message::Request(r) => r,
            _ => unreachable!("an INVITE is a request"),
        }
    }

    /// The ACK for a non-2xx final response: the INVITE's branch (§17.1.1.3).
    fn ack_non2xx(&self, resp: &Response) -> String {
        text(&crate::sip::ack_for_non2xx(&self.invite_req(), resp))
    }

    /// CANCEL for the last INVITE (§9.1).
    fn cancel(&self) -> String {
        text(&crate::sip::cancel_for(&self.invite_req()))
    }

    /// The a-leg dialog as bob sees it after a 2xx (or 1xx with tag).
    fn dialog(&self, resp: &Response) -> Dlg {
        let inv = self.invite_req();
        Dlg {
            call_id: inv.headers.call_id().expect("Call-ID").into(),
            local: req_header(&inv, "From").expect("From").into(),
            remote: header(resp, "To").expect("To").into(),
            target: contact_uri(header(resp, "Contact").expect("a Contact in the 2xx")),
            cseq: self.cseq,
        }
    }

    /// The ACK for a 2xx (new branch, the INVITE's CSeq number), with `body` (late offer).
    fn ack(&mut self, d: &Dlg, body: &str) -> String {
        let mut d = d.clone();
        let seq = self.cseq;
        self.ua.in_dialog(&mut d, "ACK", Some(seq), &[], body)
    }
}

impl Net {
    /// A call-test network: alice registered at Zoiper's address with the seed's Contact.
    fn calls() -> Net {
        Net::calls_with(|_| {})
    }

    fn calls_with(tweak: impl FnOnce(&mut EngineConfig)) -> Net {
        let mut net = Net::with(tweak);
        net.register_contact("alice", ZOIPER, ALICE_CONTACT);
        net
    }

    fn register_contact(&mut self, user: &str, at: &str, contact: &str) {
        let mut phone = Phone::new(user, "1234", at);
        phone.call_id = format!("reg-{user}-{at}");
        let c = format!("Contact: <{contact}>");
        let r = self.register(&mut phone, addr(at), &[c.as_str(), "Expires: 3600"]);
        assert_eq!(r.status, 200, "{user} registers: {}", reason(&r));
    }

    /// Delivers a phone's message from `from` over UDP; what the engine sent in reply.
    fn send(&mut self, from: &str, msg: &str) -> Sent {
        Sent::from(self.udp(addr(from), msg))
    }

    fn after(&mut self, d: Duration) -> Sent {
        Sent::from(self.advance(d))
    }

    /// Ends a scenario: no call left in the table, and the transaction layer drains within
    /// 64·T1 + Timer D without sending anything more.
    fn assert_drained(&mut self) {
        assert_eq!(
            self.engine.call_table_sizes(),
            (0, 0, 0),
            "call table empty"
        );
        let late = self.after(Duration::from_secs(40));
        assert!(late.is_empty(), "nothing more to send: {:?}", late.ladder());
        assert_eq!(self.engine.transactions().len(), 0, "transactions drained");
        assert_eq!(self.engine.active_calls(), 0);
    }

    /// The CDR of the one call that ended.
    fn cdr(&mut self) -> crate::cdr::CdrRecord {
        let rec = self.engine.poll_cdr().expect("a CDR for the call");
        assert!(self.engine.poll_cdr().is_none(), "one CDR per call");
        rec
    }
}

/// bob's call up to the authorized INVITE: the seed's 06 → 100 → 407 → 08 ACK → 09.
/// Returns what the engine sent after 09.
fn authorized_invite(net: &mut Net, bob: &mut Caller, body: &str) -> Sent {
    let sent = net.send(BOB, &bob.seed_invite(body));
    assert_eq!(sent.ladder(), ["bob<-407 INVITE"]);
    let r407 = sent.response(BOB, 407);
    bob.learn(&r407);
    let ack = bob.ack_non2xx(&r407);
    assert!(
        net.send(BOB, &ack).is_empty(),
        "the ACK of the 407 is absorbed"
    );
    net.send(BOB, &bob.seed_invite_authorized(body))
}

/// The same up to the b-leg INVITE reaching alice; returns that INVITE.
fn ring_alice(net: &mut Net, bob: &mut Caller, body: &str) -> Request {
    let sent = authorized_invite(net, bob, body);
    assert_eq!(sent.ladder(), ["bob<-100 INVITE", "alice<-INVITE"]);
    sent.request(ZOIPER, Method::Invite)
}

/// The whole call up to both ACKs: returns (bob's a-leg dialog, alice's b-leg dialog,
/// the b-leg INVITE).
fn connect(net: &mut Net, bob: &mut Caller, alice: &mut Ua) -> (Dlg, Dlg, Request) {
    let offer = sdp("bob", 8000, "");
    let answer = sdp("alice", 9000, "");
    let inv = ring_alice(net, bob, &offer);
    let sent = net.send(ZOIPER, &alice.respond(&inv, 180, &[], ""));
    sent.response(BOB, 180);
    let sent = net.send(ZOIPER, &alice.respond(&inv, 200, &[], &answer));
    assert_eq!(sent.ladder(), ["alice<-ACK", "bob<-200 INVITE"]);
    let ok = sent.response(BOB, 200);
    let a = bob.dialog(&ok);
    assert!(net.send(BOB, &bob.ack(&a, "")).is_empty());
    let b = alice.uas_dialog(&inv);
    (a, b, inv)
}
