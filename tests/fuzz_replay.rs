//! The fuzz targets' checks (`fuzz/harness/`) replayed on the committed inputs, in plain
//! `cargo test` without cargo-fuzz: the minimised corpus of each target (`fuzz/corpus/TARGET/`)
//! and the crash reproducers (`fuzz/regressions/TARGET/`), where every input a fuzzer ever
//! crashed on is kept once it is fixed.
//!
//! So a change that breaks a round trip on any input the fuzzers found interesting, or brings
//! back a fixed crash, fails here first.

#[path = "../fuzz/harness/digest_header.rs"]
mod digest_header;
#[path = "../fuzz/harness/engine.rs"]
mod engine;
#[path = "../fuzz/harness/parse_message.rs"]
mod parse_message;
#[path = "../fuzz/harness/stream_framer.rs"]
mod stream_framer;

use std::path::Path;

/// Runs `check` on every file of the target's corpus and regressions; returns how many.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for f in files.iter().filter(|f| f.is_file()) {
            let data = std::fs::read(f).expect("read fuzz input");
            let r = std::panic::catch_unwind(|| check(&data));
            assert!(r.is_ok(), "{target}: {} fails its check", f.display());
            n += 1;
        }
    }
    n
}

#[test]
fn parse_message_corpus() {
    assert!(replay("parse_message", parse_message::check) > 100);
}

#[test]
fn stream_framer_corpus() {
    assert!(replay("stream_framer", stream_framer::check) > 100);
}

#[test]
fn digest_header_corpus() {
    assert!(replay("digest_header", digest_header::check) > 100);
}

#[test]
fn engine_corpus() {
    assert!(replay("engine", engine::check) > 100);
}
