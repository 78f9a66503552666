//! Call detail records: one JSON object per call, one line each (JSON Lines), as the B2BUA
//! produces them when a call ends. This module only builds and renders records; the driver
//! writes each one to the configured file as the call ends (`app::CdrWriter` says what that
//! promises: it survives a daemon crash, but is not fsync'd). Hangup causes use the Q.850
//! names FreeSWITCH operators know.

use serde::Serialize;
use std::time::SystemTime;

/// Q.850 cause for a call's end, with the names FreeSWITCH logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupCause {
    NormalClearing,
    UserBusy,
    NoUserResponse,
    NoAnswer,
    CallRejected,
    UnallocatedNumber,
    NormalTemporaryFailure,
    DestinationOutOfOrder,
    RecoveryOnTimerExpire,
    OriginatorCancel,
    ServiceUnavailable,
    SwitchCongestion,
    IncompatibleDestination,
    NormalUnspecified,
    ExchangeRoutingError,
    MediaTimeout,
    /// The callee exists but has no registered contact (SIP 480 from the switch itself).
    UserNotRegistered,
    /// The request is for a domain we do not serve.
    NoRouteDestination,
    /// The party ended its part of the call by transferring it (REFER, RFC 3515): the
    /// transferor's own record. FreeSWITCH's name and code, outside Q.850.
    BlindTransfer,
    /// The same for an attended transfer (REFER with Replaces, RFC 3891).
    AttendedTransfer,
}

impl HangupCause {
    /// Every cause, in a fixed order (metrics label them by `name`).
    pub const ALL: [HangupCause; 20] = [
        HangupCause::NormalClearing,
        HangupCause::UserBusy,
        HangupCause::NoUserResponse,
        HangupCause::NoAnswer,
        HangupCause::CallRejected,
        HangupCause::UnallocatedNumber,
        HangupCause::NormalTemporaryFailure,
        HangupCause::DestinationOutOfOrder,
        HangupCause::RecoveryOnTimerExpire,
        HangupCause::OriginatorCancel,
        HangupCause::ServiceUnavailable,
        HangupCause::SwitchCongestion,
        HangupCause::IncompatibleDestination,
        HangupCause::NormalUnspecified,
        HangupCause::ExchangeRoutingError,
        HangupCause::MediaTimeout,
        HangupCause::UserNotRegistered,
        HangupCause::NoRouteDestination,
        HangupCause::BlindTransfer,
        HangupCause::AttendedTransfer,
    ];

    /// Position in [`HangupCause::ALL`].
    pub fn index(self) -> usize {
        HangupCause::ALL
            .iter()
            .position(|c| *c == self)
            .unwrap_or(0)
    }

