//! Webhooks: a JSON POST per violation-finding execution, sent through a
//! durable outbox off the job workers, only to targets the server allows.
//!
//! **Outbox.** An execution queues one delivery per webhook URL in the
//! metadata store ([`MetadataStore::enqueue_webhook_deliveries`]) and ends at
//! once. [`spawn_delivery`] runs a loop (one per server process; several
//! processes may share a database) that every [`POLL`] claims due deliveries
//! with a [`LEASE`] ([`MetadataStore::claim_webhook_deliveries`]), makes *one*
//! attempt per claim on a thread of its own (at most [`MAX_IN_FLIGHT`] at
//! once, so a dead URL does not hold up the others) and records it: a 2xx
//! delivers; a 4xx other than 408/429 is final (the receiver refused this
//! body); anything else is retried, up to [`ATTEMPTS`] attempts, the next one
//! due after a backoff of [`FIRST_BACKOFF`] doubled each time (0.5 s, 1 s,
//! 2 s) — a wait that holds no thread. A process killed mid-attempt leaves
//! its lease to expire, and the delivery is claimed again. Each attempt has
//! [`TIMEOUT`] in all (name lookup, connection, answer); redirects are not
//! followed and no proxy is used, so the policy below sees the real target.
//!
//! **Policy.** [`WebhookPolicy`] keeps webhooks off loopback, private,
//! link-local (cloud metadata at 169.254.169.254), shared (100.64.0.0/10),
//! unique-local, multicast and other non-public addresses, including their
//! IPv4-mapped/-compatible, NAT64 and 6to4 IPv6 forms, unless the server's
//! `--webhook-allowed-hosts` (`ATELIER_WEBHOOK_ALLOWED_HOSTS`) names the host,
//! its address or a CIDR range holding it. It is checked when a schedule is
//! saved ([`WebhookPolicy::check_url`]: a literal address, or a name that
//! resolves only to refused addresses, is refused with the fix) and again at
//! every attempt: the HTTP client resolves names through a resolver that
//! drops refused addresses, so it only ever connects to an address that
//! passed (no DNS-rebinding window). An attempt refused there is recorded as
//! "not allowed", with no status or connection detail, and not retried.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use store::{DeliveryOutcome, MetadataStore, WebhookAttempt, WebhookDelivery};
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// Attempts per webhook (the first plus retries).
pub const ATTEMPTS: usize = 4;
/// Wait before the first retry; doubled each time (0.5 s, 1 s, 2 s).
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Time for one attempt, all included.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a claimed delivery is reserved for its claimer.
pub const LEASE: Duration = Duration::from_secs(30);
/// How often the delivery loop looks for due deliveries.
pub const POLL: Duration = Duration::from_millis(250);
/// Attempts under way at once in one process.
pub const MAX_IN_FLIGHT: usize = 4;

const FIX: &str = "--webhook-allowed-hosts";
const FIX_ENV: &str = "ATELIER_WEBHOOK_ALLOWED_HOSTS";

// ---------------------------------------------------------------- policy

/// An IP range of the allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Which webhook targets the server lets executions reach: every public
/// address, plus what the allow-list names (host names, exact and
/// case-insensitive; IP addresses; CIDR ranges).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookPolicy {
    hosts: Vec<String>,
    nets: Vec<Net>,
}

impl WebhookPolicy {
    /// The policy of the `webhook_allowed_hosts` setting: `hooks.internal`,
    /// `10.1.2.3`, `::1`, `10.0.0.0/8`, `fd00::/8`… (empty entries are skipped).
    pub fn parse(entries: &[String]) -> Result<WebhookPolicy, String> {
        let mut p = WebhookPolicy::default();
        for raw in entries {
            let e = raw.trim();
            if e.is_empty() {
                continue;
            }
            let bad = |why: &str| {
                format!(
                    "webhook allowed host '{e}' {why} (give host names, IP addresses or CIDR ranges such as 10.0.0.0/8, to {FIX} / {FIX_ENV})"
                )
            };
            if let Some((addr, prefix)) = e.split_once('/') {
                let addr: IpAddr = unbracket(addr).parse().map_err(|_| {
                    bad("is not a CIDR range: the part before '/' is not an IP address")
                })?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let prefix: u8 = prefix.parse().ok().filter(|n| *n <= max).ok_or_else(|| {
                    bad(&format!(
                        "is not a CIDR range: the prefix length must be 0–{max}"
                    ))
                })?;
                p.nets.push(Net { addr, prefix });
            } else if let Ok(addr) = unbracket(e).parse::<IpAddr>() {
                let prefix = if addr.is_ipv4() { 32 } else { 128 };
                p.nets.push(Net { addr, prefix });
            } else {
                let host = e.trim_end_matches('.').to_ascii_lowercase();
                let ok = !host.is_empty()
                    && host.len() <= 253
                    && host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                if !ok {
                    return Err(bad("is not a host name, an IP address or a CIDR range"));
                }
                p.hosts.push(host);
            }
        }
        Ok(p)
    }

