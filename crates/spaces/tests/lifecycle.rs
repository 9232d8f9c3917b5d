//! Rights, start failures and stale processes; no JupyterLab needed (fake
//! interpreters stand in where one would start).

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use common::*;
use server::{Identity, Role};
use spaces::{SpaceError, Spaces};

/// Who the test says it is: `x-user` and `x-role` headers.
async fn as_user(mut req: Request, next: Next) -> Response {
    let who = {
        let h = req.headers();
        let header = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
        header("x-user").map(|name| Identity {
            name,
            role: header("x-role")
                .and_then(|r| Role::parse(&r))
                .unwrap_or(Role::Editor),
            // (the test's "admin" is a server admin)
            admin: header("x-role").as_deref() == Some("admin"),
            key_for: None,
        })
    };
    if let Some(who) = who {
        req.extensions_mut().insert(who);
    }
    next.run(req).await
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[tokio::test]
async fn callers_use_only_their_own_space() {
    let dir = tempfile::tempdir().unwrap();
    let sp = Spaces::new(config(dir.path(), "/nonexistent/python".into()));
    let (router, table) = spaces::routes(sp.clone()).into_parts();
    // every route declares itself: the proxy needs the editor role, and what
    // goes to JupyterLab streams through (its own limits apply)
    let proxied: Vec<_> = table
        .iter()
        .filter(|d| d.path.starts_with("/notebooks/"))
        .collect();
    assert!(proxied.iter().all(|d| d.access == server::Access::Write));
    assert!(
        proxied
            .iter()
            .filter(|d| d.path.ends_with("{*rest}"))
            .all(|d| d.body == server::BodyKind::Upload)
    );
    assert_eq!(table.len(), 5 * 3 + 4);
    let addr = serve(router.layer(axum::middleware::from_fn(as_user))).await;
    let http = Http::new(addr);
    let alice = [("x-user", "alice"), ("x-role", "editor")];
    let admin = [("x-user", "root"), ("x-role", "admin")];

    // another's space does not exist, whatever the route
    for (m, p) in [
        (Method::POST, "/api/atelier/spaces/bob/start"),
        (Method::POST, "/api/atelier/spaces/bob/stop"),
        (Method::GET, "/api/atelier/spaces/bob"),
        (Method::GET, "/notebooks/bob/lab"),
        (Method::GET, "/notebooks/bob"),
        (Method::PUT, "/notebooks/bob/api/contents/x.ipynb"),
    ] {
        let a = http.send(m.clone(), p, &alice, None).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{m} {p}: {}", a.text());
        assert_eq!(a.json()["error_code"], "RESOURCE_DOES_NOT_EXIST");
    }
    // bad names
    let long = format!("/api/atelier/spaces/{}/start", "a".repeat(41));
    for p in [
        "/api/atelier/spaces/Bad_Name/start",
        "/notebooks/Alice/lab",
        "/notebooks/-x/lab",
        long.as_str(),
    ] {
        let a = http.send(Method::POST, p, &alice, None).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{p}: {}", a.text());
        assert_eq!(a.json()["error_code"], "INVALID_PARAMETER_VALUE");
    }
    // one's own space starts (here: no Python, said so)
    let a = http
        .send(
            Method::POST,
            "/api/atelier/spaces/alice/start",
            &alice,
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.text());
    let msg = a.json()["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("/nonexistent/python") && msg.contains("not found"),
        "{msg}"
    );
    assert!(matches!(
        sp.status("alice").state,
        spaces::SpaceState::Failed(_)
    ));
    // the proxy says the same
    let a = http
        .send(Method::GET, "/notebooks/alice/lab", &alice, None)
        .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.text());
    // an admin may use any space
    let a = http
        .send(Method::POST, "/api/atelier/spaces/bob/start", &admin, None)
        .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.text());
    // lists: one's own; an admin's: all
    let l = http
        .send(Method::GET, "/api/atelier/spaces", &alice, None)
        .await
        .json();
    assert_eq!(l["own"], "alice");
    assert_eq!(l["spaces"].as_array().unwrap().len(), 1, "{l}");
    assert_eq!(l["spaces"][0]["space"], "alice");
    assert_eq!(l["spaces"][0]["url"], "/notebooks/alice/lab");
    let l = http
        .send(Method::GET, "/api/atelier/spaces", &admin, None)
        .await
        .json();
    let names: Vec<&str> = l["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["space"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob", "root"]);
    // names that are not space names get their own space
    let l = http
        .send(
            Method::GET,
            "/api/atelier/spaces",
            &[("x-user", "Alice Smith")],
            None,
        )
        .await
        .json();
    let own = l["own"].as_str().unwrap();
    assert!(own.starts_with("alice-smith-"), "{own}");
    // no identity (no guard) and the open server's identity: `default`
    let l = http.get("/api/atelier/spaces").await.json();
    assert_eq!(l["own"], "default");
    let l = http
        .send(
            Method::GET,
            "/api/atelier/spaces",
            &[("x-user", "local"), ("x-role", "admin")],
            None,
        )
        .await
        .json();
    assert_eq!(l["own"], "default");
    // stopping what never ran
    let a = http
        .send(Method::POST, "/api/atelier/spaces/alice/stop", &alice, None)
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["stopped"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_failures_are_reported_with_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // an interpreter without jupyterlab
    let nojl = script(
        d,
        "nojl",
        "echo \"$0: No module named jupyterlab\" >&2\nexit 1",
    );
    let sp = Spaces::new(config(d, nojl.clone()));
    let e = sp.ensure("default", BTreeMap::new()).await.unwrap_err();
    assert_eq!(
        e,
        SpaceError::JupyterLabMissing {
            python: nojl.display().to_string()
        }
    );
    assert!(e.to_string().contains("-m pip install jupyterlab"), "{e}");
    assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);

    // a port taken meanwhile is retried with another; other failures are not
    let count = d.join("count");
    let flaky = script(
        d,
        "flaky",
        &format!(
            "echo x >> {c}\nif [ $(wc -l < {c}) -eq 1 ]; then echo 'ERROR: The port 1 is already in use.'; exit 1; fi\necho \"boom $JUPYTER_TOKEN $MLFLOW_TRACKING_URI $ATELIER_SPACE $JUPYTER_RUNTIME_DIR\"\nexit 3",
            c = count.display()
        ),
    );
    let sp = Spaces::new(config(d, flaky));
    match sp.ensure("flaky", BTreeMap::new()).await.unwrap_err() {
        SpaceError::StartFailed {
            space,
            status,
            log_tail,
        } => {
            assert_eq!(space, "flaky");
            assert_eq!(status, "exit code 3");
            // the token is blanked out; the environment is the configured one
            let rt = d.join("state/flaky/runtime");
            assert!(
                log_tail.contains(&format!(
                    "boom <token> http://127.0.0.1:1 flaky {}",
                    rt.display()
                )),
                "{log_tail}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 2);
    assert!(!d.join("state/flaky/jupyterlab.pid").exists());

    // too slow: killed, and two callers waiting on one start share its failure
    let starts = d.join("starts");
    let pidf = d.join("slow.pid");
    let slow = script(
        d,
        "slow",
        &format!(
            "echo x >> {}\necho $$ > {}\necho 'starting slowly'\nexec sleep 300",
            starts.display(),
            pidf.display()
        ),
    );
    let mut cfg = config(d, slow);
    cfg.start_timeout = Duration::from_secs(1);
    let sp = Spaces::new(cfg);
    let (a, b) = tokio::join!(
        sp.ensure("slow", BTreeMap::new()),
        sp.ensure("slow", BTreeMap::new())
    );
    let (a, b) = (a.unwrap_err(), b.unwrap_err());
    assert_eq!(a, b);
    match a {
        SpaceError::StartTimeout {
            seconds, log_tail, ..
        } => {
            assert_eq!(seconds, 1);
            assert!(log_tail.contains("starting slowly"), "{log_tail}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read_to_string(&starts).unwrap().lines().count(), 1);
    let pid: u32 = std::fs::read_to_string(&pidf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(wait_for(5, || gone(pid)).await, "the slow start lives on");
    assert!(!d.join("state/slow/jupyterlab.pid").exists());
}

#[tokio::test]
async fn a_previous_servers_jupyterlab_is_killed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // what a server killed with -9 leaves: a "jupyter" process group
    // (a shell and its child), and its pid file
    let mut stale = std::process::Command::new("sh")
        .args(["-c", "sleep 300; true", "jupyter-lab-stale"])
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = stale.id();
    assert!(wait_for(5, || group_members(pgid).len() == 2).await);
    std::fs::create_dir_all(state.join("old")).unwrap();
    std::fs::write(state.join("old/jupyterlab.pid"), format!("{pgid}\n")).unwrap();
    // a pid file whose pid now belongs to something else is left alone
    let mut other = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    std::fs::create_dir_all(state.join("reused")).unwrap();
    std::fs::write(
        state.join("reused/jupyterlab.pid"),
        format!("{}\n", other.id()),
    )
    .unwrap();

    // a JupyterLab whose server is alive (another server on this data
    // folder) is that server's: left alone, pid file and all
    let mut owned = std::process::Command::new("sh")
        .args(["-c", "sleep 300; true", "jupyter-lab-owned"])
        .process_group(0)
        .spawn()
        .unwrap();
    let mut server = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    std::fs::create_dir_all(state.join("shared")).unwrap();
    std::fs::write(
        state.join("shared/jupyterlab.pid"),
        format!("{} {}\n", owned.id(), server.id()),
    )
    .unwrap();

    let _sp = Spaces::new(config(dir.path(), "/nonexistent/python".into()));

    assert!(
        owned.try_wait().unwrap().is_none(),
        "a live server's JupyterLab was killed"
    );
    assert!(state.join("shared/jupyterlab.pid").exists());
    unsafe {
        libc::kill(-(owned.id() as i32), libc::SIGKILL);
    }
    owned.wait().unwrap();
    server.kill().unwrap();
    server.wait().unwrap();

    let status = stale.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(wait_for(5, || group_members(pgid).is_empty()).await);
    assert!(!state.join("old/jupyterlab.pid").exists());
    assert!(
        other.try_wait().unwrap().is_none(),
        "an unrelated process was killed"
    );
    assert!(!state.join("reused/jupyterlab.pid").exists());
    other.kill().unwrap();
    other.wait().unwrap();
}
