//! Configuration problems and warnings, each naming the file, the line when known, the key,
//! and what is wrong: `conf/ferroswitch.toml:7: registrar.min_expires: must be at least 1`.
//!
//! Only describes problems; never decides whether the daemon starts (the caller does).

use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// One thing wrong with the configuration.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", .file.display())]
    Read { file: PathBuf, source: io::Error },
    /// TOML syntax, a wrong type, or an unknown key (strict: `deny_unknown_fields`).
    #[error("{}: {table}{message}", at(.file, *.line))]
    Syntax {
        file: PathBuf,
        line: Option<usize>,
        /// `"[registrar]: "` when the error is inside a table, else empty.
        table: String,
        message: String,
    },
    /// A value that parsed but is not acceptable.
    #[error("{}: {key}: {message}", at(.file, *.line))]
    Invalid {
        file: PathBuf,
        line: Option<usize>,
        key: String,
        message: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(
        file: &Path,
        text: &str,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            file: file.to_path_buf(),
            line: span.map(|s| line_of(text, s.start)),
            key: key.into(),
            message: message.into(),
        }
    }

    /// Wraps a `toml` error, adding the line and the table it happened in.
    pub(crate) fn syntax(file: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
        let line = e.span().map(|s| line_of(text, s.start));
        let table = line
            .and_then(|l| table_before(text, l))
            .map(|t| format!("{t}: "))
            .unwrap_or_default();
        ConfigError::Syntax {
            file: file.to_path_buf(),
            line,
            table,
            message: e.message().trim().to_string(),
        }
    }

    /// The file this problem is in.
    pub fn file(&self) -> &Path {
        match self {
            ConfigError::Read { file, .. }
            | ConfigError::Syntax { file, .. }
            | ConfigError::Invalid { file, .. } => file,
        }
    }
}

/// All problems found, in file order. `Display` prints one per line.
#[derive(Debug, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> ConfigErrors {
        ConfigErrors(vec![e])
    }
}

/// Something that works but that an operator should fix (a weak password, say). Printed at
/// start-up and by `check-config`; never stops the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            at(&self.file, self.line),
            self.key,
            self.message
        )
    }
}

fn at(file: &Path, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{}:{l}", file.display()),
        None => file.display().to_string(),
    }
}

/// 1-based line number of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The last `[table]` or `[[array]]` header at or before `line` (1-based). None when `line`
/// is itself a header: an error there is about the table's own name, a key of the root.
fn table_before(text: &str, line: usize) -> Option<String> {
    let header = |l: &str| {
        let l = l.trim();
        let end = l.find(']')?;
        l.starts_with('[').then(|| {
            let close = if l.starts_with("[[") {
                end + 2
            } else {
                end + 1
            };
            l[..close.min(l.len())].to_string()
        })
    };
    let lines: Vec<&str> = text.lines().take(line).collect();
    if lines.len() == line && lines.last().is_some_and(|l| header(l).is_some()) {
        return None;
    }
    lines.iter().rev().find_map(|l| header(l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_tables() {
        let text = "a = 1\n[server]\nx = 2\n[[user]]\nid = \"1\"\n";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, text.find('x').unwrap()), 3);
        assert_eq!(table_before(text, 1), None);
        assert_eq!(table_before(text, 3).as_deref(), Some("[server]"));
        assert_eq!(table_before(text, 5).as_deref(), Some("[[user]]"));
        assert_eq!(table_before(text, 4), None);
    }

    #[test]
    fn display_names_file_line_and_key() {
        let e = ConfigError::invalid(
            Path::new("conf/f.toml"),
            "\n\nlisten = 1",
            Some(2..8),
            "server.listen",
            "bad",
        );
        assert_eq!(e.to_string(), "conf/f.toml:3: server.listen: bad");
    }
}
