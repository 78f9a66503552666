//! Errors of the dialog layer, sorted by who is at fault: the peer (a message that cannot
//! make or match a dialog, answered 400 or dropped by the layer above) or the caller (a
//! request this dialog cannot send now). One mapping to a SIP status code, for the peer's
//! faults only.

use crate::sip::HeaderError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    // --- the peer's fault -------------------------------------------------------------
    /// A header the dialog needs is missing, repeated or malformed.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The message has no Contact address to use as remote target (§12.1.1, §8.1.1.8).
    #[error("no Contact address to use as remote target")]
    NoContact,
    /// A 1xx without a To tag, a 100, or a final non-2xx: no dialog comes of it (§12.1).
    #[error("a {0} response does not create a dialog")]
    NotDialogCreating(u16),
    /// A request without a To tag is not inside a dialog (§12.2).
    #[error("request has no To tag: it is outside any dialog")]
    NotInDialog,
    /// The response's Call-ID, From tag or CSeq is not the request's.
    #[error("response does not answer this request or dialog")]
    Mismatch,
    /// A request with a To tag cannot create a dialog: it belongs to one (§12.1.1), and
    /// when that dialog is unknown the answer is 481 (§12.2.2).
    #[error("request already carries a To tag")]
    AlreadyInDialog,

    // --- the caller's fault -----------------------------------------------------------
    /// §14.1: no INVITE while another INVITE transaction is in progress either way.
    #[error("an INVITE transaction is in progress in this dialog")]
    InviteInProgress,
    /// The dialog is terminated (BYE sent or received, or it failed).
    #[error("dialog is terminated")]
    Terminated,
    /// §15: the callee must not send BYE in an early dialog (it answers the INVITE instead).
    #[error("{0} cannot be sent in this dialog's current state")]
    NotAllowedNow(&'static str),
    /// A CANCEL copies its INVITE's branch; build it from the INVITE (`sip::cancel_for` or
    /// `TransactionLayer::send_cancel`).
    #[error("CANCEL is built from the INVITE it cancels, not from the dialog")]
    CancelNotFromDialog,
    /// An ACK for a 2xx needs an INVITE we sent in this dialog.
    #[error("no INVITE to acknowledge")]
    NoInviteToAck,
    /// The local CSeq reached 2^32-1.
    #[error("local CSeq space exhausted")]
    CSeqExhausted,
    /// The dialog table is at its bound.
    #[error("too many dialogs (limit {0})")]
    Full(usize),
    /// A dialog with this key already exists.
    #[error("dialog already exists")]
    Duplicate,
    /// A URI this layer cannot route to: not sip:/sips:, or a transport we do not serve.
    #[error("cannot route to {0}")]
    Unroutable(String),
}

impl DialogError {
    /// True when the message received is at fault (not the caller).
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            DialogError::Header(_)
                | DialogError::NoContact
                | DialogError::NotDialogCreating(_)
                | DialogError::NotInDialog
                | DialogError::Mismatch
                | DialogError::AlreadyInDialog
        )
    }

    /// The status to answer a request that failed with this error, when it is the peer's
    /// fault; `None` for the caller's faults (they are bugs or policy, not wire errors).
    pub fn status_code(&self) -> Option<u16> {
        match self {
            DialogError::Header(_) | DialogError::NoContact => Some(400),
            DialogError::NotInDialog | DialogError::Mismatch | DialogError::AlreadyInDialog => {
                Some(481)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::HeaderName;

    #[test]
    fn peer_faults_map_to_the_wire_and_misuse_does_not() {
        let e = DialogError::from(HeaderError::Missing(HeaderName::CSeq));
        assert!(e.is_peer_fault());
        assert_eq!(e.status_code(), Some(400));
        assert_eq!(DialogError::NoContact.status_code(), Some(400));
        assert_eq!(DialogError::NotInDialog.status_code(), Some(481));
        assert!(!DialogError::InviteInProgress.is_peer_fault());
        assert_eq!(DialogError::InviteInProgress.status_code(), None);
        assert_eq!(
            DialogError::Full(3).to_string(),
            "too many dialogs (limit 3)"
        );
    }
}
