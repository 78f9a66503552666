//! [`log_escape`]: the one way peer-supplied text (user names, URIs, Contacts, User-Agents,
//! Call-IDs, reason phrases, errors that quote their input) goes into a log line.
//!
//! A peer must never be able to start a line of its own (a forged `SECURITY ban` that the
//! fail2ban filter would act on), hide text from the operator's terminal (ESC sequences,
//! bidi overrides, zero-width characters) or blow one line up to the size of its message.
//! So control characters and invisible format characters are written as `\n`, `\r`, `\t`,
//! `\u{1b}`, `\u{202e}`; a backslash doubles; a value with a space, `=` or `"` is quoted (so
//! it cannot add a `key=value` field to the line); and the output stops at
//! [`LOG_VALUE_MAX`] characters, then `…`.
//!
//! Formatting only: never allocates more than one capped value, never fails on any input.

use std::fmt::{self, Write};

/// Characters of escaped output kept per value before it is cut with `…`.
pub const LOG_VALUE_MAX: usize = 64;

/// `value`, escaped and length-capped when displayed (see the module docs). Takes anything
/// `Display`, so errors and keys that embed request text can be wrapped too:
/// `tracing::warn!(user = %log_escape(&name), error = %log_escape(&e), "...")`.
pub fn log_escape<T: fmt::Display>(value: T) -> LogEscaped<T> {
    LogEscaped(value)
}

/// [`log_escape`] of a value's `Debug` form (an enum that carries request text).
pub fn log_escape_debug<T: fmt::Debug>(value: T) -> LogEscaped<AsDisplay<T>> {
    LogEscaped(AsDisplay(value))
}

/// A `Debug` value shown through `Display`, for [`log_escape_debug`].
#[derive(Debug, Clone, Copy)]
pub struct AsDisplay<T>(T);

impl<T: fmt::Debug> fmt::Display for AsDisplay<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// See [`log_escape`].
#[derive(Debug, Clone, Copy)]
pub struct LogEscaped<T>(T);

impl<T: fmt::Display> fmt::Display for LogEscaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = Capped {
            out: String::new(),
            chars: 0,
            cut: false,
            quote: false,
        };
        // `Capped` reports "full" as an error to stop the inner formatting early; that is not
        // a failure of ours.
        let _ = write!(w, "{}", self.0);
        let q = if w.quote || w.out.is_empty() {
            "\""
        } else {
            ""
        };
        let more = if w.cut { "…" } else { "" };
        write!(f, "{q}{}{q}{more}", w.out)
    }
}

/// Collects escaped output up to [`LOG_VALUE_MAX`] characters.
struct Capped {
    out: String,
    chars: usize,
    cut: bool,
    /// Something in the value calls for quotes (a space, `=` or `"`).
    quote: bool,
}

impl Write for Capped {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut piece = String::new();
        for c in s.chars() {
            piece.clear();
            push_escaped(c, &mut piece);
            let n = piece.chars().count();
            if self.chars + n > LOG_VALUE_MAX {
                self.cut = true;
                return Err(fmt::Error);
            }
            self.quote |= matches!(c, ' ' | '=' | '"');
            self.out.push_str(&piece);
            self.chars += n;
        }
        Ok(())
    }
}

/// `c` as it appears in a log line.
fn push_escaped(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\\' => out.push_str("\\\\"),
        '"' => out.push_str("\\\""),
        c if c.is_control() || is_invisible_format(c) => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// Format characters that change how a line reads without showing themselves: bidi
/// embeddings, overrides and isolates, zero-width and invisible characters, line and
/// paragraph separators, the byte-order mark, interlinear annotation.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{34f}'
            | '\u{61c}'
            | '\u{115f}'..='\u{1160}'
            | '\u{17b4}'..='\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{fff0}'..='\u{fffb}'
            | '\u{e0000}'..='\u{e0fff}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        log_escape(s).to_string()
    }

    #[test]
    fn ordinary_values_pass_unchanged() {
        assert_eq!(esc("alice"), "alice");
        assert_eq!(
            esc("sip:1000@192.0.2.1:5060;transport=tcp"),
            "\"sip:1000@192.0.2.1:5060;transport=tcp\""
        );
        assert_eq!(esc("1000@example.org"), "1000@example.org");
        assert_eq!(esc("Jäsøn"), "Jäsøn");
        assert_eq!(esc("Zoiper rev.5415"), "\"Zoiper rev.5415\"");
        assert_eq!(esc(""), "\"\"");
    }

    #[test]
    fn a_peer_cannot_start_a_line_or_add_a_field() {
        let forged = "x\n2026-12-06T23:00:00.000000Z  WARN ferroswitch::security: SECURITY ban src=198.51.100.7 failures=10 users=a for=600s";
        let out = esc(forged);
        assert!(!out.contains('\n'), "{out}");
        assert!(
            out.starts_with("\"x\\n2026-12-06T23:00:00.000000Z  WARN"),
            "{out}"
        );
        assert!(out.ends_with('…'), "{out}");
        assert_eq!(esc("a\rb"), "a\\rb");
        assert_eq!(esc("a b=c"), "\"a b=c\"");
        assert_eq!(esc("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
    }

    #[test]
    fn control_and_invisible_characters_are_shown_as_escapes() {
        assert_eq!(esc("\u{1b}[2J"), "\\u{1b}[2J");
        assert_eq!(esc("a\u{b}b\u{7f}\u{85}"), "a\\u{b}b\\u{7f}\\u{85}");
        assert_eq!(esc("admin\u{202e}nimda"), "admin\\u{202e}nimda");
        assert_eq!(
            esc("\u{2066}x\u{2069}\u{200b}\u{feff}"),
            "\\u{2066}x\\u{2069}\\u{200b}\\u{feff}"
        );
        assert_eq!(esc("\0"), "\\u{0}");
    }

    #[test]
    fn long_values_are_cut_at_the_cap() {
        let out = esc(&"a".repeat(60_000));
        assert_eq!(out, format!("{}…", "a".repeat(LOG_VALUE_MAX)));
        // Escapes count at their printed width; an escape never is cut in half.
        let out = esc(&"\u{1b}".repeat(100));
        assert!(out.ends_with("\\u{1b}…"), "{out}");
        assert!(out.chars().count() <= LOG_VALUE_MAX + 1, "{out}");
        assert_eq!(esc(&"a".repeat(LOG_VALUE_MAX)), "a".repeat(LOG_VALUE_MAX));
    }

    #[test]
    fn wraps_any_display_value() {
        let e = std::io::Error::other("bad header \"X\r\n\"");
        assert_eq!(log_escape(&e).to_string(), "\"bad header \\\"X\\r\\n\\\"\"");
        assert_eq!(log_escape(42).to_string(), "42");
        let dbg = log_escape_debug(Some("a\u{1b}b")).to_string();
        assert_eq!(dbg, "\"Some(\\\"a\\\\u{1b}b\\\")\"");
    }
}