    /// Whether the allow-list names this host (a name, or the literal address).
    pub fn allows_host(&self, host: &str) -> bool {
        let h = unbracket(host).trim_end_matches('.').to_ascii_lowercase();
        self.hosts.contains(&h)
    }

    /// Whether a webhook may connect to `ip`: a public address, or one the
    /// allow-list covers (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let canon = canonical(ip);
        self.nets
            .iter()
            .any(|n| n.contains(canon) || n.contains(ip))
            || not_public(ip).is_none()
    }

    /// Check a webhook URL when a schedule is saved: an http(s) URL whose
    /// host is allowed by name, or an address that [`allows_ip`](Self::allows_ip),
    /// or a name that resolves to at least one such address (`localhost` is
    /// loopback; a name that does not resolve now is let through, and checked
    /// again at every delivery). The error names the URL, why, and the fix.
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        let t = Target::parse(url)?;
        if self.allows_host(&t.host) {
            return Ok(());
        }
        let (addrs, literal) = match t.ip {
            Some(ip) => (vec![ip], true),
            None if is_localhost(&t.host) => (loopbacks(), false),
            None => match (t.host.as_str(), t.port).to_socket_addrs() {
                Ok(a) => (a.map(|a| a.ip()).collect::<Vec<_>>(), false),
                Err(_) => return Ok(()),
            },
        };
        if addrs.is_empty() || addrs.iter().any(|ip| self.allows_ip(*ip)) {
            return Ok(());
        }
        let why = if literal {
            format!(
                "{} is {}",
                t.host,
                not_public(addrs[0]).unwrap_or_else(|| "not allowed".into())
            )
        } else {
            let mut kinds: Vec<String> = addrs.iter().filter_map(|ip| not_public(*ip)).collect();
            kinds.dedup();
            format!(
                "{} resolves only to addresses that are not public ({})",
                t.host,
                kinds.join("; ")
            )
        };
        Err(format!(
            "webhook '{url}' is refused: {why}. Webhooks reach only public addresses unless the server allows the target: if it is yours, start the server with {FIX} {} (or {FIX_ENV}={})",
            t.host, t.host
        ))
    }
}

fn unbracket(s: &str) -> &str {
    s.strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s)
}

