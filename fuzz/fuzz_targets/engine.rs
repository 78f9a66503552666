//! cargo-fuzz entry point; the checks live in `harness/engine.rs`, which
//! `tests/fuzz_replay.rs` also runs on the committed corpus in `cargo test`.
#![no_main]

#[path = "../harness/engine.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::check(data));
