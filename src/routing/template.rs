//! The dialplan's templates: text with `$1`…`$9`, `${N}` and `${name}` replaced by the
//! captures of the rule's pattern, and `$$` for a literal dollar.
//!
//! A template is checked against its regex when it is parsed (a reference to a group the
//! pattern does not have is a config error), so expanding one never fails. Never escapes what
//! it substitutes: the caller decides what a target may contain.

use regex::{Captures, Regex};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// `$N` or `${N}`; 0 is the whole match.
    Group(usize),
    /// `${name}`.
    Named(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `text`, whose references must name groups of `regex`.
    pub(crate) fn parse(text: &str, regex: &Regex) -> Result<Template, String> {
        let groups = regex.captures_len() - 1;
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            literal.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let (piece, used) = match after.chars().next() {
                Some('$') => {
                    literal.push('$');
                    rest = &after[1..];
                    continue;
                }
                Some(d) if d.is_ascii_digit() => (Piece::Group(d as usize - '0' as usize), 1),
                Some('{') => {
                    let Some(end) = after.find('}') else {
                        return Err(format!("unclosed \"${{\" in {text:?}"));
                    };
                    let name = &after[1..end];
                    let piece = if name.is_empty() {
                        return Err(format!("empty \"${{}}\" in {text:?}"));
                    } else if name.bytes().all(|b| b.is_ascii_digit()) {
                        Piece::Group(name.parse().unwrap_or(usize::MAX))
                    } else if regex.capture_names().flatten().any(|n| n == name) {
                        Piece::Named(name.to_string())
                    } else {
                        return Err(format!(
                            "{text:?} refers to ${{{name}}} but the pattern has no group named {name:?}"
                        ));
                    };
                    (piece, end + 1)
                }
                _ => {
                    return Err(format!(
                        "{text:?}: \"$\" must be followed by a group number (1-9), {{name}} or \
                         another \"$\" (\"$$\" is a literal dollar)"
                    ))
                }
            };
            if let Piece::Group(n) = piece {
                if n > groups {
                    return Err(format!(
                        "{text:?} refers to group {n} but the pattern has {groups} \
                         capture group{}",
                        if groups == 1 { "" } else { "s" }
                    ));
                }
            }
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(piece);
            rest = &after[used..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Template { pieces })
    }

    /// The text when the template refers to no capture (what validation can check).
    pub(crate) fn literal(&self) -> Option<String> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Group(_) | Piece::Named(_) => return None,
            }
        }
        Some(out)
    }

    /// The literal text before the first reference.
    pub(crate) fn prefix(&self) -> &str {
        match self.pieces.first() {
            Some(Piece::Text(t)) => t,
            _ => "",
        }
    }

    /// The text with the captures of one match substituted; a group that did not take part in
    /// the match is empty.
    pub(crate) fn expand(&self, caps: &Captures<'_>) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Group(n) => out.push_str(caps.get(*n).map_or("", |m| m.as_str())),
                Piece::Named(n) => out.push_str(caps.name(n).map_or("", |m| m.as_str())),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(pattern: &str, template: &str, input: &str) -> Result<String, String> {
        let re = Regex::new(pattern).unwrap();
        let t = Template::parse(template, &re)?;
        let caps = re.captures(input).expect("the pattern matches");
        Ok(t.expand(&caps))
    }

    #[test]
    fn numbered_named_whole_and_dollar() {
        assert_eq!(
            expand(r"^9(\d+)$", "+1$1", "95551234").unwrap(),
            "+15551234"
        );
        assert_eq!(
            expand(r"^(?P<area>\d{3})(\d+)$", "${area}-$2", "5551234").unwrap(),
            "555-1234"
        );
        assert_eq!(expand(r"^\d+$", "<$0>", "42").unwrap(), "<42>");
        assert_eq!(expand(r"^(\d)$", "$$$1$$", "7").unwrap(), "$7$");
        assert_eq!(expand(r"^(\d)(\d)$", "${2}${1}0", "12").unwrap(), "210");
        // A group that did not take part is empty.
        assert_eq!(expand(r"^(a)?(\d+)$", "[$1]$2", "5").unwrap(), "[]5");
    }

    #[test]
    fn bad_references_are_refused_with_a_reason() {
        let bad = |p: &str, t: &str| expand(p, t, "1").unwrap_err();
        assert!(
            bad(r"^(\d)$", "$2").contains("group 2"),
            "{}",
            bad(r"^(\d)$", "$2")
        );
        assert!(bad(r"^\d$", "$1").contains("0 capture groups"));
        assert!(bad(r"^(\d)$", "${10}").contains("group 10"));
        assert!(bad(r"^(\d)$", "${x}").contains("no group named \"x\""));
        assert!(bad(r"^(\d)$", "${1").contains("unclosed"));
        assert!(bad(r"^(\d)$", "${}").contains("empty"));
        assert!(bad(r"^(\d)$", "US$").contains("literal dollar"));
        assert!(bad(r"^(\d)$", "$x").contains("literal dollar"));
    }

    #[test]
    fn literal_and_prefix() {
        let re = Regex::new(r"^(\d+)$").unwrap();
        let t = Template::parse("1000", &re).unwrap();
        assert_eq!(t.literal().as_deref(), Some("1000"));
        let t = Template::parse("a$$b", &re).unwrap();
        assert_eq!(t.literal().as_deref(), Some("a$b"));
        let t = Template::parse("sip:$1@example.com", &re).unwrap();
        assert_eq!((t.literal(), t.prefix()), (None, "sip:"));
        assert_eq!(Template::parse("$1", &re).unwrap().prefix(), "");
    }
}
