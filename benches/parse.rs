//! Parsing speed (issue 2, "Done when"): messages per second for parse + extraction of the
//! top Via, From, To, Call-ID and CSeq, on the seed's 846-octet REGISTER (trace/03) and on an
//! INVITE with SDP (trace/09 headers + a 594-octet SDP), next to rsip's bare
//! `SipMessage::try_from` on the same octets. Criterion reports elements/s = messages/s.
//!
//! Run: `cargo bench --bench parse -- --warm-up-time 1 --measurement-time 3`

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ferroswitch::sip::parse_datagram;

const REGISTER: &[u8] = include_bytes!("../tests/data/trace/03-alice-register-authorization.sip");
const INVITE_HEAD: &[u8] =
    include_bytes!("../tests/data/trace/09-bob-invite-proxy-authorization.headers");
const SDP: &[u8] = include_bytes!("../tests/data/sdp/xlite-offer-594.sdp");

fn bench_message(c: &mut Criterion, name: &str, raw: &[u8]) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));
    g.bench_function("ferroswitch parse + core fields", |b| {
        b.iter(|| {
            let m = parse_datagram(black_box(raw)).expect("bench input parses");
            black_box(m.core().expect("core fields"))
        })
    });
    g.bench_function("ferroswitch parse only", |b| {
        b.iter(|| parse_datagram(black_box(raw)).expect("bench input parses"))
    });
    g.bench_function("rsip SipMessage::try_from", |b| {
        b.iter(|| rsip::SipMessage::try_from(black_box(raw)).expect("rsip parses it"))
    });
    g.finish();
}

fn parse(c: &mut Criterion) {
    assert_eq!(REGISTER.len(), 846);
    let mut invite = INVITE_HEAD.to_vec();
    invite.extend_from_slice(SDP);
    assert_eq!(invite.len(), 1376);
    bench_message(c, "register_846", REGISTER);
    bench_message(c, "invite_sdp_1376", &invite);
}

criterion_group!(benches, parse);
criterion_main!(benches);
