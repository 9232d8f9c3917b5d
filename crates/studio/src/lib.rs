//! Atelier Studio: the web UI, embedded in the binary.
//!
//! The Studio is plain HTML, CSS and JavaScript (no build step, no third-party code). Every page is
//! the same server-rendered shell (navigation + a `<main>` element carrying the page kind and the ids
//! taken from the URL as `data-*` attributes); `studio.js` then fetches the data from the MLflow JSON
//! API under `/ajax-api/2.0/mlflow/...` and keeps it live through the `/studio/api/events` SSE stream.

/// One embedded static file, served under `/static/<path>`.
pub struct Asset {
    /// Path relative to `/static/`, e.g. `"studio.js"`.
    pub path: &'static str,
    /// The `Content-Type` header value to answer with.
    pub content_type: &'static str,
    /// The file's bytes.
    pub body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "studio.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/studio.css"),
    },
    Asset {
        path: "studio.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/studio.js"),
    },
    Asset {
        path: "charts.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/charts.js"),
    },
    Asset {
        path: "autopilot.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/autopilot.js"),
    },
    Asset {
        path: "serving.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/serving.js"),
    },
    Asset {
        path: "monitor.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/monitor.js"),
    },
    Asset {
        path: "jobs.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/jobs.js"),
    },
    Asset {
        path: "notebooks.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/notebooks.js"),
    },
    Asset {
        path: "traces.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/traces.js"),
    },
    Asset {
        path: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/api.js"),
    },
    Asset {
        path: "settings.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/settings.js"),
    },
    Asset {
        path: "dashboard.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/dashboard.js"),
    },
    Asset {
        path: "notebook.css",
        content_type: "text/css; charset=utf-8",
        body: nbrender::CSS.as_bytes(),
    },
    Asset {
        path: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../assets/favicon.svg"),
    },
];

/// Every embedded static asset; `path` is relative to `/static/` (e.g. `"studio.js"`).
pub fn assets() -> &'static [Asset] {
    ASSETS
}

/// The asset at that path (relative to `/static/`), if any.
pub fn asset(path: &str) -> Option<&'static Asset> {
    let path = path.strip_prefix('/').unwrap_or(path);
    ASSETS.iter().find(|a| a.path == path)
}

/// A lifecycle stage shown in the left navigation.
struct Stage {
    key: &'static str,
    label: &'static str,
    href: &'static str,
    /// What the stage will do, shown while it is not available yet.
    blurb: &'static str,
    icon: &'static str,
    /// Rendered by a page script (`pages.<key>`, `pages['<key>-item']`, …); otherwise the
    /// server shows "not available yet".
    live: bool,
}

const STAGES: &[Stage] = &[
    Stage {
        key: "experiments",
        label: "Experiments",
        href: "/experiments",
        blurb: "Track runs, their parameters, metrics and artifacts, and compare them.",
        icon: "M3 3h4v4H3zM9 3h4v4H9zM3 9h4v4H3zM9 9h4v4H9z",
        live: true,
    },
    Stage {
        key: "models",
        label: "Models",
        href: "/models",
        blurb: "Register model versions, give them aliases and follow their lineage back to the run.",
        icon: "M8 1.5l6 3.2v6.6l-6 3.2-6-3.2V4.7zM2 4.7l6 3.2 6-3.2M8 7.9v6.6",
        live: true,
    },
    Stage {
        key: "autopilot",
        label: "Autopilot",
        href: "/autopilot",
        blurb: "Train and tune candidate models on a CSV or Parquet file within a time budget, with a leaderboard and reports.",
        icon: "M8 1v3M8 12v3M1 8h3M12 8h3M3 3l2 2M11 11l2 2M3 13l2-2M11 5l2-2",
        live: true,
    },
    Stage {
        key: "jobs",
        label: "Jobs",
        href: "/jobs",
        blurb: "Run processing and training commands as jobs with logs, status, retries and cancellation.",
        icon: "M2 4h12M2 8h12M2 12h8",
        live: true,
    },
    Stage {
        key: "endpoints",
        label: "Endpoints",
        href: "/endpoints",
        blurb: "Serve registered models over HTTP with weighted variants, data capture and metrics.",
        icon: "M2 8h4l2-5 2 10 2-5h2",
        live: true,
    },
    Stage {
        key: "monitor",
        label: "Monitor",
        href: "/monitor",
        blurb: "Compare captured traffic with a baseline, detect drift and model-quality decay, and alert.",
        icon: "M1.5 8s2.5-5 6.5-5 6.5 5 6.5 5-2.5 5-6.5 5-6.5-5-6.5-5zM8 6a2 2 0 100 4 2 2 0 000-4z",
        live: true,
    },
    Stage {
        key: "dashboard",
        label: "Dashboard",
        href: "/dashboard",
        blurb: "Every registered model in production: endpoints and traffic, monitors and alerts, batch transforms and model cards.",
        icon: "M2 2h5v6H2zM9 2h5v3H9zM9 7h5v7H9zM2 10h5v4H2z",
        live: true,
    },
    Stage {
        key: "notebooks",
        label: "Notebooks",
        href: "/notebooks",
        blurb: "Open JupyterLab inside the Studio and run notebooks headless as parameterised jobs.",
        icon: "M3 1.5h9a1 1 0 011 1v11a1 1 0 01-1 1H3zM5.5 1.5v13M8 5h3M8 7.5h3",
        live: true,
    },
    Stage {
        key: "settings",
        label: "Settings",
        href: "/settings",
        blurb: "Your account and API tokens; projects and their members; people and the audit log for admins.",
        icon: "M8 5.5a2.5 2.5 0 100 5 2.5 2.5 0 000-5zM8 1v2M8 13v2M1 8h2M13 8h2M3 3l1.5 1.5M11.5 11.5L13 13M3 13l1.5-1.5M11.5 4.5L13 3",
        live: true,
    },
    Stage {
        key: "api",
        label: "API",
        href: "/api",
        blurb: "Every HTTP operation of this server, from its generated OpenAPI 3.1 document.",
        icon: "M5 4L1.5 8 5 12M11 4l3.5 4L11 12M9.5 2.5l-3 11",
        live: true,
    },
];

