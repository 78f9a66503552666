use super::*;

fn headers(lines: &[(&str, &str)]) -> Headers {
    let mut h = Headers::new();
    for (n, v) in lines {
        h.push(HeaderName::from_wire(n), v.to_string());
    }
    h
}

fn uas(
    lines: &[(&str, &str)],
    config: SessionTimerConfig,
) -> Result<SessionTimer, SessionTimerError> {
    SessionTimer::negotiate_uas(&headers(lines), &config)
}

#[test]
fn parses_the_seed_header_and_round_trips() {
    let se = SessionExpires::parse("120;refresher=uas").unwrap();
    assert_eq!(
        se,
        SessionExpires {
            delta_secs: 120,
            refresher: Some(Refresher::Uas)
        }
    );
    assert_eq!(se.to_string(), "120;refresher=uas");
    assert_eq!(SessionExpires::parse(" 1800 ").unwrap().refresher, None);
    assert_eq!(
        SessionExpires::parse("90 ; REFRESHER = UAC ; x=y")
            .unwrap()
            .refresher,
        Some(Refresher::Uac)
    );
    for bad in ["", "abc", "-5", "120;refresher=proxy", "1.5"] {
        assert_eq!(SessionExpires::parse(bad), None, "{bad}");
    }
    // The compact form `x` is the same header.
    let h = headers(&[("x", "300;refresher=uac"), ("Min-SE", "120")]);
    assert_eq!(
        SessionExpires::from_headers(&h)
            .unwrap()
            .unwrap()
            .delta_secs,
        300
    );
    assert_eq!(min_se(&h), Ok(Some(120)));
    assert_eq!(min_se(&Headers::new()), Ok(None));
    let twice = headers(&[("Session-Expires", "90"), ("Session-Expires", "95")]);
    assert_eq!(
        SessionExpires::from_headers(&twice),
        Err(SessionTimerError::Malformed(HeaderName::SessionExpires))
    );
}

#[test]
fn config_keeps_the_rfc_floor() {
    assert!(SessionTimerConfig::new(120, 89).is_err());
    assert!(SessionTimerConfig::new(100, 120).is_err());
    let c = SessionTimerConfig::new(120, 90).unwrap();
    assert_eq!((c.session_expires, c.min_se), (120, 90));
    assert_eq!(SessionTimerConfig::default().min_se, 90);
    assert_eq!(SessionTimerConfig::default().session_expires, 1800);
}

#[test]
fn uas_answers_a_phone_that_never_asked_like_the_seed() {
    // The seed's X-Lite INVITE had no Session-Expires and no Supported: timer; FreeSWITCH
    // answered `Session-Expires: 120;refresher=uas`.
    let config = SessionTimerConfig::new(120, 90).unwrap();
    let t = uas(&[("Supported", "replaces")], config).unwrap();
    assert_eq!(t.session_expires().to_string(), "120;refresher=uas");
    assert!(t.local_refresher);
    let mut h = Headers::new();
    t.write_response_headers(&mut h, &config);
    assert_eq!(
        h.get_str(&HeaderName::SessionExpires),
        Some("120;refresher=uas")
    );
    assert_eq!(h.get_str(&HeaderName::MinSe), Some("90"));
    assert!(h.get(&HeaderName::Require).is_none());
}

#[test]
fn uas_negotiation_cases_rfc4028_9() {
    let config = SessionTimerConfig::new(1800, 120).unwrap();
    // Below our Min-SE from a UAC that supports timers: 422 with our minimum.
    let err = uas(
        &[("Supported", "timer"), ("Session-Expires", "100")],
        config,
    )
    .unwrap_err();
    assert_eq!(err, SessionTimerError::TooSmall { min_se: 120 });
    assert_eq!(err.status_code(), Some(422));
    // The same from a UAC that could not retry: raised to our minimum, we refresh.
    let t = uas(&[("Session-Expires", "100;refresher=uac")], config).unwrap();
    assert_eq!((t.interval_secs, t.refresher), (120, Refresher::Uas));
    // Above our maximum: reduced to it, but not below the request's Min-SE.
    let t = uas(
        &[("Supported", "timer"), ("Session-Expires", "3600")],
        config,
    )
    .unwrap();
    assert_eq!((t.interval_secs, t.refresher), (1800, Refresher::Uac));
    assert!(!t.local_refresher);
    let t = uas(
        &[
            ("Supported", "100rel, timer"),
            ("Session-Expires", "3600;refresher=uas"),
            ("Min-SE", "2400"),
        ],
        config,
    )
    .unwrap();
    assert_eq!((t.interval_secs, t.refresher), (2400, Refresher::Uas));
    // The UAC's choice of refresher stands.
    let t = uas(
        &[
            ("Supported", "timer"),
            ("Session-Expires", "600;refresher=uac"),
        ],
        config,
    )
    .unwrap();
    assert_eq!((t.interval_secs, t.refresher), (600, Refresher::Uac));
    let mut h = Headers::new();
    t.write_response_headers(&mut h, &config);
    assert_eq!(h.get_str(&HeaderName::Require), Some("timer"));
    // Malformed headers are 400s.
    let err = uas(&[("Session-Expires", "soon")], config).unwrap_err();
    assert_eq!(err.status_code(), Some(400));
}

