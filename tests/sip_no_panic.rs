//! Peer input never panics the `sip` layer: every corpus message, cut at every length and
//! with octets overwritten at seeded-random places, goes through parsing, framing, every typed
//! accessor, validation and the rsip bridge without a panic.

mod sip_util;

#[cfg(feature = "rsip")]
use ferroswitch::sip::to_rsip;
use ferroswitch::sip::{
    parse_datagram, validate_register, validate_request, validate_response, Message, Policy,
    StreamFramer,
};

fn corpus() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for dir in ["rfc4475", "rfc5118"] {
        for (file, _, _) in sip_util::manifest(dir) {
            out.push(sip_util::data(&format!("{dir}/{file}")));
        }
    }
    for f in std::fs::read_dir(sip_util::path("trace")).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "sip" || e == "headers") {
            out.push(std::fs::read(p).unwrap());
        }
    }
    out
}

/// Everything a layer might ask of a message.
fn exercise(raw: &[u8]) {
    let mut framer = StreamFramer::new(4096);
    framer.push(raw);
    while let Ok(Some(_)) = framer.pop() {}
    let Ok(m) = parse_datagram(raw) else { return };
    let h = m.headers();
    let _ = h.core();
    let _ = (
        h.from(),
        h.to(),
        h.contacts(),
        h.routes(),
        h.record_routes(),
    );
    let _ = (
        h.remote_party_ids(),
        h.p_asserted_identities(),
        h.try_vias(),
        h.vias(),
    );
    let _ = (
        h.max_forwards(),
        h.expires(),
        h.content_type(),
        h.reasons(),
        h.accepts("a/b"),
    );
    let _ = (h.from_tag(), h.to_tag(), h.cseq(), h.top_via());
    if let Ok(c) = h.contacts() {
        for a in c.iter().filter_map(|c| c.address()) {
            let _ = (
                a.expires(),
                a.q(),
                a.instance(),
                a.display_name(),
                a.to_bytes(),
            );
            let _ = (
                a.uri.decoded_user(),
                a.uri.host_ip(),
                a.uri.with_param("lr", None),
            );
            let _ = a.uri.equivalent(&a.uri);
        }
    }
    #[cfg(feature = "rsip")]
    let _ = to_rsip(&m);
    let _ = m.to_bytes();
    match &m {
        Message::Request(r) => {
            let _ = r.request_uri();
            let _ = validate_request(
                r,
                &Policy {
                    proxy: true,
                    ..Policy::default()
                },
            );
            let _ = validate_register(r);
            if let Err(e) = validate_request(r, &Policy::default()) {
                let _ = e.response_to(r, &Policy::default(), Some("t"));
            }
        }
        Message::Response(r) => {
            let _ = validate_response(r);
        }
    }
}

#[test]
fn truncations() {
    for raw in corpus() {
        for n in 0..=raw.len() {
            exercise(&raw[..n]);
        }
    }
}

#[test]
fn seeded_mutations() {
    const NASTY: &[u8] = b"\0\r\n \t\"\\<>;,:=?@[]%\x7f\xff\xc3";
    let mut seed: u64 = 0x5eed_0ff3_4475;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    for raw in corpus() {
        for _ in 0..400 {
            let mut m = raw.clone();
            for _ in 0..1 + next() % 3 {
                let at = next() % m.len();
                m[at] = NASTY[next() % NASTY.len()];
            }
            exercise(&m);
        }
    }
}
