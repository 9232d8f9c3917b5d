//! Column kind inference from text cells. The rules, in order, over the
//! non-missing cells of a column:
//!
//! 1. **Missing**: an empty cell or one of [`MISSING_MARKERS`].
//! 2. **Boolean**: every cell is true or false (any case); yes/no stays
//!    categorical so labels keep their spelling.
//! 3. **Numeric**: at least 95 % of cells parse as numbers; the rest become
//!    missing with a warning. Then, if the numbers are all integers, unique
//!    per row, there are at least 20 rows and the column is named like an id
//!    (`id`, `*_id`, `*Id`, `index`, `key`) or counts up by one, it is
//!    **id-like**.
//! 4. **Datetime**: at least 95 % of cells are ISO-8601 dates or date-times
//!    (`2024-01-31`, `2024-01-31 12:00:00`, `2024-01-31T12:00:00Z`,
//!    `2024/01/31`); the rest become missing with a warning.
//! 5. Otherwise strings: **categorical** when there are at most 1000
//!    distinct values and distinct values are at most half the cells (or at
//!    most 20 distinct values); **id-like** when every value is unique and
//!    values look like codes (no spaces, short); **text** otherwise.

use std::collections::HashSet;

use crate::table::Kind;

/// Cells that mean "missing" (compared after trimming spaces).
pub const MISSING_MARKERS: &[&str] = &[
    "", "NA", "N/A", "n/a", "na", "NaN", "nan", "NULL", "null", "None", "none", "?", "#N/A", "-nan",
];

pub fn is_missing(cell: &str) -> bool {
    MISSING_MARKERS.contains(&cell.trim())
}

/// true/false (any case). yes/no columns stay categorical, so their labels
/// come back as written.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

pub fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    // Rust accepts "inf"/"infinity"/"nan": only take plain numbers and
    // explicit infinities.
    let first = t.as_bytes()[0];
    if !(first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.') {
        return None;
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Some(v),
        Ok(v) if v.is_infinite() && t.to_ascii_lowercase().contains("inf") => Some(v),
        _ => None,
    }
}

/// Day count since 1970-01-01 of a (year, month, day) date.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Epoch milliseconds of an ISO-8601 date or date-time (UTC unless an
/// offset is given).
pub fn parse_datetime(s: &str) -> Option<i64> {
    let t = s.trim();
    let b = t.as_bytes();
    if b.len() < 10 || !(b[4] == b'-' || b[4] == b'/') || b[7] != b[4] {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let p = t.get(r)?;
        if p.bytes().all(|c| c.is_ascii_digit()) {
            p.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut ms = days_from_civil(y, mo, d) * 86_400_000;
    let rest = &t[10..];
    if rest.is_empty() {
        return Some(ms);
    }
    let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
    let rb = rest.as_bytes();
    if rb.len() < 5 || rb[2] != b':' {
        return None;
    }
    let h: i64 = rest.get(0..2)?.parse().ok()?;
    let mi: i64 = rest.get(3..5)?.parse().ok()?;
    let mut i = 5;
    let mut sec = 0.0f64;
    if rb.len() > 5 && rb[5] == b':' {
        let end = rest[6..]
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .map(|e| e + 6)
            .unwrap_or(rest.len());
        sec = rest.get(6..end)?.parse().ok()?;
        i = end;
    }
    if h > 23 || mi > 59 || sec >= 61.0 {
        return None;
    }
    ms += h * 3_600_000 + mi * 60_000 + (sec * 1000.0).round() as i64;
    let tz = &rest[i..];
    match tz {
        "" | "Z" | "z" => Some(ms),
        _ => {
            let sign = match tz.as_bytes()[0] {
                b'+' => -1,
                b'-' => 1,
                _ => return None,
            };
            let digits: String = tz[1..].chars().filter(|c| c.is_ascii_digit()).collect();
            if digits.len() != 4 {
                return None;
            }
            let oh: i64 = digits[0..2].parse().ok()?;
            let om: i64 = digits[2..4].parse().ok()?;
            Some(ms + sign * (oh * 3_600_000 + om * 60_000))
        }
    }
}

pub fn format_datetime_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    if rem == 0 {
        format!("{y:04}-{m:02}-{d:02}")
    } else {
        let (h, mi, s, milli) = (
            rem / 3_600_000,
            rem / 60_000 % 60,
            rem / 1000 % 60,
            rem % 1000,
        );
        if milli == 0 {
            format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
        } else {
            format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
        }
    }
}

pub fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn id_named(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    l == "id"
        || l.ends_with("_id")
        || l.ends_with("id") && name.ends_with("Id")
        || l == "index"
        || l == "key"
        || l.ends_with("_key")
        || l == "uuid"
}

/// What the inference decided for one column of text cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Inferred {
    pub kind: Kind,
    /// Non-missing cells that did not fit the kind (they become missing).
    pub bad: usize,
    pub first_bad: Option<usize>,
}

pub const PARSE_SHARE: f64 = 0.95;

