//! What the daemon answers to each RFC 4475 torture message, over UDP and over TCP, and why:
//! the table `daemon_torture.rs` checks against the real daemon and renders as
//! `tests/data/rfc4475/DAEMON-BEHAVIOUR.md`.
//!
//! The daemon is a softswitch that authenticates callers: an unauthenticated INVITE or
//! MESSAGE that is well-formed gets 407 and a REGISTER 401 before anything looks at where it
//! goes (RFC 4475 §3.3's "a proxy forwards it" cases therefore end at the challenge), an
//! OPTIONS to the server is answered 200 like any keep-alive. Only the file names, statuses and
//! reason-phrase fragments are data here; how they are checked lives in the test.
#![allow(dead_code)]

/// What one message gets on one transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// These final responses in this order (provisional ones are allowed before them), then
    /// nothing more: an OPTIONS sent right after on the same socket or connection is the next
    /// thing answered.
    Reply(&'static [u16]),
    /// No response at all; an OPTIONS sent right after is the first thing answered.
    Silent,
    /// TCP: these final responses, after which the octets left over are not a message (a
    /// body without Content-Length), so the stream is out of step; a fresh connection is
    /// served.
    ReplyThenOutOfStep(&'static [u16]),
    /// TCP: Content-Length promises more octets than were sent; the framer waits, nothing is
    /// answered until the body is complete, then the message is handled normally.
    Waits,
    /// TCP: a Content-Length that cannot frame the stream; the connection is closed without
    /// a response (RFC 3261 §18.3, RFC 4475 §3.1.2.3 and §3.3.9).
    Closes,
}

/// One row: a torture file, the expectation per transport, what a 400's reason phrase must
/// mention (`""` for other statuses), and why, with the RFC 4475 section.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub file: &'static str,
    pub section: &'static str,
    pub udp: Expect,
    pub tcp: Expect,
    pub reason: &'static str,
    pub why: &'static str,
}

use Expect::*;

const fn same(
    file: &'static str,
    section: &'static str,
    both: Expect,
    reason: &'static str,
    why: &'static str,
) -> Case {
    Case {
        file,
        section,
        udp: both,
        tcp: both,
        reason,
        why,
    }
}

const fn split(
    file: &'static str,
    section: &'static str,
    (udp, tcp): (Expect, Expect),
    reason: &'static str,
    why: &'static str,
) -> Case {
    Case {
        file,
        section,
        udp,
        tcp,
        reason,
        why,
    }
}

