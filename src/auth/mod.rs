//! Digest authentication for the registrar and the B2BUA (RFC 3261 §22, RFC 2617, RFC 7616,
//! RFC 8760): parsing and rendering the four authentication headers, the digest arithmetic,
//! nonces, and the verdict on a request's credentials.
//!
//! Sans-IO like the protocol layers: no sockets, no clock reads (`now` is seconds since the
//! Unix epoch, passed in), no user store (the caller resolves accounts), no tokio. It must
//! never panic on what a peer sends and never tell an unknown user from a wrong password.

pub mod challenge;
pub mod credentials;
pub mod digest;
pub mod nonce;
pub mod params;
pub mod uac;
pub mod verify;

pub use challenge::{parse_challenges, Challenge, DigestChallenge};
pub use credentials::{parse_credentials, Answer, Credentials, DigestCredentials, Sent};
pub use digest::{hash_password, Algorithm, Qop};
pub use nonce::{run_id, NcTracker, NonceManager, NonceSecret, NonceStatus};
pub use params::{AuthParam, AuthValue, HeaderError};
pub use uac::{retry, UacAuth, UacAuthError, UacCredentials};
pub use verify::{
    check_response, verify, Account, Action, AuthError, DigestRequest, Outcome, Secret, Verifier,
    VerifierStats,
};
