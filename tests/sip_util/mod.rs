//! Shared helpers for the `sip_*` integration tests: test data loading and manifest reading.
#![allow(dead_code)]

use ferroswitch::sip::{parse_datagram, Message, Request, Response};
use std::path::PathBuf;

pub fn path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

pub fn data(rel: &str) -> Vec<u8> {
    std::fs::read(path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `(file, section, class)` rows of a `manifest.tsv`.
pub fn manifest(dir: &str) -> Vec<(String, String, String)> {
    let text = String::from_utf8(data(&format!("{dir}/manifest.tsv"))).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split('\t');
            let mut next = || f.next().unwrap().to_string();
            (next(), next(), next())
        })
        .collect()
}

pub fn parse(rel: &str) -> Message {
    parse_datagram(&data(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

pub fn request(rel: &str) -> Request {
    match parse(rel) {
        Message::Request(r) => r,
        Message::Response(_) => panic!("{rel} is a response"),
    }
}

pub fn response(rel: &str) -> Response {
    match parse(rel) {
        Message::Response(r) => r,
        Message::Request(_) => panic!("{rel} is a request"),
    }
}
