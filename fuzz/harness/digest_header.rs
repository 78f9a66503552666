//! Digest header parsers: `parse_credentials` (Authorization) and `parse_challenges`
//! (WWW-Authenticate) never panic, and whatever Digest value they accept renders back to text
//! that parses to the same value.

use ferroswitch::auth::{parse_challenges, parse_credentials, Challenge, Credentials};

/// The check the fuzzer runs on every input; panics on a violation.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Credentials::Digest(c)) = parse_credentials(text) {
        let rendered = c.to_string();
        match parse_credentials(&rendered) {
            Ok(Credentials::Digest(again)) => {
                assert_eq!(again, c, "credentials round trip: {rendered}")
            }
            other => panic!("rendered credentials do not parse: {rendered}: {other:?}"),
        }
    }
    if let Ok(challenges) = parse_challenges(text) {
        for c in challenges {
            let Challenge::Digest(c) = c else { continue };
            let rendered = c.to_string();
            match parse_challenges(&rendered).as_deref() {
                Ok([Challenge::Digest(again)]) => {
                    assert_eq!(*again, c, "challenge round trip: {rendered}")
                }
                other => panic!("rendered challenge does not parse: {rendered}: {other:?}"),
            }
        }
    }
}
