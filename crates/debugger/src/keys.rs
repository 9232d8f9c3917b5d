//! Metric key patterns: which MLflow metric keys a rule reads.
//!
//! A pattern is an exact key (`val_loss`) or a key with one `*` (`gradients/*/norm`), which stands
//! for one or more characters (`/` included) and is *captured*: the layer, GPU index or class the
//! key is about. Two rules keep system and training metrics apart:
//!
//! - a pattern that does not start with `system/` never matches a `system/…` key, so `*` means
//!   "every training metric";
//! - a pattern that starts with `system/` also matches MLflow's per-node form
//!   `system/<node>/<rest>` (multi-node runs), and the node is remembered.

use std::fmt;

/// MLflow's prefix for system metrics.
pub const SYSTEM_PREFIX: &str = "system/";

/// Longest pattern accepted (MLflow's own key limit is 250 characters).
pub const MAX_PATTERN_LEN: usize = 250;

/// One metric key pattern (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern {
    text: String,
    star: Option<usize>,
}

/// What a pattern matched: the text `*` stood for and, for `system/<node>/…` keys, the node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct KeyMatch {
    pub capture: Option<String>,
    pub node: Option<String>,
}

impl KeyPattern {
    /// Parses one pattern; `None` when it is empty, too long, holds a control character, `,`,
    /// `=`, `|` (the separators of the text form) or more than one `*`.
    pub fn parse(text: &str) -> Option<KeyPattern> {
        let text = text.trim();
        if text.is_empty()
            || text.len() > MAX_PATTERN_LEN
            || text
                .chars()
                .any(|c| c.is_control() || matches!(c, ',' | '=' | '|'))
        {
            return None;
        }
        let mut stars = text.match_indices('*');
        let star = stars.next().map(|(at, _)| at);
        if stars.next().is_some() {
            return None;
        }
        Some(KeyPattern {
            text: text.to_owned(),
            star,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn is_system(&self) -> bool {
        self.text.starts_with(SYSTEM_PREFIX)
    }

    /// `Some(capture)` when `key` matches the pattern literally.
    fn match_plain(&self, key: &str) -> Option<Option<String>> {
        match self.star {
            None => (key == self.text).then_some(None),
            Some(at) => {
                let (prefix, suffix) = (&self.text[..at], &self.text[at + 1..]);
                (key.len() > prefix.len() + suffix.len()
                    && key.starts_with(prefix)
                    && key.ends_with(suffix))
                .then(|| Some(key[prefix.len()..key.len() - suffix.len()].to_owned()))
            }
        }
    }

    pub(crate) fn matches(&self, key: &str) -> Option<KeyMatch> {
        let system_key = key.starts_with(SYSTEM_PREFIX);
        if system_key && !self.is_system() {
            return None;
        }
        if let Some(capture) = self.match_plain(key) {
            return Some(KeyMatch {
                capture,
                node: None,
            });
        }
        if system_key
            && let Some((node, tail)) = key[SYSTEM_PREFIX.len()..].split_once('/')
            && !node.is_empty()
        {
            let stripped = format!("{SYSTEM_PREFIX}{tail}");
            if let Some(capture) = self.match_plain(&stripped) {
                return Some(KeyMatch {
                    capture,
                    node: Some(node.to_owned()),
                });
            }
        }
        None
    }
}

impl fmt::Display for KeyPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A list of key patterns, written `a|b|c`; earlier patterns have priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricKeys(Vec<KeyPattern>);

impl MetricKeys {
    /// Parses `a|b|c`; `None` if the list is empty or any pattern is invalid.
    pub fn parse(text: &str) -> Option<MetricKeys> {
        let patterns = text
            .split('|')
            .map(KeyPattern::parse)
            .collect::<Option<Vec<_>>>()?;
        (!patterns.is_empty()).then_some(MetricKeys(patterns))
    }

    /// A built-in default list (checked by the tests to parse).
    pub(crate) fn builtin(text: &str) -> MetricKeys {
        MetricKeys::parse(text).unwrap_or(MetricKeys(Vec::new()))
    }

    /// The patterns, highest priority first.
    pub fn patterns(&self) -> &[KeyPattern] {
        &self.0
    }

    /// The first pattern `key` matches, with its index (its priority: lower is better).
    pub(crate) fn find(&self, key: &str) -> Option<(usize, KeyMatch)> {
        self.0
            .iter()
            .enumerate()
            .find_map(|(at, pattern)| pattern.matches(key).map(|m| (at, m)))
    }

    /// The patterns as a list of strings (for error reports).
    pub(crate) fn to_vec(&self) -> Vec<String> {
        self.0.iter().map(|p| p.text.clone()).collect()
    }
}

impl fmt::Display for MetricKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (at, pattern) in self.0.iter().enumerate() {
            if at > 0 {
                f.write_str("|")?;
            }
            f.write_str(&pattern.text)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, key: &str) -> Option<KeyMatch> {
        KeyPattern::parse(pattern).and_then(|p| p.matches(key))
    }

    #[test]
    fn exact_and_wildcard() {
        assert!(m("val_loss", "val_loss").is_some());
        assert!(m("val_loss", "val_loss2").is_none());
        let hit = m("gradients/*/norm", "gradients/fc1/weight/norm").unwrap_or_default();
        assert_eq!(hit.capture.as_deref(), Some("fc1/weight"));
        assert!(
            m("gradients/*/norm", "gradients//norm").is_none(),
            "empty capture"
        );
        assert!(m("gradients/*/norm", "gradients/norm").is_none());
    }

    #[test]
    fn star_never_matches_system_keys() {
        assert!(m("*", "loss").is_some());
        assert!(m("*", "system/cpu_utilization_percentage").is_none());
        assert!(m("system/*", "system/cpu_utilization_percentage").is_some());
    }

    #[test]
    fn node_prefixed_system_keys() {
        let hit = m(
            "system/gpu_*_utilization_percentage",
            "system/node_1/gpu_3_utilization_percentage",
        )
        .unwrap_or_default();
        assert_eq!(hit.capture.as_deref(), Some("3"));
        assert_eq!(hit.node.as_deref(), Some("node_1"));
        let plain = m(
            "system/gpu_*_utilization_percentage",
            "system/gpu_0_utilization_percentage",
        )
        .unwrap_or_default();
        assert_eq!(plain.capture.as_deref(), Some("0"));
        assert_eq!(plain.node, None);
    }

    #[test]
    fn bad_patterns() {
        for bad in ["", " ", "a*b*", "a,b", "a=b", "a|b", "a\nb"] {
            assert!(KeyPattern::parse(bad).is_none(), "{bad:?}");
        }
        assert!(MetricKeys::parse("a||b").is_none());
        assert_eq!(
            MetricKeys::parse(" loss | train_loss ")
                .map(|k| k.to_string())
                .as_deref(),
            Some("loss|train_loss")
        );
    }
}
