//! Who may talk to this server from a browser: the `Host` names it answers
//! to (DNS rebinding) and the web origins allowed to call it (cross-site
//! requests), the way MLflow's `--allowed-hosts` / `--cors-allowed-origins`
//! do.
//!
//! - **Host.** `localhost` (and `*.localhost`), any IP address, and the names
//!   configured. A rebinding attack needs a host name the attacker controls,
//!   so an IP literal is always safe; any other name must be listed.
//! - **Origin.** A request whose `Origin` is not the server's own (same
//!   scheme-less host and port as `Host`) and not configured is refused when
//!   it could change something (any method but GET, HEAD and OPTIONS).
//!   Configured origins get CORS answers, preflights included.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderValue, Method, header};

/// The Studio's Content-Security-Policy: scripts, styles, images and
/// requests from this origin only; no plugins, no foreign frames, forms
/// post only here. Inline `style` attributes are allowed (the Studio sets
/// widths and positions through them); inline scripts are not.
pub const STUDIO_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; frame-src 'self'; frame-ancestors 'self'; object-src 'none'; base-uri 'none'; form-action 'self'";

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`: any subdomain (not the apex).
    Suffix(String),
}

/// The Host and Origin rules of a server.
#[derive(Debug, Clone, Default)]
pub struct SitePolicy {
    any_host: bool,
    hosts: Vec<HostPattern>,
    any_origin: bool,
    origins: Vec<String>,
}

/// `host[:port]` or `[v6]:port` → the host part, lower-cased, brackets removed.
fn host_part(authority: &str) -> String {
    let a = authority.trim();
    let host = if let Some(rest) = a.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        match a.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
            _ => a,
        }
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// `scheme://host[:port]` normalised: lower case, default port dropped.
fn normalise_origin(o: &str) -> Option<String> {
    let o = o.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, rest) = o.split_once("://")?;
    if rest.is_empty() || rest.contains('/') {
        return None;
    }
    let rest = match (scheme, rest.rsplit_once(':')) {
        ("http", Some((h, "80"))) | ("https", Some((h, "443"))) if !h.is_empty() => h,
        ("http" | "https", _) => rest,
        _ => return None,
    };
    Some(format!("{scheme}://{rest}"))
}

impl SitePolicy {
    /// From the configured lists: host names (`*` turns the check off,
    /// `*.example.com` matches subdomains) and origins (`*` allows any).
    pub fn new(hosts: &[String], origins: &[String]) -> Result<SitePolicy, String> {
        let mut p = SitePolicy::default();
        for h in hosts {
            let h = h.trim();
            if h.is_empty() {
                continue;
            }
            if h == "*" {
                p.any_host = true;
            } else if let Some(s) = h.strip_prefix("*.") {
                p.hosts
                    .push(HostPattern::Suffix(format!(".{}", host_part(s))));
            } else if h.contains("://") || h.contains('/') {
                return Err(format!(
                    "allowed host '{h}' must be a host name (e.g. studio.example.com), not a URL"
                ));
            } else {
                p.hosts.push(HostPattern::Exact(host_part(h)));
            }
        }
        for o in origins {
            let o = o.trim();
            if o.is_empty() {
                continue;
            }
            if o == "*" {
                p.any_origin = true;
            } else {
                let n = normalise_origin(o).ok_or_else(|| {
                    format!("allowed origin '{o}' must look like https://host or http://host:port")
                })?;
                p.origins.push(n);
            }
        }
        Ok(p)
    }

    /// Whether a `Host` header names this server.
    pub fn host_allowed(&self, authority: &str) -> bool {
        if self.any_host {
            return true;
        }
        let h = host_part(authority);
        if h.parse::<IpAddr>().is_ok() || h == "localhost" || h.ends_with(".localhost") {
            return true;
        }
        self.hosts.iter().any(|p| match p {
            HostPattern::Exact(e) => *e == h,
            HostPattern::Suffix(s) => h.ends_with(s.as_str()),
        })
    }

    /// Whether `origin` may call the API cross-origin.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        if self.any_origin {
            return true;
        }
        normalise_origin(origin).is_some_and(|o| self.origins.contains(&o))
    }
}

