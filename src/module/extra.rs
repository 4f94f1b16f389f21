//! `imconf_participant_extra()`: arguments 7-12 of `imconf_participant` for scripts, which can
//! pass at most six to one call (Kamailio 5.6's cfg parser, KEMI and `KSR.x.modf` alike). The
//! values wait, in this process, for the next `imconf_participant` of the same SIP message, which
//! uses them up whatever it returns. A worker runs one script at a time, so one slot suffices.
use super::apply::FeedError;
use crate::kwarn;
use parking_lot::Mutex;

/// privacy, nick, disconnection_method, disconnection_reason, contact, when
const EXTRA_ARGS: usize = 6;
/// The arguments a script passes directly; the staged ones follow them.
const DIRECT_ARGS: usize = 6;
/// Bound on what one message may leave behind.
const MAX_BYTES: usize = 4096;

struct Staged {
    msg: (u32, i32),
    values: Vec<Vec<u8>>,
}

static STAGED: Mutex<Option<Staged>> = Mutex::new(None);

fn refuse(why: String) -> FeedError {
    FeedError {
        session: None,
        arg: "arguments",
        why,
    }
}

/// Keeps `args` for the next `imconf_participant` of `msg` (replacing anything kept before).
/// They are checked by that call, which names a bad one as the RPC does.
pub fn stage(msg: (u32, i32), args: &[&[u8]]) -> Result<(), FeedError> {
    let mut staged = STAGED.lock();
    *staged = None;
    if args.len() > EXTRA_ARGS {
        return Err(refuse(format!(
            "at most {EXTRA_ARGS} expected, got {}",
            args.len()
        )));
    }
    if args.iter().map(|a| a.len()).sum::<usize>() > MAX_BYTES {
        return Err(refuse(format!("longer than {MAX_BYTES} bytes in all")));
    }
    *staged = Some(Staged {
        msg,
        values: args.iter().map(|a| a.to_vec()).collect(),
    });
    Ok(())
}

fn given(v: &[u8]) -> bool {
    !v.is_empty() && v != b"-"
}

/// Runs `participant` with `args` followed by the values staged for `msg`, if any.
pub fn with_staged<R>(
    msg: (u32, i32),
    args: &[&[u8]],
    participant: impl FnOnce(&[&[u8]]) -> R,
) -> R {
    let Some(staged) = STAGED.lock().take() else {
        return participant(args);
    };
    if staged.msg != msg {
        kwarn!(
            "imconf_participant: ignoring the imconf_participant_extra() values of another message"
        );
        return participant(args);
    }
    if args.len() > DIRECT_ARGS {
        kwarn!(
            "imconf_participant: {} arguments given, imconf_participant_extra() values ignored",
            args.len()
        );
        return participant(args);
    }
    // trailing values that are not given stay absent, as if the call had stopped before them
    let last = staged
        .values
        .iter()
        .rposition(|v| given(v))
        .map_or(0, |i| i + 1);
    let mut all: Vec<&[u8]> = args.to_vec();
    all.resize(DIRECT_ARGS, b"-");
    all.extend(staged.values[..last].iter().map(Vec::as_slice));
    participant(&all)
}
