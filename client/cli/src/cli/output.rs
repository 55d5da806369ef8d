//! Human output: aligned tables, a delayed spinner, short texts and dates.
//!
//! Everything written to stdout goes through [`write_stdout`], which passes it through the
//! protocol's one sanitiser ([`atr_protocol::text::escape`]): a spec's description, a
//! provider's message or a tool's output can never send a control or bidi character to the
//! terminal, whichever command printed it. JSON goes through [`atr_protocol::text::escape_json`]
//! first, so it stays valid JSON. Lines written to stderr use [`safe`].

use std::future::Future;
use std::io::IsTerminal;
use std::time::Duration;

use serde::Serialize;

/// A wait shorter than this shows no spinner (most local calls).
pub(crate) const SPINNER_DELAY: Duration = Duration::from_millis(300);
/// Longest description shown in a table cell, in characters.
pub(crate) const MAX_CELL_CHARS: usize = 60;

/// A table printed with aligned columns; the last column is not padded.
pub(crate) struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; cells are escaped now ([`atr_protocol::text::escape`]) so the columns are
    /// measured as they will print.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| atr_protocol::text::escape(&c).into_owned())
                .collect(),
        );
    }

    pub(crate) fn render(&self) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &mut dyn Iterator<Item = &str>| {
            let mut s = String::new();
            for (i, c) in cells.enumerate() {
                if i + 1 < n {
                    s.push_str(c);
                    s.extend(std::iter::repeat_n(' ', widths[i] - c.chars().count() + 2));
                } else {
                    s.push_str(c);
                }
            }
            out.push_str(s.trim_end());
            out.push('\n');
        };
        line(&mut self.headers.iter().copied());
        for r in &self.rows {
            line(&mut r.iter().map(String::as_str));
        }
        out
    }
}

/// `s` escaped ([`atr_protocol::text::escape`]) and cut to `max` characters, with `…` when
/// cut; newlines become spaces.
pub(crate) fn cut(s: &str, max: usize) -> String {
    let s = atr_protocol::text::escape(s);
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let mut t: String = flat.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Prints `v` as pretty JSON on stdout, forbidden characters as `\uXXXX` escapes (the same
/// JSON, inert on a terminal).
pub(crate) fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(v)?;
    outln!("{}", atr_protocol::text::escape_json(&text))
}

/// [`print_json`] of an array, written one element at a time (the same text): a large export
/// is never one string in memory.
pub(crate) fn print_json_array<T: Serialize>(items: &[T]) -> anyhow::Result<()> {
    if items.is_empty() {
        return outln!("[]");
    }
    outln!("[")?;
    for (i, item) in items.iter().enumerate() {
        let text = array_element(item, i + 1 == items.len())?;
        outln!("{}", atr_protocol::text::escape_json(&text))?;
    }
    outln!("]")
}

/// One element of a pretty JSON array as `to_string_pretty` writes it inside the array:
/// indented by two spaces, with its comma unless it is the last.
fn array_element<T: Serialize>(item: &T, last: bool) -> serde_json::Result<String> {
    let text = serde_json::to_string_pretty(item)?;
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for (n, line) in text.lines().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        out.push_str("  ");
        out.push_str(line);
    }
    if !last {
        out.push(',');
    }
    Ok(out)
}

/// `s` safe for stderr: remote text capped at [`atr_protocol::text::MAX_SHOWN_REMOTE_TEXT`]
/// and escaped ([`atr_protocol::text::shown`]).
pub(crate) fn safe(s: &str) -> String {
    atr_protocol::text::shown(s)
}

/// Writes to stdout and flushes, returning the error `print!` would panic with: a reader that
/// went away (`atr show … | head -1`) is an [`std::io::ErrorKind::BrokenPipe`] error, which
/// [`crate::cli::run`] turns into a quiet exit 0.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    use std::io::Write;
    let text = match args.as_str() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(args.to_string()),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(atr_protocol::text::escape(&text).as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Whether `e` is stdout's reader having gone away.
pub(crate) fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `print!` that returns the write error (see [`write_stdout`]) instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` that returns the write error (see [`write_stdout`]) instead of panicking.
macro_rules! outln {
    () => {
        $crate::cli::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, outln};

/// Awaits `fut`, showing a spinner with `message` on stderr if it takes longer than
/// [`SPINNER_DELAY`] and stderr is a terminal.
pub(crate) async fn with_spinner<F: Future>(message: &str, fut: F) -> F::Output {
    if !std::io::stderr().is_terminal() {
        return fut.await;
    }
    tokio::pin!(fut);
    tokio::select! {
        out = &mut fut => return out,
        _ = tokio::time::sleep(SPINNER_DELAY) => {}
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    let out = fut.await;
    bar.finish_and_clear();
    out
}

/// A Unix time in milliseconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// A byte count as `64 KiB`, `128 MiB`, ….
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if v.fract() == 0.0 {
        format!("{v} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_array_printed_by_element_is_the_pretty_array() {
        let items = vec![
            serde_json::json!({"name": "a", "parameters": {"type": "object", "required": ["x"]}}),
            serde_json::json!({"name": "b", "list": [1, 2, {"k": []}], "text": "two\nlines"}),
        ];
        let whole = serde_json::to_string_pretty(&items).unwrap();
        let mut by_element = vec!["[".to_owned()];
        for (i, item) in items.iter().enumerate() {
            by_element.push(super::array_element(item, i + 1 == items.len()).unwrap());
        }
        by_element.push("]".into());
        assert_eq!(by_element.join("\n"), whole);
    }

    use super::*;

    #[test]
    fn tables_align() {
        let mut t = Table::new(&["A", "LONGER", "C"]);
        t.row(vec!["xyz".into(), "1".into(), "last".into()]);
        assert_eq!(t.render(), "A    LONGER  C\nxyz  1       last\n");
    }

    #[test]
    fn dates_and_sizes() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_764_072_000_000), "2025-11-25 12:00:00 UTC");
        assert_eq!(bytes(65_536), "64 KiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(cut("a\nb c", 10), "a b c");
        assert_eq!(cut("abcdef", 4), "abc…");
    }
}