    /// A cause an operator typed: its name (any case) or its code (`16`, `17` …).
    pub fn parse(s: &str) -> Option<HangupCause> {
        let s = s.trim();
        HangupCause::ALL.into_iter().find(|c| {
            c.name().eq_ignore_ascii_case(s) || s.parse::<u16>().is_ok_and(|n| n == c.code())
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            HangupCause::NormalClearing => "NORMAL_CLEARING",
            HangupCause::UserBusy => "USER_BUSY",
            HangupCause::NoUserResponse => "NO_USER_RESPONSE",
            HangupCause::NoAnswer => "NO_ANSWER",
            HangupCause::CallRejected => "CALL_REJECTED",
            HangupCause::UnallocatedNumber => "UNALLOCATED_NUMBER",
            HangupCause::NormalTemporaryFailure => "NORMAL_TEMPORARY_FAILURE",
            HangupCause::DestinationOutOfOrder => "DESTINATION_OUT_OF_ORDER",
            HangupCause::RecoveryOnTimerExpire => "RECOVERY_ON_TIMER_EXPIRE",
            HangupCause::OriginatorCancel => "ORIGINATOR_CANCEL",
            HangupCause::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            HangupCause::SwitchCongestion => "SWITCH_CONGESTION",
            HangupCause::IncompatibleDestination => "INCOMPATIBLE_DESTINATION",
            HangupCause::NormalUnspecified => "NORMAL_UNSPECIFIED",
            HangupCause::ExchangeRoutingError => "EXCHANGE_ROUTING_ERROR",
            HangupCause::MediaTimeout => "MEDIA_TIMEOUT",
            HangupCause::UserNotRegistered => "USER_NOT_REGISTERED",
            HangupCause::NoRouteDestination => "NO_ROUTE_DESTINATION",
            HangupCause::BlindTransfer => "BLIND_TRANSFER",
            HangupCause::AttendedTransfer => "ATTENDED_TRANSFER",
        }
    }

    /// The Q.850 code (FreeSWITCH uses 487 for ORIGINATOR_CANCEL, outside Q.850).
    pub fn code(self) -> u16 {
        match self {
            HangupCause::NormalClearing => 16,
            HangupCause::UserBusy => 17,
            HangupCause::NoUserResponse => 18,
            HangupCause::NoAnswer => 19,
            HangupCause::CallRejected => 21,
            HangupCause::UnallocatedNumber => 1,
            HangupCause::NormalTemporaryFailure => 41,
            HangupCause::DestinationOutOfOrder => 27,
            HangupCause::RecoveryOnTimerExpire => 102,
            HangupCause::OriginatorCancel => 487,
            HangupCause::ServiceUnavailable => 63,
            HangupCause::SwitchCongestion => 42,
            HangupCause::IncompatibleDestination => 88,
            HangupCause::NormalUnspecified => 31,
            HangupCause::ExchangeRoutingError => 25,
            HangupCause::MediaTimeout => 604,
            // FreeSWITCH's own code for it, outside Q.850 like 487 and 604.
            HangupCause::UserNotRegistered => 606,
            HangupCause::NoRouteDestination => 3,
            HangupCause::BlindTransfer => 800,
            HangupCause::AttendedTransfer => 801,
        }
    }

    /// The cause for a final SIP failure status (RFC 3398 §8.2.6.1 table, as FreeSWITCH maps).
    pub fn from_sip_status(status: u16) -> HangupCause {
        match status {
            200..=299 => HangupCause::NormalClearing,
            404 | 485 | 604 => HangupCause::UnallocatedNumber,
            403 | 603 => HangupCause::CallRejected,
            408 => HangupCause::RecoveryOnTimerExpire,
            480 => HangupCause::NoUserResponse,
            486 | 600 => HangupCause::UserBusy,
            487 => HangupCause::OriginatorCancel,
            488 | 606 => HangupCause::IncompatibleDestination,
            500 | 503 => HangupCause::NormalTemporaryFailure,
            502 => HangupCause::DestinationOutOfOrder,
            504 => HangupCause::RecoveryOnTimerExpire,
            300..=399 => HangupCause::NormalUnspecified,
            _ => HangupCause::NormalTemporaryFailure,
        }
    }

    /// The `Reason` header value carrying this cause (RFC 3326), as in the seed's BYE.
    pub fn reason_header(self) -> String {
        format!("Q.850;cause={};text=\"{}\"", self.code(), self.name())
    }
}

/// Which side ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Caller,
    Callee,
    System,
}

/// One party of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Party {
    pub user: String,
    pub display_name: Option<String>,
}

/// One finished call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CdrRecord {
    /// Our id for the call (unique per daemon run).
    pub call_id: String,
    pub a_leg_call_id: String,
    /// The b-leg that answered, or the first one tried; `None` when no b-leg was created.
    pub b_leg_call_id: Option<String>,
    pub caller: Party,
    pub callee: Party,
    /// RFC 3339 UTC timestamps.
    pub start_time: String,
    pub answer_time: Option<String>,
    pub end_time: String,
    /// Seconds from INVITE to end.
    pub duration: u64,
    /// Seconds from the 200 OK to end (0 when not answered).
    pub billsec: u64,
    pub hangup_cause: &'static str,
    pub hangup_cause_code: u16,
    /// The final SIP status the caller got (200 for answered calls).
    pub sip_status: u16,
    pub hangup_side: Side,
    /// The transport of the caller's leg and of the callee's (the answered b-leg, else the
    /// first one tried): "UDP", "TCP" or "TLS". A call may cross from one to another.
    pub caller_transport: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callee_transport: Option<&'static str>,
    /// RTP/RTCP through the relay, per leg, when the call's media was anchored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<CdrMedia>,
    /// The call was transferred (REFER handled by the switch): the target the transferor
    /// named (its user part) and the transferor. In the transferor's own record (cause
    /// BLIND_TRANSFER / ATTENDED_TRANSFER, `call_id` with a `-t<n>` suffix) and in the record of
    /// the call that went on with its caller. Absent when there was no transfer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transferred_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transferred_by: Option<String>,
    /// `[server] node_id` of the node that handled the call; absent when none is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// What the media relay counted for a call (`[media] mode = "relay"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CdrMedia {
    pub caller: CdrLeg,
    pub callee: CdrLeg,
}

