//! `datetime`: dates and times in UTC or a fixed offset, never a named time
//! zone: a `FROM scratch` image has no tz database, and a tool that silently
//! guesses would be worse than one that refuses.
//!
//! Operations (`op`):
//!
//! - `now`: the current time (`offset` optional).
//! - `parse`: an RFC 3339 timestamp (or unix seconds) into its parts.
//! - `format`: a timestamp through a strftime-style `format` (see [`strftime`]).
//! - `add`: a timestamp plus `weeks`, `days`, `hours`, `minutes` and `seconds`
//!   (each may be negative). O(1): the total is one checked sum, unlike the
//!   ancestor's month-by-month loop. Months and years are not offered: their
//!   length varies and "one month after 31 January" has no single answer.
//! - `diff`: `end - start` in seconds, minutes, hours and days.
//!
//! Years are limited to -9999..=9999; every input string is length-capped.

use std::process::ExitCode;

use atr_example_tools::{ToolError, number, parse, run};
use serde::Deserialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

/// Longest timestamp or offset string accepted.
const MAX_DATETIME_LEN: usize = 64;
/// Longest `format` string; each directive expands to at most a few dozen
/// bytes, so the output stays small.
const MAX_FORMAT_LEN: usize = 256;

fn main() -> ExitCode {
    run(datetime)
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Op {
    Now,
    Parse,
    Format,
    Add,
    Diff,
}

/// A point in time: an RFC 3339 string or integer unix seconds.
#[derive(Deserialize)]
#[serde(untagged)]
enum When {
    Unix(i64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    op: Op,
    datetime: Option<When>,
    start: Option<When>,
    end: Option<When>,
    format: Option<String>,
    offset: Option<String>,
    weeks: Option<i64>,
    days: Option<i64>,
    hours: Option<i64>,
    minutes: Option<i64>,
    seconds: Option<i64>,
}

fn bad(code: &'static str, message: impl Into<String>) -> ToolError {
    ToolError::bad_input(code, message)
}

fn datetime(input: Value) -> Result<Value, ToolError> {
    let input: Input = parse(input)?;
    let offset = input.offset.as_deref().map(parse_offset).transpose()?;
    let required = |v: &Option<When>, field: &str| {
        v.as_ref()
            .ok_or_else(|| bad("invalid_input", format!("this op needs `{field}`")))
            .and_then(|w| to_datetime(w, field))
    };
    match input.op {
        Op::Now => {
            let now = shift(OffsetDateTime::now_utc(), offset)?;
            Ok(json!({ "datetime": rfc3339(now)?, "unix": now.unix_timestamp() }))
        }
        Op::Parse => {
            let dt = shift(required(&input.datetime, "datetime")?, offset)?;
            Ok(json!({
                "datetime": rfc3339(dt)?,
                "utc": rfc3339(shift(dt, Some(UtcOffset::UTC))?)?,
                "unix": dt.unix_timestamp(),
                "offset": fmt_offset(dt.offset(), true),
                "year": dt.year(),
                "month": u8::from(dt.month()),
                "day": dt.day(),
                "hour": dt.hour(),
                "minute": dt.minute(),
                "second": dt.second(),
                "nanosecond": dt.nanosecond(),
                "weekday": dt.weekday().to_string(),
                "ordinal": dt.ordinal(),
                "iso_week": dt.iso_week(),
            }))
        }
        Op::Format => {
            let dt = shift(required(&input.datetime, "datetime")?, offset)?;
            let format = input
                .format
                .as_deref()
                .ok_or_else(|| bad("invalid_input", "op `format` needs `format`"))?;
            Ok(json!({ "formatted": strftime(dt, format)? }))
        }
        Op::Add => {
            let dt = required(&input.datetime, "datetime")?;
            let total = total_seconds(&input)?;
            let out = dt
                .checked_add(Duration::seconds(total))
                .filter(|d| (-9999..=9999).contains(&d.year()))
                .ok_or_else(|| bad("out_of_range", "the result is outside the years -9999..=9999"))?;
            let out = shift(out, offset)?;
            Ok(json!({ "datetime": rfc3339(out)?, "unix": out.unix_timestamp() }))
        }
        Op::Diff => {
            let start = required(&input.start, "start")?;
            let end = required(&input.end, "end")?;
            let d = end - start;
            let secs = d.whole_seconds() as f64 + f64::from(d.subsec_nanoseconds()) / 1e9;
            Ok(json!({
                "seconds": number(secs)?,
                "minutes": number(secs / 60.0)?,
                "hours": number(secs / 3600.0)?,
                "days": number(secs / 86400.0)?,
            }))
        }
    }
}

/// `dt` seen from `offset` (unchanged when `None`); refused when that moves it
/// past the supported years.
fn shift(dt: OffsetDateTime, offset: Option<UtcOffset>) -> Result<OffsetDateTime, ToolError> {
    match offset {
        None => Ok(dt),
        Some(o) => dt.checked_to_offset(o).ok_or_else(|| {
            bad(
                "out_of_range",
                "the time in that offset is outside the supported years",
            )
        }),
    }
}

/// Sums the `add` fields into seconds, refusing overflow instead of wrapping.
fn total_seconds(input: &Input) -> Result<i64, ToolError> {
    let parts = [
        (input.weeks, 7 * 86_400),
        (input.days, 86_400),
        (input.hours, 3_600),
        (input.minutes, 60),
        (input.seconds, 1),
    ];
    parts.iter().try_fold(0i64, |acc, (n, unit)| {
        n.unwrap_or(0)
            .checked_mul(*unit)
            .and_then(|s| acc.checked_add(s))
            .ok_or_else(|| bad("out_of_range", "the duration to add is too large"))
    })
}

fn to_datetime(w: &When, field: &str) -> Result<OffsetDateTime, ToolError> {
    match w {
        When::Unix(s) => OffsetDateTime::from_unix_timestamp(*s)
            .map_err(|e| bad("out_of_range", format!("`{field}`: {e}"))),
        When::Text(t) => {
            if t.len() > MAX_DATETIME_LEN {
                return Err(bad(
                    "invalid_datetime",
                    format!("`{field}` is over the {MAX_DATETIME_LEN}-byte limit"),
                ));
            }
            OffsetDateTime::parse(t, &Rfc3339).map_err(|e| {
                bad(
                    "invalid_datetime",
                    format!(
                        "`{field}` = `{t}` is not an RFC 3339 timestamp such as 2024-02-29T12:00:00Z: {e}"
                    ),
                )
            })
        }
    }
}

/// `Z`, `UTC`, `+HH:MM` or `-HH:MM`. Named zones are refused: there is no tz
/// database in the image.
fn parse_offset(s: &str) -> Result<UtcOffset, ToolError> {
    if s == "Z" || s == "UTC" || s == "+00:00" || s == "-00:00" {
        return Ok(UtcOffset::UTC);
    }
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i8> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    let parsed = if b.len() == 6 && (b[0] == b'+' || b[0] == b'-') && b[3] == b':' {
        let sign = if b[0] == b'-' { -1 } else { 1 };
        match (digits(1..3), digits(4..6)) {
            (Some(h), Some(m)) if h <= 23 && m <= 59 => UtcOffset::from_hms(sign * h, sign * m, 0).ok(),
            _ => None,
        }
    } else {
        None
    };
    parsed.ok_or_else(|| {
        bad(
            "invalid_offset",
            format!(
                "offset `{}` must be `Z`, `UTC` or `±HH:MM`; named time zones are not supported (no tz database)",
                s.chars().take(MAX_DATETIME_LEN).collect::<String>()
            ),
        )
    })
}

fn fmt_offset(o: UtcOffset, colon: bool) -> String {
    let (h, m, _) = o.as_hms();
    let sign = if o.is_negative() { '-' } else { '+' };
    if colon {
        format!("{sign}{:02}:{:02}", h.unsigned_abs(), m.unsigned_abs())
    } else {
        format!("{sign}{:02}{:02}", h.unsigned_abs(), m.unsigned_abs())
    }
}

fn rfc3339(dt: OffsetDateTime) -> Result<String, ToolError> {
    dt.format(&Rfc3339)
        .map_err(|e| ToolError::failed("format_failed", format!("cannot write as RFC 3339: {e}")))
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A strftime subset (the directives Python and C share):
/// `%Y %y %m %d %e %H %I %p %M %S %f` (microseconds) `%j %a %A %b %B %u %w %V`
/// `%z %Z %s %F %T %%`. Any other directive is refused rather than guessed.
fn strftime(dt: OffsetDateTime, format: &str) -> Result<String, ToolError> {
    if format.len() > MAX_FORMAT_LEN {
        return Err(bad(
            "invalid_format",
            format!("`format` is over the {MAX_FORMAT_LEN}-byte limit"),
        ));
    }
    let mut out = String::new();
    let mut chars = format.chars();
    let weekday = usize::from(dt.weekday().number_days_from_monday());
    let month = usize::from(u8::from(dt.month())) - 1;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let d = chars
            .next()
            .ok_or_else(|| bad("invalid_format", "`format` ends with a lone `%`"))?;
        let s = match d {
            'Y' => format!("{:04}", dt.year()),
            'y' => format!("{:02}", dt.year().rem_euclid(100)),
            'm' => format!("{:02}", u8::from(dt.month())),
            'd' => format!("{:02}", dt.day()),
            'e' => format!("{:>2}", dt.day()),
            'H' => format!("{:02}", dt.hour()),
            'I' => format!("{:02}", (dt.hour() + 11) % 12 + 1),
            'p' => (if dt.hour() < 12 { "AM" } else { "PM" }).to_owned(),
            'M' => format!("{:02}", dt.minute()),
            'S' => format!("{:02}", dt.second()),
            'f' => format!("{:06}", dt.microsecond()),
            'j' => format!("{:03}", dt.ordinal()),
            'a' => WEEKDAYS[weekday][..3].to_owned(),
            'A' => WEEKDAYS[weekday].to_owned(),
            'b' => MONTHS[month][..3].to_owned(),
            'B' => MONTHS[month].to_owned(),
            'u' => (weekday + 1).to_string(),
            'w' => dt.weekday().number_days_from_sunday().to_string(),
            'V' => format!("{:02}", dt.iso_week()),
            'z' => fmt_offset(dt.offset(), false),
            'Z' if dt.offset().is_utc() => "UTC".to_owned(),
            'Z' => fmt_offset(dt.offset(), true),
            's' => dt.unix_timestamp().to_string(),
            'F' => format!("{:04}-{:02}-{:02}", dt.year(), u8::from(dt.month()), dt.day()),
            'T' => format!("{:02}:{:02}:{:02}", dt.hour(), dt.minute(), dt.second()),
            '%' => "%".to_owned(),
            other => {
                return Err(bad(
                    "invalid_format",
                    format!(
                        "unknown directive `%{other}` (known: %Y %y %m %d %e %H %I %p %M %S %f %j %a %A %b %B %u %w %V %z %Z %s %F %T %%)"
                    ),
                ));
            }
        };
        out.push_str(&s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(v: Value) -> Value {
        datetime(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    fn code(v: Value) -> String {
        datetime(v).unwrap_err().code().to_owned()
    }

    #[test]
    fn now_is_current_and_offsettable() {
        let out = call(json!({"op": "now"}));
        let unix = out["unix"].as_i64().unwrap();
        let sys = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((unix - sys).abs() < 5);
        assert!(out["datetime"].as_str().unwrap().ends_with('Z'));
        let out = call(json!({"op": "now", "offset": "+05:30"}));
        assert!(out["datetime"].as_str().unwrap().ends_with("+05:30"));
    }

    #[test]
    fn parse_gives_parts() {
        let out = call(json!({"op": "parse", "datetime": "2024-02-29T12:30:15.5+01:00"}));
        assert_eq!(out["utc"], "2024-02-29T11:30:15.5Z");
        assert_eq!(out["unix"], 1_709_206_215);
        assert_eq!(out["offset"], "+01:00");
        assert_eq!(out["weekday"], "Thursday");
        assert_eq!(out["ordinal"], 60);
        assert_eq!(out["nanosecond"], 500_000_000);
        let out = call(json!({"op": "parse", "datetime": 0}));
        assert_eq!(out["datetime"], "1970-01-01T00:00:00Z");
    }

    #[test]
    fn format_directives() {
        let out = call(json!({
            "op": "format", "datetime": "2024-03-05T07:08:09.123456-04:30",
            "format": "%Y-%m-%d %H:%M:%S.%f %z %Z %a %A %b %B %j %I%p %e %u %w %V %y %F %T %s %%"
        }));
        assert_eq!(
            out["formatted"],
            "2024-03-05 07:08:09.123456 -0430 -04:30 Tue Tuesday Mar March 065 07AM  5 2 2 10 24 2024-03-05 07:08:09 1709638689 %"
        );
        let out =
            call(json!({"op": "format", "datetime": 1_700_000_000, "format": "%H:%M %Z", "offset": "UTC"}));
        assert_eq!(out["formatted"], "22:13 UTC");
        assert_eq!(
            code(json!({"op": "format", "datetime": 0, "format": "%Q"})),
            "invalid_format"
        );
        assert_eq!(
            code(json!({"op": "format", "datetime": 0, "format": "x%"})),
            "invalid_format"
        );
        assert_eq!(
            code(json!({"op": "format", "datetime": 0, "format": "%Y".repeat(200)})),
            "invalid_format"
        );
        assert_eq!(code(json!({"op": "format", "datetime": 0})), "invalid_input");
    }

    #[test]
    fn add_is_constant_time_and_checked() {
        let out = call(json!({"op": "add", "datetime": "2024-02-28T23:00:00Z", "hours": 2, "days": 1}));
        assert_eq!(out["datetime"], "2024-03-01T01:00:00Z");
        let out = call(json!({"op": "add", "datetime": "2024-01-01T00:00:00+02:00", "minutes": -90}));
        assert_eq!(out["datetime"], "2023-12-31T22:30:00+02:00");
        // Large counts are one multiplication, not a loop; out-of-range is an error.
        let out = call(json!({"op": "add", "datetime": "2000-01-01T00:00:00Z", "weeks": 52 * 7000}));
        assert!(out["datetime"].as_str().unwrap().starts_with("8976-03-09"));
        assert_eq!(
            code(json!({"op": "add", "datetime": "2000-01-01T00:00:00Z", "days": 10_000_000})),
            "out_of_range"
        );
        assert_eq!(
            code(json!({"op": "add", "datetime": "2000-01-01T00:00:00Z", "weeks": i64::MAX})),
            "out_of_range"
        );
        assert_eq!(
            code(json!({"op": "add", "datetime": "2000-01-01T00:00:00Z", "seconds": i64::MAX, "minutes": 1})),
            "out_of_range"
        );
        assert_eq!(
            code(json!({"op": "add", "datetime": "2000-01-01T00:00:00Z", "months": 1})),
            "invalid_input"
        );
    }

    #[test]
    fn diff_in_units() {
        let out =
            call(json!({"op": "diff", "start": "2024-01-01T00:00:00Z", "end": "2024-01-02T12:00:00+00:00"}));
        assert_eq!(
            out,
            json!({"seconds": 129600, "minutes": 2160, "hours": 36, "days": 1.5})
        );
        let out = call(json!({"op": "diff", "start": 10, "end": "1970-01-01T00:00:00.25Z"}));
        assert_eq!(out["seconds"], json!(-9.75));
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(
            code(json!({"op": "parse", "datetime": "yesterday"})),
            "invalid_datetime"
        );
        assert_eq!(
            code(json!({"op": "parse", "datetime": "2024-02-30T00:00:00Z"})),
            "invalid_datetime"
        );
        assert_eq!(
            code(json!({"op": "parse", "datetime": "9".repeat(100)})),
            "invalid_datetime"
        );
        assert_eq!(code(json!({"op": "parse"})), "invalid_input");
        assert_eq!(code(json!({"op": "parse", "datetime": i64::MAX})), "out_of_range");
        assert_eq!(
            code(json!({"op": "now", "offset": "Europe/Paris"})),
            "invalid_offset"
        );
        assert_eq!(code(json!({"op": "now", "offset": "+24:00"})), "invalid_offset");
        assert_eq!(code(json!({"op": "now", "offset": "+1:00"})), "invalid_offset");
        assert_eq!(code(json!({"op": "convert_timezone"})), "invalid_input");
    }
}
