//! Wall-clock time for the protocol cores, injected so tests run on a virtual clock (STYLE
//! habit 2): the Date header, nonce timestamps and CDR times come from here. Monotonic time for
//! timers is passed as `Instant` separately. Formatting never allocates more than one String.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 for clocks set before 1970).
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// RFC 1123 date as SIP's Date header wants it (RFC 3261 §20.17): `Tue, 27 Apr 2010 08:39:32 GMT`.
pub fn sip_date(t: SystemTime) -> String {
    let secs = unix_secs(t);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // 1970-01-01 was a Thursday.
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d) = civil_from_days(days as i64);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WD[(days % 7) as usize],
        d,
        MON[(mo - 1) as usize],
        y,
        h,
        m,
        s
    )
}

/// RFC 3339 UTC with milliseconds, as CDRs carry it: `2010-04-27T12:30:57.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, mo, day) = civil_from_days((secs / 86_400) as i64);
    format!(
        "{y}-{mo:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        (secs % 86_400) / 3600,
        (secs % 3600) / 60,
        secs % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month 1–12, day 1–31), proleptic Gregorian calendar
/// (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `UNIX_EPOCH + secs`, for tests and for turning stored timestamps back into times.
pub fn from_unix(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// The origin of a test's virtual clock. `Instant` has no constructor but `now()`, so the
/// sans-IO cores' tests take their starting instant from here (the only clock read they
/// need) and move time by adding durations.
#[cfg(test)]
pub(crate) fn virtual_epoch() -> std::time::Instant {
    std::time::Instant::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_seed() {
        // The seed's 200 OK to REGISTER carries `Date: Tue, 27 Apr 2010 12:30:57 GMT`.
        assert_eq!(
            sip_date(from_unix(1_272_371_457)),
            "Tue, 27 Apr 2010 12:30:57 GMT"
        );
        assert_eq!(sip_date(from_unix(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            sip_date(from_unix(951_782_400)),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            sip_date(from_unix(1_795_564_800)),
            "Wed, 25 Nov 2026 00:00:00 GMT"
        );
    }
}
