//! The RFC 4575 conference-info body (R44-R56): a writer for the NOTIFY hot path and a strict reader
//! (quick-xml) that tests use to check what the writer and the notifier produce.
//!
//! The writer appends straight into the caller's buffer with its own escaping: that needs no
//! allocation per element, and it also handles what a generic escaper does not (bytes that are not
//! UTF-8, and characters XML 1.0 forbids even as references).
//!
//! `write.rs` is the writer, `read.rs` the strict reader, `tests.rs` their tests; this file
//! holds the types both share.

mod read;
#[cfg(test)]
mod tests;
mod write;

pub use read::{parse, ParsedDocument, ParsedUser};
pub use write::{personalize, write, Marks};

/// R44: the namespace of every element of the document.
pub const NAMESPACE: &str = "urn:ietf:params:xml:ns:conference-info";

/// R46: whether a document replaces the subscriber's view (`full`) or updates it (`partial`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocState {
    Full,
    Partial,
}

impl DocState {
    pub fn as_str(self) -> &'static str {
        match self {
            DocState::Full => "full",
            DocState::Partial => "partial",
        }
    }
}

/// R51: the endpoint statuses OMA IM defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointStatus {
    Connected,
    Disconnected,
    Alerting,
    /// R59: invited, no 180 yet; listed only with `report_dialing_out`.
    DialingOut,
}

impl EndpointStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointStatus::Connected => "connected",
            EndpointStatus::Disconnected => "disconnected",
            EndpointStatus::Alerting => "alerting",
            EndpointStatus::DialingOut => "dialing-out",
        }
    }
}

/// RFC 4575 `disconnection-type`: how an endpoint left (R52, R91).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectionMethod {
    /// It left on its own (BYE).
    Departed,
    /// It was removed from the session.
    Booted,
    /// An error, or a declined invitation (the SIP code goes into `disconnection-info/reason`).
    Failed,
    /// The invitee was busy.
    Busy,
}

impl DisconnectionMethod {
    pub fn parse(s: &[u8]) -> Option<Self> {
        Some(match s {
            b"departed" => DisconnectionMethod::Departed,
            b"booted" => DisconnectionMethod::Booted,
            b"failed" => DisconnectionMethod::Failed,
            b"busy" => DisconnectionMethod::Busy,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectionMethod::Departed => "departed",
            DisconnectionMethod::Booted => "booted",
            DisconnectionMethod::Failed => "failed",
            DisconnectionMethod::Busy => "busy",
        }
    }
}

/// One `user` element (R48-R51).
#[derive(Debug, Clone, Copy)]
pub struct UserEntry<'a> {
    /// R58: `<user entity=".." state="deleted"/>` (only `entity` is written).
    pub deleted: bool,
    /// R95: `state="deleted"` with its endpoint (a removal by the chairman, as RCS clients read it).
    pub removed: bool,
    /// R95: `yourown="true"`: the subscriber's own entry (RCS).
    pub yourown: bool,
    /// R95: `<roles><entry>chairman</entry></roles>` (RCS).
    pub chairman: bool,
    pub entity: &'a [u8],
    /// R50: the user entity by default, the participant's Contact with `endpoint_entity=contact`.
    pub endpoint_entity: &'a [u8],
    pub display_text: Option<&'a [u8]>,
    pub status: EndpointStatus,
    /// R52, R91: `<disconnection-method>` (written after `<status>`, R53).
    pub disconnection_method: Option<DisconnectionMethod>,
    /// R91: `<disconnection-info><reason>` text such as `603 Decline` (after the method, R53).
    pub disconnection_reason: Option<&'a [u8]>,
    /// R95: `joining-info/when` and `disconnection-info/when`, wall-clock ms (RFC 3339 UTC).
    pub joined_at: Option<u64>,
    pub left_at: Option<u64>,
}

/// `conference-description` (R52, R91, R93): written whole in every document that has one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Description<'a> {
    /// R95 `<subject>`, when the session has one.
    pub subject: Option<&'a [u8]>,
    /// `<maximum-user-count>`, when the session has one.
    pub maximum_user_count: Option<u32>,
}

impl Description<'_> {
    pub fn is_empty(&self) -> bool {
        self.subject.is_none() && self.maximum_user_count.is_none()
    }
}

/// A whole conference-info document (R44-R47).
#[derive(Debug, Clone, Copy)]
pub struct Document<'a> {
    pub entity: &'a [u8],
    pub state: DocState,
    pub version: u32,
    /// R52, R91, R93: `<conference-description>`; None: none (an empty one is written
    /// `<conference-description/>`).
    pub description: Option<Description<'a>>,
    /// R52, R91: `<conference-state><user-count>`; None: no conference-state.
    pub user_count: Option<u32>,
    pub users: &'a [UserEntry<'a>],
}