/// One leg's media: received from its phone (`rx`), sent to it (`tx`), and RTP packets of
/// its phone lost on the way (judged from sequence numbers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CdrLeg {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub lost: u64,
}

impl CdrRecord {
    /// The record as one JSON line (with the trailing newline).
    pub fn to_json_line(&self) -> String {
        // Serialising plain strings and integers cannot fail.
        let mut s = serde_json::to_string(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// Whole seconds between two wall-clock times (0 when `end` is before `start`).
pub fn seconds_between(start: SystemTime, end: SystemTime) -> u64 {
    end.duration_since(start).map_or(0, |d| d.as_secs())
}

pub use crate::clock::rfc3339;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_unix;
    use std::time::Duration;

    #[test]
    fn causes_and_reason_header() {
        assert_eq!(
            HangupCause::NormalClearing.reason_header(),
            "Q.850;cause=16;text=\"NORMAL_CLEARING\""
        );
        assert_eq!(HangupCause::from_sip_status(486), HangupCause::UserBusy);
        assert_eq!(HangupCause::from_sip_status(603), HangupCause::CallRejected);
        assert_eq!(HangupCause::from_sip_status(487).code(), 487);
        assert_eq!(HangupCause::NoAnswer.code(), 19);
    }

    #[test]
    fn causes_parse_from_name_or_code() {
        assert_eq!(HangupCause::parse("16"), Some(HangupCause::NormalClearing));
        assert_eq!(HangupCause::parse("user_busy"), Some(HangupCause::UserBusy));
        assert_eq!(
            HangupCause::parse("CALL_REJECTED"),
            Some(HangupCause::CallRejected)
        );
        assert_eq!(HangupCause::parse("99"), None);
        assert_eq!(HangupCause::parse("BUSY"), None);
        for (i, c) in HangupCause::ALL.into_iter().enumerate() {
            assert_eq!(c.index(), i);
            assert_eq!(HangupCause::parse(c.name()), Some(c));
        }
    }

    #[test]
    fn json_line_and_times() {
        let start = from_unix(1_272_371_457);
        let end = start + Duration::from_millis(65_500);
        assert_eq!(rfc3339(start), "2010-04-27T12:30:57.000Z");
        assert_eq!(seconds_between(start, end), 65);
        let rec = CdrRecord {
            call_id: "1".into(),
            a_leg_call_id: "a".into(),
            b_leg_call_id: Some("b".into()),
            caller: Party {
                user: "bob".into(),
                display_name: Some("Bob".into()),
            },
            callee: Party {
                user: "alice".into(),
                display_name: None,
            },
            start_time: rfc3339(start),
            answer_time: None,
            end_time: rfc3339(end),
            duration: 65,
            billsec: 0,
            hangup_cause: HangupCause::UserBusy.name(),
            hangup_cause_code: 17,
            sip_status: 486,
            hangup_side: Side::Callee,
            caller_transport: "UDP",
            callee_transport: Some("TLS"),
            media: None,
            transferred_to: None,
            transferred_by: None,
            node: None,
        };
        let line = rec.to_json_line();
        assert!(
            !line.contains("transferred"),
            "absent fields keep old records as they were"
        );
        assert!(line.ends_with("}\n") && !line[..line.len() - 1].contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["hangup_cause"], "USER_BUSY");
        assert_eq!(v["hangup_side"], "callee");
        assert_eq!(v["caller"]["display_name"], "Bob");
        assert_eq!(v["answer_time"], serde_json::Value::Null);
    }
}
