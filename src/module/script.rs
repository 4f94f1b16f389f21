//! The script functions (native cfg and KEMI, declared in src/exports.rs): each takes the
//! message it runs for (Kamailio's id and pid of it) and its parameters.
use super::apply::FeedError;
use super::{extra, feed};

type Msg = (u32, i32);

pub fn session_open(_msg: Msg, args: &[&[u8]]) -> Result<(), FeedError> {
    feed::session_open(args)
}

pub fn session_close(_msg: Msg, args: &[&[u8]]) -> Result<(), FeedError> {
    feed::session_close(args)
}

/// Parameters 7-11 come from the `imconf_participant_extra` call before it on the same message.
pub fn participant(msg: Msg, args: &[&[u8]]) -> Result<(), FeedError> {
    extra::with_staged(msg, args, feed::participant)
}

pub fn participant_extra(msg: Msg, args: &[&[u8]]) -> Result<(), FeedError> {
    extra::stage(msg, args)
}

pub fn session_subject(_msg: Msg, args: &[&[u8]]) -> Result<(), FeedError> {
    feed::session_subject(args)
}

pub fn session_chairman(_msg: Msg, args: &[&[u8]]) -> Result<(), FeedError> {
    feed::session_chairman(args)
}

pub fn groups_reload(_msg: Msg, args: &[&[u8]]) -> Result<(), FeedError> {
    feed::groups_reload(args)
}
