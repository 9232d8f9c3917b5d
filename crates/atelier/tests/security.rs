//! Safe by default: the attacks a web page, a foreign host name, a large
//! body or a viewer's token could make on a running server, each against
//! the real binary over HTTP.

mod common;

use common::*;
use serde_json::{Value, json};

/// One raw HTTP/1.1 request: (status, headers, body).
fn send(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    exchange(port, &bytes)
}

/// A chunked request (no length declared up front): (status, body).
fn chunked(port: u16, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let mut b = Vec::new();
    for c in body.chunks(64 << 10) {
        b.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        b.extend_from_slice(c);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(b"0\r\n\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&b);
    let (c, _, body) = exchange(port, &bytes);
    (c, body)
}

fn run_status(a: &ureq::Agent, s: &Server, run: &str) -> String {
    let (c, r) = get(a, &s.url(&format!("/api/2.0/mlflow/runs/get?run_id={run}"))).unwrap();
    assert_eq!(c, 200, "{r}");
    r["run"]["info"]["lifecycle_stage"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A page on another site can post `text/plain` without a preflight, and
/// with DNS rebinding it can even be same-origin; neither may delete a run.
#[test]
fn a_web_page_cannot_drive_an_open_server() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let a = agent();
    let run = create_run(&a, &s, "cross-site");
    let body = format!("{{\"run_id\": \"{run}\"}}");
    let p = "/api/2.0/mlflow/runs/delete";
    // the classic cross-site form post: text/plain "JSON", no preflight
    let (c, _, msg) = send(
        s.port,
        "POST",
        p,
        &[
            ("Content-Type", "text/plain"),
            ("Origin", "https://evil.example"),
        ],
        body.as_bytes(),
    );
    assert_eq!(c, 403, "{msg}");
    assert!(msg.contains("--cors-allowed-origins"), "{msg}");
    // the same without an Origin (a client stripping it): still not JSON
    let (c, _, msg) = send(
        s.port,
        "POST",
        p,
        &[("Content-Type", "text/plain")],
        body.as_bytes(),
    );
    assert_eq!(c, 415, "{msg}");
    assert!(msg.contains("Content-Type: application/json"), "{msg}");
    // a form's urlencoded body, and a body with no type at all
    let (c, _, _) = send(
        s.port,
        "POST",
        p,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    );
    assert_eq!(c, 415);
    let (c, _, _) = send(s.port, "POST", p, &[], body.as_bytes());
    assert_eq!(c, 415);
    // a cross-origin JSON call (what a preflighted fetch would send)
    let (c, _, _) = send(
        s.port,
        "POST",
        p,
        &[
            ("Content-Type", "application/json"),
            ("Origin", "http://127.0.0.1:8888"),
        ],
        body.as_bytes(),
    );
    assert_eq!(c, 403, "another port is another origin");
    let (c, _, _) = send(
        s.port,
        "POST",
        p,
        &[("Content-Type", "application/json"), ("Origin", "null")],
        body.as_bytes(),
    );
    assert_eq!(c, 403, "sandboxed frames and files send Origin: null");
    // a browser without Origin but with Fetch Metadata saying cross-site
    let (c, _, _) = send(
        s.port,
        "POST",
        p,
        &[
            ("Content-Type", "application/json"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        body.as_bytes(),
    );
    assert_eq!(c, 403);
    // DNS rebinding: the attacker's name resolves to 127.0.0.1
    let (c, _, msg) = send(
        s.port,
        "POST",
        p,
        &[
            ("Host", "rebind.evil.example:5000"),
            ("Origin", "http://rebind.evil.example:5000"),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    );
    assert_eq!(c, 403, "{msg}");
    assert!(msg.contains("--allowed-hosts"), "{msg}");
    // ... and it cannot read answers either
    let (c, _, _) = send(
        s.port,
        "GET",
        &format!("/api/2.0/mlflow/runs/get?run_id={run}"),
        &[("Host", "rebind.evil.example:5000")],
        b"",
    );
    assert_eq!(c, 403);
    assert_eq!(run_status(&a, &s, &run), "active", "nothing was deleted");
    // the Studio itself (same origin, JSON) and plain clients still work
    let origin = format!("http://127.0.0.1:{}", s.port);
    let (c, _, msg) = send(
        s.port,
        "POST",
        p,
        &[("Content-Type", "application/json"), ("Origin", &origin)],
        body.as_bytes(),
    );
    assert_eq!(c, 200, "{msg}");
    assert_eq!(run_status(&a, &s, &run), "deleted");
    let (c, _, _) = send(
        s.port,
        "POST",
        "/api/2.0/mlflow/runs/restore",
        &[
            ("Host", &format!("localhost:{}", s.port)),
            ("Content-Type", "application/json; charset=utf-8"),
        ],
        body.as_bytes(),
    );
    assert_eq!(c, 200, "localhost is this machine");
    // an empty POST (curl -X POST) needs no content type
    let (c, r) = post(&a, &s.url("/api/atelier/datasets"), &json!({})).unwrap();
    assert_eq!(c, 405, "{r}");
    let (c, _, msg) = send(s.port, "POST", "/api/atelier/jobs/nope/cancel", &[], b"");
    assert_eq!(c, 404, "{msg}");
}

/// Pages carry a Content-Security-Policy that allows no inline or foreign
/// script and no framing by other sites.
#[test]
fn studio_pages_send_a_content_security_policy() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    for path in ["/", "/experiments", "/monitor", "/no-such-page-really"] {
        let (c, head, _) = send(s.port, "GET", path, &[], b"");
        if path.starts_with("/no-such") {
            assert_eq!(c, 404);
            continue;
        }
        assert_eq!(c, 200, "{path}");
        let csp = head
            .lines()
            .find_map(|l| l.strip_prefix("content-security-policy: "))
            .unwrap_or_else(|| panic!("{path}: no CSP in {head}"));
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-eval"), "{csp}");
        assert!(csp.contains("frame-ancestors 'self'"), "{csp}");
        assert!(csp.contains("object-src 'none'"), "{csp}");
        assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    }
}

/// Other host names and origins are refused until configured, and then
/// work from a browser (CORS answers, preflights included).
#[test]
fn hosts_and_origins_are_allowed_only_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let plain = Server::start(dir.path(), &[]);
    let (c, _, msg) = send(
        plain.port,
        "GET",
        "/health",
        &[("Host", "studio.example.com")],
        b"",
    );
    assert_eq!(c, 403, "{msg}");
    let (c, _, _) = send(
        plain.port,
        "OPTIONS",
        "/api/2.0/mlflow/experiments/create",
        &[
            ("Origin", "https://notebooks.example.com"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        b"",
    );
    assert_eq!(c, 403, "an unknown origin's preflight is refused");
    drop(plain);

    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[
            "--allowed-hosts",
            "studio.example.com,*.corp.internal",
            "--cors-allowed-origins",
            "https://notebooks.example.com",
        ],
    );
    for host in ["studio.example.com", "ml.corp.internal:5000"] {
        let (c, _, body) = send(s.port, "GET", "/health", &[("Host", host)], b"");
        assert_eq!((c, body.as_str()), (200, "OK"), "{host}");
    }
    let (c, _, _) = send(
        s.port,
        "GET",
        "/health",
        &[("Host", "other.example.com")],
        b"",
    );
    assert_eq!(c, 403);
    let create = "/api/2.0/mlflow/experiments/create";
    let (c, head, _) = send(
        s.port,
        "OPTIONS",
        create,
        &[
            ("Origin", "https://notebooks.example.com"),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization, content-type",
            ),
        ],
        b"",
    );
    assert_eq!(c, 204);
    assert!(
        head.contains("access-control-allow-origin: https://notebooks.example.com"),
        "{head}"
    );
    assert!(head.contains("access-control-allow-methods:"), "{head}");
    assert!(
        head.contains("access-control-allow-headers: authorization, content-type"),
        "{head}"
    );
    let (c, head, body) = send(
        s.port,
        "POST",
        create,
        &[
            ("Origin", "https://notebooks.example.com"),
            ("Content-Type", "application/json"),
        ],
        br#"{"name": "from-notebooks"}"#,
    );
    assert_eq!(c, 200, "{body}");
    assert!(
        head.contains("access-control-allow-origin: https://notebooks.example.com"),
        "{head}"
    );
    let (c, _, _) = send(
        s.port,
        "POST",
        create,
        &[
            ("Origin", "https://evil.example"),
            ("Content-Type", "application/json"),
        ],
        br#"{"name": "from-evil"}"#,
    );
    assert_eq!(c, 403);
    let a = agent();
    let (_, r) = get(
        &a,
        &s.url("/api/2.0/mlflow/experiments/get-by-name?experiment_name=from-evil"),
    )
    .unwrap();
    assert_eq!(r["error_code"], "RESOURCE_DOES_NOT_EXIST", "{r}");
}

/// Bodies are bounded: the unauthenticated login form reads a few KiB, an
/// API call the request limit; the server stays up.
#[test]
fn oversized_bodies_are_refused_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    token(dir.path(), "admin", "admin");
    let s = Server::start(
        dir.path(),
        &["--require-auth", "--max-request-bytes", "1048576"],
    );
    // the login form, unauthenticated, 4 MiB
    let big = vec![b'a'; 4 << 20];
    let (c, _, body) = send(
        s.port,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &big,
    );
    assert_eq!(c, 413, "{body}");
    // the same sent chunked, so no length is declared up front
    let (c, body) = chunked(s.port, "/login", "application/x-www-form-urlencoded", &big);
    assert_eq!(c, 413, "{body}");
    drop(s);

    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--max-request-bytes", "1048576"]);
    let a = agent();
    let run = create_run(&a, &s, "big");
    let big = format!(
        "{{\"run_id\": \"{run}\", \"tags\": [{{\"key\": \"k\", \"value\": \"{}\"}}]}}",
        "x".repeat(2 << 20)
    );
    for path in [
        "/api/2.0/mlflow/runs/log-batch",
        "/api/atelier/jobs",
        "/api/atelier/monitoring-schedules",
    ] {
        let (c, _, body) = send(
            s.port,
            "POST",
            path,
            &[("Content-Type", "application/json")],
            big.as_bytes(),
        );
        assert_eq!(c, 413, "{path}: {body}");
        assert!(body.contains("--max-request-bytes"), "{path}: {body}");
    }
    // chunked: the limit applies while reading
    let (c, body) = chunked(
        s.port,
        "/api/2.0/mlflow/runs/log-batch",
        "application/json",
        big.as_bytes(),
    );
    assert_eq!(c, 413, "{body}");
    // streamed uploads are not bound by the request limit
    let mut r = a
        .put(&s.url(&format!(
            "/api/2.0/mlflow-artifacts/artifacts/{run}/big.bin"
        )))
        .send(vec![7u8; 3 << 20])
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "{}",
        r.body_mut().read_to_string().unwrap_or_default()
    );
    let mut r = a.get(&s.url("/health")).call().unwrap();
    assert_eq!(r.body_mut().read_to_string().unwrap(), "OK");
}

/// A job cannot read or write the server's own files by path unless the
/// server was started with --allow-local-paths (and open on loopback).
#[test]
fn jobs_name_no_local_paths_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let a = agent();
    let (c, r) = post(
        &a,
        &s.url("/api/atelier/jobs"),
        &json!({"kind": "batch-transform", "spec": {
            "model": "models:/nope/1", "input": "/etc/passwd", "output": "/tmp/atelier-out"}}),
    )
    .unwrap();
    assert_eq!(c, 400, "{r}");
    let msg = r["message"].as_str().unwrap();
    assert!(msg.contains("--allow-local-paths"), "{msg}");
    let (c, r) = get(&a, &s.url("/api/atelier/jobs")).unwrap();
    assert_eq!(c, 200);
    assert_eq!(r["jobs"].as_array().unwrap().len(), 0, "nothing was queued");
    drop(s);
    // allowed: the spec now gets as far as the model
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--allow-local-paths"]);
    let (c, r) = post(
        &a,
        &s.url("/api/atelier/jobs"),
        &json!({"kind": "batch-transform", "spec": {
            "model": "models:/nope/1", "input": "/etc/passwd", "output": "/tmp/atelier-out"}}),
    )
    .unwrap();
    assert_eq!(c, 400, "{r}");
    let msg = r["message"].as_str().unwrap();
    assert!(!msg.contains("--allow-local-paths"), "{msg}");
    assert!(msg.contains("nope"), "{msg}");
}

/// Fill an axum path pattern with sample values.
fn concrete(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|seg| {
            if seg.starts_with("{*") {
                "a/b.txt".to_string()
            } else if seg.starts_with('{') {
                "sample".to_string()
            } else {
                seg.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Built from the routers' own declarations: every route declares a
/// permission, and the server enforces exactly that one — a viewer is
/// refused every write (a path ending in `/search` included) and allowed
/// every read; public routes need no token.
#[test]
fn every_declared_route_enforces_its_permission() {
    let dir = tempfile::tempdir().unwrap();
    let viewer = token(dir.path(), "vera", "viewer");
    let editor = token(dir.path(), "ed", "editor");
    let s = Server::start(dir.path(), &["--require-auth"]);
    let a = agent();
    let (c, list) = {
        let mut r = a
            .get(&s.url("/api/atelier/routes"))
            .header("Authorization", &format!("Bearer {viewer}"))
            .call()
            .unwrap();
        let c = r.status().as_u16();
        let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        (c, v)
    };
    assert_eq!(c, 200, "{list}");
    let routes = list["routes"].as_array().unwrap();
    assert!(routes.len() > 100, "{}", routes.len());
    let find = |m: &str, p: &str| {
        routes
            .iter()
            .find(|r| r["method"] == m && r["path"] == p)
            .unwrap_or_else(|| panic!("{m} {p} is not declared"))
    };
    assert_eq!(
        find("POST", "/api/atelier/ground-truth/{endpoint}")["access"],
        "write"
    );
    assert_eq!(
        find("POST", "/api/2.0/mlflow/runs/search")["access"],
        "read"
    );
    assert_eq!(
        find("POST", "/endpoints/{name}/invocations")["access"],
        "read"
    );
    assert_eq!(find("GET", "/health")["access"], "public");
    let mut writes = 0;
    for r in routes {
        let method = r["method"].as_str().unwrap();
        let path = concrete(r["path"].as_str().unwrap());
        if path == "/studio/api/events" {
            continue; // an endless stream; the Studio tests follow it
        }
        let access = r["access"].as_str().unwrap();
        assert!(
            ["public", "read", "write", "admin", "account"].contains(&access),
            "{method} {path}: {access}"
        );
        let bearer = format!("Bearer {viewer}");
        let (c, _, body) = send(
            s.port,
            method,
            &path,
            &[
                ("Authorization", &bearer),
                ("Content-Type", "application/json"),
            ],
            b"{}",
        );
        match access {
            "write" | "admin" => {
                writes += 1;
                assert_eq!(c, 403, "a viewer got {c} from {method} {path}: {body}");
                // (the workspace routes are a server admin's, outside any project)
                assert!(
                    body.contains("viewer role") || body.contains("is not a server admin"),
                    "{method} {path}: {body}"
                );
            }
            // the guard lets any signed-in caller through to their own account;
            // the handler refuses what is someone else's
            "account" => assert!(
                c != 401 && c != 405 && (c != 403 || body.contains("server admin")),
                "a viewer got {c} from {method} {path}: {body}"
            ),
            // (POST /login answers 401 to a form without a valid token)
            _ => assert!(
                c != 403 && c != 405 && !body.contains("UNAUTHENTICATED"),
                "a viewer got {c} from {method} {path}: {body}"
            ),
        }
        if access == "public" {
            let (c, _, body) = send(s.port, method, &path, &[], b"");
            assert!(
                c != 403 && !body.contains("Authentication required"),
                "no token: {c} from {method} {path}: {body}"
            );
        } else if method == "GET" {
            let (c, _, _) = send(s.port, method, &path, &[], b"");
            assert_eq!(c, 401, "no token: {method} {path}");
        }
        if access == "write" {
            // an editor passes the guard (the handler may still say 4xx)
            let bearer = format!("Bearer {editor}");
            let (c, _, body) = send(
                s.port,
                method,
                &path,
                &[
                    ("Authorization", &bearer),
                    ("Content-Type", "application/json"),
                ],
                b"{}",
            );
            assert!(
                c != 401 && c != 403 && c != 405,
                "an editor got {c} from {method} {path}: {body}"
            );
        }
    }
    assert!(writes > 50, "{writes}");
    // the ground truth of an endpoint named "search" is a write
    let (c, _, body) = send(
        s.port,
        "POST",
        "/api/atelier/ground-truth/search",
        &[
            ("Authorization", &format!("Bearer {viewer}")),
            ("Content-Type", "application/jsonlines"),
        ],
        br#"{"eventId": "1", "groundTruthData": {"data": "1", "encoding": "CSV"}}"#,
    );
    assert_eq!(c, 403, "{body}");
}

fn cli(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("run atelier");
    assert!(
        out.status.success(),
        "atelier {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Built from the routers' own declarations: every route, called in
/// project `team-a` as anonymous, as its viewer, editor and admin, and as
/// the admin of another project. Each role of the project gets past the
/// guard exactly where the route's declared permission allows it; someone
/// of another project learns nothing (the 404 of a project that does not
/// exist), except on the public routes and their own account's.
#[test]
fn every_declared_route_answers_each_role_of_its_project_and_nothing_to_another() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cli(d, &["projects", "create", "team-a"]);
    cli(d, &["projects", "create", "team-b"]);
    let mut tokens = std::collections::HashMap::new();
    for (user, ws, role) in [
        ("vic", "team-a", "viewer"),
        ("eddie", "team-a", "editor"),
        ("ada", "team-a", "admin"),
        ("olga", "team-b", "admin"),
    ] {
        cli(d, &["users", "create", user]);
        cli(d, &["projects", "grant", ws, user, role]);
        // (the token may do everything its user may: the role decides)
        let t = cli(
            d,
            &[
                "token",
                "create",
                &format!("{user}-t"),
                "--user",
                user,
                "--role",
                "admin",
            ],
        );
        tokens.insert(user, t);
    }
    let s = Server::start(d, &["--require-auth"]);
    let call = |who: Option<&str>, method: &str, path: &str| {
        let bearer = who.map(|w| format!("Bearer {}", tokens[w]));
        let mut h = vec![
            ("Content-Type", "application/json"),
            ("X-MLFLOW-WORKSPACE", "team-a"),
        ];
        if let Some(b) = &bearer {
            h.push(("Authorization", b.as_str()));
        }
        let (c, _, body) = send(s.port, method, path, &h, b"{}");
        (c, body)
    };
    let (c, list) = call(Some("ada"), "GET", "/api/atelier/routes");
    assert_eq!(c, 200, "{list}");
    let list: Value = serde_json::from_str(&list).unwrap();
    let routes = list["routes"].as_array().unwrap();
    let rank = |r: &str| match r {
        "viewer" => 0,
        "editor" => 1,
        _ => 2,
    };
    // refused by the guard (as opposed to a handler's own 4xx about the request)
    let guard_refused = |c: u16, body: &str| {
        c == 401
            || c == 405
            || (c == 403 && (body.contains(" role; ") || body.contains(" needs one")))
            || (c == 404 && body.contains("Workspace 'team-a' not found"))
    };
    let mut checked = 0;
    for r in routes {
        let method = r["method"].as_str().unwrap();
        let template = r["path"].as_str().unwrap();
        let path = concrete(template);
        if path == "/studio/api/events" {
            continue; // an endless stream
        }
        let access = r["access"].as_str().unwrap();
        // the workspace routes and server-info ignore the header: a non-admin reads there
        let exempt = template.contains("/mlflow/workspaces") || template.ends_with("/server-info");
        // (POST /login answers 401 to a form without a valid password or token)
        let guard_refused =
            |c: u16, body: &str| guard_refused(c, body) && !(path == "/login" && c == 401);
        let (c, body) = call(None, method, &path);
        if access == "public" {
            assert!(
                !guard_refused(c, &body),
                "anonymous: {c} from {method} {path}: {body}"
            );
        } else {
            assert_eq!(c, 401, "anonymous: {method} {path}: {body}");
        }
        for (user, role) in [("vic", "viewer"), ("eddie", "editor"), ("ada", "admin")] {
            let needed = match access {
                "write" => "editor",
                "admin" => "admin",
                _ => "viewer",
            };
            let has = if exempt { "viewer" } else { role };
            let (c, body) = call(Some(user), method, &path);
            if rank(has) >= rank(needed) {
                assert!(
                    !guard_refused(c, &body),
                    "the {role} of team-a got {c} from {method} {path}: {body}"
                );
            } else {
                assert_eq!(c, 403, "the {role} of team-a: {method} {path}: {body}");
            }
        }
        let (c, body) = call(Some("olga"), method, &path);
        if access == "public" || access == "account" || (exempt && access == "read") {
            assert!(
                !guard_refused(c, &body),
                "another project's admin got {c} from {method} {path}: {body}"
            );
        } else if exempt {
            assert_eq!(c, 403, "another project's admin: {method} {path}: {body}");
        } else {
            assert_eq!(
                (c, body.contains("Workspace 'team-a' not found")),
                (404, true),
                "another project's admin: {method} {path}: {body}"
            );
        }
        checked += 1;
    }
    assert!(checked > 300, "{checked}");
}

/// Jobs, endpoints and monitoring schedules belong to the project they were
/// made in: another project's members do not see them in lists, and reading,
/// changing, invoking or cancelling one answers exactly as for one that does
/// not exist. Endpoint names stay unique on the server (the invocation URL
/// names no project), so taking another project's name is refused without
/// touching it; an endpoint's invocation key needs no project.
#[test]
fn jobs_endpoints_and_schedules_of_one_project_are_invisible_to_another() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cli(d, &["projects", "create", "team-a"]);
    cli(d, &["projects", "create", "team-b"]);
    let mut tokens = std::collections::HashMap::new();
    for (user, ws) in [("alice", "team-a"), ("olga", "team-b")] {
        cli(d, &["users", "create", user]);
        cli(d, &["projects", "grant", ws, user, "admin"]);
        let t = cli(
            d,
            &["token", "create", &format!("{user}-t"), "--user", user],
        );
        tokens.insert(user, t);
    }
    let model = d.join("penguins.model");
    let train = std::process::Command::new(env!("CARGO_BIN_EXE_atelier"))
        .args(["train", dataset("penguins.csv").to_str().unwrap()])
        .args(["--target", "species", "--param", "n_estimators=10", "-o"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        train.status.success(),
        "{}",
        String::from_utf8_lossy(&train.stderr)
    );
    let s = Server::start(d, &["--require-auth"]);
    let call = |who: &str, ws: Option<&str>, method: &str, path: &str, body: &str| {
        let bearer = format!("Bearer {}", tokens[who]);
        let mut h = vec![
            ("Content-Type", "application/json"),
            ("Authorization", bearer.as_str()),
        ];
        if let Some(w) = ws {
            h.push(("X-MLFLOW-WORKSPACE", w));
        }
        let (c, _, b) = send(s.port, method, path, &h, body.as_bytes());
        (c, b)
    };
    let a = |m: &str, p: &str, b: &str| call("alice", Some("team-a"), m, p, b);
    let o = |m: &str, p: &str, b: &str| call("olga", Some("team-b"), m, p, b);

    // the CLI deploys in its user's project (MLFLOW_WORKSPACE, as the mlflow client)
    let deploy = |who: &str, ws: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_atelier"))
            .args([
                "deploy",
                model.to_str().unwrap(),
                "--name",
                "a-ep",
                "--server",
            ])
            .arg(s.url(""))
            .env("ATELIER_TOKEN", &tokens[who])
            .env("MLFLOW_WORKSPACE", ws)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    deploy("alice", "team-a");
    let (c, b) = a("GET", "/api/atelier/endpoints", "");
    assert_eq!(c, 200, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["endpoints"][0]["name"], "a-ep", "{b}");
    let row = "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year\nBiscoe,45.1,14.5,215,5000,female,2008\n";
    let invoke = |who: &str, ws: Option<&str>| {
        let bearer = format!("Bearer {}", tokens[who]);
        let mut h = vec![
            ("Content-Type", "text/csv"),
            ("Authorization", bearer.as_str()),
        ];
        if let Some(w) = ws {
            h.push(("X-MLFLOW-WORKSPACE", w));
        }
        let (c, _, b) = send(
            s.port,
            "POST",
            "/endpoints/a-ep/invocations",
            &h,
            row.as_bytes(),
        );
        (c, b)
    };
    let (c, b) = invoke("alice", Some("team-a"));
    assert_eq!(c, 200, "{b}");

    // a monitoring schedule on it, and a job
    let (c, b) = a(
        "POST",
        "/api/atelier/monitoring-schedules",
        r#"{"name": "a-mq", "endpoint": "a-ep", "kind": "model_quality", "enabled": false}"#,
    );
    assert_eq!(c, 201, "{b}");
    let (c, b) = a(
        "POST",
        "/api/atelier/jobs",
        r#"{"kind": "processing", "spec": {"command": ["sleep", "30"]}}"#,
    );
    assert_eq!(c, 202, "{b}");
    let job: Value = serde_json::from_str(&b).unwrap();
    let job_id = job["job"]["id"].as_str().unwrap().to_string();
    assert_eq!(job["job"]["workspace"], "team-a", "{b}");

    // olga, admin of team-b, sees none of it ...
    for (path, field) in [
        ("/api/atelier/endpoints", "endpoints"),
        ("/api/atelier/monitoring-schedules", "schedules"),
        ("/api/atelier/jobs", "jobs"),
    ] {
        let (c, b) = o("GET", path, "");
        assert_eq!(c, 200, "{path}: {b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v[field], json!([]), "{path}: {b}");
    }
    // ... and each of them answers as one that does not exist
    let missing = [
        (
            "GET",
            "/api/atelier/endpoints/a-ep".to_string(),
            "no endpoint named 'a-ep'",
        ),
        (
            "PUT",
            "/api/atelier/endpoints/a-ep".to_string(),
            "no endpoint named 'a-ep'",
        ),
        (
            "DELETE",
            "/api/atelier/endpoints/a-ep".to_string(),
            "no endpoint named 'a-ep'",
        ),
        (
            "GET",
            "/api/atelier/endpoints/a-ep/metrics".to_string(),
            "no endpoint named 'a-ep'",
        ),
        (
            "GET",
            "/api/atelier/endpoints/a-ep/capture".to_string(),
            "no endpoint named 'a-ep'",
        ),
        (
            "GET",
            "/api/atelier/endpoints/a-ep/keys".to_string(),
            "no endpoint named 'a-ep'",
        ),
        (
            "POST",
            "/api/atelier/endpoints/a-ep/keys".to_string(),
            "no endpoint named 'a-ep'",
        ),
        (
            "GET",
            "/endpoints/a-ep/ping".to_string(),
            "no endpoint named 'a-ep'",
        ),
        (
            "GET",
            "/api/atelier/monitoring-schedules/a-mq".to_string(),
            "No monitoring schedule named 'a-mq'",
        ),
        (
            "DELETE",
            "/api/atelier/monitoring-schedules/a-mq".to_string(),
            "No monitoring schedule named 'a-mq'",
        ),
        (
            "POST",
            "/api/atelier/monitoring-schedules/a-mq/run".to_string(),
            "No monitoring schedule named 'a-mq'",
        ),
        (
            "POST",
            "/api/atelier/ground-truth/a-ep".to_string(),
            "No endpoint named 'a-ep'",
        ),
        (
            "GET",
            format!("/api/atelier/jobs/{job_id}"),
            "No job with id",
        ),
        (
            "POST",
            format!("/api/atelier/jobs/{job_id}/cancel"),
            "No job with id",
        ),
        (
            "GET",
            format!("/api/atelier/jobs/{job_id}/logs"),
            "No job with id",
        ),
    ];
    for (m, p, says) in &missing {
        let body = if p.contains("ground-truth") {
            "[]"
        } else {
            "{}"
        };
        let (c, b) = o(m, p, body);
        assert_eq!((c, b.contains(says)), (404, true), "{m} {p}: {c} {b}");
        // the same answer as a name that does not exist at all
        let (c2, _) = o(
            m,
            &p.replace("a-ep", "nope")
                .replace("a-mq", "nope")
                .replace(&job_id, "0123"),
            body,
        );
        assert_eq!(c2, 404, "{m} {p} (missing)");
    }
    let (c, b) = invoke("olga", Some("team-b"));
    assert_eq!(
        (c, b.contains("no endpoint named 'a-ep'")),
        (404, true),
        "{b}"
    );
    // Prometheus text is per project too
    let (c, b) = o("GET", "/metrics", "");
    assert_eq!(c, 200, "{b}");
    assert!(!b.contains("a-ep") && !b.contains("a-mq"), "{b}");
    let (c, b) = a("GET", "/metrics", "");
    assert_eq!(c, 200, "{b}");
    assert!(b.contains("endpoint=\"a-ep\""), "{b}");
    // nor run team-a's schedule as a job of its own
    let (c, b) = o(
        "POST",
        "/api/atelier/jobs",
        r#"{"kind": "monitoring-execution", "spec": {"schedule": "a-mq", "window_start_ms": 0, "window_end_ms": 1}}"#,
    );
    assert_eq!(
        (c, b.contains("No monitoring schedule named 'a-mq'")),
        (400, true),
        "{b}"
    );
    // a schedule in team-b cannot watch team-a's endpoint
    let (c, b) = o(
        "POST",
        "/api/atelier/monitoring-schedules",
        r#"{"name": "b-mq", "endpoint": "a-ep", "kind": "model_quality"}"#,
    );
    assert_eq!(
        (c, b.contains("No endpoint named 'a-ep'")),
        (404, true),
        "{b}"
    );
    // names are the server's: taking one another project holds is refused, and changes nothing
    let (c, b) = o(
        "POST",
        "/api/atelier/endpoints",
        &json!({"name": "a-ep", "model": "runs:/x/model"}).to_string(),
    );
    assert!(c == 400 || c == 409, "{c} {b}");
    assert!(b.contains("taken by another project"), "{b}");
    let (c, b) = o(
        "POST",
        "/api/atelier/monitoring-schedules",
        r#"{"name": "a-mq", "endpoint": "nope", "kind": "model_quality"}"#,
    );
    assert_eq!(c, 404, "{b}");
    let (c, b) = a("GET", "/api/atelier/endpoints/a-ep", "");
    assert_eq!(c, 200, "{b}");
    let (c, b) = a("GET", "/api/atelier/monitoring-schedules/a-mq", "");
    assert_eq!(c, 200, "{b}");

    // an invocation key of a-ep works without naming the project
    let (c, b) = a(
        "POST",
        "/api/atelier/endpoints/a-ep/keys",
        r#"{"name": "app"}"#,
    );
    assert_eq!(c, 201, "{b}");
    let key: Value = serde_json::from_str(&b).unwrap();
    let key = format!("Bearer {}", key["key"].as_str().unwrap());
    let (c, _, b) = send(
        s.port,
        "POST",
        "/endpoints/a-ep/invocations",
        &[
            ("Content-Type", "text/csv"),
            ("Authorization", key.as_str()),
        ],
        row.as_bytes(),
    );
    assert_eq!(c, 200, "{b}");

    // a job's code acts in the job's project only: its token reads team-a, and team-b is not there
    let probe = r#"
import os, urllib.request, urllib.error
def status(ws):
    req = urllib.request.Request(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/experiments/search?max_results=1",
        headers={"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"], "X-MLFLOW-WORKSPACE": ws})
    try:
        return urllib.request.urlopen(req).status
    except urllib.error.HTTPError as e:
        return e.code
print("team-a", status("team-a"), "team-b", status("team-b"), "env", os.environ["MLFLOW_WORKSPACE"])
"#;
    let (c, b) = a(
        "POST",
        "/api/atelier/jobs",
        &json!({"kind": "processing", "spec": {"command": ["python3", "-c", probe]}}).to_string(),
    );
    assert_eq!(c, 202, "{b}");
    let probe_id = serde_json::from_str::<Value>(&b).unwrap()["job"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = std::time::Instant::now();
    let logs = loop {
        let (_, j) = a("GET", &format!("/api/atelier/jobs/{probe_id}"), "");
        let j: Value = serde_json::from_str(&j).unwrap();
        if ["succeeded", "failed", "cancelled"].contains(&j["job"]["status"].as_str().unwrap_or(""))
        {
            let (_, l) = a("GET", &format!("/api/atelier/jobs/{probe_id}/logs"), "");
            break format!("{j} {l}");
        }
        assert!(t.elapsed() < std::time::Duration::from_secs(120), "{j}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    // (its MLFLOW_WORKSPACE names the project, so the mlflow client works there unchanged)
    assert!(logs.contains("team-a 200 team-b 404 env team-a"), "{logs}");

    // what a project uploads is its own: the CLI put the model in team-a's part of the store ...
    let (c, b) = a("GET", "/api/atelier/endpoints/a-ep", "");
    assert_eq!(c, 200, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    let model_path = v["endpoint"]["variants"][0]["artifact_path"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        model_path.starts_with("projects/team-a/endpoints/a-ep/"),
        "{b}"
    );
    let url = format!("/api/2.0/mlflow-artifacts/artifacts/{model_path}");
    assert_eq!(a("GET", &url, "").0, 200);
    // ... where team-b reaches it neither directly nor by pointing at it
    let (c, b) = o("GET", &url, "");
    assert_eq!(c, 404, "{b}");
    let (c, b) = o(
        "GET",
        "/api/2.0/mlflow-artifacts/artifacts?path=projects/team-a",
        "",
    );
    assert_eq!(c, 404, "{b}");
    let (c, b) = o(
        "POST",
        "/api/atelier/endpoints",
        &json!({"name": "b-ep", "model": format!("mlflow-artifacts:/{model_path}")}).to_string(),
    );
    assert_eq!((c, b.contains("no model at")), (400, true), "{c} {b}");
    let (c, b) = o(
        "POST",
        "/api/atelier/jobs",
        &json!({"kind": "processing", "spec": {"command": ["true"],
            "inputs": {"m": format!("mlflow-artifacts:/{model_path}")}}})
        .to_string(),
    );
    assert_eq!((c, b.contains("No such artifact")), (400, true), "{c} {b}");
    let code = model_path.rsplit_once('/').unwrap().0.to_string();
    let (c, b) = o(
        "POST",
        "/api/atelier/jobs",
        &json!({"kind": "processing", "spec": {"command": ["true"], "code": code}}).to_string(),
    );
    assert_eq!((c, b.contains("No such artifact")), (400, true), "{c} {b}");
    // nor the default project's folders, which are not team-b's either
    let (c, b) = o(
        "GET",
        "/api/2.0/mlflow-artifacts/artifacts?path=capture",
        "",
    );
    assert_eq!(c, 404, "{b}");
    // alice's requests are captured (a share of them), in her project's part of the store
    for _ in 0..40 {
        assert_eq!(invoke("alice", Some("team-a")).0, 200);
    }
    let t = std::time::Instant::now();
    loop {
        let (c, b) = a("GET", "/api/atelier/endpoints/a-ep/capture", "");
        assert_eq!(c, 200, "{b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        if v["records"].as_array().is_some_and(|r| !r.is_empty()) {
            break;
        }
        assert!(t.elapsed() < std::time::Duration::from_secs(20), "{b}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // a schedule outlives its endpoint (this one is kept past a-ep's deletion below)
    let (c, b) = a(
        "POST",
        "/api/atelier/monitoring-schedules",
        r#"{"name": "a-kept", "endpoint": "a-ep", "kind": "model_quality", "enabled": false}"#,
    );
    assert_eq!(c, 201, "{b}");

    // alice still owns and manages all of it
    let (c, b) = a("POST", &format!("/api/atelier/jobs/{job_id}/cancel"), "");
    assert_eq!(c, 202, "{b}");
    let (c, b) = a("DELETE", "/api/atelier/monitoring-schedules/a-mq", "");
    assert_eq!(c, 200, "{b}");
    let (c, b) = a("DELETE", "/api/atelier/endpoints/a-ep", "");
    assert!(c == 200 || c == 204, "{c} {b}");
    // its keys went with it: the name may be taken again, by another project
    let (c, _, b) = send(
        s.port,
        "POST",
        "/endpoints/a-ep/invocations",
        &[
            ("Content-Type", "text/csv"),
            ("Authorization", key.as_str()),
        ],
        row.as_bytes(),
    );
    assert_eq!(c, 401, "{b}");
    // and when team-b takes the name, the endpoint starts with nothing of a-ep's past
    deploy("olga", "team-b");
    let (c, b) = o("GET", "/api/atelier/endpoints/a-ep/capture", "");
    assert_eq!(c, 200, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["records"], json!([]), "{b}");
    // alice's schedule left on the name reaches nothing of team-b's endpoint
    let (c, b) = a(
        "POST",
        "/api/atelier/monitoring-schedules/a-kept/retrain",
        r#"{"dataset": "x.csv"}"#,
    );
    assert_eq!(
        (c, b.contains("No endpoint named 'a-ep'")),
        (404, true),
        "{c} {b}"
    );
    // (alice's captures stay in her project's folder)
    let (c, b) = a(
        "GET",
        "/api/2.0/mlflow-artifacts/artifacts?path=projects/team-a/capture/a-ep",
        "",
    );
    assert_eq!(c, 200, "{b}");
    assert!(b.contains("\"is_dir\":true"), "{b}");
    let (c, b) = o(
        "GET",
        "/api/2.0/mlflow-artifacts/artifacts?path=projects/team-a/capture/a-ep",
        "",
    );
    assert_eq!(c, 404, "{b}");
}

/// A request the guard refuses leaves its body unread, so its connection
/// cannot serve another request: the answer says `Connection: close`, and a
/// keep-alive client does not send its next request on a closing connection.
/// A request that reaches its handler keeps its connection.
#[test]
fn a_refused_request_with_a_body_closes_its_connection() {
    let dir = tempfile::tempdir().unwrap();
    let admin = token(dir.path(), "admin", "admin");
    let s = Server::start(dir.path(), &["--require-auth"]);
    let ask = |bearer: &str| {
        format!(
            "POST /api/2.0/mlflow/experiments/search HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nAuthorization: Bearer {bearer}\r\nContent-Length: 2\r\n\r\n{{}}",
            s.port
        )
    };
    let (c, head, _) = exchange(s.port, ask("atl_wrong").as_bytes());
    assert_eq!(c, 401, "{head}");
    assert!(head.contains("connection: close"), "{head}");
    // (two requests on one connection: the first, answered, keeps it open for the second)
    let last = ask(&admin).replacen("\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1);
    let two = format!("{}{last}", ask(&admin));
    let (c, head, body) = exchange(s.port, two.as_bytes());
    assert_eq!(c, 200, "{head}");
    assert!(!head.contains("connection: close"), "{head}");
    assert_eq!(body.matches("HTTP/1.1 200").count(), 1, "{body}");
}