/// Escapes text for use in HTML element content and in double-quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Decodes `%XX` escapes (and `+` as space when `plus_is_space`); invalid escapes are kept as is.
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of the first `key=` parameter in a raw query string, percent-decoded.
fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k, true) == key).then(|| percent_decode(v, true))
    })
}

/// What a Studio URL resolves to.
enum Route {
    Experiments,
    Experiment(String),
    /// `/experiments/<id>/traces`: the experiment's traces (`traces.js`).
    ExperimentTraces(String),
    /// `/traces/<trace_id>`: one trace's span tree, timeline and assessments (`traces.js`).
    Trace(String),
    Run(String),
    Compare(Vec<String>),
    Models,
    Stage(&'static Stage),
    /// A page of a stage rendered by its script: `/<stage>` → `data-page="<stage>"`,
    /// `/<stage>/<id>` → `"<stage>-item"` with `data-id` (`/jobs/new` → `"jobs-new"`, the new-job
    /// form), `/<stage>/<id>/<sub>/<sub_id>` →
    /// `"<stage>-<sub>"` with `data-id` and `data-sub-id` (e.g. `/models/churn/versions/3`).
    Live {
        stage: &'static Stage,
        page: String,
        id: Option<String>,
        sub_id: Option<String>,
    },
}

fn route(path: &str, query: &str) -> Option<Route> {
    let trimmed = path.trim_end_matches('/');
    let segments: Vec<String> = trimmed
        .split('/')
        .skip(1)
        .map(|s| percent_decode(s, false))
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segs.as_slice() {
        [] | ["experiments"] => Some(Route::Experiments),
        ["experiments", id] if !id.is_empty() => Some(Route::Experiment((*id).to_string())),
        ["experiments", id, "traces"] if !id.is_empty() => {
            Some(Route::ExperimentTraces((*id).to_string()))
        }
        ["traces", id] if !id.is_empty() => Some(Route::Trace((*id).to_string())),
        ["runs", id] if !id.is_empty() => Some(Route::Run((*id).to_string())),
        ["compare"] => {
            let runs = query_param(query, "runs").unwrap_or_default();
            let ids = runs
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            Some(Route::Compare(ids))
        }
        ["models"] => Some(Route::Models),
        [name, rest @ ..] => {
            let stage = STAGES
                .iter()
                .find(|s| s.key == *name && s.key != "experiments")?;
            let live = |page: String, id: Option<&str>, sub_id: Option<&str>| Route::Live {
                stage,
                page,
                id: id.map(str::to_string),
                sub_id: sub_id.map(str::to_string),
            };
            match rest {
                [] if stage.live => Some(live(stage.key.to_string(), None, None)),
                [] => Some(Route::Stage(stage)),
                // the new-job form (job ids are hex, so no job is called "new")
                ["new"] if stage.key == "jobs" => Some(live("jobs-new".to_string(), None, None)),
                // under /notebooks/<space>/ is the space's JupyterLab, not a Studio page
                [id] if stage.live && !id.is_empty() && stage.key != "notebooks" => {
                    Some(live(format!("{}-item", stage.key), Some(id), None))
                }
                [id, sub, sub_id]
                    if stage.live
                        && stage.key != "notebooks"
                        && !id.is_empty()
                        && !sub_id.is_empty()
                        && sub.chars().all(|c| c.is_ascii_lowercase()) =>
                {
                    Some(live(format!("{}-{sub}", stage.key), Some(id), Some(sub_id)))
                }
                _ => None,
            }
        }
    }
}

fn nav(active: &str) -> String {
    let mut out = String::new();
    for s in STAGES {
        let current = if s.key == active {
            " class=\"active\" aria-current=\"page\""
        } else {
            ""
        };
        out.push_str(&format!(
            "<a href=\"{href}\"{current} data-testid=\"nav-{key}\"><svg viewBox=\"0 0 16 16\" aria-hidden=\"true\"><path d=\"{icon}\"/></svg><span>{label}</span></a>\n",
            href = s.href,
            key = s.key,
            icon = s.icon,
            label = s.label,
        ));
    }
    out
}

fn document(title: &str, active: &str, main_attrs: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Atelier Studio</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/studio.css">
<link rel="stylesheet" href="/static/notebook.css">
<script src="/static/charts.js" defer></script>
<script src="/static/studio.js" defer></script>
<script src="/static/autopilot.js" defer></script>
<script src="/static/serving.js" defer></script>
<script src="/static/monitor.js" defer></script>
<script src="/static/jobs.js" defer></script>
<script src="/static/notebooks.js" defer></script>
<script src="/static/traces.js" defer></script>
<script src="/static/api.js" defer></script>
<script src="/static/dashboard.js" defer></script>
<script src="/static/settings.js" defer></script>
</head>
<body>
<div class="layout">
<nav class="sidebar" data-testid="nav"><div class="sidebar-inner">
<a class="brand" href="/"><img src="/static/favicon.svg" alt="" width="22" height="22"><span>Atelier <b>Studio</b></span></a>
{nav}</div></nav>
<main id="main" {main_attrs}>
{body}
</main>
</div>
<div id="live-indicator" class="live" data-testid="live-indicator" title="Live updates"></div>
</body>
</html>
"#,
        title = escape_html(title),
        nav = nav(active),
    )
}