fn is_localhost(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

fn loopbacks() -> Vec<IpAddr> {
    vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Why an address is not public (`None`: it is).
pub fn not_public(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4).map(str::to_string),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    Some(match ip.octets() {
        [0, ..] => "an unspecified (\"this network\") address",
        [10, ..] | [192, 168, ..] => "a private address",
        [172, b, ..] if (16..32).contains(&b) => "a private address",
        [100, b, ..] if (64..128).contains(&b) => "a shared (carrier-grade NAT) address",
        [127, ..] => "a loopback address",
        [169, 254, 169, 254] => "the cloud metadata address (link-local)",
        [169, 254, ..] => "a link-local address",
        [192, 0, 0, _] => "an IETF protocol address",
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => "a documentation address",
        [192, 88, 99, _] => "a reserved (6to4 relay) address",
        [198, 18 | 19, ..] => "a benchmarking address",
        [255, 255, 255, 255] => "the broadcast address",
        [224..=239, ..] => "a multicast address",
        [240..=255, ..] => "a reserved address",
        _ => return None,
    })
}

fn v6_reason(ip: Ipv6Addr) -> Option<String> {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4).map(|r| format!("an IPv4-mapped form of {r}"));
    }
    if ip.is_unspecified() {
        return Some("the unspecified address".into());
    }
    if ip.is_loopback() {
        return Some("a loopback address".into());
    }
    // ::a.b.c.d, IPv4-compatible (deprecated), and ::ffff:0:a.b.c.d, IPv4-translated
    if s[..6] == [0; 6] || (s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0) {
        let v4 = embedded(s[6], s[7]);
        return Some(match v4_reason(v4) {
            Some(r) => format!("an IPv4-compatible form of {r}"),
            None => "an IPv4-compatible address (deprecated)".into(),
        });
    }
    // NAT64 (64:ff9b::/96) reaches the IPv4 address it embeds
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_reason(embedded(s[6], s[7])).map(|r| format!("a NAT64 form of {r}"));
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return Some("a local-use NAT64 address".into());
    }
    match s[0] {
        0xfc00..=0xfdff => return Some("a unique-local address".into()),
        0xfe80..=0xfebf => return Some("a link-local address".into()),
        0xfec0..=0xfeff => return Some("a site-local address (deprecated)".into()),
        0xff00..=0xffff => return Some("a multicast address".into()),
        _ => {}
    }
    // only 2000::/3 is global unicast
    if s[0] & 0xe000 != 0x2000 {
        return Some("a reserved address".into());
    }
    if (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] == 0x3fff && s[1] < 0x1000) {
        return Some("a documentation address".into());
    }
    if s[0] == 0x2001 && s[1] < 0x0200 {
        return Some("an IETF protocol address (Teredo, ORCHID, …)".into());
    }
    // 6to4 (2002::/16) reaches the IPv4 address it embeds
    if s[0] == 0x2002 {
        return v4_reason(embedded(s[1], s[2])).map(|r| format!("a 6to4 form of {r}"));
    }
    None
}

/// The parts of a webhook URL the policy looks at, parsed as the HTTP
/// client parses them.
struct Target {
    host: String,
    ip: Option<IpAddr>,
    port: u16,
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let not_http = || format!("webhook '{url}' is not an http(s) URL");
        let uri: Uri = url.parse().map_err(|_| not_http())?;
        let port = match uri.scheme_str() {
            Some("http") => 80,
            Some("https") => 443,
            _ => return Err(not_http()),
        };
        let a = uri.authority().ok_or_else(not_http)?;
        let host = unbracket(a.host()).to_string();
        if host.is_empty() {
            return Err(format!("webhook '{url}' has no host"));
        }
        Ok(Target {
            ip: host.parse().ok(),
            port: a.port_u16().unwrap_or(port),
            host,
        })
    }
}

// ---------------------------------------------------------------- client

/// An attempt refused by the policy at connection time.
#[derive(Debug)]
struct NotAllowed;

impl fmt::Display for NotAllowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not allowed: the target is not a public address (allow it with {FIX} / {FIX_ENV})"
        )
    }
}

impl std::error::Error for NotAllowed {}

/// Resolves as usual, then keeps only the addresses the policy allows: the
/// client connects to nothing else, whatever the name resolves to later.
#[derive(Debug)]
struct Guard(WebhookPolicy);

impl Resolver for Guard {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().unwrap_or_default();
        let by_name = self.0.allows_host(host);
        let found: Vec<SocketAddr> = if is_localhost(host) {
            let port = match uri.port_u16() {
                Some(p) => p,
                None if uri.scheme_str() == Some("https") => 443,
                None => 80,
            };
            loopbacks()
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect()
        } else {
            DefaultResolver::default()
                .resolve(uri, config, timeout)?
                .to_vec()
        };
        let mut out = self.empty();
        for a in found {
            if by_name || self.0.allows_ip(a.ip()) {
                out.push(a);
            }
        }
        if out.is_empty() {
            return Err(ureq::Error::Other(Box::new(NotAllowed)));
        }
        Ok(out)
    }
}

