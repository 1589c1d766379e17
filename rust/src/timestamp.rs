//! Reading timestamps: RFC 3339, normalised to UTC.
//!
//! chrono's general RFC 3339 reader took about a tenth of the time spent
//! decoding a run record (eleven timestamps in a run of five calls). Nearly
//! every stored timestamp has the form chrono writes for NeMo Relay and for
//! us: `YYYY-MM-DDTHH:MM:SS`, an optional fraction, then `Z`. That form is
//! read here by hand, which made decoding a run about 7% faster; anything
//! else (other offsets, leap seconds, years to refuse, malformed text) goes
//! to chrono as before, so results and error messages stay chrono's.
//! Writing builds the same common form in a stack buffer ([`Written`]):
//! chrono's writer went through `fmt` into a new `String` for each of the
//! dozen timestamps in a run, and the hand-built text made encoding a run
//! about a fifth faster (A/B, both builds in one process). Leap seconds and
//! years outside 1–9999 are still written by chrono.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Timelike, Utc};

/// Only years 1–9999 once in UTC: beyond them chrono writes text that is not
/// RFC 3339 (`+10000-…`) and Python has no datetime to hold the value.
pub fn parse(v: &str) -> Result<DateTime<Utc>, String> {
    if let Some(dt) = parse_common(v.as_bytes()) {
        return Ok(dt);
    }
    let dt = DateTime::parse_from_rfc3339(v)
        .map(|dt| dt.with_timezone(&Utc))
        .map_err(|e| format!("invalid RFC 3339 timestamp {v:?}: {e}"))?;
    if (1..=9999).contains(&dt.year()) {
        Ok(dt)
    } else {
        Err(format!("timestamp {v:?} is outside the years 1-9999 in UTC"))
    }
}

/// The common UTC form with any fraction of 1–9 digits; `None` sends the
/// text to chrono, which also gives the error when there is one. Only text
/// chrono reads as the very same instant gets `Some`.
fn parse_common(b: &[u8]) -> Option<DateTime<Utc>> {
    let (head, rest) = b.split_at_checked(19)?;
    if head[4] != b'-' || head[7] != b'-' || head[10] != b'T' || head[13] != b':' || head[16] != b':' {
        return None;
    }
    let field = |at: usize, len: usize| digits(&head[at..at + len]);
    let (year, month, day) = (field(0, 4)?, field(5, 2)?, field(8, 2)?);
    let (hour, minute, second) = (field(11, 2)?, field(14, 2)?, field(17, 2)?);
    let (nanos, zone) = match rest.split_first() {
        Some((b'.', tail)) => {
            let len = tail.iter().take_while(|c| c.is_ascii_digit()).count();
            if !(1..=9).contains(&len) {
                return None;
            }
            (digits(&tail[..len])? * 10u32.pow(9 - len as u32), &tail[len..])
        }
        _ => (0, rest),
    };
    // A leap second (`:60`) and year 0 are chrono's to judge.
    if !matches!(zone, b"Z" | b"+00:00") || second > 59 || year == 0 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    Some(date.and_time(time).and_utc())
}

/// A timestamp as chrono writes it with `SecondsFormat::AutoSi` and `Z`,
/// built in a stack buffer (see the module's notes for why).
pub struct Written {
    buf: [u8; 30],
    len: usize,
}

impl Written {
    /// `None` for what chrono alone writes: leap seconds and years outside
    /// 1–9999.
    pub fn of(dt: &DateTime<Utc>) -> Option<Written> {
        let year = dt.year();
        let nanos = dt.nanosecond();
        if !(1..=9999).contains(&year) || nanos >= 1_000_000_000 {
            return None;
        }
        let mut buf = [0u8; 30];
        let year = year as u32;
        put(&mut buf[0..4], year, 4);
        buf[4] = b'-';
        put(&mut buf[5..7], dt.month(), 2);
        buf[7] = b'-';
        put(&mut buf[8..10], dt.day(), 2);
        buf[10] = b'T';
        put(&mut buf[11..13], dt.hour(), 2);
        buf[13] = b':';
        put(&mut buf[14..16], dt.minute(), 2);
        buf[16] = b':';
        put(&mut buf[17..19], dt.second(), 2);
        let mut len = 19;
        let (value, digits) = if nanos == 0 {
            (0, 0)
        } else if nanos % 1_000_000 == 0 {
            (nanos / 1_000_000, 3)
        } else if nanos % 1_000 == 0 {
            (nanos / 1_000, 6)
        } else {
            (nanos, 9)
        };
        if digits > 0 {
            buf[len] = b'.';
            put(&mut buf[len + 1..len + 1 + digits], value, digits);
            len += 1 + digits;
        }
        buf[len] = b'Z';
        Some(Written { buf, len: len + 1 })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.buf[..self.len]).expect("ASCII")
    }
}

