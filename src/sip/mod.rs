//! The SIP message layer: the only door to SIP messages in ferroswitch.
//!
//! Parsing (`parse`, `framer`), the message model (`message`, `header`, `method`), typed views
//! decoded on demand (`uri`, `name_addr`, `typed`, `media`, `access`), request validation
//! (`validate`), response builders, and the bridge to rsip (`rsip_bridge`). The rest of the
//! daemon sees only this API; whatever library helps inside stays inside. Sans-IO: no
//! sockets, no clock, no tokio.
//!
//! # rsip: what uses it and what is ours
//!
//! rsip 0.4 is the message model the user chose, but it fails on real traffic (STYLE habit 6).
//! Each failure below has a test in `tests/sip_rsip.rs` showing rsip failing and us not; if
//! rsip improves, that test tells us.
//!
//! | job | whose | why |
//! |---|---|---|
//! | framing, start line, header lines, body | ours (`parse`, `framer`) | rsip fails on folded lines, LF-only ends, a space before `:`, unknown methods, any non-UTF-8 octet; ignores Content-Length (takes trailing octets as body, accepts a short body) |
//! | header names | ours (`header`) | rsip files compact forms (`v:`, `m:` …) under `Other`, so its accessors miss them |
//! | Via, Contact, Route lists | ours (`typed`, `name_addr`, `access`) | rsip's typed views see one value per line and drop or reject the rest; reject quoted params (`+sip.instance="<urn:…>"`) |
//! | URIs | ours (`uri`) | rsip cannot hold IPv6 references, escaped or `;` user parts, URI headers; it re-renders params (`transport=udp` → `UDP`), which breaks digest |
//! | reason phrases | ours | rsip keeps none for known codes and writes its own (`486 BusyHere`) |
//! | digest | ours, in `auth` (not tested here) | per STYLE habit 6, rsip's helper re-renders the URI, parses `nc` as decimal u8, treats MD5-sess as MD5 |
//! | interop with code using rsip types | rsip (`rsip_bridge`) | `to_rsip`/`from_rsip`: our normalised message (names expanded, lists split one value per header, body cut) handed to rsip's `Request`/`Response`/`Headers`, using rsip's own header-name dispatch; refused (`RsipError`) where rsip would alter it |
//! | rsip typed headers on a converted message | rsip | correct once the input is normalised (e.g. typed Via/From/Contact of the seed trace and longreq) |

pub mod access;
pub mod builder;
pub mod framer;
pub mod header;
pub mod media;
pub mod message;
pub mod method;
pub mod name_addr;
pub mod parse;
#[cfg(feature = "rsip")]
pub mod rsip_bridge;
pub mod status;
pub mod typed;
pub mod uri;
pub mod validate;

pub use access::{CoreHeaders, HeaderError};
pub use builder::{
    ack_for_non2xx, cancel_for, make_echo_safe, response_to, response_to_bad, set_to_tag,
};
pub use framer::{Frame, FrameError, StreamFramer};
pub use header::{is_ctl, is_wire_safe, Header, HeaderName, Headers};
pub use media::{MediaType, Reason};
pub use message::{Message, Request, Response, Version, MAX_REASON_LEN};
pub use method::Method;
pub use name_addr::{AddrError, Contact, NameAddr};
pub use parse::{parse_datagram, parse_datagram_bytes, parse_framed, ParseError, MAX_MESSAGE_SIZE};
#[cfg(feature = "rsip")]
pub use rsip_bridge::{from_rsip, to_rsip, RsipError};
pub use status::reason_phrase;
pub use typed::{CSeq, Params, Via};
pub use uri::{Scheme, Uri, UriError, DEFAULT_SIPS_PORT, DEFAULT_SIP_PORT};
pub use validate::{
    check_max_forwards, validate_register, validate_request, validate_response, Policy, Rejection,
    ResponseDefect,
};