/// The HTTP client of webhooks: [`TIMEOUT`] per attempt, no redirects, no
/// proxy, every connection through the policy; `https` certificates checked
/// against the platform's trust store (a company CA installed there, or
/// named by `SSL_CERT_FILE`, is trusted).
pub fn client(policy: WebhookPolicy) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    let config = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .max_redirects(0)
        .proxy(None)
        .user_agent(concat!("atelier/", env!("CARGO_PKG_VERSION")))
        .build();
    ureq::Agent::with_parts(config, DefaultConnector::default(), Guard(policy))
}

/// What one attempt means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Delivered,
    /// Not worth retrying: the receiver or the policy refused it.
    Final,
    Retry,
}

/// One POST of `body` to `url`.
fn attempt(agent: &ureq::Agent, url: &str, body: &str) -> (WebhookAttempt, Verdict) {
    let at_ms = store::now_ms();
    let failed = |error: String, v: Verdict| {
        (
            WebhookAttempt {
                at_ms,
                status: None,
                error: Some(error),
            },
            v,
        )
    };
    if let Err(e) = Target::parse(url) {
        return failed(e, Verdict::Final);
    }
    let r = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body.as_bytes());
    match r {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let v = if (200..300).contains(&status) {
                Verdict::Delivered
            } else if (400..500).contains(&status) && status != 408 && status != 429 {
                Verdict::Final
            } else {
                Verdict::Retry
            };
            (
                WebhookAttempt {
                    at_ms,
                    status: Some(status),
                    error: None,
                },
                v,
            )
        }
        Err(ureq::Error::Other(e)) if e.is::<NotAllowed>() => {
            failed(NotAllowed.to_string(), Verdict::Final)
        }
        Err(e) => failed(e.to_string(), Verdict::Retry),
    }
}

/// The wait before attempt `done + 1`, after `done` failed ones.
fn backoff(done: usize) -> Duration {
    FIRST_BACKOFF * 2u32.saturating_pow(done.saturating_sub(1).min(16) as u32)
}

/// Make one attempt of a claimed delivery and record it.
fn deliver_one(store: &dyn MetadataStore, agent: &ureq::Agent, d: &WebhookDelivery) {
    let (a, verdict) = attempt(agent, &d.url, &d.body);
    let done = d.attempts.len() + 1;
    let outcome = match verdict {
        Verdict::Delivered => DeliveryOutcome::Delivered,
        Verdict::Final => DeliveryOutcome::Failed,
        Verdict::Retry if done >= ATTEMPTS => DeliveryOutcome::Failed,
        Verdict::Retry => DeliveryOutcome::RetryAt(
            store::now_ms().saturating_add(backoff(done).as_millis() as i64),
        ),
    };
    match store.record_webhook_attempt(d.id, d.claimed_until_ms, &a, outcome) {
        Ok(true) => match outcome {
            DeliveryOutcome::Delivered => {
                tracing::debug!(url = %d.url, schedule = %d.schedule, attempts = done, "webhook delivered")
            }
            DeliveryOutcome::Failed => tracing::warn!(
                url = %d.url,
                schedule = %d.schedule,
                execution = %d.job_id,
                "webhook not delivered after {done} attempt(s)"
            ),
            DeliveryOutcome::RetryAt(_) => {
                tracing::debug!(url = %d.url, attempt = done, "webhook attempt failed; retrying")
            }
        },
        Ok(false) => tracing::debug!(
            url = %d.url,
            "webhook lease expired during the attempt; another claim records it"
        ),
        Err(e) => tracing::warn!(
            url = %d.url,
            "could not record a webhook attempt (retried when its lease expires): {e}"
        ),
    }
}

// ---------------------------------------------------------------- loop

/// Frees an in-flight slot when its attempt ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The delivery loop's state: the store, the client, attempts under way.
pub struct Outbox {
    store: Arc<dyn MetadataStore>,
    agent: ureq::Agent,
    in_flight: Arc<AtomicUsize>,
}

