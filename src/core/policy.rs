//! The authorization port for group sessions (R8, R71): the notifier asks, the caller answers
//! from whatever holds the group documents (the module: `groups_dir`, R81-R88). Keeping the
//! question abstract keeps XDM parsing out of the notifier and out of shared memory.

/// The answer for one subscriber of one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupAuth {
    /// `<allow-conference-state>` is true for this identity (R84).
    Allow,
    /// False or absent (R85): 403, or `rejected` for a live subscription (R71).
    Deny,
    /// Documents are configured but this group's cannot be read (R87): 500, never 403.
    Unavailable,
}

pub trait GroupPolicy {
    /// `aoia` is the subscriber's identity as asserted; `anonymous` says whether its SUBSCRIBE
    /// requested privacy (R82 `anonymous-request`). None: no group documents are configured,
    /// so R6's participant rule stands in for R8 (docs/groups.md).
    fn authorize(&self, group_uri: &[u8], aoia: &[u8], anonymous: bool) -> Option<GroupAuth>;
}

/// No group documents: every group session is authorized like an ad-hoc one.
pub struct NoGroupPolicy;

impl GroupPolicy for NoGroupPolicy {
    fn authorize(&self, _: &[u8], _: &[u8], _: bool) -> Option<GroupAuth> {
        None
    }
}
