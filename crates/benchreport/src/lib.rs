//! # benchreport — the facts every benchmark report states
//!
//! `cargo xtask bench …` and `atelier bench automl` both say on which
//! machine, under which load and when they measured ([`cpu_model`],
//! [`loadavg`], [`utc_stamp`]), and rewrite their own block of the README
//! between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`
//! ([`replace_block`]). Standard library only, so the xtask runner stays
//! quick to build.

use std::time::{SystemTime, UNIX_EPOCH};

/// The CPU's model name from `/proc/cpuinfo` ("unknown CPU" elsewhere).
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The 1-, 5- and 15-minute load averages as "0.65 1.13 1.52" ("?" when
/// `/proc/loadavg` is unreadable).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| {
            let f: Vec<&str> = s.split_whitespace().take(3).collect();
            (f.len() == 3).then(|| f.join(" "))
        })
        .unwrap_or_else(|| "?".into())
}

/// The UTC date and time now: (year, month, day, hour, minute, second),
/// by civil-from-days.
pub fn utc_now() -> (i64, i64, i64, i64, i64, i64) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
}

/// `YYYY-MM-DD HH:MM UTC`, for a report's "measured on".
pub fn utc_stamp() -> String {
    let (y, m, d, h, mi, _) = utc_now();
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02} UTC")
}

/// Why a README block could not be replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockError {
    /// One of the markers is not in the text.
    Missing { begin: String, end: String },
    /// The end marker comes before the begin marker.
    OutOfOrder { begin: String, end: String },
}

impl std::fmt::Display for BlockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockError::Missing { begin, end } => write!(f, "has no {begin} … {end} block"),
            BlockError::OutOfOrder { begin, end } => write!(f, "{end} comes before {begin}"),
        }
    }
}

impl std::error::Error for BlockError {}

/// `text` with what lies between `<!-- bench:NAME -->` and
/// `<!-- /bench:NAME -->` replaced by `md` (its trailing newlines made one);
/// every other block and line is kept.
pub fn replace_block(text: &str, name: &str, md: &str) -> Result<String, BlockError> {
    let (begin, end) = (
        format!("<!-- bench:{name} -->"),
        format!("<!-- /bench:{name} -->"),
    );
    let (Some(a), Some(b)) = (text.find(&begin), text.find(&end)) else {
        return Err(BlockError::Missing { begin, end });
    };
    if b < a {
        return Err(BlockError::OutOfOrder { begin, end });
    }
    Ok(format!(
        "{}{begin}\n{}\n{}",
        &text[..a],
        md.trim_end_matches('\n'),
        &text[b..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_block_is_replaced() {
        let text = "a\n<!-- bench:jobs -->\nold jobs\n<!-- /bench:jobs -->\n<!-- bench:automl -->\nold\n<!-- /bench:automl -->\nz\n";
        assert_eq!(
            replace_block(text, "automl", "new\n\n").unwrap(),
            "a\n<!-- bench:jobs -->\nold jobs\n<!-- /bench:jobs -->\n<!-- bench:automl -->\nnew\n<!-- /bench:automl -->\nz\n"
        );
        assert!(matches!(
            replace_block("no markers", "automl", "x"),
            Err(BlockError::Missing { .. })
        ));
        assert!(matches!(
            replace_block(
                "<!-- /bench:automl -->\n<!-- bench:automl -->",
                "automl",
                "x"
            ),
            Err(BlockError::OutOfOrder { .. })
        ));
    }

    #[test]
    fn the_stamp_is_a_utc_minute() {
        let s = utc_stamp();
        assert_eq!(s.len(), "2026-12-06 12:58 UTC".len(), "{s}");
        assert!(s.ends_with(" UTC") && s.as_bytes()[4] == b'-' && s.as_bytes()[13] == b':');
        let (y, m, d, h, mi, sec) = utc_now();
        assert!(y >= 2024 && (1..=12).contains(&m) && (1..=31).contains(&d));
        assert!(h < 24 && mi < 60 && sec < 60);
    }
}
