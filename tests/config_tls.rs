//! `[tls]` in the configuration: a tls: listener needs a certificate and key that parse and
//! match; `check-config` warns when the certificate expires within 14 days or does not name
//! the domain. Certificates come from a CA made in the test.

mod common;

use common::tls::TestCa;
use common::{write_config, TempDir, USERS_TOML};
use ferroswitch::config::{check, tls::TlsVersion, Config};
use std::time::Duration;

const YEAR: Duration = Duration::from_secs(365 * 86_400);

fn main_toml(domain: &str, tls: &str) -> String {
    format!(
        "[server]\n{domain}listen = [\"udp:127.0.0.1:0\", \"tls:127.0.0.1:0\"]\nusers = \"users\"\n\
         [security]\nallow_weak_passwords = true\n{tls}"
    )
}

const TLS: &str = "[tls]\ncertificate = \"cert.pem\"\nprivate_key = \"key.pem\"\n";

#[test]
fn a_matching_pair_loads_with_paths_relative_to_the_config() {
    let ca = TestCa::new("cfg-ok");
    let dir = TempDir::new("cfg-tls-ok");
    ca.issue("ok").write(dir.path(), "");
    let toml = main_toml("", &format!("{TLS}min_version = \"1.3\"\n"));
    let path = write_config(&dir, &toml, USERS_TOML);
    let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let t = c.tls.expect("[tls]");
    assert_eq!(t.certificate, dir.path().join("cert.pem"));
    assert_eq!(t.min_version, TlsVersion::V1_3);
    assert!(!t.verify_peers);
    let r = check(&path);
    assert!(
        r.is_ok() && r.warnings.iter().all(|w| w.key != "tls.certificate"),
        "{:?}",
        r.warnings
    );
}

#[test]
fn a_tls_listener_without_tls_settings_is_an_error() {
    let dir = TempDir::new("cfg-tls-missing");
    let path = write_config(&dir, &main_toml("", ""), USERS_TOML);
    let e = Config::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("tls: a tls: listener needs [tls] certificate and private_key"),
        "{e}"
    );
}

#[test]
fn a_key_that_is_not_the_certificates_is_an_error_naming_both_files() {
    let ca = TestCa::new("cfg-mismatch");
    let dir = TempDir::new("cfg-tls-mismatch");
    let (cert, _) = ca.issue("a").write(dir.path(), "");
    let b = ca.issue("b");
    std::fs::write(dir.path().join("key.pem"), &b.key_pem).unwrap();
    let path = write_config(&dir, &main_toml("", TLS), USERS_TOML);
    let e = Config::load(&path).unwrap_err().to_string();
    assert!(e.contains("ferroswitch.toml:8: tls.private_key:"), "{e}");
    assert!(e.contains("is not the key of the certificate in"), "{e}");
    assert!(e.contains(&cert.display().to_string()), "{e}");
}

#[test]
fn unreadable_or_empty_files_and_old_versions_are_errors() {
    let dir = TempDir::new("cfg-tls-bad");
    std::fs::write(dir.path().join("cert.pem"), "not pem\n").unwrap();
    let toml = main_toml("", &format!("{TLS}min_version = \"1.1\"\n"));
    let path = write_config(&dir, &toml, USERS_TOML);
    let e = Config::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("tls.min_version: \"1.1\" is not a TLS version"),
        "{e}"
    );
    assert!(
        e.contains("tls.certificate:") && e.contains("no PEM certificate"),
        "{e}"
    );
}

#[test]
fn check_config_warns_about_expiry_within_14_days_and_a_domain_not_covered() {
    let ca = TestCa::new("cfg-warn");
    let dir = TempDir::new("cfg-tls-warn");
    let soon = Duration::from_secs(5 * 86_400);
    ca.issue_for(&["sip.example.net"], "soon", soon)
        .write(dir.path(), "");
    let toml = main_toml("domain = \"pbx.example.org\"\n", TLS);
    let path = write_config(&dir, &toml, USERS_TOML);
    let r = check(&path);
    assert!(r.is_ok(), "{:?}", r.errors);
    let tls: Vec<String> = r
        .warnings
        .iter()
        .filter(|w| w.key == "tls.certificate")
        .map(|w| w.to_string())
        .collect();
    assert_eq!(tls.len(), 2, "{tls:#?}");
    assert!(
        tls[0].contains("expires on") && tls[0].contains(" days): renew it"),
        "{}",
        tls[0]
    );
    assert!(
        tls[1].contains("does not name the domain \"pbx.example.org\""),
        "{}",
        tls[1]
    );

    // Named, and a year to go: nothing to say.
    ca.issue_for(&["pbx.example.org"], "fine", YEAR)
        .write(dir.path(), "");
    let r = check(&path);
    assert!(
        r.warnings.iter().all(|w| w.key != "tls.certificate"),
        "{:?}",
        r.warnings
    );
}
