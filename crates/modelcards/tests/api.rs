//! The model-card API and the dashboard over real HTTP, behind the server's
//! real guard with authentication on: roles, the audit trail, the deploy
//! gate in `serving`, bad input, and the dashboard's aggregation.

use std::sync::Arc;

use serde_json::{Value, json};
use store::{JobStatus, JobUpdate, MetadataStore, SqlStore};

struct Server {
    base: String,
    store: Arc<SqlStore>,
    agent: ureq::Agent,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let s = Server::on(dir.path());
        for (name, role, token) in [
            ("ann", "editor", "atl_ann"),
            ("rev", "admin", "atl_rev"),
            ("vic", "viewer", "atl_vic"),
        ] {
            s.store
                .create_token(name, role, &server::hash_token(token), None)
                .unwrap();
        }
        Server { _dir: dir, ..s }
    }

    /// A server on the database and artifacts under `root`, with its own store connections (as a
    /// second process on the same database would have).
    fn on(root: &std::path::Path) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqlStore::open(root.join("m.db")).unwrap());
        let rt = tokio::runtime::Runtime::new().unwrap();
        let _g = rt.enter();
        let artifacts = artifacts::ArtifactStore::local(root.join("a")).unwrap();
        let dynstore: Arc<dyn MetadataStore> = store.clone();
        let serving = serving::Serving::new(dynstore.clone(), artifacts.clone());
        let state = server::AppState {
            store: dynstore.clone(),
            artifacts,
            auth: server::AuthMode::Required,
            max_artifact_bytes: 1 << 20,
            max_request_bytes: 1 << 20,
            site: Arc::new(server::SitePolicy::default()),
            jobs: None,
            mlflow_webhooks: None,
        };
        let routes = serving::api::router(serving.clone()).merge(modelcards::router(
            modelcards::ModelCards {
                store: dynstore,
                serving: Some(serving),
            },
        ));
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        rt.spawn(server::serve_with(
            listener,
            state,
            routes,
            std::future::pending(),
        ));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Server {
            base,
            store,
            agent,
            _rt: rt,
            _dir: dir,
        }
    }

    fn call(&self, who: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer atl_{who}");
        let mut r = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("Authorization", &auth).call(),
            (m, b) => {
                let req = match m {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    "PATCH" => self.agent.patch(&url),
                    other => panic!("{other}"),
                };
                req.header("Authorization", &auth)
                    .send_json(b.unwrap_or(json!({})))
            }
        }
        .unwrap();
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn version(&self, name: &str) -> i64 {
        let _ = self.store.create_registered_model(name, &[], "", "ann");
        self.store
            .create_model_version(store::CreateModelVersion {
                name: name.into(),
                source: "mlflow-artifacts:/nowhere/model".into(),
                user_id: "ann".into(),
                ..Default::default()
            })
            .unwrap()
            .version
    }
}