impl Outbox {
    pub fn new(store: Arc<dyn MetadataStore>, policy: WebhookPolicy) -> Outbox {
        Outbox {
            store,
            agent: client(policy),
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Attempts under way.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Claim what is due (as many as there are free slots) and start one
    /// attempt per claimed delivery, each on its own thread; returns how many.
    pub fn poll(&self) -> Result<usize, store::StoreError> {
        let free = MAX_IN_FLIGHT.saturating_sub(self.in_flight());
        if free == 0 {
            return Ok(0);
        }
        let claimed =
            self.store
                .claim_webhook_deliveries(store::now_ms(), LEASE.as_millis() as i64, free)?;
        let n = claimed.len();
        for d in claimed {
            self.in_flight.fetch_add(1, Ordering::AcqRel);
            let slot = Slot(self.in_flight.clone());
            let (st, agent) = (self.store.clone(), self.agent.clone());
            let spawned = std::thread::Builder::new()
                .name("webhook".into())
                .spawn(move || {
                    let _slot = slot;
                    deliver_one(st.as_ref(), &agent, &d);
                });
            if let Err(e) = spawned {
                // the slot went with the closure; the lease brings the delivery back
                tracing::warn!("could not start a webhook attempt: {e}");
            }
        }
        Ok(n)
    }
}

/// Deliver the outbox's webhooks until the process ends: a thread that polls
/// every [`POLL`] (see the module docs).
pub fn spawn_delivery(
    store: Arc<dyn MetadataStore>,
    policy: WebhookPolicy,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let outbox = Outbox::new(store, policy);
    std::thread::Builder::new()
        .name("webhook-outbox".into())
        .spawn(move || {
            let mut last_error = String::new();
            loop {
                match outbox.poll() {
                    Ok(_) => last_error.clear(),
                    Err(e) => {
                        let e = e.to_string();
                        if e != last_error {
                            tracing::warn!("webhook outbox: {e}");
                            last_error = e;
                        }
                    }
                }
                std::thread::sleep(POLL);
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::time::Instant;

    fn policy(entries: &[&str]) -> WebhookPolicy {
        WebhookPolicy::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_non_public_range_is_refused() {
        let p = WebhookPolicy::default();
        for (addr, why) in [
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("100.127.255.254", "carrier-grade NAT"),
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.1.1", "link-local"),
            ("192.0.0.8", "IETF"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "broadcast"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "IPv4-mapped form of a loopback"),
            (
                "::ffff:169.254.169.254",
                "IPv4-mapped form of the cloud metadata",
            ),
            ("::ffff:10.0.0.1", "IPv4-mapped form of a private"),
            ("::127.0.0.1", "IPv4-compatible form of a loopback"),
            ("::8.8.8.8", "IPv4-compatible address"),
            ("::ffff:0:10.0.0.1", "IPv4-compatible form of a private"),
            ("64:ff9b::a9fe:a9fe", "NAT64 form of the cloud metadata"),
            ("64:ff9b:1::1", "local-use NAT64"),
            ("100::1", "reserved"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("2001::1", "IETF"),
            ("2002:7f00:1::", "6to4 form of a loopback"),
            ("2002:a00:1::", "6to4 form of a private"),
        ] {
            assert!(!p.allows_ip(ip(addr)), "{addr} is allowed");
            let r = not_public(ip(addr)).unwrap();
            assert!(r.contains(why), "{addr}: {r}");
        }
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "172.15.0.1",
            "172.32.0.1",
            "100.63.0.1",
            "100.128.0.1",
            "169.253.0.1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
        ] {
            assert!(p.allows_ip(ip(addr)), "{addr} is refused");
        }
    }

    #[test]
    fn the_allow_list_takes_names_addresses_and_ranges() {
        let p = policy(&[
            "Hooks.Internal.",
            "127.0.0.1",
            "10.0.0.0/8",
            "[::1]",
            "fd00::/8",
            " ",
            "192.168.1.77/16",
        ]);
        assert!(p.allows_host("hooks.internal"));
        assert!(p.allows_host("HOOKS.internal."));
        assert!(!p.allows_host("other.internal"));
        assert!(!p.allows_host("internal"));
        assert!(p.allows_ip(ip("127.0.0.1")));
        assert!(p.allows_ip(ip("::ffff:127.0.0.1")), "mapped forms count");
        assert!(!p.allows_ip(ip("127.0.0.2")));
        assert!(p.allows_ip(ip("10.200.3.4")));
        assert!(!p.allows_ip(ip("172.16.0.1")));
        assert!(p.allows_ip(ip("::1")));
        assert!(p.allows_ip(ip("fd12::9")));
        assert!(!p.allows_ip(ip("fc00::1")));
        // host bits of a range are ignored
        assert!(p.allows_ip(ip("192.168.200.1")));
        assert!(!p.allows_ip(ip("169.254.169.254")));
        let all = policy(&["0.0.0.0/0", "::/0"]);
        assert!(all.allows_ip(ip("169.254.169.254")) && all.allows_ip(ip("fe80::1")));
        assert_eq!(WebhookPolicy::parse(&[]).unwrap(), WebhookPolicy::default());
    }

    #[test]
    fn a_bad_allow_list_entry_is_named() {
        let err = |e: &str| WebhookPolicy::parse(&[e.to_string()]).unwrap_err();
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/x",
            "10.0.0/8",
            "nothost/8",
        ] {
            let e = err(bad);
            assert!(e.contains(bad) && e.contains("CIDR"), "{e}");
        }
        let e = err("127.0.0.1:8080");
        assert!(
            e.contains("'127.0.0.1:8080'") && e.contains("host name"),
            "{e}"
        );
        assert!(err("http://x").contains("--webhook-allowed-hosts"));
    }

    #[test]
    fn urls_are_checked_with_the_reason_and_the_fix() {
        let p = WebhookPolicy::default();
        for (url, why) in [
            ("http://127.0.0.1:9/", "loopback"),
            ("http://localhost:9/", "loopback"),
            ("http://LOCALHOST./x", "loopback"),
            ("http://api.localhost/", "loopback"),
            ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
            ("http://10.1.2.3/", "private"),
            ("http://[::1]:80/", "loopback"),
            ("https://[fe80::1]/", "link-local"),
            ("http://[::ffff:127.0.0.1]/", "IPv4-mapped"),
            ("http://user:pw@192.168.0.1/", "private"),
        ] {
            let e = p.check_url(url).unwrap_err();
            assert!(
                e.contains(url)
                    && e.contains(why)
                    && e.contains("--webhook-allowed-hosts")
                    && e.contains("ATELIER_WEBHOOK_ALLOWED_HOSTS"),
                "{url}: {e}"
            );
        }
        assert!(p.check_url("ftp://x/").unwrap_err().contains("not an http"));
        assert!(
            p.check_url("not a url")
                .unwrap_err()
                .contains("not an http")
        );
        assert!(p.check_url("http://8.8.8.8/hook").is_ok());
        assert!(p.check_url("https://[2606:4700:4700::1111]/").is_ok());
        // allowed by address, by range, by name
        let p = policy(&["127.0.0.1", "10.0.0.0/8", "localhost", "::1/128"]);
        assert!(p.check_url("http://127.0.0.1:9/").is_ok());
        assert!(p.check_url("http://10.1.2.3/").is_ok());
        assert!(p.check_url("http://LocalHost:9/").is_ok());
        assert!(p.check_url("http://[::1]:80/").is_ok());
        assert!(p.check_url("http://169.254.169.254/").is_err());
        // a loopback address allowed lets localhost through (it resolves there too)
        assert!(
            policy(&["127.0.0.1"])
                .check_url("http://localhost/")
                .is_ok()
        );
    }

    #[test]
    fn backoff_doubles_from_half_a_second() {
        assert_eq!(
            (1..ATTEMPTS).map(backoff).collect::<Vec<_>>(),
            [
                Duration::from_millis(500),
                Duration::from_secs(1),
                Duration::from_secs(2)
            ]
        );
    }

    /// A receiver on 127.0.0.1 that answers the given statuses in turn
    /// (the last one from then on) and counts connections.
    fn receiver(statuses: &'static [u16]) -> (String, Arc<AtomicUsize>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        let n = Arc::new(AtomicUsize::new(0));
        let count = n.clone();
        std::thread::spawn(move || {
            for stream in l.incoming() {
                let Ok(mut stream) = stream else { continue };
                let i = count.fetch_add(1, Ordering::SeqCst);
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                let status = statuses[i.min(statuses.len() - 1)];
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                );
            }
        });
        (url, n)
    }

    fn outbox(entries: &[&str]) -> (tempfile::TempDir, Arc<dyn MetadataStore>, Outbox) {
        let dir = tempfile::tempdir().unwrap();
        let st: Arc<dyn MetadataStore> =
            Arc::new(store::SqlStore::open(dir.path().join("m.db")).unwrap());
        let o = Outbox::new(st.clone(), policy(entries));
        (dir, st, o)
    }

    /// Poll until the job's deliveries are all settled.
    fn settle(st: &Arc<dyn MetadataStore>, o: &Outbox, job: &str) -> Vec<WebhookDelivery> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            o.poll().unwrap();
            let d = st.list_webhook_deliveries(&[job.to_string()]).unwrap();
            if o.in_flight() == 0 && d.iter().all(|d| d.state != store::DeliveryState::Pending) {
                return d;
            }
            assert!(Instant::now() < deadline, "still pending: {d:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn a_refused_target_is_never_contacted() {
        let (url, hits) = receiver(&[200]);
        let (_d, st, o) = outbox(&[]);
        st.enqueue_webhook_deliveries("j", "s", &[url], "{}")
            .unwrap();
        let d = settle(&st, &o, "j");
        assert_eq!(d[0].state, store::DeliveryState::Failed);
        assert_eq!(d[0].attempts.len(), 1, "a refusal is final");
        let e = d[0].attempts[0].error.clone().unwrap();
        assert!(
            e.contains("not allowed") && d[0].attempts[0].status.is_none(),
            "{e}"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 0);
        // localhost too, whatever the system resolver says
        let (url, hits) = receiver(&[200]);
        let url = url.replace("127.0.0.1", "localhost");
        st.enqueue_webhook_deliveries("k", "s", &[url], "{}")
            .unwrap();
        let d = settle(&st, &o, "k");
        assert!(
            d[0].attempts[0]
                .error
                .as_deref()
                .unwrap_or("")
                .contains("not allowed")
        );
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_dead_webhook_does_not_hold_up_the_others() {
        // accepts connections and never answers
        let dead = TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_url = format!("http://{}/", dead.local_addr().unwrap());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in dead.incoming() {
                held.push(s);
            }
        });
        let (ok, _) = receiver(&[200]);
        let (_d, st, o) = outbox(&["127.0.0.1"]);
        st.enqueue_webhook_deliveries("j", "s", &[dead_url, ok], "{}")
            .unwrap();
        let t = Instant::now();
        loop {
            o.poll().unwrap();
            let d = st.list_webhook_deliveries(&["j".into()]).unwrap();
            if d[1].state == store::DeliveryState::Delivered {
                assert_eq!(d[0].state, store::DeliveryState::Pending);
                assert!(
                    d[0].attempts.is_empty(),
                    "the dead one is still in its first attempt"
                );
                break;
            }
            assert!(
                t.elapsed() < TIMEOUT,
                "the live webhook waited for the dead one"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(o.in_flight(), 1);
    }

    #[test]
    fn a_failure_is_retried_with_backoff_and_a_refusal_is_final() {
        let (retried, _) = receiver(&[500, 503, 200]);
        let (refused, _) = receiver(&[404]);
        let (throttled, _) = receiver(&[429]);
        let (_d, st, o) = outbox(&["127.0.0.1"]);
        st.enqueue_webhook_deliveries("j", "s", &[retried, refused, throttled], r#"{"a":1}"#)
            .unwrap();
        let t = Instant::now();
        let d = settle(&st, &o, "j");
        let statuses = |d: &WebhookDelivery| {
            d.attempts
                .iter()
                .map(|a| a.status.unwrap_or(0))
                .collect::<Vec<_>>()
        };
        assert_eq!(d[0].state, store::DeliveryState::Delivered);
        assert_eq!(statuses(&d[0]), [500, 503, 200]);
        let gap = d[0].attempts[2].at_ms - d[0].attempts[1].at_ms;
        assert!(gap >= 1000, "the second retry waits 1 s: {gap} ms");
        assert_eq!(d[1].state, store::DeliveryState::Failed);
        assert_eq!(statuses(&d[1]), [404]);
        assert_eq!(d[2].state, store::DeliveryState::Failed);
        assert_eq!(statuses(&d[2]), [429; ATTEMPTS]);
        assert!(t.elapsed() >= Duration::from_millis(3500));
    }
}
