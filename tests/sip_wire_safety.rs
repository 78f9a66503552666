//! Every message of the corpora in `tests/data` (RFC 4475 and RFC 5118 torture messages, the
//! seed trace, the two TCP stream corpora) and of the parser's fuzz corpus, handed to the
//! whole engine as a datagram (streams also over TCP), plus hostile variants of each: every
//! datagram the engine sends in answer passes the fuzz harness's `check_wire` (issues 9.6,
//! 9.7): no control octet in its head other than the CRLF line ends, no reason phrase over
//! 64 octets, no stateless 400 more than 512 octets larger than the message it answers.

#[path = "../fuzz/harness/engine.rs"]
mod engine;
mod sip_util;

use std::path::Path;

/// The harness's input for one message from `peer` (0: UDP v4, 2: TCP), the clock still.
fn input(peer: u8, msg: &[u8]) -> Vec<u8> {
    [&[peer][..], msg].concat()
}

fn files(dir: &Path, ext: Option<&str>) -> Vec<Vec<u8>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && ext.is_none_or(|x| p.extension().is_some_and(|e| e == x)))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).expect("read corpus file"))
        .collect()
}

/// The same message made hostile the ways issues 9.6 and 9.7 saw: a bare CR + a forged To
/// after From, a NUL in Call-ID, ESC in CSeq, BS in Via, a 16 KB CSeq number, a long CSeq
/// method (a mismatch), a long Require tag.
fn variants(msg: &[u8]) -> Vec<Vec<u8>> {
    let splice = |name: &[u8], add: &[u8]| -> Option<Vec<u8>> {
        let at = msg
            .windows(name.len() + 2)
            .position(|w| w[0] == b'\n' && w[1..name.len() + 1].eq_ignore_ascii_case(name))?;
        let colon = at + 1 + name.len();
        let eol = colon
            + msg[colon..]
                .iter()
                .position(|&b| b == b'\r' || b == b'\n')?;
        Some([&msg[..eol], add, &msg[eol..]].concat())
    };
    let big = "1".repeat(16_000);
    [
        splice(b"From:", b"\rTo: <sip:victim@198.51.100.1>;tag=forged"),
        splice(b"Call-ID:", b"\0x"),
        splice(b"CSeq:", b"\x1b[2J"),
        splice(b"Via:", b";x=\x08"),
        splice(b"CSeq:", format!("\r\nCSeq: {big} OPTIONS").as_bytes()),
        splice(
            b"Max-Forwards:",
            format!("\r\nCSeq: 1 {}", "M".repeat(16_000)).as_bytes(),
        ),
        splice(
            b"Max-Forwards:",
            format!("\r\nRequire: {}", "t".repeat(16_000)).as_bytes(),
        ),
    ]
    .into_iter()
    .flatten()
    .filter(|m| m.len() <= 65_535)
    .collect()
}

fn run_all(msgs: &[Vec<u8>], peer: u8) -> usize {
    let mut n = 0;
    for m in msgs {
        engine::check(&input(peer, m));
        n += 1;
        for v in variants(m) {
            engine::check(&input(peer, &v));
            n += 1;
        }
    }
    n
}

#[test]
fn torture_and_trace_messages_get_safe_answers() {
    let mut msgs = Vec::new();
    for dir in ["rfc4475", "rfc5118", "trace"] {
        let ext = if dir == "trace" { "sip" } else { "dat" };
        msgs.extend(files(&sip_util::path(dir), Some(ext)));
    }
    assert!(msgs.len() > 60, "{} messages", msgs.len());
    let n = run_all(&msgs, 0);
    assert!(n > 300, "{n} inputs");
}

#[test]
fn stream_corpora_get_safe_answers_over_tcp_and_udp() {
    for file in [
        "generic-227-messages.txt",
        "lioneagle-sipparser-26-messages.txt",
    ] {
        let stream = sip_util::data(&format!("streams/{file}"));
        engine::check(&input(2, &stream));
        let mut framer = ferroswitch::sip::StreamFramer::default();
        framer.push(&stream);
        let mut msgs = Vec::new();
        while let Ok(Some(f)) = framer.pop() {
            if let ferroswitch::sip::Frame::Message(m) = f {
                msgs.push(m.to_vec());
            }
        }
        assert!(msgs.len() >= 26, "{file}: {}", msgs.len());
        run_all(&msgs, 0);
    }
}

#[test]
fn parser_fuzz_corpus_gets_safe_answers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut msgs = files(&root.join("corpus/parse_message"), None);
    msgs.extend(files(&root.join("regressions/parse_message"), None));
    assert!(msgs.len() > 100);
    for m in &msgs {
        engine::check(&input(0, m));
    }
}