#[rustfmt::skip]
pub const CASES: &[Case] = &[
    // 3.1.1: valid messages, they must parse and be handled like any other.
    same("wsinv.dat", "3.1.1.1", Reply(&[481]), "",
        "Parses despite folding, LWS and compact names; its To carries a tag, so it is a re-INVITE for a dialog we do not have: 481 (RFC 3261 §12.2.2)."),
    same("intmeth.dat", "3.1.1.2", Reply(&[501]), "",
        "Unknown method with odd but legal characters: 501 with Allow, as a UAS answers. The To display name holds NUL, BEL and DEL: the 501's To carries the URI and parameters only (nothing we send holds a control octet)."),
    same("esc01.dat", "3.1.1.3", Reply(&[407]), "",
        "Valid INVITE with escapes in the URIs: the caller is challenged before anything else."),
    same("escnull.dat", "3.1.1.4", Reply(&[401]), "",
        "Valid REGISTER with %00 in the users: challenged, nothing registered."),
    same("esc02.dat", "3.1.1.5", Reply(&[501]), "",
        "RE%47IST%45R is an unknown method, not REGISTER: 501 with Allow, nothing registered."),
    same("lwsdisp.dat", "3.1.1.6", Reply(&[200]), "",
        "OPTIONS with no LWS before '<' in From: answered 200."),
    same("longreq.dat", "3.1.1.7", Reply(&[407]), "",
        "Long header values and 34 Vias: a valid INVITE, challenged; the Vias come back whole."),
    split("dblreq.dat", "3.1.1.8", (Reply(&[401]), Reply(&[401, 407])), "",
        "UDP: the REGISTER is challenged and the INVITE after its Content-Length discarded. TCP: on a stream the INVITE is the next message and is challenged too."),
    same("semiuri.dat", "3.1.1.9", Reply(&[200]), "",
        "OPTIONS whose R-URI user part holds ';': answered 200."),
    same("transports.dat", "3.1.1.10", Reply(&[200]), "",
        "Vias with SCTP, TLS and UNKNOWN transports: answered 200, every Via copied."),
    same("mpart01.dat", "3.1.1.11", Reply(&[407]), "",
        "MESSAGE with a multipart body incl. binary octets: the sender is challenged."),
    same("unreason.dat", "3.1.1.12", Silent, "",
        "A response that matches no transaction of ours: dropped."),
    same("noreason.dat", "3.1.1.13", Silent, "",
        "A response with an empty reason phrase that matches nothing: dropped."),
    // 3.1.2: invalid messages.
    same("badinv01.dat", "3.1.2.1", Reply(&[400]), "Via",
        "Empty Via and Contact parameters: 400."),
    split("clerr.dat", "3.1.2.2", (Reply(&[400]), Waits), "Content-Length",
        "UDP: the datagram is shorter than Content-Length: 400. TCP: the framer waits for the rest of the body; once it arrives the INVITE is challenged (407)."),
    split("ncl.dat", "3.1.2.3", (Reply(&[400]), Closes), "Content-Length",
        "Negative Content-Length. UDP: 400, the rest of the datagram discarded. TCP: the stream cannot be framed, the connection is closed."),
    same("scalar02.dat", "3.1.2.4", Reply(&[400]), "CSeq",
        "CSeq beyond 2^32-1: 400 naming CSeq (the overlarge Max-Forwards and expiries alone would not be)."),
    same("scalarlg.dat", "3.1.2.5", Silent, "",
        "A response with overlarge scalars: discarded."),
    same("quotbal.dat", "3.1.2.6", Reply(&[400]), "quoted",
        "Unterminated quoted display name in To: 400."),
    same("ltgtruri.dat", "3.1.2.7", Reply(&[400]), "Request-Line",
        "Request-URI in '<>': 400 Malformed Request-Line."),
    same("lwsruri.dat", "3.1.2.8", Reply(&[400]), "Request-Line",
        "LWS inside the Request-URI (four start-line elements): 400."),
    same("lwsstart.dat", "3.1.2.9", Reply(&[400]), "Request-Line",
        "Several SPs between start-line elements: rejected as malformed (400), which the RFC allows."),
    same("trws.dat", "3.1.2.10", Reply(&[400]), "Request-Line",
        "SPs after the SIP version: rejected as malformed (400), which the RFC allows."),
    same("escruri.dat", "3.1.2.11", Reply(&[400]), "Request-URI",
        "Escaped headers in the Request-URI: 400, never turned into headers."),
    same("baddate.dat", "3.1.2.12", Reply(&[407]), "",
        "A non-GMT Date is ignored (we do not use Date): the INVITE is challenged like any other."),
    same("regbadct.dat", "3.1.2.13", Reply(&[400]), "Contact",
        "Contact URI with '?' outside '<>': 400."),
    same("badaspec.dat", "3.1.2.14", Reply(&[400]), "To",
        "Spaces inside the '<>' of To: 400 naming To."),
    same("baddn.dat", "3.1.2.15", Reply(&[400]), "From",
        "Unquoted display name with ',': 400 naming From."),
    same("badvers.dat", "3.1.2.16", Reply(&[505]), "",
        "SIP/7.0: 505 Version Not Supported."),
    same("mismatch01.dat", "3.1.2.17", Reply(&[400]), "CSeq",
        "OPTIONS with CSeq method INVITE: 400."),
    same("mismatch02.dat", "3.1.2.18", Reply(&[400]), "CSeq",
        "Unknown method with CSeq method INVITE: 400 (the mismatch is found before 501)."),
    same("bigcode.dat", "3.1.2.19", Silent, "",
        "Status code 4294967301: dropped, nothing overflows."),
    // 3.2 - 3.4: well-formed; what matters is the application's answer.
    same("badbranch.dat", "3.2.1", Reply(&[200]), "",
        "Branch 'z9hG4bK' with nothing after the cookie: an OPTIONS answered 200 (the branch is an opaque key)."),
    same("insuf.dat", "3.3.1", Reply(&[400]), "missing",
        "No To, From, Call-ID or Max-Forwards: 400 naming the missing header."),
    same("unkscm.dat", "3.3.2", Reply(&[416]), "",
        "Request-URI scheme nobodyKnowsThisScheme: 416, never routed on To."),
    same("novelsc.dat", "3.3.3", Reply(&[416]), "",
        "soap.beep: Request-URI: 416 (no such scheme means anything to us)."),
    same("unksm2.dat", "3.3.4", Reply(&[400]), "To",
        "A REGISTER whose To is not a sip/sips AOR: the registrar answers 400."),
    same("bext01.dat", "3.3.5", Reply(&[420]), "",
        "Require with unknown tags: 420 with Unsupported listing both (a UAS checks Require). Its Via names TLS without a port: as sent, the 420 goes to port 5061 of the source (RFC 3261 §18.2.2, §19.1.2); this test moves the sent-by to its socket."),
    same("invut.dat", "3.3.6", Reply(&[407]), "",
        "INVITE with an unknown body type: the caller is challenged first (a proxy would forward it; we never look further without credentials)."),
    same("regaut01.dat", "3.3.7", Reply(&[401]), "",
        "Unknown Authorization scheme: treated as absent, 401 with a Digest challenge."),
    same("multi01.dat", "3.3.8", Reply(&[400]), "more than one",
        "Two Call-ID, To, From and CSeq: 400."),
    split("mcl01.dat", "3.3.9", (Reply(&[400]), Closes), "Content-Length",
        "Two different Content-Lengths. UDP: 400, the rest of the datagram discarded. TCP: the stream cannot be framed, the connection is closed."),
    same("bcast.dat", "3.3.10", Silent, "",
        "A 200 with a broadcast Via: an endpoint drops it, nothing is sent to 255.255.255.255."),
    same("zeromf.dat", "3.3.11", Reply(&[200]), "",
        "OPTIONS with Max-Forwards 0 addressed to us: processed normally (200), nothing forwarded."),
    same("cparam01.dat", "3.3.12", Reply(&[401]), "",
        "REGISTER with a contact-param: challenged (registration needs credentials)."),
    same("cparam02.dat", "3.3.13", Reply(&[401]), "",
        "REGISTER with a URI parameter in the Contact: challenged."),
    same("regescrt.dat", "3.3.14", Reply(&[401]), "",
        "REGISTER with an escaped header in the Contact URI: challenged."),
    same("sdp01.dat", "3.3.15", Reply(&[407]), "",
        "INVITE with SDP but Accept: text/nobodyKnowsThis: the caller is challenged first."),
    split("inv2543.dat", "3.4.1", (Reply(&[407]), ReplyThenOutOfStep(&[400])), "Content-Length",
        "RFC 2543 INVITE. UDP: accepted (body to the datagram's end), challenged. TCP: Content-Length is mandatory on streams: 400, and the SDP after the head is no message."),
];