fn loading() -> &'static str {
    "<div class=\"loading\" data-testid=\"loading\">Loading…</div>"
}

/// Full HTML document for a Studio URL path (e.g. `"/"`, `"/experiments/3"`, `"/runs/<run_id>"`,
/// `"/compare"`, `"/models"`, `"/autopilot"`); `query` is the raw query string without `?`.
/// `None` when the path is not a Studio page.
pub fn page(path: &str, query: &str) -> Option<String> {
    let html = match route(path, query)? {
        Route::Experiments => document(
            "Experiments",
            "experiments",
            "data-page=\"experiments\"",
            loading(),
        ),
        Route::Experiment(id) => document(
            &format!("Experiment {id}"),
            "experiments",
            &format!(
                "data-page=\"experiment\" data-experiment-id=\"{}\"",
                escape_html(&id)
            ),
            loading(),
        ),
        Route::ExperimentTraces(id) => document(
            &format!("Traces · experiment {id}"),
            "experiments",
            &format!(
                "data-page=\"experiment-traces\" data-experiment-id=\"{}\"",
                escape_html(&id)
            ),
            loading(),
        ),
        Route::Trace(id) => document(
            &format!("Trace {id}"),
            "experiments",
            &format!("data-page=\"trace\" data-trace-id=\"{}\"", escape_html(&id)),
            loading(),
        ),
        Route::Run(id) => document(
            &format!("Run {id}"),
            "experiments",
            &format!("data-page=\"run\" data-run-id=\"{}\"", escape_html(&id)),
            loading(),
        ),
        Route::Compare(ids) => document(
            "Compare runs",
            "experiments",
            &format!(
                "data-page=\"compare\" data-run-ids=\"{}\"",
                escape_html(&ids.join(","))
            ),
            loading(),
        ),
        Route::Models => document("Models", "models", "data-page=\"models\"", loading()),
        Route::Live {
            stage,
            page,
            id,
            sub_id,
        } => {
            let mut attrs = format!("data-page=\"{}\"", escape_html(&page));
            if let Some(id) = &id {
                attrs.push_str(&format!(" data-id=\"{}\"", escape_html(id)));
            }
            if let Some(sub) = &sub_id {
                attrs.push_str(&format!(" data-sub-id=\"{}\"", escape_html(sub)));
            }
            let title = match &id {
                Some(id) => format!("{} · {}", stage.label, id),
                None => stage.label.to_string(),
            };
            document(&title, stage.key, &attrs, loading())
        }
        Route::Stage(stage) => document(
            stage.label,
            stage.key,
            &format!("data-page=\"stage\" data-stage=\"{}\"", stage.key),
            &format!(
                "<header class=\"page-head\"><h1>{label}</h1></header>\n<section class=\"card unavailable\" data-testid=\"not-available\"><h2>{label} is not available yet</h2><p>{blurb}</p></section>",
                label = stage.label,
                blurb = stage.blurb,
            ),
        ),
    };
    Some(html)
}

