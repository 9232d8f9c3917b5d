//! Settings of an S3-compatible artifact store (`s3://bucket/prefix`) and,
//! with the `s3` cargo feature, the store itself: object_store's S3 client
//! under a [`PrefixStore`](object_store::prefix::PrefixStore), checked at
//! start-up by writing, reading back and deleting a small probe object.

use crate::{ArtifactPath, ConfigError};

/// A credential: never shown by `Debug`, and it has no `Display`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where and how to reach an S3-compatible bucket. Unset credentials and
/// region come from the usual `AWS_*` environment variables.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct S3Settings {
    pub bucket: String,
    /// Folder inside the bucket ("" for the whole bucket).
    pub prefix: String,
    /// e.g. `https://minio:9000`; AWS itself when unset.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
}

impl S3Settings {
    /// Parse `s3://bucket` or `s3://bucket/some/prefix`.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let bad = |why: &str| {
            Err(ConfigError(format!(
                "--artifacts {url}: {why} (write s3://BUCKET or s3://BUCKET/PREFIX)"
            )))
        };
        let Some(rest) = url.strip_prefix("s3://") else {
            return bad("not an s3:// address");
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.len() < 3
            || bucket.len() > 63
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            || bucket.starts_with(['-', '.'])
            || bucket.ends_with(['-', '.'])
        {
            return bad(
                "the bucket name must be 3 to 63 lower-case letters, digits, '-' or '.', starting and ending with a letter or digit",
            );
        }
        let prefix = match ArtifactPath::parse(prefix) {
            Ok(p) => p.as_str().to_string(),
            Err(e) => return bad(&format!("the prefix is not usable: {e}")),
        };
        Ok(S3Settings {
            bucket: bucket.to_string(),
            prefix,
            ..Default::default()
        })
    }

    /// `s3://bucket/prefix`, as a user wrote it.
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

#[cfg(feature = "s3")]
pub(crate) mod backend {
    use std::sync::Arc;
    use std::time::Duration;