/// Writes `value` as exactly `width` decimal digits, zero-padded.
fn put(out: &mut [u8], mut value: u32, width: usize) {
    for slot in out[..width].iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// The value of a run of ASCII digits (at most 9, so it fits a `u32`).
fn digits(run: &[u8]) -> Option<u32> {
    run.iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{SecondsFormat, TimeZone, Timelike};

    fn chrono_parse(v: &str) -> Result<DateTime<Utc>, String> {
        DateTime::parse_from_rfc3339(v).map(|dt| dt.with_timezone(&Utc)).map_err(|e| e.to_string())
    }

    /// Every text the hand-written reader accepts, chrono reads as the same
    /// instant; texts it passes on reach chrono unchanged.
    #[test]
    fn common_form_agrees_with_chrono() {
        let samples = [
            "2026-03-31T12:00:00Z",
            "2026-03-31T12:00:00.350Z",
            "2026-03-31T12:00:00.000350Z",
            "2026-03-31T12:00:00.000000350Z",
            "2026-03-31T12:00:00.5Z",
            "2026-03-31T12:00:00.12345678Z",
            "2026-03-31T23:59:59.999999999+00:00",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
            "2024-02-29T01:02:03Z",
        ];
        for v in samples {
            let fast = parse_common(v.as_bytes()).unwrap_or_else(|| panic!("{v} should take the fast path"));
            assert_eq!(Ok(fast), chrono_parse(v), "{v}");
        }
    }

    #[test]
    fn other_forms_go_to_chrono() {
        let passed_on = [
            "2026-03-31T12:00:00+01:00",
            "2026-03-31T12:00:00z",
            "2026-03-31t12:00:00Z",
            "2026-03-31 12:00:00Z",
            "2026-03-31T12:00:60Z",
            "2026-03-31T12:00:00.Z",
            "2026-03-31T12:00:00.1234567891Z",
            "2023-02-29T12:00:00Z",
            "2026-13-01T12:00:00Z",
            "2026-03-31T24:00:00Z",
            "0000-01-01T00:00:00Z",
            "2026-03-31T12:00:00",
            "2026-03-31T12:00:00ZZ",
            "2026-03-31T12:00:00+00:00x",
            "+2026-03-31T12:00:00Z",
            "2026-3-31T12:00:00Z",
            "2026-03-31T12:0a:00Z",
            "",
        ];
        for v in passed_on {
            assert_eq!(parse_common(v.as_bytes()), None, "{v}");
        }
        // What chrono makes of them is unchanged.
        assert_eq!(parse("2026-03-31T12:00:00+01:00"), Ok(Utc.with_ymd_and_hms(2026, 3, 31, 11, 0, 0).unwrap()));
        let err = parse("2023-02-29T12:00:00Z").unwrap_err();
        assert!(err.starts_with("invalid RFC 3339 timestamp \"2023-02-29T12:00:00Z\""), "{err}");
        let err = parse("0000-01-01T00:00:00Z").unwrap_err();
        assert!(err.contains("outside the years 1-9999"), "{err}");
    }

    /// What chrono writes for every fraction length, digit position and
    /// year width is read back by the fast path as the same instant.
    #[test]
    fn what_chrono_writes_takes_the_fast_path() {
        let base = Utc.with_ymd_and_hms(2026, 3, 31, 12, 34, 56).unwrap();
        let mut nanos: Vec<u32> = vec![0, 1, 999_999_999, 500_000_000, 350_000, 123_456_789];
        nanos.extend((0..9).map(|p| 10u32.pow(p)));
        nanos.extend((0..9).map(|p| 7 * 10u32.pow(p)));
        for year in [1, 9, 10, 99, 100, 999, 1000, 1969, 1970, 2026, 9999] {
            for &n in &nanos {
                let dt = base.with_year(year).unwrap().with_nanosecond(n).unwrap();
                let text = dt.to_rfc3339_opts(SecondsFormat::AutoSi, true);
                assert_eq!(parse_common(text.as_bytes()), Some(dt), "{text}");
            }
        }
    }

    /// The hand-built text is chrono's, byte for byte, wherever it is used.
    #[test]
    fn written_as_chrono_writes() {
        let mut nanos: Vec<u32> = vec![0, 1, 999_999_999, 500_000_000, 350_000, 123_456_789, 1_000, 999_000, 10_000_000];
        nanos.extend((0..9).map(|p| 10u32.pow(p)));
        nanos.extend((0..9).map(|p| 7 * 10u32.pow(p)));
        let times = [(0, 0, 0), (23, 59, 59), (9, 5, 7), (12, 34, 56)];
        for year in [1, 9, 10, 99, 100, 999, 1000, 1969, 1970, 2000, 2024, 2026, 9999] {
            for (month, day) in [(1, 1), (2, 28), (12, 31), (6, 15)] {
                for &(h, m, sec) in &times {
                    for &n in &nanos {
                        let dt = Utc
                            .with_ymd_and_hms(year, month, day, h, m, sec)
                            .unwrap()
                            .with_nanosecond(n)
                            .unwrap();
                        let chrono = dt.to_rfc3339_opts(SecondsFormat::AutoSi, true);
                        assert_eq!(Written::of(&dt).map(|w| w.as_str().to_owned()), Some(chrono));
                    }
                }
            }
        }
        assert_eq!(Written::of(&Utc.with_ymd_and_hms(2024, 2, 29, 1, 2, 3).unwrap()).unwrap().as_str(), "2024-02-29T01:02:03Z");
    }

    /// 2016-12-31T23:59:60.5Z, which chrono holds as 1.5 s into 23:59:59.
    fn leap_second() -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(2016, 12, 31).unwrap().and_hms_nano_opt(23, 59, 59, 1_500_000_000).unwrap().and_utc()
    }

    /// Leap seconds and years chrono writes in other forms are left to chrono.
    #[test]
    fn written_leaves_the_rest_to_chrono() {
        let leap = leap_second();
        assert!(Written::of(&leap).is_none());
        for year in [0, -1, 10000, 262_142] {
            let dt = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap().with_year(year).unwrap();
            assert!(Written::of(&dt).is_none(), "{year}");
        }
    }

    #[test]
    fn leap_seconds_are_chrono_s() {
        let leap = leap_second();
        assert_eq!(leap.to_rfc3339_opts(SecondsFormat::AutoSi, true), "2016-12-31T23:59:60.500Z");
        assert_eq!(parse_common(b"2016-12-31T23:59:60.500Z"), None);
        assert_eq!(parse("2016-12-31T23:59:60.500Z"), Ok(leap));
    }
}
