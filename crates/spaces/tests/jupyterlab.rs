//! A real JupyterLab behind the proxy: HTTP, contents, saving, kernels over
//! the proxied websocket, Origin checks, death and restart, idle stop,
//! shutdown. Needs JupyterLab + ipykernel (see `common::python`).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use spaces::{SpaceState, Spaces};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Run `code` in a kernel through the proxied channels websocket (Jupyter's
/// default JSON protocol); its stdout.
async fn run_code(base: &str, space: &str, kernel: &str, code: &str) -> String {
    let url = format!(
        "{}/notebooks/{space}/api/kernels/{kernel}/channels?session_id=test",
        base.replace("http://", "ws://")
    );
    let mut req = url.as_str().into_client_request().unwrap();
    // what a browser on the Studio's own page sends
    let origin = base.to_string();
    req.headers_mut().insert("origin", origin.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let msg_id = format!("{:016x}", rand::random::<u64>());
    let msg = json!({
        "header": {"msg_id": msg_id, "username": "test", "session": "test", "msg_type": "execute_request", "version": "5.3", "date": "2026-01-01T00:00:00.000Z"},
        "parent_header": {}, "metadata": {},
        "content": {"code": code, "silent": false, "store_history": false, "user_expressions": {}, "allow_stdin": false, "stop_on_error": true},
        "channel": "shell", "buffers": []
    });
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .unwrap();
    let mut out = String::new();
    let read = async {
        while let Some(m) = ws.next().await {
            let Message::Text(t) = m.unwrap() else {
                continue;
            };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["parent_header"]["msg_id"] != msg_id.as_str() {
                continue;
            }
            match v["msg_type"].as_str().unwrap_or("") {
                "stream" => out.push_str(v["content"]["text"].as_str().unwrap_or("")),
                "error" => panic!("the kernel raised: {}", v["content"]),
                "status" if v["content"]["execution_state"] == "idle" => break,
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(90), read)
        .await
        .expect("no answer from the kernel within 90 s");
    let _ = ws.close(None).await;
    out
}

/// Start a kernel through the proxy and run `print(6*7)` and its pid.
async fn kernel_pid(http: &Http, space: &str) -> (String, u32) {
    let k = http
        .send(
            Method::POST,
            &format!("/notebooks/{space}/api/kernels"),
            &[],
            Some(json!({"name": "python3"})),
        )
        .await;
    assert_eq!(k.status, StatusCode::CREATED, "{}", k.text());
    let id = k.json()["id"].as_str().unwrap().to_string();
    let out = run_code(
        &http.base,
        space,
        &id,
        "import os\nprint(6*7)\nprint(os.getpid())",
    )
    .await;
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("42"), "{out}");
    let pid: u32 = lines.next().and_then(|l| l.trim().parse().ok()).unwrap();
    (id, pid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jupyterlab_behind_the_proxy() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let sp = Spaces::new(config(dir.path(), python));
    std::fs::create_dir_all(sp.workspace_dir("default")).unwrap();
    std::fs::write(sp.workspace_dir("default").join("hello.txt"), "hi").unwrap();
    let addr = serve(guarded_app(sp.clone(), dir.path())).await;
    let http = Http::new(addr);

    // two concurrent starts: one JupyterLab
    let t = Instant::now();
    let (a, b) = tokio::join!(
        sp.ensure("default", BTreeMap::new()),
        sp.ensure("default", BTreeMap::new())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    println!("JupyterLab ready in {:.1} s", t.elapsed().as_secs_f64());
    assert_eq!(a.state, SpaceState::Running);
    assert_eq!(a.pid, b.pid);
    assert_eq!(a.url, "/notebooks/default/lab");
    let pid = a.pid.unwrap();
    let pid_file = dir.path().join("state/default/jupyterlab.pid");
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        format!("{pid} {}", std::process::id()),
        "JupyterLab's pid, then the owning server's"
    );
    let token = token_of(pid).expect("JupyterLab's token");
    // JupyterLab itself wants the token (only the proxy has it)
    let log = std::fs::read_to_string(dir.path().join("state/default/jupyterlab.log")).unwrap();
    let port = log
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_string();
    assert!(!log.contains(&token), "the log shows the token");
    let direct = Http::new(format!("127.0.0.1:{port}").parse().unwrap());
    let st = direct.get("/notebooks/default/api/contents").await;
    assert_eq!(st.status, StatusCode::FORBIDDEN, "{}", st.text());
    let auth = format!("token {token}");
    let st = direct
        .send(
            Method::GET,
            "/notebooks/default/api/contents",
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(st.status, StatusCode::OK);

    // HTTP through the proxy, no token from the client
    let st = http.get("/notebooks/default/api/status").await;
    assert_eq!(st.status, StatusCode::OK, "{}", st.text());
    let lab = http.get("/notebooks/default/lab").await;
    assert_eq!(lab.status, StatusCode::OK);
    assert!(lab.text().contains("/notebooks/default/"), "{}", lab.text());
    assert!(
        !lab.text().contains(&token),
        "the page leaks Jupyter's token"
    );
    let bare = http.get("/notebooks/default").await;
    assert_eq!(bare.status, StatusCode::SEE_OTHER);
    assert_eq!(bare.headers["location"], "/notebooks/default/lab");
    let slash = http.get("/notebooks/default/").await;
    assert_eq!(slash.status, StatusCode::SEE_OTHER);
    assert_eq!(slash.headers["location"], "/notebooks/default/lab");
    // a deep link into the lab
    let tree = http.get("/notebooks/default/lab/tree/hello.txt").await;
    assert_eq!(tree.status, StatusCode::OK);
    // the Studio's cookie and credentials never reach Jupyter: a wrong
    // Authorization is dropped, not passed on
    let with_cookie = http
        .send(
            Method::GET,
            "/notebooks/default/api/contents",
            &[("cookie", "atelier_token=secret")],
            None,
        )
        .await;
    assert_eq!(with_cookie.status, StatusCode::OK);
    let names: Vec<String> = with_cookie.json()["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains(&"hello.txt".to_string()), "{names:?}");

    // saving a notebook (PUT through the proxy) writes the workspace
    let nb = json!({
        "type": "notebook", "format": "json",
        "content": {"cells": [{"cell_type": "code", "source": "print(1)", "metadata": {}, "outputs": [], "execution_count": null}],
                    "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    });
    let put = http
        .send(
            Method::PUT,
            "/notebooks/default/api/contents/saved.ipynb",
            &[],
            Some(nb),
        )
        .await;
    assert!(put.status.is_success(), "{} {}", put.status, put.text());
    let saved = std::fs::read_to_string(sp.workspace_dir("default").join("saved.ipynb")).unwrap();
    assert!(saved.contains("print(1)"), "{saved}");

    // no "Jupyter news" question: the overrides are in effect
    let settings = http
        .get("/notebooks/default/lab/api/settings/@jupyterlab/apputils-extension:notification")
        .await;
    assert_eq!(settings.status, StatusCode::OK, "{}", settings.text());
    let s = settings.json();
    // (the overrides become the schema's defaults, which the page uses)
    assert_eq!(
        s["schema"]["properties"]["fetchNews"]["default"], "false",
        "{s}"
    );
    assert_eq!(
        s["schema"]["properties"]["checkForUpdates"]["default"], false,
        "{s}"
    );

    // a kernel over the proxied websocket
    let t = Instant::now();
    let (_kernel, kpid) = kernel_pid(&http, "default").await;
    println!(
        "kernel ran print(6*7) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert!(!gone(kpid));

    // a foreign Origin is refused before the upgrade
    let (id2, _) = (
        http.send(
            Method::POST,
            "/notebooks/default/api/kernels",
            &[],
            Some(json!({"name": "python3"})),
        )
        .await
        .json()["id"]
            .as_str()
            .unwrap()
            .to_string(),
        (),
    );
    let ws_url = format!("ws://{addr}/notebooks/default/api/kernels/{id2}/channels");
    let mut req = ws_url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), StatusCode::FORBIDDEN)
        }
        other => panic!("a foreign origin got {:?}", other.map(|(_, r)| r.status())),
    }
    // JupyterLab 4's subprotocol is negotiated with Jupyter and echoed
    let mut req = ws_url.as_str().into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "v1.kernel.websocket.jupyter.org".parse().unwrap(),
    );
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(
        resp.headers()["sec-websocket-protocol"],
        "v1.kernel.websocket.jupyter.org"
    );
    let _ = ws.close(None).await;
    let del = http
        .send(
            Method::DELETE,
            &format!("/notebooks/default/api/kernels/{id2}"),
            &[],
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);

    // the API
    let list = http.get("/api/atelier/spaces").await.json();
    assert_eq!(list["own"], "default");
    assert_eq!(list["spaces"][0]["state"], "running", "{list}");
    assert!(list["spaces"][0]["last_activity_ms"].as_i64().is_some());

    // death: SIGKILL JupyterLab; the next request starts it again, and
    // the kernel it left behind is killed
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    assert!(wait_for(10, || gone(pid)).await);
    let t = Instant::now();
    let st = http.get("/notebooks/default/api/status").await;
    assert_eq!(st.status, StatusCode::OK, "{}", st.text());
    println!(
        "restarted after SIGKILL in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let pid2 = sp.status("default").pid.unwrap();
    assert_ne!(pid, pid2);
    assert!(
        wait_for(10, || gone(kpid)).await,
        "the dead JupyterLab's kernel lives on"
    );

    // shutdown: JupyterLab's group and its kernel are gone
    let (_k, kpid2) = kernel_pid(&http, "default").await;
    let t = Instant::now();
    sp.shutdown().await;
    println!("shutdown in {:.1} s", t.elapsed().as_secs_f64());
    assert!(gone(pid2), "JupyterLab survived shutdown");
    assert!(group_members(pid2).is_empty());
    assert!(
        wait_for(5, || gone(kpid2)).await,
        "the kernel survived shutdown"
    );
    assert!(!pid_file.exists());
    assert_eq!(sp.status("default").state, SpaceState::Stopped);
    let after = sp.ensure("default", BTreeMap::new()).await;
    assert_eq!(after.unwrap_err(), spaces::SpaceError::ShuttingDown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_spaces_stop_and_a_request_starts_them_again() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), python);
    cfg.idle_timeout = Duration::from_secs(3);
    let sp = Spaces::new(cfg);
    sp.spawn_keeper();
    // no guard: no identity, the space is `default`
    let (router, _) = spaces::routes(sp.clone()).into_parts();
    let addr = serve(router).await;
    let http = Http::new(addr);

    // a request starts the space
    let st = http.get("/notebooks/default/api/status").await;
    assert_eq!(st.status, StatusCode::OK, "{}", st.text());
    let pid = sp.status("default").pid.unwrap();
    // idle for 3 s: stopped
    let t = Instant::now();
    assert!(
        wait_for(20, || sp.status("default").state == SpaceState::Stopped).await,
        "{:?}",
        sp.status("default")
    );
    println!("stopped after {:.1} s idle", t.elapsed().as_secs_f64());
    assert!(t.elapsed() >= Duration::from_millis(2900));
    assert!(gone(pid));
    assert!(!dir.path().join("state/default/jupyterlab.pid").exists());

    // the next request starts it again
    let st = http.get("/notebooks/default/api/status").await;
    assert_eq!(st.status, StatusCode::OK, "{}", st.text());
    let pid2 = sp.status("default").pid.unwrap();
    assert_ne!(pid, pid2);

    // an open websocket keeps it running
    let url = format!("ws://{addr}/notebooks/default/api/events/subscribe");
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(sp.status("default").state, SpaceState::Running);
    let _ = ws.close(None).await;
    drop(ws);
    assert!(wait_for(20, || sp.status("default").state == SpaceState::Stopped).await);
    assert!(gone(pid2));
    sp.shutdown().await;
}

/// Not a test by itself: the "server" that
/// `a_killed_servers_jupyterlab_dies_with_it` starts and kills.
#[tokio::test]
#[ignore = "helper process for a_killed_servers_jupyterlab_dies_with_it"]
async fn helper_server_that_gets_killed() {
    let Some(root) = std::env::var_os("SPACES_HELPER_ROOT") else {
        return;
    };
    let sp = Spaces::new(config(std::path::Path::new(&root), python()));
    let st = sp.ensure("default", BTreeMap::new()).await.unwrap();
    println!("JUPYTERLAB_PID {}", st.pid.unwrap());
    tokio::time::sleep(Duration::from_secs(600)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_servers_jupyterlab_dies_with_it() {
    use std::io::BufRead;
    python();
    let dir = tempfile::tempdir().unwrap();
    let mut server = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "helper_server_that_gets_killed",
            "--nocapture",
        ])
        .env("SPACES_HELPER_ROOT", dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = server.stdout.take().unwrap();
    let pid: u32 = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| {
                l.strip_prefix("JUPYTERLAB_PID ")
                    .and_then(|p| p.trim().parse().ok())
            })
    })
    .await
    .unwrap()
    .expect("the helper server did not start JupyterLab");
    assert!(!gone(pid));
    // kill -9 the server: JupyterLab gets SIGTERM from the kernel and goes
    server.kill().unwrap();
    server.wait().unwrap();
    let t = Instant::now();
    assert!(
        wait_for(20, || gone(pid)).await,
        "JupyterLab outlived the server"
    );
    println!(
        "JupyterLab ended {:.1} s after its server was killed",
        t.elapsed().as_secs_f64()
    );
    // the next server finds the pid file and has nothing left to kill
    let pid_file = dir.path().join("state/default/jupyterlab.pid");
    assert!(pid_file.exists());
    let _sp = Spaces::new(config(dir.path(), python()));
    assert!(!pid_file.exists());
}