/// The request's `Origin`, when it is a different origin from the server
/// the request is addressed to (its `Host`). `Origin: null` (sandboxed
/// frames, files) is cross-origin.
pub fn cross_origin(headers: &HeaderMap) -> Option<String> {
    let origin = headers.get(header::ORIGIN)?.to_str().unwrap_or("null");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let Some(o) = normalise_origin(origin) else {
        return Some(origin.to_string());
    };
    let scheme = o.split("://").next().unwrap_or("http");
    let same = normalise_origin(&format!("{scheme}://{host}")).as_deref() == Some(o.as_str());
    if same { None } else { Some(origin.to_string()) }
}

/// A browser asks about a cross-origin call it is about to make.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// CORS headers for an allowed origin (on answers and preflights alike).
pub fn add_cors(h: &mut HeaderMap, origin: &str, request: &HeaderMap, preflight: bool) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if preflight {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE"),
        );
        let asked = request
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("authorization, content-type"));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked);
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
}

/// Whether a method can change state (everything but GET, HEAD, OPTIONS).
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether a `Content-Type` names JSON (`application/json`, any parameters,
/// or a `+json` type).
pub fn is_json(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn loopback_names_and_ip_addresses_are_allowed_by_default() {
        let p = SitePolicy::new(&[], &[]).unwrap();
        for ok in [
            "localhost",
            "localhost:5000",
            "LOCALHOST.:5000",
            "studio.localhost:80",
            "127.0.0.1:5000",
            "127.0.0.2",
            "[::1]:5000",
            "10.0.0.7:5000",
        ] {
            assert!(p.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:5000",
            "localhost.evil.example",
            "127.0.0.1.nip.io:5000",
            "",
        ] {
            assert!(!p.host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn configured_hosts_exact_wildcard_and_any() {
        let p = SitePolicy::new(
            &["Studio.Example.com".into(), "*.corp.internal".into()],
            &[],
        )
        .unwrap();
        assert!(p.host_allowed("studio.example.com:443"));
        assert!(p.host_allowed("ml.corp.internal"));
        assert!(!p.host_allowed("corp.internal"));
        assert!(!p.host_allowed("example.com"));
        assert!(
            SitePolicy::new(&["*".into()], &[])
                .unwrap()
                .host_allowed("x.y")
        );
        assert!(SitePolicy::new(&["https://x.y".into()], &[]).is_err());
    }

    #[test]
    fn origins_are_normalised_and_matched_exactly() {
        let p = SitePolicy::new(&[], &["https://Notebooks.example.com:443/".into()]).unwrap();
        assert!(p.origin_allowed("https://notebooks.example.com"));
        assert!(!p.origin_allowed("http://notebooks.example.com"));
        assert!(!p.origin_allowed("https://notebooks.example.com.evil.io"));
        assert!(!p.origin_allowed("null"));
        assert!(SitePolicy::new(&[], &["notebooks.example.com".into()]).is_err());
        assert!(
            SitePolicy::new(&[], &["*".into()])
                .unwrap()
                .origin_allowed("https://a.b")
        );
    }

    #[test]
    fn same_origin_is_judged_against_the_host_header() {
        let same = headers(&[
            ("host", "127.0.0.1:5000"),
            ("origin", "http://127.0.0.1:5000"),
        ]);
        assert_eq!(cross_origin(&same), None);
        let default_port = headers(&[("host", "localhost"), ("origin", "http://localhost:80")]);
        assert_eq!(cross_origin(&default_port), None);
        let other_port = headers(&[
            ("host", "127.0.0.1:5000"),
            ("origin", "http://127.0.0.1:8888"),
        ]);
        assert!(cross_origin(&other_port).is_some());
        let foreign = headers(&[
            ("host", "127.0.0.1:5000"),
            ("origin", "https://evil.example"),
        ]);
        assert_eq!(
            cross_origin(&foreign).as_deref(),
            Some("https://evil.example")
        );
        let null = headers(&[("host", "127.0.0.1:5000"), ("origin", "null")]);
        assert!(cross_origin(&null).is_some());
        assert_eq!(cross_origin(&headers(&[("host", "x")])), None);
    }

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/vnd.api+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
        assert!(!is_json("multipart/form-data; boundary=x"));
        assert!(!is_json(""));
    }
}
