//! What a peer sent, made safe to put into a message of ours. A B2BUA writes its own
//! messages, so nothing peer-supplied may reach the wire unless it is valid where it goes:
//! header values lose their control octets (a bare CR would end the line for the next hop
//! and smuggle in a header of the peer's choosing), display names become proper
//! quoted-strings (RFC 3261 §25.1, `\"` and `\\` escaped), URI users are %-escaped.
//!
//! Never panics and never fails: the worst input gives an empty or shortened value.

use crate::sip::is_ctl;
use bytes::Bytes;

/// `v` without control octets, trimmed; `None` when nothing is left.
pub fn clean_value(v: &[u8]) -> Option<Bytes> {
    let cleaned: Vec<u8> = v.iter().copied().filter(|&b| !is_ctl(b)).collect();
    let s = cleaned.trim_ascii();
    (!s.is_empty()).then(|| Bytes::copy_from_slice(s))
}

/// `display` as a quoted-string: control characters dropped, `\` and `"` escaped.
pub fn quoted(display: &str) -> String {
    let mut out = String::with_capacity(display.len() + 2);
    out.push('"');
    for c in display.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A URI user part (RFC 3261 §25.1 `user`): unreserved and user-unreserved characters as
/// they are, existing `%HH` escapes kept, everything else %-escaped.
pub fn uri_user(user: &str) -> String {
    let b = user.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let escaped = c == b'%'
            && b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
        if c.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&c) || escaped {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_octets_never_survive() {
        let v = clean_value(b"hi\rP-Asserted-Identity: <sip:ceo@x>\x00\x7f").unwrap();
        assert_eq!(&v[..], b"hiP-Asserted-Identity: <sip:ceo@x>");
        assert_eq!(clean_value(b"\r\n"), None);
        assert_eq!(&clean_value(b"a\tb").unwrap()[..], b"a\tb");
    }

    #[test]
    fn rfc3261_25_1_quoted_string_escapes() {
        assert_eq!(quoted("The \"CEO\"\r\n\\"), "\"The \\\"CEO\\\"\\\\\"");
        assert_eq!(quoted("Zoë"), "\"Zoë\"");
    }

    #[test]
    fn rfc3261_25_1_user_escapes() {
        assert_eq!(uri_user("1000"), "1000");
        assert_eq!(uri_user("a b@c>\r"), "a%20b%40c%3E%0D");
        assert_eq!(uri_user("x%41y%zz"), "x%41y%25zz");
    }
}
