//! What a log line may contain. Values from the network (URIs, Call-IDs, a peer's operations)
//! end up in log messages; a CR or LF inside one would start a forged line of its own in
//! Kamailio's log (found by the cluster corpus). Every control character is written escaped.
use std::borrow::Cow;
use std::fmt::Write;

/// `msg` as one line: control characters (and DEL) escaped as `\n`, `\r`, `\t` or `\xNN`;
/// borrowed unchanged when there is none (the common case costs one scan).
pub fn one_line(msg: &str) -> Cow<'_, str> {
    if !msg.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Cow::Borrowed(msg);
    }
    let mut out = String::with_capacity(msg.len() + 8);
    for c in msg.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_cannot_start_a_line_of_its_own() {
        let forged = "not a URI: sip:a@b;x=\nFAKE-LOG-LINE\r\x1b[31m\x7f";
        let line = one_line(forged);
        assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
        assert_eq!(
            line,
            "not a URI: sip:a@b;x=\\nFAKE-LOG-LINE\\r\\x1b[31m\\x7f"
        );
        assert!(matches!(one_line("plain é ✓"), Cow::Borrowed(_)));
    }
}