/// The Studio's "page not found" document for a path that is no Studio page: the same navigation,
/// fonts and styles as every page, the path it did not find, and a link back (to the stage the path
/// names, when it names one, else to the Studio's first page). Served with status 404.
pub fn not_found_page(path: &str) -> String {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let stage = STAGES.iter().find(|s| s.key == first);
    let (href, label) = match stage {
        Some(s) => (s.href, s.label),
        None => ("/", "Experiments"),
    };
    document(
        "Page not found",
        stage.map_or("", |s| s.key),
        "data-page=\"not-found\"",
        &format!(
            "<header class=\"page-head\"><h1 data-testid=\"not-found-title\">Page not found</h1></header>\n<section class=\"card not-found\" data-testid=\"not-found\"><p>There is no Studio page at <code data-testid=\"not-found-path\">{path}</code>.</p><a class=\"btn\" href=\"{href}\" data-testid=\"not-found-back\">← {label}</a></section>",
            path = escape_html(path),
        ),
    )
}

/// The login page (shown when the server requires authentication). The form POSTs
/// `user=…&password=…`, or `token=<api token>` for someone without a password
/// (`application/x-www-form-urlencoded`), to `/login`.
pub fn login_page(error: Option<&str>) -> String {
    let error_html = error
        .map(|e| {
            format!(
                "<p class=\"form-error\" role=\"alert\" data-testid=\"login-error\">{}</p>",
                escape_html(e)
            )
        })
        .unwrap_or_default();
    form_page(
        "Sign in",
        "/login",
        "login-form",
        &format!(
            r#"<h1>Sign in</h1>
{error_html}
<label for="user">Name</label>
<input id="user" name="user" autocomplete="username" autofocus data-testid="login-user">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" data-testid="login-password">
<details class="login-token"><summary class="muted">Sign in with an API token instead</summary>
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="off" data-testid="login-token">
</details>
<button type="submit" class="btn primary" data-testid="login-submit">Sign in</button>"#
        ),
    )
}

/// A page that is one small form POSTing to `action` (sign-in, sign-out).
fn form_page(title: &str, action: &str, testid: &str, inner: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Atelier Studio</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/studio.css">
</head>
<body class="login-body">
<form class="card login" method="post" action="{action}" data-testid="{testid}">
<div class="brand"><img src="/static/favicon.svg" alt="" width="28" height="28"><span>Atelier <b>Studio</b></span></div>
{inner}
</form>
</body>
</html>
"#
    )
}