    use object_store::aws::AmazonS3Builder;
    use object_store::path::Path as ObjPath;
    use object_store::prefix::PrefixStore;
    use object_store::{BackoffConfig, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

    use super::S3Settings;
    use crate::ConfigError;

    type Result<T> = std::result::Result<T, ConfigError>;

    fn builder(s: &S3Settings) -> Result<AmazonS3Builder> {
        // reqwest's rustls needs a process-wide crypto provider; an error
        // only means one is installed already. ring rather than aws-lc-rs
        // (a large C build): rustls deprecates ring's provider only because
        // it has no post-quantum key exchange.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = AmazonS3Builder::from_env().with_bucket_name(&s.bucket);
        if let Some(e) = &s.endpoint {
            let lower = e.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err(ConfigError(format!(
                    "--s3-endpoint {e}: give a URL starting with https:// (or http:// for a server on this machine)"
                )));
            }
            if lower.starts_with("http://") {
                b = b.with_allow_http(true);
            }
            b = b.with_endpoint(e.trim_end_matches('/'));
        }
        if let Some(r) = &s.region {
            b = b.with_region(r);
        } else if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            b = b.with_region("us-east-1");
        }
        if let Some(k) = &s.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(k) = &s.secret_access_key {
            b = b.with_secret_access_key(k.expose());
        }
        if let Some(t) = &s.session_token {
            b = b.with_token(t.expose());
        }
        Ok(b)
    }

    fn build(b: AmazonS3Builder, s: &S3Settings) -> Result<Arc<dyn ObjectStore>> {
        let s3 = b.build().map_err(|e| {
            ConfigError(format!("cannot use {} as the artifact store: {e}", s.url()))
        })?;
        Ok(if s.prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, s.prefix.as_str()))
        })
    }

    /// The store, after a probe object went up, came back and was deleted.
    pub(crate) async fn open(s: &S3Settings) -> Result<Arc<dyn ObjectStore>> {
        let b = builder(s)?;
        // the probe fails fast: a wrong endpoint should not hang start-up
        // behind minutes of retries
        let probe = build(
            b.clone().with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 1,
                retry_timeout: Duration::from_secs(10),
            }),
            s,
        )?;
        check(probe.as_ref(), s).await?;
        build(b, s)
    }

    async fn check(store: &dyn ObjectStore, s: &S3Settings) -> Result<()> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let loc = ObjPath::from(format!(".atelier-probe/{}-{nanos}", std::process::id()));
        let body: &'static [u8] = b"atelier start-up check";
        let explain = |step: &str, e: object_store::Error| -> ConfigError {
            let url = s.url();
            let at = s
                .endpoint
                .as_deref()
                .map(|e| format!(" at {e}"))
                .unwrap_or_default();
            // object_store's message leaves out the causes (a TLS or DNS
            // failure is only "error sending request" there)
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                let m = c.to_string();
                if !text.contains(&m) {
                    text.push_str(": ");
                    text.push_str(&m);
                }
                cause = c.source();
            }
            // list errors come back as `Generic`: classify by the S3 reply too
            let refused = matches!(
                e,
                object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
            ) || [
                "403 Forbidden",
                "401 Unauthorized",
                "SignatureDoesNotMatch",
                "InvalidAccessKeyId",
                "NotSignedUp",
                "AccessDenied",
            ]
            .iter()
            .any(|c| text.contains(c));
            let missing =
                matches!(e, object_store::Error::NotFound { .. }) || text.contains("404 Not Found");
            // without keys object_store asks the EC2 instance-metadata service
            let no_keys = s.access_key_id.is_none()
                && std::env::var_os("AWS_ACCESS_KEY_ID").is_none_or(|v| v.is_empty());
            let msg = if no_keys
                && (text.contains("169.254.169.254")
                    || text.to_ascii_lowercase().contains("credential"))
            {
                format!(
                    "no S3 credentials were found for {url}: set AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY (or s3_access_key_id and s3_secret_access_key in the \
                     config file), or run where an instance role provides them (that lookup \
                     failed: {})",
                    short(&text)
                )
            } else if text.contains("NoSuchBucket") {
                format!(
                    "the bucket '{}' does not exist{at}: create it, or fix --artifacts {url}",
                    s.bucket
                )
            } else if refused {
                format!(
                    "the S3 server{at} refused the credentials while trying to {step} in {url}: \
                     check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or s3_access_key_id and \
                     s3_secret_access_key in the config file), and that this key may read, write \
                     and list the bucket ({})",
                    short(&text)
                )
            } else if missing {
                format!(
                    "the bucket '{}' was not found{at} (or the endpoint is not an S3 server): \
                     create it, or fix --artifacts {url} / --s3-endpoint",
                    s.bucket
                )
            } else {
                format!(
                    "cannot {step} in {url}{at}: {} (check --s3-endpoint and --s3-region, and that the server is up)",
                    short(&text)
                )
            };
            ConfigError(format!("S3 artifact store: {msg}"))
        };
        // listing first: some servers create a missing bucket on a put
        store
            .list_with_delimiter(Some(&ObjPath::from(".atelier-probe")))
            .await
            .map_err(|e| explain("list objects", e))?;
        store
            .put(&loc, PutPayload::from_static(body))
            .await
            .map_err(|e| explain("write a probe object", e))?;
        let back = match store.get(&loc).await {
            Ok(r) => r.bytes().await,
            Err(e) => Err(e),
        };
        let back = back.map_err(|e| explain("read a probe object back", e));
        let deleted = store
            .delete(&loc)
            .await
            .map_err(|e| explain("delete a probe object", e));
        if back? != body {
            return Err(ConfigError(format!(
                "S3 artifact store: a probe object written to {} came back different",
                s.url()
            )));
        }
        deleted
    }

    /// An error's text, cut to a readable length.
    fn short(t: &str) -> String {
        let t = t.trim();
        if t.chars().count() > 400 {
            let cut: String = t.chars().take(400).collect();
            format!("{cut}…")
        } else {
            t.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bucket_and_prefix() {
        let s = S3Settings::from_url("s3://ml-artifacts/atelier/").unwrap();
        assert_eq!(
            (s.bucket.as_str(), s.prefix.as_str()),
            ("ml-artifacts", "atelier")
        );
        assert_eq!(s.url(), "s3://ml-artifacts/atelier");
        assert_eq!(S3Settings::from_url("s3://bkt").unwrap().prefix, "");
        for bad in [
            "s3://",
            "s3://a",
            "s3://Upper",
            "s3://b_k/x",
            "s3://bkt/../x",
            "http://bkt",
        ] {
            let e = S3Settings::from_url(bad).unwrap_err().to_string();
            assert!(e.contains("--artifacts"), "{bad}: {e}");
        }
    }

    #[cfg(not(feature = "s3"))]
    #[tokio::test]
    async fn without_the_feature_s3_is_refused_with_the_reason() {
        let e = crate::ArtifactStore::s3(&S3Settings::from_url("s3://bkt/p").unwrap())
            .await
            .err()
            .expect("an S3 store without the s3 feature")
            .to_string();
        assert!(
            e.contains("without S3 support") && e.contains("`s3`"),
            "{e}"
        );
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let s = S3Settings {
            secret_access_key: Some(Secret::new("wJalrXUtnFEMI")),
            session_token: Some(Secret::new("tok3n")),
            ..S3Settings::from_url("s3://bkt").unwrap()
        };
        let d = format!("{s:?}");
        assert!(!d.contains("wJalrXUtnFEMI") && !d.contains("tok3n"), "{d}");
        assert!(d.contains("***"));
    }
}