pub fn infer(name: &str, cells: &[&str]) -> Inferred {
    let present: Vec<(usize, &str)> = cells
        .iter()
        .enumerate()
        .filter(|(_, c)| !is_missing(c))
        .map(|(i, c)| (i, *c))
        .collect();
    let n = present.len();
    let ok = |kind| Inferred {
        kind,
        bad: 0,
        first_bad: None,
    };
    if n == 0 {
        return ok(Kind::Numeric);
    }
    if present.iter().all(|(_, c)| parse_bool(c).is_some())
        && present.iter().any(|(_, c)| c.trim().len() > 1)
    {
        return ok(Kind::Boolean);
    }
    let nums: Vec<Option<f64>> = present.iter().map(|(_, c)| parse_number(c)).collect();
    let parsed = nums.iter().filter(|v| v.is_some()).count();
    if parsed as f64 >= PARSE_SHARE * n as f64 {
        let bad = n - parsed;
        let first_bad = present
            .iter()
            .zip(&nums)
            .find(|(_, v)| v.is_none())
            .map(|((i, _), _)| *i);
        let vals: Vec<f64> = nums.iter().flatten().copied().collect();
        let integral = vals.iter().all(|v| v.fract() == 0.0);
        let kind = if integral && bad == 0 && n >= 20 && n == cells.len() {
            let unique = vals.iter().map(|v| *v as i64).collect::<HashSet<_>>().len() == n;
            let counts_up = vals.windows(2).all(|w| w[1] - w[0] == 1.0);
            if unique && (id_named(name) || counts_up) {
                Kind::IdLike
            } else {
                Kind::Numeric
            }
        } else {
            Kind::Numeric
        };
        return Inferred {
            kind,
            bad,
            first_bad,
        };
    }
    let dates = present
        .iter()
        .filter(|(_, c)| parse_datetime(c).is_some())
        .count();
    if dates as f64 >= PARSE_SHARE * n as f64 {
        let first_bad = present
            .iter()
            .find(|(_, c)| parse_datetime(c).is_none())
            .map(|(i, _)| *i);
        return Inferred {
            kind: Kind::Datetime,
            bad: n - dates,
            first_bad,
        };
    }
    let distinct: HashSet<&str> = present.iter().map(|(_, c)| c.trim()).collect();
    let d = distinct.len();
    if d <= 20 || (d <= 1000 && d * 2 <= n) {
        return ok(Kind::Categorical);
    }
    if d == n {
        let spaced = present
            .iter()
            .filter(|(_, c)| c.trim().contains(' '))
            .count();
        let avg_len = present.iter().map(|(_, c)| c.trim().len()).sum::<usize>() as f64 / n as f64;
        if spaced * 10 < n && avg_len <= 40.0 {
            return ok(Kind::IdLike);
        }
    }
    ok(Kind::Text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for (s, want) in [
            ("1970-01-01", 0),
            ("1970-01-02", 86_400_000),
            ("2000-02-29T12:30:15Z", 951_827_415_000),
            ("2000-02-29 12:30:15", 951_827_415_000),
            ("2000-02-29T14:30:15+02:00", 951_827_415_000),
            ("2000/02/29", 951_782_400_000),
        ] {
            assert_eq!(parse_datetime(s), Some(want), "{s}");
        }
        assert_eq!(format_datetime_ms(951_827_415_000), "2000-02-29T12:30:15Z");
        assert_eq!(format_datetime_ms(-86_400_000), "1969-12-31");
        for bad in [
            "2000-13-01",
            "12/31/2020",
            "2020-01-01T25:00",
            "abc",
            "2020-01",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn kinds() {
        let k = |name: &str, cells: &[&str]| infer(name, cells).kind;
        assert_eq!(k("x", &["1", "2.5", "", "NA", "-3e2"]), Kind::Numeric);
        assert_eq!(k("flag", &["true", "FALSE", "True", ""]), Kind::Boolean);
        assert_eq!(k("answer", &["yes", "no", "yes", ""]), Kind::Categorical);
        assert_eq!(k("d", &["2024-01-01", "2024-02-01", "?"]), Kind::Datetime);
        assert_eq!(k("c", &["a", "b", "a", "c"]), Kind::Categorical);
        let ids: Vec<String> = (1..=30).map(|i| i.to_string()).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(k("PassengerId", &ids), Kind::IdLike);
        let scrambled: Vec<String> = (1..=30).map(|i| ((i * 7) % 31).to_string()).collect();
        let scrambled: Vec<&str> = scrambled.iter().map(String::as_str).collect();
        assert_eq!(
            k("count", &scrambled),
            Kind::Numeric,
            "unique integers without an id name stay numeric"
        );
        let names: Vec<String> = (0..30).map(|i| format!("Person Number {i}, Mr.")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(k("Name", &names), Kind::Text);
        let codes: Vec<String> = (0..30).map(|i| format!("AB{i:05}")).collect();
        let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
        assert_eq!(k("code", &codes), Kind::IdLike);
    }

    #[test]
    fn a_few_bad_cells_are_counted_not_fatal() {
        let mut cells = vec!["1.5"; 99];
        cells.push("oops");
        let r = infer("x", &cells);
        assert_eq!((r.kind, r.bad, r.first_bad), (Kind::Numeric, 1, Some(99)));
        assert!(parse_number("inf").is_none() && parse_number("nan").is_none());
    }
}
