//! XDM group documents (RULES.md §9, R81-R88): parsing, identity comparison, the
//! `<allow-conference-state>` policy and the set of documents in force. Pure: bytes in, decisions
//! out; the module reads the files and feeds the notifier.
pub mod document;
pub mod identity;
pub mod policy;
pub mod set;

pub use document::{parse_document, DocError, ListService};
pub use policy::Decision;
pub use set::{diff_removed, GroupSet, Reload};