#[test]
fn a_card_is_audited_and_only_an_admin_approves() {
    let s = Server::start();
    let v = s.version("churn");
    let card = format!("/api/atelier/model-cards/churn/{v}");
    // no card yet; a viewer may not create one
    let (st, body) = s.call("vic", "GET", &card, None);
    assert_eq!(st, 404, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no model card yet")
    );
    assert_eq!(s.call("vic", "POST", &card, None).0, 403);
    // bad paths and bodies say what to fix
    let (st, body) = s.call("ann", "POST", "/api/atelier/model-cards/churn/latest", None);
    assert_eq!(st, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not a version number")
    );
    assert_eq!(
        s.call("ann", "POST", "/api/atelier/model-cards/nope/1", None)
            .0,
        404
    );
    let (st, body) = s.call("ann", "POST", &card, Some(json!({"contents": {}})));
    assert_eq!(st, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("unknown field 'contents'")
    );
    // the editor creates and fills it in
    let (st, body) = s.call(
        "ann",
        "POST",
        &card,
        Some(json!({"content": {"intended_uses": {"purpose_of_model": "retain customers"}}})),
    );
    assert_eq!(st, 200, "{body}");
    let c = &body["model_card"];
    assert_eq!(c["status"], "Draft");
    assert_eq!(c["content"]["intended_uses"]["risk_rating"], "Unknown");
    assert_eq!(c["content"]["model_overview"]["model_creator"], "ann");
    assert_eq!(
        s.call("ann", "POST", &card, None).0,
        400,
        "one card per version"
    );
    let (st, body) = s.call(
        "ann",
        "PATCH",
        &card,
        Some(json!({"revision": 1, "content": {"intended_uses": {"risk_rating": "Severe"}}})),
    );
    assert_eq!(st, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("High, Medium, Low, Unknown")
    );
    let (st, _) = s.call(
        "ann",
        "PATCH",
        &card,
        Some(json!({"revision": 1, "content": {"intended_uses": {"risk_rating": "Medium"}}})),
    );
    assert_eq!(st, 200);
    let status = |who: &str, to: &str, comment: Option<&str>| {
        let mut b = json!({"status": to});
        if let Some(c) = comment {
            b["comment"] = json!(c);
        }
        s.call(who, "POST", &format!("{card}/status"), Some(b))
    };
    let (st, body) = status("ann", "Approved", None);
    assert_eq!(st, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("PendingReview"));
    assert_eq!(status("ann", "PendingReview", None).0, 200);
    // an editor cannot approve: the admin reviews
    let (st, body) = status("ann", "Approved", None);
    assert_eq!(st, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("admin role"));
    let (st, body) = status("rev", "Approved", None);
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["model_card"]["updated_by"], "rev");
    let (st, body) = status("rev", "Retired", None);
    assert_eq!(st, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Draft, PendingReview, Approved, Archived")
    );
    assert_eq!(status("ann", "Archived", None).0, 200);
    let (st, body) = status("rev", "Draft", Some("reopen"));
    assert_eq!(st, 400);
    assert!(body["message"].as_str().unwrap().contains("Archived"));
    // the audit trail: who, from where, what
    let (_, body) = s.call("vic", "GET", &card, None);
    let h: Vec<(String, String, String)> = body["model_card"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["address"], "127.0.0.1");
            (
                e["principal"].as_str().unwrap().into(),
                e["action"].as_str().unwrap().into(),
                e["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want = [
        ("ann", "create", "Draft"),
        ("ann", "update", "Draft"),
        ("ann", "status", "PendingReview"),
        ("rev", "status", "Approved"),
        ("ann", "status", "Archived"),
    ];
    assert_eq!(
        h,
        want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    );
    let first = &body["model_card"]["history"][1]["changes"]["fields"][0];
    assert_eq!(
        first,
        &json!({"field": "intended_uses.risk_rating", "from": "Unknown", "to": "Medium"})
    );
}

#[test]
fn deploying_needs_an_approved_card_when_the_model_says_so() {
    let s = Server::start();
    let v = s.version("churn");
    let rule = "/api/atelier/model-card-requirements/churn";
    // only an admin turns the rule on or off
    assert_eq!(
        s.call(
            "ann",
            "PUT",
            rule,
            Some(json!({"require_approved_card": true}))
        )
        .0,
        403
    );
    let (st, body) = s.call(
        "rev",
        "PUT",
        rule,
        Some(json!({"require_approved_card": "yes"})),
    );
    assert_eq!(st, 400, "{body}");
    assert_eq!(
        s.call(
            "rev",
            "PUT",
            "/api/atelier/model-card-requirements/nope",
            Some(json!({"require_approved_card": true}))
        )
        .0,
        404
    );
    let (st, body) = s.call(
        "rev",
        "PUT",
        rule,
        Some(json!({"require_approved_card": true})),
    );
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["requirement"]["updated_by"], "rev");
    // the deploy is refused before the model is even loaded, saying what to do
    let deploy = json!({"name": "churn-ep", "model": format!("models:/churn/{v}")});
    let (st, body) = s.call(
        "ann",
        "POST",
        "/api/atelier/endpoints",
        Some(deploy.clone()),
    );
    assert_eq!(st, 400, "{body}");
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.contains("requires an Approved model card") && msg.contains("create one"),
        "{msg}"
    );
    let card = format!("/api/atelier/model-cards/churn/{v}");
    s.call("ann", "POST", &card, None);
    s.call(
        "ann",
        "POST",
        &format!("{card}/status"),
        Some(json!({"status": "PendingReview"})),
    );
    let (_, body) = s.call(
        "ann",
        "POST",
        "/api/atelier/endpoints",
        Some(deploy.clone()),
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("is PendingReview"),
        "{body}"
    );
    // an alias resolves to the version it names
    s.store.set_alias("churn", "prod", v).unwrap();
    let (_, body) = s.call(
        "ann",
        "POST",
        "/api/atelier/endpoints",
        Some(json!({"name": "churn-ep", "model": "models:/churn@prod"})),
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("is PendingReview"),
        "{body}"
    );
    s.call(
        "rev",
        "POST",
        &format!("{card}/status"),
        Some(json!({"status": "Approved"})),
    );
    // approved: the gate lets it through (this version's pipeline does not exist, which the build says)
    let (st, body) = s.call("ann", "POST", "/api/atelier/endpoints", Some(deploy));
    assert_eq!(st, 400, "{body}");
    assert!(
        !body["message"].as_str().unwrap().contains("model card"),
        "{body}"
    );
    // with the rule off, no card is needed
    let w = s.version("churn");
    s.call(
        "rev",
        "PUT",
        rule,
        Some(json!({"require_approved_card": false})),
    );
    let (_, body) = s.call(
        "ann",
        "POST",
        "/api/atelier/endpoints",
        Some(json!({"name": "e2", "model": format!("models:/churn/{w}")})),
    );
    assert!(
        !body["message"].as_str().unwrap().contains("model card"),
        "{body}"
    );
}