impl Expect {
    /// How the row reads in `DAEMON-BEHAVIOUR.md`.
    pub fn describe(&self, reason: &str) -> String {
        let codes = |c: &[u16]| {
            c.iter()
                .map(|code| match (code, reason) {
                    (400, r) if !r.is_empty() => format!("400 (reason names \"{r}\")"),
                    (c, _) => c.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", then ")
        };
        match self {
            Reply(c) => codes(c),
            Silent => "no response".into(),
            ReplyThenOutOfStep(c) => format!("{}; the rest is no message", codes(c)),
            Waits => "no response: waits for the body (answered once it is complete)".into(),
            Closes => "connection closed, no response".into(),
        }
    }
}

/// The markdown table `tests/data/rfc4475/DAEMON-BEHAVIOUR.md` holds.
pub fn markdown() -> String {
    let mut s = String::from(
        "# What the daemon answers to the RFC 4475 torture messages\n\n\
Generated from `tests/torture_table/mod.rs` and checked against the real daemon by \
`tests/daemon_torture.rs` (regenerate with `UPDATE_DAEMON_BEHAVIOUR=1 cargo test --test \
daemon_torture`). ferroswitch is a softswitch that authenticates callers: a well-formed \
INVITE or MESSAGE without credentials gets 407 and a REGISTER 401 before anything else looks \
at it; an OPTIONS to the server gets 200. 1xx responses (100 Trying to an INVITE) are not \
listed. Over UDP the top Via's sent-by is moved to the test's socket (responses follow Via); \
over TCP the file is sent byte for byte. After every message an OPTIONS is answered: on the \
same socket or connection right after it (so a late extra response would show), and on a \
fresh connection for TCP.\n\n\
| File | RFC 4475 | UDP | TCP | Why |\n|---|---|---|---|---|\n",
    );
    for c in CASES {
        s.push_str(&format!(
            "| `{}` | §{} | {} | {} | {} |\n",
            c.file,
            c.section,
            c.udp.describe(c.reason),
            c.tcp.describe(c.reason),
            c.why
        ));
    }
    s.push_str(
        "\nBeyond the files (same test file): an INVITE or MESSAGE with Max-Forwards 0 gets 483 \
and an INVITE whose Vias carry a branch of ours gets 482 (RFC 3261 §16.3 steps 3-4), both \
before authentication.\n",
    );
    s
}
