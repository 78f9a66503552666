//! The SIP message layer: the only door to SIP messages in ferroswitch.
//!
//! Parsing (`parse`), the message model (`message`, `header`, `method`), typed header views
//! (`typed`) and response builders. The rest of the daemon sees only this API; whatever
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
pub mod typed;

pub use builder::{ack_for_non2xx, cancel_for, response_to, set_to_tag};
pub use framer::{Frame, FrameError, StreamFramer};
pub use header::{Header, HeaderName, Headers};
pub use message::{Message, Request, Response, Version};
pub use method::Method;
pub use parse::{parse_datagram, parse_framed, ParseError, MAX_MESSAGE_SIZE};
pub use typed::{CSeq, Params, Via};
pub mod uri;