#[test]
fn the_dashboard_joins_endpoints_monitors_batches_and_cards() {
    let s = Server::start();
    let v = s.version("churn");
    s.version("idle");
    let st = &s.store;
    st.put_endpoint(
        "default",
        "churn-ep",
        &json!({"name": "churn-ep", "variants": [
            {"name": "a", "model": format!("models:/churn/{v}"), "weight": 3.0, "artifact_path": "x", "registered_model": "churn", "version": v},
            {"name": "b", "model": "runs:/r/model", "weight": 1.0, "artifact_path": "y"}
        ]})
        .to_string(),
    )
    .unwrap();
    st.put_schedule(
        "default",
        "churn-dq",
        &json!({"name": "churn-dq", "endpoint": "churn-ep", "kind": "data_quality"}).to_string(),
    )
    .unwrap();
    st.put_schedule("default", "churn-mq", &json!({"name": "churn-mq", "endpoint": "churn-ep", "kind": "model_quality", "enabled": false}).to_string())
        .unwrap();
    // Model Monitor's kind names for bias and explainability
    st.put_schedule(
        "default",
        "churn-bias",
        &json!({"name": "churn-bias", "endpoint": "churn-ep", "kind": "model_bias"}).to_string(),
    )
    .unwrap();
    st.put_schedule(
        "default",
        "other-dq",
        &json!({"name": "other-dq", "endpoint": "elsewhere"}).to_string(),
    )
    .unwrap();
    let finish = |kind: &str, name: &str, spec: Value, result: Value| {
        let j = st.create_job(kind, name, &spec.to_string()).unwrap();
        let c = st.claim_job("w", &[kind], 60_000).unwrap().unwrap();
        assert_eq!(c.id, j.id);
        st.update_job(
            &j.id,
            &JobUpdate {
                status: Some(JobStatus::Succeeded),
                result: Some(result.to_string()),
                worker: Some("w".into()),
                ..Default::default()
            },
        )
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(3));
        j.id
    };
    // violations, then an empty window: the alert stands (as Model Monitor says)
    finish(
        "monitoring-execution",
        "churn-dq",
        json!({}),
        json!({"status": "violations", "violation_count": 2}),
    );
    let empty = finish(
        "monitoring-execution",
        "churn-dq",
        json!({}),
        json!({"status": "no_data"}),
    );
    finish(
        "monitoring-execution",
        "churn-mq",
        json!({}),
        json!({"status": "ok", "violation_count": 0}),
    );
    finish(
        "batch-transform",
        "bt old",
        json!({"model": format!("models:/churn/{v}"), "dataset": "d"}),
        json!({"rows": 5}),
    );
    let bt = finish(
        "batch-transform",
        "bt new",
        json!({"model": "models:/churn@prod", "dataset": "d"}),
        json!({"rows": 7, "failed": 1}),
    );
    s.call(
        "ann",
        "POST",
        &format!("/api/atelier/model-cards/churn/{v}"),
        None,
    );

    let (code, d) = s.call("vic", "GET", "/api/atelier/dashboard", None);
    assert_eq!(code, 200, "{d}");
    assert_eq!(
        d["counts"],
        json!({"models": 2, "in_production": 1, "alerting": 1, "approved_cards": 0})
    );
    let m = d["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "churn")
        .unwrap();
    assert_eq!(
        m["versions_in_production"],
        json!([{"version": v, "endpoints": ["churn-ep"], "card_status": "Draft"}])
    );
    let ep = &m["endpoints"][0];
    // stored here but never deployed through this process's Serving
    assert_eq!(ep["status"], "NotLoaded");
    assert_eq!(ep["variants"][0]["traffic_share"], 0.75);
    assert_eq!(ep["variants"][1]["this_model"], false);
    let dq = &m["monitoring"]["data_quality"];
    assert_eq!(dq["status"], "Scheduled");
    assert_eq!(dq["alert"], "InAlert");
    assert_eq!(dq["violations"], 2);
    assert_eq!(dq["last_execution"]["id"], empty.as_str());
    assert_eq!(dq["last_execution"]["result"], "no_data");
    let mq = &m["monitoring"]["model_quality"];
    assert_eq!(
        (mq["status"].as_str(), mq["alert"].as_str()),
        (Some("Stopped"), Some("OK"))
    );
    let bias = &m["monitoring"]["bias"];
    assert_eq!(bias["status"], "Scheduled");
    assert!(bias["last_execution"].is_null() && bias["alert"].is_null());
    assert_eq!(m["monitoring"]["explainability"]["status"], "NotScheduled");
    assert_eq!(m["last_batch_transform"]["id"], bt.as_str());
    assert_eq!(
        (
            m["last_batch_transform"]["rows"].as_i64(),
            m["last_batch_transform"]["failed"].as_i64()
        ),
        (Some(7), Some(1))
    );
    assert_eq!(m["model_card"]["status"], "Draft");
    let idle = d["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "idle")
        .unwrap();
    assert_eq!(idle["endpoints"], json!([]));
    assert_eq!(idle["monitoring"]["data_quality"]["status"], "NotScheduled");
    assert_eq!(
        idle["model_card"],
        json!({"version": 1, "status": null, "updated_ms": null, "updated_by": null})
    );
    assert!(idle["last_batch_transform"].is_null());
}

#[test]
fn two_servers_with_their_own_store_on_one_database_see_the_same_cards_and_rule() {
    let a = Server::start();
    let b = Server::on(a._dir.path());
    let v = a.version("churn");
    let card = format!("/api/atelier/model-cards/churn/{v}");
    a.call(
        "rev",
        "PUT",
        "/api/atelier/model-card-requirements/churn",
        Some(json!({"require_approved_card": true})),
    );
    assert_eq!(a.call("ann", "POST", &card, None).0, 200);
    // b refuses the deploy on a's rule, and sees a's card
    let deploy = json!({"name": "ep", "model": format!("models:/churn/{v}")});
    let (st, body) = b.call(
        "ann",
        "POST",
        "/api/atelier/endpoints",
        Some(deploy.clone()),
    );
    assert_eq!(st, 400);
    assert!(
        body["message"].as_str().unwrap().contains("is Draft"),
        "{body}"
    );
    // a change through b on a's stale revision is refused, then made on the current one
    assert_eq!(
        b.call(
            "ann",
            "POST",
            &format!("{card}/status"),
            Some(json!({"status": "PendingReview"}))
        )
        .0,
        200
    );
    let (st, body) = a.call(
        "rev",
        "POST",
        &format!("{card}/status"),
        Some(json!({"status": "Approved", "revision": 1})),
    );
    assert_eq!(st, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("changed meanwhile"),
        "{body}"
    );
    assert_eq!(
        a.call(
            "rev",
            "POST",
            &format!("{card}/status"),
            Some(json!({"status": "Approved", "revision": 2}))
        )
        .0,
        200
    );
    let (_, body) = b.call("ann", "POST", "/api/atelier/endpoints", Some(deploy));
    assert!(
        !body["message"].as_str().unwrap().contains("model card"),
        "{body}"
    );
    let (_, d) = b.call("vic", "GET", "/api/atelier/dashboard", None);
    assert_eq!(d["models"][0]["model_card"]["status"], "Approved");
    assert_eq!(d["models"][0]["require_approved_card"], true);
}
