//! R86: when two URIs name the same user, for group documents (entries, `cp:one`, `cp:except`,
//! list-service URIs) against the AOIA.
//!
//! The comparison, both sides normalised the same way:
//! - scheme: `sip` and `sips` name the same user (RFC 5630: a SIPS URI only asks for TLS on every
//!   hop; the AOR is the same), so both fold to `sip`; `tel` stays apart (see below);
//! - host: case-insensitive, port dropped;
//! - user: case-sensitive; `%XX` escapes of unreserved characters read as the character
//!   (RFC 3261 §19.1.4), other escapes compared with uppercase hex;
//! - URI parameters and headers: ignored, except `user=phone`. That one says the user part is a
//!   telephone number: the number is compared without visual separators and without its own
//!   `;params`, and it makes the URI eligible for the tel equivalence. It does not by itself make
//!   two URIs different: `sip:+15550100@example.net` and the same with `;user=phone` are one user
//!   (P-Asserted-Identity usually carries the parameter, documents often leave it out).
//! - tel: the number without visual separators and without parameters.
//!
//! `tel_sip_equivalence` adds one case: `tel:+N` equals `sip:+N@<any host>;user=phone`. Any host,
//! because a global E.164 number names one subscriber whatever domain the SIP form was written
//! with, and the home domain is not known to the pure core. Local numbers (no `+`) and sip URIs
//! without `user=phone` never equal a tel URI.
//!
//! A value that is not a well-formed sip/sips/tel URI (or name-addr holding one) equals nothing,
//! not even itself: fail closed.
use crate::core::uri;

/// An identity reduced to what R86 compares.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// `sip:user@host`, `sip:host` or `tel:number`, normalised as the module doc says.
    key: String,
    /// `+` and digits, for `tel:+N` and `sip:+N@host;user=phone`.
    global_number: Option<String>,
    /// The lowercase host of a sip/sips URI (R82 `cp:many domain`, `cp:except domain`).
    host: Option<String>,
}

impl Identity {
    /// A plain URI or a name-addr; None if it is not a well-formed sip, sips or tel URI.
    pub fn parse(value: &str) -> Option<Identity> {
        let parts = uri::identity_parts(value.as_bytes())?;
        if parts.scheme == "tel" {
            let number = without_separators(parts.host);
            return Some(Identity {
                key: format!("tel:{number}"),
                global_number: global(&number).then_some(number),
                host: None,
            });
        }
        let host = String::from_utf8(parts.host.to_ascii_lowercase()).ok()?;
        let (key, global_number) = match parts.user {
            Some(user) if parts.user_phone => {
                // A telephone-subscriber: its own `;isub=`, `;phone-context=` are parameters too.
                let end = user.iter().position(|&b| b == b';').unwrap_or(user.len());
                let number = without_separators(&unescaped(&user[..end]));
                let key = format!("sip:{number}@{host}");
                (key, global(&number).then_some(number))
            }
            Some(user) => {
                let user = String::from_utf8(unescaped(user)).ok()?;
                (format!("sip:{user}@{host}"), None)
            }
            None => (format!("sip:{host}"), None),
        };
        Some(Identity {
            key,
            global_number,
            host: Some(host),
        })
    }

    /// The normalised form; equal keys are the same user whatever `tel_sip_equivalence` says.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// `+` and digits of a global number (`tel:+N`, `sip:+N@host;user=phone`).
    pub fn global_number(&self) -> Option<&str> {
        self.global_number.as_deref()
    }

    /// The lowercase host of a sip/sips identity; a tel identity has none.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// R86: the same user.
    pub fn matches(&self, other: &Identity, tel_sip_equivalence: bool) -> bool {
        self.key == other.key
            || (tel_sip_equivalence
                && self.global_number.is_some()
                && self.global_number == other.global_number)
    }
}

/// R86 on raw values; false when either side is not a well-formed URI.
pub fn same_identity(a: &str, b: &str, tel_sip_equivalence: bool) -> bool {
    match (Identity::parse(a), Identity::parse(b)) {
        (Some(a), Some(b)) => a.matches(&b, tel_sip_equivalence),
        _ => false,
    }
}

/// The key a group is stored and looked up under (the equivalence does not apply to group URIs).
pub fn key(uri: &str) -> Option<String> {
    Identity::parse(uri).map(|i| i.key)
}

/// `+` followed by digits only.
fn global(number: &str) -> bool {
    number
        .strip_prefix('+')
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// RFC 3966 visual separators go; what is left of a valid number is ASCII.
fn without_separators(number: &[u8]) -> String {
    number
        .iter()
        .filter(|b| !matches!(b, b'-' | b'.' | b'(' | b')'))
        .map(|&b| char::from(b))
        .collect()
}

/// RFC 3261 §19.1.4: an escaped unreserved character equals the character; the other escapes
/// stay escaped, with uppercase hex so `%3a` and `%3A` compare equal.
fn unescaped(user: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(user.len());
    let mut i = 0;
    while i < user.len() {
        let escape = (user[i] == b'%')
            .then(|| user.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| Some((hex_value(hex[0])? << 4) | hex_value(hex[1])?));
        match escape {
            Some(b) if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) => out.push(b),
            Some(_) => out.extend(user[i..i + 3].iter().map(u8::to_ascii_uppercase)),
            None => {
                out.push(user[i]);
                i += 1;
                continue;
            }
        }
        i += 3;
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(s: &str) -> Option<String> {
        key(s)
    }

    #[test]
    fn r86_escapes_of_unreserved_characters_are_the_characters() {
        assert_eq!(key_of("sip:%61na@x").as_deref(), Some("sip:ana@x"));
        assert_eq!(key_of("sip:a%3ab@x").as_deref(), Some("sip:a%3Ab@x"));
        assert_eq!(key_of("sip:a%zz@x").as_deref(), Some("sip:a%zz@x"));
    }

    #[test]
    fn r86_user_phone_number_drops_separators_and_its_params() {
        assert_eq!(
            key_of("sip:+1-555-0100;isub=7@Example.net;user=phone").as_deref(),
            Some("sip:+15550100@example.net")
        );
        assert_eq!(key_of("sips:x.net").as_deref(), Some("sip:x.net"));
    }

    #[test]
    fn r86_local_numbers_are_not_global() {
        let tel = Identity::parse("tel:5550102;phone-context=example.net").unwrap();
        let sip = Identity::parse("sip:5550102@example.net;user=phone").unwrap();
        assert!(!tel.matches(&sip, true));
    }
}