/// The page `GET /logout` shows: signing out is a POST (the Studio's
/// sidebar button, or this form), so no other site can sign anyone out with a
/// link or an image.
pub fn logout_page() -> String {
    form_page(
        "Sign out",
        "/logout",
        "logout-form",
        r#"<h1>Sign out?</h1>
<p class="muted">This ends your session on the server.</p>
<button type="submit" class="btn primary" data-testid="logout-submit">Sign out</button>"#,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `/static/...` reference in `html` (from `src="..."` and `href="..."`).
    fn static_refs(html: &str) -> Vec<String> {
        let mut refs = Vec::new();
        for marker in ["src=\"/static/", "href=\"/static/"] {
            let mut rest = html;
            while let Some(pos) = rest.find(marker) {
                rest = &rest[pos + marker.len()..];
                let end = rest.find('"').unwrap_or(rest.len());
                refs.push(rest[..end].to_string());
            }
        }
        refs
    }

    const PAGES: &[(&str, &str)] = &[
        ("/", ""),
        ("/experiments", ""),
        ("/experiments/", ""),
        ("/experiments/3", ""),
        ("/runs/0123456789abcdef0123456789abcdef", ""),
        ("/compare", "runs=a,b"),
        ("/models", ""),
        ("/autopilot", ""),
        ("/jobs", ""),
        ("/endpoints", ""),
        ("/monitor", ""),
        ("/notebooks", ""),
        ("/experiments/3/traces", ""),
        ("/traces/tr-0123456789abcdef0123456789abcdef", ""),
    ];

    #[test]
    fn every_referenced_asset_exists() {
        let mut docs: Vec<String> = Vec::new();
        for (path, query) in PAGES {
            match page(path, query) {
                Some(html) => docs.push(html),
                None => panic!("{path} should be a Studio page"),
            }
        }
        docs.push(login_page(None));
        docs.push(login_page(Some("bad token")));
        docs.push(logout_page());
        for html in &docs {
            let refs = static_refs(html);
            assert!(refs.len() >= 2, "a page references its CSS and JS");
            for r in refs {
                assert!(asset(&r).is_some(), "missing asset {r}");
                assert!(assets().iter().any(|a| a.path == r));
            }
        }
        // Assets referenced from other assets (none besides these today) and content types.
        for a in assets() {
            assert!(!a.body.is_empty(), "{} is empty", a.path);
            assert!(!a.content_type.is_empty());
        }
    }

    #[test]
    fn unknown_paths_are_not_pages() {
        for p in [
            "/nope",
            "/experiments/1/extra",
            "/experiments/1/traces/x",
            "/traces",
            "/traces/a/b",
            "/runs",
            "/runs/",
            "/api/2.0/mlflow/runs/get",
            "/static/studio.js",
            "/compare/x",
            "/health",
        ] {
            assert!(page(p, "").is_none(), "{p} should not be a page");
        }
        assert!(asset("nope.js").is_none());
        assert!(asset("studio.js").is_some());
        assert!(asset("/studio.css").is_some());
    }

    #[test]
    fn ids_from_the_url_are_escaped() {
        let html =
            page("/experiments/%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E", "").unwrap_or_default();
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&quot;&gt;&lt;script&gt;"));
        let html = page("/traces/%3Cb%3Ex%3C%2Fb%3E", "").unwrap_or_default();
        assert!(!html.contains("<b>x</b>"));
        assert!(html.contains("data-page=\"trace\" data-trace-id=\"&lt;b&gt;x&lt;/b&gt;\""));
        let html = page("/experiments/%3Ci%3E/traces", "").unwrap_or_default();
        assert!(html.contains("data-page=\"experiment-traces\" data-experiment-id=\"&lt;i&gt;\""));
        let html = page("/runs/<b>x</b>", "").unwrap_or_default();
        assert!(!html.contains("<b>x</b>"));
        let html = page("/compare", "runs=a,%22%3E%3Cimg%20src%3Dx%3E").unwrap_or_default();
        assert!(!html.contains("<img src=x>"));
        assert!(html.contains("data-run-ids=\"a,&quot;&gt;&lt;img src=x&gt;\""));
        let login = login_page(Some("<i>bad</i>"));
        assert!(login.contains("&lt;i&gt;bad&lt;/i&gt;"));
        assert!(login.contains("action=\"/login\""));
        assert!(login.contains("name=\"token\""));
    }

    #[test]
    fn every_stage_is_live_and_in_the_navigation() {
        let html = page("/notebooks", "").unwrap_or_default();
        assert!(html.contains("data-page=\"notebooks\""), "{html}");
        assert!(!html.contains("not available yet"), "Notebooks are live");
        let html = page("/monitor", "").unwrap_or_default();
        assert!(!html.contains("not available yet"), "Monitor is live");
        let html = page("/experiments/7", "").unwrap_or_default();
        for s in STAGES {
            assert!(html.contains(&format!("href=\"{}\"", s.href)));
        }
    }

    #[test]
    fn live_stages_route_to_their_page_scripts() {
        let cases = [
            ("/autopilot", "data-page=\"autopilot\""),
            (
                "/autopilot/abc",
                "data-page=\"autopilot-item\" data-id=\"abc\"",
            ),
            ("/jobs", "data-page=\"jobs\""),
            ("/jobs/j1", "data-page=\"jobs-item\" data-id=\"j1\""),
            ("/jobs/new", "data-page=\"jobs-new\""),
            ("/jobs/new/", "data-page=\"jobs-new\""),
            (
                "/jobs/%22%3E%3Cscript%3E",
                "data-page=\"jobs-item\" data-id=\"&quot;&gt;&lt;script&gt;\"",
            ),
            ("/endpoints", "data-page=\"endpoints\""),
            (
                "/models/churn%20model/versions/3",
                "data-page=\"models-versions\" data-id=\"churn model\" data-sub-id=\"3\"",
            ),
            (
                "/models/%3Cx%3E",
                "data-page=\"models-item\" data-id=\"&lt;x&gt;\"",
            ),
            ("/monitor", "data-page=\"monitor\""),
            (
                "/monitor/penguins-drift",
                "data-page=\"monitor-item\" data-id=\"penguins-drift\"",
            ),
        ];
        for (p, want) in cases {
            let html = page(p, "").unwrap_or_default();
            assert!(html.contains(want), "{p}: {html}");
        }
        for p in [
            "/autopilot/a/b",
            "/models/a/Versions/1",
            "/notebooks/x",
            "/jobs/a/b/",
        ] {
            assert!(page(p, "").is_none(), "{p}");
        }
    }

    /// Page scripts register into `window.AtelierStudio.pages` before `DOMContentLoaded`: each is
    /// loaded with `defer` after `studio.js`, and each page script's pages are its own.
    #[test]
    fn page_scripts_load_after_studio_js() {
        let html = page("/jobs", "").unwrap_or_default();
        let pos = |name: &str| {
            html.find(&format!("<script src=\"/static/{name}\" defer></script>"))
                .unwrap_or_else(|| panic!("{name} is not loaded with defer"))
        };
        let studio = pos("studio.js");
        assert!(pos("charts.js") < studio);
        for script in [
            "autopilot.js",
            "serving.js",
            "monitor.js",
            "jobs.js",
            "traces.js",
        ] {
            assert!(pos(script) > studio, "{script} loads after studio.js");
        }
        let text = |p: &str| {
            String::from_utf8_lossy(asset(p).map(|a| a.body).unwrap_or_default()).into_owned()
        };
        let jobs = text("jobs.js");
        assert!(jobs.contains("pages.jobs = function"));
        assert!(jobs.contains("pages['jobs-item'] = function"));
        assert!(jobs.contains("pages['jobs-new'] = function"));
        let autopilot = text("autopilot.js");
        assert!(
            !autopilot.contains("pages.jobs ="),
            "the jobs list is jobs.js's"
        );
        assert!(
            !autopilot.contains("pages['jobs-item']"),
            "the job page is jobs.js's"
        );
        assert!(autopilot.contains("pages['autopilot-item']"));
        // user text reaches the DOM as text nodes only — but for the one notebook preview, HTML
        // that nbrender rendered and ammonia sanitised on the server (HTML outputs inside sandboxed
        // srcdoc frames), under the Studio's CSP (no inline script or handler runs either way)
        for a in assets().iter().filter(|a| a.path.ends_with(".js")) {
            let mut text = String::from_utf8_lossy(a.body).to_string();
            if a.path == "notebooks.js" {
                assert_eq!(
                    text.matches("innerHTML").count(),
                    1,
                    "notebooks.js: one preview sink"
                );
                text = text.replace("body.innerHTML = r.html;", "");
            }
            let body = text;
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(!body.contains(sink), "{} uses {sink}", a.path);
            }
        }
    }

    #[test]
    fn the_not_found_page_is_a_studio_page() {
        let html = not_found_page("/models/a/b/c/<x>");
        assert!(
            html.contains("href=\"/static/studio.css\""),
            "styled like the Studio"
        );
        assert!(html.contains("data-testid=\"nav\""), "with the navigation");
        assert!(html.contains("data-page=\"not-found\""));
        assert!(
            html.contains("/models/a/b/c/&lt;x&gt;"),
            "the path, escaped"
        );
        assert!(!html.contains("<x>"));
        assert!(html.contains("href=\"/models\" data-testid=\"not-found-back\""));
        assert!(
            html.contains("class=\"active\""),
            "the stage the path names is marked"
        );
        let html = not_found_page("/nope");
        assert!(html.contains("href=\"/\" data-testid=\"not-found-back\""));
        assert!(!html.contains("class=\"active\""));
        for r in static_refs(&html) {
            assert!(asset(&r).is_some(), "missing asset {r}");
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Cb+c", true), "a,b c");
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
        assert_eq!(
            query_param("x=1&runs=a%2Cb", "runs").as_deref(),
            Some("a,b")
        );
    }
}
