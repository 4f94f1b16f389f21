//! XDM group documents (R81-R88, docs/conformance.md): parsing, identity comparison, the
//! `<allow-conference-state>` policy and the set of documents in force. Pure: bytes in, decisions
//! out; the module reads the files and feeds the notifier.
pub mod document;
pub mod identity;
pub mod members;
pub mod policy;
pub mod set;

pub use document::{parse_document, DocError, ListService};
pub use policy::Decision;
pub use set::{diff_removed, GroupSet, Reload};
