//! MLflow's validation rules for names, values and batch sizes
//! (mlflow/utils/validation.py), enforced at the edge so the store only
//! sees well-formed input.

use crate::error::ApiError;

pub const MAX_ENTITY_KEY_LENGTH: usize = 250;
pub const MAX_PARAM_VAL_LENGTH: usize = 6000;
pub const MAX_TAG_VAL_LENGTH: usize = 8000;
pub const MAX_EXPERIMENT_NAME_LENGTH: usize = 500;
pub const MAX_EXPERIMENT_TAG_VAL_LENGTH: usize = 20000;
pub const MAX_REGISTRY_TAG_VAL_LENGTH: usize = 100_000;
pub const MAX_METRICS_PER_BATCH: usize = 1000;
pub const MAX_PARAMS_TAGS_PER_BATCH: usize = 100;
pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
pub const MAX_RESULTS_SEARCH_RUNS: usize = 50000;
pub const MAX_DATASETS_PER_BATCH: usize = 1000;

/// posixpath.normpath, for the "path not unique" check.
fn normpath(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let absolute = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// A metric, param or tag key: `[\w/.\- :]+`, at most 250 characters, and
/// a "unique" path (no `..`, `./`, leading `/`, trailing `/`).
pub fn key(kind: &str, k: &str) -> Result<(), ApiError> {
    if !k
        .chars()
        .all(|c| c.is_alphanumeric() || "_-./ :".contains(c))
    {
        return Err(ApiError::invalid(format!(
            "Invalid {kind} name: '{k}'. Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
        )));
    }
    // Only keys with '/' or a leading '.' can fail the path rules.
    let pathlike = k.is_empty() || k.contains('/') || k.starts_with('.');
    let n = if pathlike { normpath(k) } else { k.to_string() };
    if n != k || n == "." || n.starts_with("..") || n.starts_with('/') {
        return Err(ApiError::invalid(format!(
            "Invalid {kind} name: '{k}'. Names cannot be empty and cannot contain '..', start with '/' or resolve to a different path."
        )));
    }
    if k.chars().count() > MAX_ENTITY_KEY_LENGTH {
        return Err(ApiError::invalid(format!(
            "{kind} '{}...' had length {}, which exceeded length limit of {MAX_ENTITY_KEY_LENGTH}",
            k.chars().take(20).collect::<String>(),
            k.chars().count()
        )));
    }
    Ok(())
}

/// Over-long param and tag values are truncated, as MLflow 3.x does by
/// default (`MLFLOW_TRUNCATE_LONG_VALUES`), with a warning in the log.
pub fn truncate(kind: &str, key: &str, mut v: String, limit: usize) -> String {
    if v.chars().count() > limit {
        tracing::warn!(
            kind,
            key,
            len = v.chars().count(),
            limit,
            "truncating an over-long value"
        );
        v = v.chars().take(limit).collect();
    }
    v
}

pub fn experiment_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::invalid(
            "Invalid experiment name: the name must not be empty",
        ));
    }
    if name.chars().count() > MAX_EXPERIMENT_NAME_LENGTH {
        return Err(ApiError::invalid(format!(
            "Experiment name exceeds the maximum length of {MAX_EXPERIMENT_NAME_LENGTH} characters"
        )));
    }
    Ok(())
}

pub fn value_length(kind: &str, key: &str, v: &str, limit: usize) -> Result<(), ApiError> {
    if v.chars().count() > limit {
        return Err(ApiError::invalid(format!(
            "{kind} value for '{key}' had length {}, which exceeded length limit of {limit}",
            v.chars().count()
        )));
    }
    Ok(())
}

pub fn batch(metrics: usize, params: usize, tags: usize) -> Result<(), ApiError> {
    if metrics > MAX_METRICS_PER_BATCH {
        return Err(ApiError::invalid(format!(
            "A batch logging request can contain at most {MAX_METRICS_PER_BATCH} metrics. Got {metrics} metrics. Please split up metrics across multiple requests and try again."
        )));
    }
    if params > MAX_PARAMS_TAGS_PER_BATCH {
        return Err(ApiError::invalid(format!(
            "A batch logging request can contain at most {MAX_PARAMS_TAGS_PER_BATCH} params. Got {params} params. Please split up params across multiple requests and try again."
        )));
    }
    if tags > MAX_PARAMS_TAGS_PER_BATCH {
        return Err(ApiError::invalid(format!(
            "A batch logging request can contain at most {MAX_PARAMS_TAGS_PER_BATCH} tags. Got {tags} tags. Please split up tags across multiple requests and try again."
        )));
    }
    let total = metrics + params + tags;
    if total > MAX_ENTITIES_PER_BATCH {
        return Err(ApiError::invalid(format!(
            "A batch logging request can contain at most {MAX_ENTITIES_PER_BATCH} metrics, params, and tags. Got {total} total. Please split up across multiple requests and try again."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_mlflow_rules() {
        for ok in ["loss", "val/loss", "a.b-c d:e", "épsilon"] {
            assert!(key("metric", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "bad key!",
            "../x",
            "a/../b",
            "/abs",
            "a/",
            "./a",
            "a//b",
            &"k".repeat(251),
        ] {
            assert!(key("metric", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn batch_limits() {
        assert!(batch(1000, 0, 0).is_ok());
        assert!(batch(1001, 0, 0).is_err());
        assert!(batch(0, 101, 0).is_err());
        assert!(batch(0, 0, 101).is_err());
        assert!(batch(900, 100, 1).is_err());
        assert!(batch(800, 100, 100).is_ok());
    }

    #[test]
    fn truncates_like_mlflow_3() {
        assert_eq!(
            truncate("param", "k", "x".repeat(6001), MAX_PARAM_VAL_LENGTH).len(),
            6000
        );
        assert_eq!(
            truncate("param", "k", "short".into(), MAX_PARAM_VAL_LENGTH),
            "short"
        );
    }
}
