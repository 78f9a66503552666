//! The layering, checked on the source text (issue 10): the sans-IO layers import no tokio and
//! nothing of the tokio shell (`crate::transport`, `crate::app`), and the engine does not know
//! the config file's types (`app::engine_config` maps them). A cheap guard, not a parser:
//! `//` comments are skipped, so the module docs may still talk about tokio; anything else
//! that names a forbidden path fails with the file and line.

use std::fs;
use std::path::{Path, PathBuf};

/// The layers that must stay sans-IO: everything the engine is built from, and the engine.
const SANS_IO: &[&str] = &[
    "src/engine",
    "src/b2bua",
    "src/dialog",
    "src/registrar",
    "src/auth",
    "src/gateway",
    "src/sip",
    "src/transaction",
    "src/net",
    "src/security",
    "src/cdr.rs",
    "src/clock.rs",
    // The media relay's rules (all of src/media; its sockets and threads are transport/rtp.rs).
    "src/media",
];

/// Path segments a sans-IO layer must not name. The registrations database
/// (`crate::persist`, rusqlite) is the shell's: the registrar only knows the store trait.
const FORBIDDEN: &[&str] = &["tokio", "transport::", "app::", "rusqlite", "persist::"];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<_> = fs::read_dir(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            rust_files(&p, out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// The line without its `//` comment (a `//` right after `:` is taken for a URL in a string).
fn code(line: &str) -> &str {
    let mut from = 0;
    while let Some(i) = line[from..].find("//") {
        let at = from + i;
        if at > 0 && line.as_bytes()[at - 1] == b':' {
            from = at + 2;
            continue;
        }
        return &line[..at];
    }
    line
}

/// Whether `word` occurs in `code` as a path segment of its own (not inside a longer name such
/// as `net::Transport` or `via.transport`).
fn names(code: &str, word: &str) -> bool {
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = code.as_bytes();
    code.match_indices(word).any(|(i, _)| {
        let before_ok = i == 0 || !(ident(bytes[i - 1]) || bytes[i - 1] == b'.');
        let end = i + word.len();
        let after_ok = word.ends_with("::") || end == bytes.len() || !ident(bytes[end]);
        before_ok && after_ok
    })
}

/// Every `file:line: text` of the sans-IO layers whose code names one of `words`.
fn offending(roots: &[&str], words: &[&str]) -> Vec<String> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for r in roots {
        let p = base.join(r);
        assert!(p.exists(), "{} is gone: update SANS_IO", p.display());
        rust_files(&p, &mut files);
    }
    let mut found = Vec::new();
    for f in files {
        let text = fs::read_to_string(&f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let c = code(line);
            if words.iter().any(|w| names(c, w)) {
                let rel = f.strip_prefix(base).unwrap_or(&f);
                found.push(format!("{}:{}: {}", rel.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn sans_io_layers_import_no_tokio_and_nothing_of_the_transport_or_app() {
    let found = offending(SANS_IO, FORBIDDEN);
    assert!(
        found.is_empty(),
        "sans-IO code names tokio, the tokio transport or the app shell \
         (use crate::net for the plain network types):\n{}",
        found.join("\n")
    );
}

#[test]
fn engine_does_not_know_the_config_file_types() {
    let found = offending(&["src/engine"], &["Config"]);
    assert!(
        found.is_empty(),
        "the engine names the config file's `Config` (map it in app::engine_config):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_guard_sees_what_it_should() {
    assert!(names("use tokio::sync::mpsc;", "tokio"));
    assert!(names("use crate::transport::{Inbound};", "transport::"));
    assert!(names("use crate::{app::engine_config, net};", "app::"));
    assert!(!names("use crate::net::{Peer, Transport};", "transport::"));
    assert!(!names("if via.transport == x {}", "transport"));
    assert!(!names("let tokio_like = 1;", "tokio"));
    assert!(!names("use crate::engine::EngineConfig;", "Config"));
    assert_eq!(code("let x = 1; // tokio does this"), "let x = 1; ");
    assert_eq!(code("\"http://example.org\""), "\"http://example.org\"");
}
