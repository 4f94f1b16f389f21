//! Why a SUBSCRIBE is refused, and the one place that maps each reason to a SIP response.

/// The SIP response the module sends to a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub reason: &'static str,
    /// Extra header lines, each ending in CRLF.
    pub headers: std::vec::Vec<u8>,
}

/// Every way a SUBSCRIBE can fail (R1-R14, docs/conformance.md), in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeError {
    /// R10: no Event header or another package.
    BadEvent,
    /// R14: a mandatory header could not be parsed.
    Malformed,
    /// R13: in-dialog request for no live subscription.
    NoSuchDialog,
    /// R13: CSeq not above the last one seen in the dialog.
    CSeqOutOfOrder,
    /// R1-R3: not a session (or group) hosted here.
    UnknownConference,
    /// R4: no +g.oma.sip-im in Accept-Contact.
    MissingImFeatureTag,
    /// R5: no asserted identity.
    NoAssertedIdentity,
    /// R6, R8: the subscriber may not see this session's state.
    NotAuthorized,
    /// R7: local policy limits.
    PolicyLimit,
    /// R87: the group's document cannot be read; 500, not a policy decision.
    PolicyUnavailable,
    /// R11.
    NotAcceptable,
    /// R12.
    IntervalTooBrief { min_expires: u32 },
    /// Shared memory is full (or another internal failure): 500, never an abort.
    Internal,
    /// A cluster node still waiting for its peers' sessions (docs/cluster.md): 503 with
    /// Retry-After, so the subscriber tries again in a moment (RFC 3261 §21.5.4).
    Starting,
}

impl SubscribeError {
    /// R9: no reason phrase or header says more than the code.
    pub fn reply(self) -> Reply {
        let (code, reason, headers): (u16, &'static str, std::vec::Vec<u8>) = match self {
            SubscribeError::BadEvent => {
                (489, "Bad Event", b"Allow-Events: conference\r\n".to_vec())
            }
            SubscribeError::Malformed => (400, "Bad Request", vec![]),
            SubscribeError::NoSuchDialog => (481, "Call/Transaction Does Not Exist", vec![]),
            SubscribeError::CSeqOutOfOrder => (500, "Server Internal Error", vec![]),
            SubscribeError::UnknownConference => (404, "Not Found", vec![]),
            SubscribeError::MissingImFeatureTag
            | SubscribeError::NoAssertedIdentity
            | SubscribeError::NotAuthorized
            | SubscribeError::PolicyLimit => (403, "Forbidden", vec![]),
            SubscribeError::NotAcceptable => (406, "Not Acceptable", vec![]),
            SubscribeError::IntervalTooBrief { min_expires } => (
                423,
                "Interval Too Brief",
                format!("Min-Expires: {min_expires}\r\n").into_bytes(),
            ),
            SubscribeError::Internal | SubscribeError::PolicyUnavailable => {
                (500, "Server Internal Error", vec![])
            }
            SubscribeError::Starting => {
                (503, "Service Unavailable", b"Retry-After: 1\r\n".to_vec())
            }
        };
        Reply {
            code,
            reason,
            headers,
        }
    }
}

impl From<super::bytes::OutOfMemory> for SubscribeError {
    fn from(_: super::bytes::OutOfMemory) -> Self {
        SubscribeError::Internal
    }
}