#[test]
fn uac_side_offer_2xx_and_422_retry() {
    let config = SessionTimerConfig::new(1800, 90).unwrap();
    let mut offer = headers(&[("Supported", "replaces")]);
    config.write_offer(&mut offer);
    assert_eq!(offer.get_str(&HeaderName::SessionExpires), Some("1800"));
    assert_eq!(offer.get_str(&HeaderName::MinSe), Some("90"));
    assert_eq!(
        offer.get_str(&HeaderName::Supported),
        Some("replaces, timer")
    );
    config.write_offer(&mut offer);
    assert_eq!(
        offer.get_str(&HeaderName::Supported),
        Some("replaces, timer")
    );

    // alice's side answered like the seed's 200: she refreshes, we watch.
    let ok = headers(&[("Session-Expires", "120;refresher=uas"), ("Min-SE", "120")]);
    let t = SessionTimer::negotiate_uac(&ok).unwrap().unwrap();
    assert_eq!((t.interval_secs, t.local_refresher), (120, false));
    let t = SessionTimer::negotiate_uac(&headers(&[("Session-Expires", "300")]))
        .unwrap()
        .unwrap();
    assert!(t.local_refresher, "no refresher named: we refresh");
    assert_eq!(SessionTimer::negotiate_uac(&Headers::new()), Ok(None));

    let too_small = headers(&[("Min-SE", "3600")]);
    let retry = config.retry_after_422(&too_small).unwrap();
    assert_eq!((retry.session_expires, retry.min_se), (3600, 3600));
    assert_eq!(config.retry_after_422(&headers(&[("Min-SE", "600")])), None);
    assert_eq!(config.retry_after_422(&Headers::new()), None);
}

#[test]
fn deadlines_rfc4028_10() {
    let now = crate::clock::virtual_epoch();
    let refresher = SessionTimer {
        interval_secs: 120,
        refresher: Refresher::Uas,
        local_refresher: true,
    };
    assert_eq!(
        refresher.next_deadline(now),
        SessionDeadline::Refresh(now + Duration::from_secs(60))
    );
    let watcher = SessionTimer {
        local_refresher: false,
        ..refresher
    };
    // 120 − min(32, 40) = 88.
    assert_eq!(
        watcher.next_deadline(now),
        SessionDeadline::Expire(now + Duration::from_secs(88))
    );
    // 90 − min(32, 30) = 60; 1800 − 32.
    let short = SessionTimer {
        interval_secs: 90,
        ..watcher
    };
    assert_eq!(short.expire_at(now), now + Duration::from_secs(60));
    let long = SessionTimer {
        interval_secs: 1800,
        ..watcher
    };
    assert_eq!(long.expire_at(now), now + Duration::from_secs(1768));
    assert_eq!(long.refresh_at(now), now + Duration::from_secs(900));

    let mut h = Headers::new();
    refresher.write_refresh_headers(&mut h, &SessionTimerConfig::default());
    assert_eq!(
        h.get_str(&HeaderName::SessionExpires),
        Some("120;refresher=uac")
    );
    assert_eq!(h.get_str(&HeaderName::Supported), Some("timer"));
}

#[test]
fn too_small_response_carries_min_se() {
    let req = crate::dialog::test_msgs::request(crate::dialog::test_msgs::A_INVITE);
    let r = too_small_response(&req, 120);
    assert_eq!(r.status, 422);
    assert_eq!(r.headers.get_str(&HeaderName::MinSe), Some("120"));
    assert_eq!(r.headers.cseq().unwrap().seq, 2);
}

#[test]
fn refresh_answer_replaces_or_keeps_the_timer() {
    let ours = SessionTimer {
        interval_secs: 120,
        refresher: Refresher::Uas,
        local_refresher: true,
    };
    assert_eq!(ours.refreshed_by(&Headers::new()), Ok(ours));
    let t = ours
        .refreshed_by(&headers(&[("Session-Expires", "600;refresher=uas")]))
        .unwrap();
    assert_eq!((t.interval_secs, t.local_refresher), (600, false));
    assert!(ours
        .refreshed_by(&headers(&[("Session-Expires", "x")]))
        .is_err());
}
