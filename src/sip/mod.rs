//! The SIP message layer: the only door to SIP messages in ferroswitch.
//!
//! Parsing (`parse`, `framer`), the message model (`message`, `header`, `method`), typed views
//! decoded on demand (`uri`, `name_addr`, `typed`, `media`, `access`), request validation
//! (`validate`) and response builders. The rest of the daemon sees only this API; whatever
//! library helps inside stays inside. Sans-IO: no sockets, no clock, no tokio.

pub mod access;
pub mod builder;
pub mod framer;
pub mod header;
pub mod media;
pub mod message;
pub mod method;
pub mod name_addr;
pub mod parse;
pub mod status;
pub mod typed;
pub mod uri;
pub mod validate;

pub use access::{CoreHeaders, HeaderError};
pub use builder::{ack_for_non2xx, cancel_for, response_to, set_to_tag};
pub use framer::{Frame, FrameError, StreamFramer};
pub use header::{Header, HeaderName, Headers};
pub use media::{MediaType, Reason};
pub use message::{Message, Request, Response, Version};
pub use method::Method;
pub use name_addr::{AddrError, Contact, NameAddr};
pub use parse::{parse_datagram, parse_framed, ParseError, MAX_MESSAGE_SIZE};
pub use status::reason_phrase;
pub use typed::{CSeq, Params, Via};
pub use uri::{Scheme, Uri, UriError};
pub use validate::{
    check_max_forwards, validate_register, validate_request, validate_response, Policy, Rejection,
    ResponseDefect,
};
