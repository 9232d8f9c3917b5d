//! Webhooks: a JSON POST per violation-finding execution, retried with
//! exponential backoff, every attempt logged.

use std::time::Duration;

use serde_json::{Value, json};

/// Attempts per webhook (the first plus retries).
pub const ATTEMPTS: usize = 4;
/// Wait before the first retry; doubled each time (0.5 s, 1 s, 2 s).
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// POST `body` to every URL; returns one delivery log per URL:
/// `{"url", "delivered", "attempts": [{"at_ms", "status"?, "error"?}]}`.
/// A 2xx delivers; 4xx other than 408/429 is not retried (the receiver
/// refused this body); anything else is retried.
pub fn deliver(urls: &[String], body: &Value) -> Vec<Value> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let text = body.to_string();
    urls.iter()
        .map(|url| {
            let mut attempts = Vec::new();
            let mut delivered = false;
            let mut wait = FIRST_BACKOFF;
            for i in 0..ATTEMPTS {
                if i > 0 {
                    std::thread::sleep(wait);
                    wait *= 2;
                }
                let at = store::now_ms();
                let r = agent
                    .post(url)
                    .header("Content-Type", "application/json")
                    .header("User-Agent", concat!("atelier/", env!("CARGO_PKG_VERSION")))
                    .send(text.as_bytes());
                match r {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        attempts.push(json!({"at_ms": at, "status": status}));
                        if (200..300).contains(&status) {
                            delivered = true;
                            break;
                        }
                        if (400..500).contains(&status) && status != 408 && status != 429 {
                            break;
                        }
                    }
                    Err(e) => attempts.push(json!({"at_ms": at, "error": e.to_string()})),
                }
            }
            if !delivered {
                tracing::warn!(%url, "webhook not delivered after {} attempt(s)", attempts.len());
            }
            json!({"url": url, "delivered": delivered, "attempts": attempts})
        })
        .collect()
}
