//! cargo-fuzz entry point; the checks live in `harness/parse_message.rs`, which
//! `tests/fuzz_replay.rs` also runs on the committed corpus in `cargo test`.
#![no_main]

#[path = "../harness/parse_message.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::check(data));
