//! Cron expressions, in UTC: five fields (`minute hour day-of-month month
//! day-of-week`) as in crontab, or six with a leading seconds field (as
//! Quartz and croner accept; tests use it to fire every few seconds).
//!
//! Each field is `*`, a number, a range `a-b`, a list `a,b,c`, and any of
//! these with a step `/n` (`*/15`, `10-50/10`). Day of week is 0–7 (0 and 7
//! are Sunday). As in cron, when both day fields are restricted a time
//! matches if either does. `@hourly`, `@daily`, `@weekly`, `@monthly` are
//! shorthands.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_restricted: bool,
    weekdays_restricted: bool,
    text: String,
}

fn field(s: &str, lo: u32, hi: u32, what: &str) -> Result<u64, String> {
    let mut bits = 0u64;
    for part in s.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => {
                let n: u32 = st
                    .parse()
                    .map_err(|_| format!("{what}: step '{st}' is not a number"))?;
                if n == 0 {
                    return Err(format!("{what}: a step of 0 never fires"));
                }
                (r, n)
            }
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let a: u32 = a
                .parse()
                .map_err(|_| format!("{what}: '{a}' is not a number"))?;
            let b: u32 = b
                .parse()
                .map_err(|_| format!("{what}: '{b}' is not a number"))?;
            (a, b)
        } else {
            let a: u32 = range
                .parse()
                .map_err(|_| format!("{what}: '{range}' is not a number"))?;
            // `5/10` means from 5 to the end in steps of 10
            (a, if step > 1 { hi } else { a })
        };
        if a < lo || b > hi || a > b {
            return Err(format!(
                "{what}: '{range}' is outside {lo}–{hi} (or runs backwards)"
            ));
        }
        let mut v = a;
        while v <= b {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

impl Cron {
    pub fn parse(text: &str) -> Result<Cron, String> {
        let t = text.trim();
        let expanded = match t {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            other => other,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        let (sec, rest) = match parts.len() {
            5 => ("0", &parts[..]),
            6 => (parts[0], &parts[1..]),
            n => {
                return Err(format!(
                    "cron '{text}' has {n} fields; give 5 (minute hour day month weekday) or 6 (with seconds first), e.g. '0 * * * *' for hourly"
                ));
            }
        };
        let mut weekdays = field(rest[4], 0, 7, "day of week")?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        Ok(Cron {
            seconds: field(sec, 0, 59, "seconds")?,
            minutes: field(rest[0], 0, 59, "minute")?,
            hours: field(rest[1], 0, 23, "hour")?,
            days: field(rest[2], 1, 31, "day of month")?,
            months: field(rest[3], 1, 12, "month")?,
            weekdays: weekdays & 0x7f,
            days_restricted: rest[2] != "*",
            weekdays_restricted: rest[4] != "*",
            text: t.to_string(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn day_matches(&self, day: u32, weekday: u32) -> bool {
        let d = self.days & (1 << day) != 0;
        let w = self.weekdays & (1 << weekday) != 0;
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => d || w,
            (true, false) => d,
            (false, true) => w,
            (false, false) => true,
        }
    }

    /// The first firing time strictly after `after_ms` (epoch ms, UTC), at
    /// a whole second; `None` if there is none within ~5 years (e.g. 31 Feb).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let mut t = after_ms.div_euclid(1000) + 1; // whole seconds, strictly after
        let limit = t + 5 * 366 * 86_400;
        while t < limit {
            let days = t.div_euclid(86_400);
            let secs = t.rem_euclid(86_400);
            let (y, m, d) = civil(days);
            let weekday = (days + 4).rem_euclid(7) as u32; // 1970-01-01 was a Thursday
            if self.months & (1 << m) == 0 {
                // next month, midnight
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                t = days_from_civil(ny, nm, 1) * 86_400;
                continue;
            }
            if !self.day_matches(d, weekday) {
                t = (days + 1) * 86_400;
                continue;
            }
            let (h, mi, s) = (
                (secs / 3600) as u32,
                ((secs / 60) % 60) as u32,
                (secs % 60) as u32,
            );
            if self.hours & (1 << h) == 0 {
                t = days * 86_400 + (h as i64 + 1) * 3600;
                continue;
            }
            if self.minutes & (1 << mi) == 0 {
                t = days * 86_400 + h as i64 * 3600 + (mi as i64 + 1) * 60;
                continue;
            }
            if self.seconds & (1 << s) == 0 {
                t += 1;
                continue;
            }
            return Some(t * 1000);
        }
        None
    }

    /// The last firing time at or before `at_ms`, searching back at most
    /// `horizon_ms` (the start of an execution's window).
    pub fn previous(&self, at_ms: i64, horizon_ms: i64) -> Option<i64> {
        self.last_in(at_ms - horizon_ms, at_ms)
    }

    /// The last firing time strictly after `after_ms` and at or before
    /// `until_ms`: what a scheduler whose bookmark is `after_ms` fires at
    /// `until_ms` (missed firings in between are one firing, not many).
    pub fn last_in(&self, after_ms: i64, until_ms: i64) -> Option<i64> {
        // walk forward: firing times are sparse enough
        let mut t = after_ms;
        let mut last = None;
        while let Some(n) = self.next_after(t) {
            if n > until_ms {
                break;
            }
            last = Some(n);
            t = n;
        }
        last
    }
}

/// (year, month 1–12, day 1–31) of days since 1970-01-01 (Hinnant's algorithm).
fn civil(z: i64) -> (i64, u32, u32) {
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

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// epoch ms of a UTC date-time
    fn at(y: i64, mo: u32, d: u32, h: i64, mi: i64, s: i64) -> i64 {
        (days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s) * 1000
    }

    #[test]
    fn hourly_fires_on_the_hour() {
        let c = Cron::parse("0 * * * *").unwrap();
        assert_eq!(
            c.next_after(at(2026, 11, 27, 2, 15, 0)),
            Some(at(2026, 11, 27, 3, 0, 0))
        );
        // strictly after
        assert_eq!(
            c.next_after(at(2026, 11, 27, 3, 0, 0)),
            Some(at(2026, 11, 27, 4, 0, 0))
        );
        assert_eq!(
            c.next_after(at(2026, 12, 31, 23, 30, 0)),
            Some(at(2027, 1, 1, 0, 0, 0))
        );
        assert_eq!(
            Cron::parse("@hourly").unwrap().next_after(0),
            Some(3_600_000)
        );
    }

    #[test]
    fn steps_ranges_lists_seconds_and_weekdays() {
        let c = Cron::parse("*/15 9-17 * * 1-5").unwrap();
        // Friday 2026-11-27 17:50 → Monday 2026-11-30 09:00
        assert_eq!(
            c.next_after(at(2026, 11, 27, 17, 50, 0)),
            Some(at(2026, 11, 30, 9, 0, 0))
        );
        assert_eq!(
            c.next_after(at(2026, 11, 27, 9, 0, 0)),
            Some(at(2026, 11, 27, 9, 15, 0))
        );
        let s = Cron::parse("*/5 * * * * *").unwrap();
        assert_eq!(
            s.next_after(at(2026, 1, 1, 0, 0, 3)),
            Some(at(2026, 1, 1, 0, 0, 5))
        );
        assert_eq!(
            s.next_after(at(2026, 1, 1, 0, 0, 3) + 999),
            Some(at(2026, 1, 1, 0, 0, 5))
        );
        let l = Cron::parse("0 0 1,15 * *").unwrap();
        assert_eq!(
            l.next_after(at(2026, 2, 16, 0, 0, 0)),
            Some(at(2026, 3, 1, 0, 0, 0))
        );
        // Sunday as 7; both day fields restricted = either
        let sun = Cron::parse("0 12 * * 7").unwrap();
        assert_eq!(
            sun.next_after(at(2026, 11, 27, 0, 0, 0)),
            Some(at(2026, 11, 29, 12, 0, 0))
        );
        let either = Cron::parse("0 0 13 * 5").unwrap();
        assert_eq!(
            either.next_after(at(2026, 11, 12, 0, 0, 0)),
            Some(at(2026, 11, 13, 0, 0, 0))
        );
        assert_eq!(
            either.next_after(at(2026, 11, 13, 0, 0, 0)),
            Some(at(2026, 11, 20, 0, 0, 0))
        );
        assert_eq!(
            Cron::parse("0 0 29 2 *")
                .unwrap()
                .next_after(at(2026, 3, 1, 0, 0, 0)),
            Some(at(2028, 2, 29, 0, 0, 0))
        );
        assert_eq!(Cron::parse("0 0 31 2 *").unwrap().next_after(0), None);
    }

    #[test]
    fn the_previous_firing_starts_a_window() {
        let c = Cron::parse("0 * * * *").unwrap();
        assert_eq!(
            c.previous(at(2026, 11, 27, 3, 0, 0), 2 * 3_600_000),
            Some(at(2026, 11, 27, 3, 0, 0))
        );
        assert_eq!(
            c.previous(at(2026, 11, 27, 3, 59, 0), 2 * 3_600_000),
            Some(at(2026, 11, 27, 3, 0, 0))
        );
        assert_eq!(c.previous(at(2026, 11, 27, 3, 59, 0), 10_000), None);
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let err = |t: &str| Cron::parse(t).unwrap_err();
        assert!(err("* * *").contains("has 3 fields"));
        assert!(err("61 * * * *").contains("minute: '61' is outside 0–59"));
        assert!(err("* 24 * * *").contains("hour"));
        assert!(err("*/0 * * * *").contains("step of 0"));
        assert!(err("a * * * *").contains("'a' is not a number"));
        assert!(err("* * 0 * *").contains("day of month"));
        assert!(err("5-1 * * * *").contains("backwards"));
    }
}
