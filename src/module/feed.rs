//! Session state fed by the script or over RPC (docs/interface.md): the same arguments, the same
//! checks, the same effects. A bad argument is an error naming it; nothing changes then. Each
//! change is applied here (apply.rs), then sent to the cluster's peers (enable_dmq).
use super::apply::{
    apply_chairman, apply_close, apply_participant, apply_subject, check_arity, err, open, uri_arg,
    Applied, FeedError,
};
use super::cluster;
use super::groups;
use crate::core::cluster::Op;

/// `session_open(session_uri, kind[, group_uri])` fed on this node: applied, then sent to
/// the cluster's peers (enable_dmq).
pub fn session_open(args: &[&[u8]]) -> Result<(), FeedError> {
    open(args)?;
    let stamp = cluster::stamp();
    cluster::replicate(Op::Open {
        stamp,
        args: cluster::owned(args),
    });
    Ok(())
}

/// `session_close(session_uri)`: R67, on this node and its peers.
pub fn session_close(args: &[&[u8]]) -> Result<(), FeedError> {
    check_arity(args, 1)?;
    let session_uri = uri_arg(args, 0, "session_uri")?;
    let applied = apply_close(session_uri)?;
    // the peers first: their subscribers need not wait for this node's own NOTIFYs
    cluster::replicate(Op::Close {
        stamp: cluster::stamp(),
        session_uri: session_uri.to_vec(),
    });
    applied.send();
    Ok(())
}

/// `participant(session_uri, aoia, status[, role[, listed_uri[, from_uri[, privacy[, nick
/// [, disconnection_method[, disconnection_reason[, contact]]]]]]]])` fed on this node:
/// applied, then sent to the peers with its stamp.
pub fn participant(args: &[&[u8]]) -> Result<(), FeedError> {
    stamped(args, apply_participant, |stamp, args| Op::Participant {
        stamp,
        args,
    })
}

/// R95 `session_subject(session_uri, subject[, by])` fed on this node: applied, then sent to
/// the peers with its stamp.
pub fn session_subject(args: &[&[u8]]) -> Result<(), FeedError> {
    stamped(args, apply_subject, |stamp, args| Op::Subject {
        stamp,
        args,
    })
}

/// R95 `session_chairman(session_uri, aoia)` fed on this node: applied, then sent to the peers.
pub fn session_chairman(args: &[&[u8]]) -> Result<(), FeedError> {
    stamped(args, apply_chairman, |stamp, args| Op::Chairman {
        stamp,
        args,
    })
}

/// A stamped change fed on this node: applied with a new stamp, sent to the peers, then its
/// NOTIFYs sent (the peers first: their subscribers need not wait for this node's own).
fn stamped(
    args: &[&[u8]],
    apply: fn(&[&[u8]], u64) -> Result<Applied, FeedError>,
    op: fn(u64, Vec<Vec<u8>>) -> Op,
) -> Result<(), FeedError> {
    let stamp = cluster::stamp();
    let applied = apply(args, stamp)?;
    cluster::replicate(op(stamp, cluster::owned(args)));
    applied.send();
    Ok(())
}

/// `groups_reload()`: rereads `groups_dir` (R71, R67, R88). A document that fails is named
/// in the error; every other change is applied all the same.
pub fn groups_reload(args: &[&[u8]]) -> Result<(), FeedError> {
    check_arity(args, 0)?;
    groups::reload().map_err(|e| err("groups_dir", e.0))
}
