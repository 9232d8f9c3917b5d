//! Routes that declare what they need. Every HTTP route of Atelier is added
//! through [`Routes`], which registers the handler with axum and records a
//! [`Declared`] entry: the method, the full path pattern, the [`Access`] the
//! caller needs and the [`BodyKind`] the route accepts. The request guard
//! (`auth::middleware`) looks each request up in that table by axum's
//! matched path: a route that declares nothing is refused (fail closed), and
//! nothing is decided from the shape of a URL.
//!
//! Crates that own routes (serving's endpoints, Model Monitor) build their
//! own `Routes` and hand them to [`crate::router_with`].

use std::collections::HashMap;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, on};

/// What a route needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Anyone, signed in or not: health, version, the login form, assets.
    Public,
    /// Any signed-in identity (viewers included): reads, searches, and
    /// invoking an endpoint (SageMaker's separate InvokeEndpoint right).
    Read,
    /// Editors and admins: anything that creates, changes or deletes.
    Write,
    /// Admins only.
    Admin,
    /// Any signed-in identity, outside any project: their own account (who
    /// they are, their tokens, their password). The handler lets a server
    /// admin, or a project's admin for its members, act for others.
    Account,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Read => "read",
            Access::Write => "write",
            Access::Admin => "admin",
            Access::Account => "account",
        }
    }
}

/// What a state-changing route accepts as its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// A JSON document (`Content-Type: application/json`), or no body at
    /// all. Anything else is refused before the handler runs: a web page
    /// can send `text/plain` cross-site without a preflight, but not JSON.
    Json,
    /// A streamed upload (artifacts, datasets): any content type, no size
    /// limit but the handler's own.
    Upload,
    /// A body the handler parses itself in the types it names (endpoint
    /// invocations, ground truth, the login form), within the request limit.
    Raw,
}

/// One declared route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub method: Method,
    /// axum's pattern, e.g. `/api/2.0/mlflow/runs/get` or `/endpoints/{name}/invocations`.
    pub path: String,
    pub access: Access,
    pub body: BodyKind,
    /// The handler's Rust path (`std::any::type_name`), e.g.
    /// `server::atelier_api::list_datasets`: the OpenAPI document names
    /// operations after it.
    pub handler: &'static str,
}

/// A router whose every route declares its [`Access`] and [`BodyKind`].
pub struct Routes<S = ()> {
    router: Router<S>,
    table: Vec<Declared>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Routes {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    /// Add `handler` for `method` at `path`, needing `access`.
    pub fn add<H, T>(
        mut self,
        method: Method,
        path: &str,
        access: Access,
        body: BodyKind,
        handler: H,
    ) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone())
            .unwrap_or_else(|_| panic!("routes: unsupported method {method} for {path}"));
        let mut mr = on(filter, handler);
        if body == BodyKind::Upload {
            mr = mr.layer(DefaultBodyLimit::disable());
        }
        self.router = self.router.route(path, mr);
        self.table.push(Declared {
            method,
            path: path.to_string(),
            access,
            body,
            handler: std::any::type_name::<H>(),
        });
        self
    }

    /// A GET (HEAD is answered by the same handler).
    pub fn get<H: Handler<T, S>, T: 'static>(self, path: &str, access: Access, h: H) -> Self {
        self.add(Method::GET, path, access, BodyKind::Json, h)
    }

    /// A POST with a JSON body (or none).
    pub fn post<H: Handler<T, S>, T: 'static>(self, path: &str, access: Access, h: H) -> Self {
        self.add(Method::POST, path, access, BodyKind::Json, h)
    }

    /// A PUT with a JSON body (or none).
    pub fn put<H: Handler<T, S>, T: 'static>(self, path: &str, access: Access, h: H) -> Self {
        self.add(Method::PUT, path, access, BodyKind::Json, h)
    }

    /// A PATCH with a JSON body (or none).
    pub fn patch<H: Handler<T, S>, T: 'static>(self, path: &str, access: Access, h: H) -> Self {
        self.add(Method::PATCH, path, access, BodyKind::Json, h)
    }

    /// A DELETE with a JSON body (or none).
    pub fn delete<H: Handler<T, S>, T: 'static>(self, path: &str, access: Access, h: H) -> Self {
        self.add(Method::DELETE, path, access, BodyKind::Json, h)
    }

    /// Mount `other` under `prefix` (paths and table alike).
    pub fn nest(mut self, prefix: &str, other: Routes<S>) -> Self {
        self.table.extend(other.table.into_iter().map(|mut d| {
            d.path = format!("{prefix}{}", d.path);
            d
        }));
        self.router = self.router.nest(prefix, other.router);
        self
    }

    /// Add every route of `other`.
    pub fn merge(mut self, other: Routes<S>) -> Self {
        self.table.extend(other.table);
        self.router = self.router.merge(other.router);
        self
    }

    /// Give the routes their state (for crates whose handlers carry their own).
    pub fn with_state<S2>(self, state: S) -> Routes<S2> {
        Routes {
            router: self.router.with_state(state),
            table: self.table,
        }
    }

    /// The declarations so far.
    pub fn table(&self) -> &[Declared] {
        &self.table
    }

    pub fn into_parts(self) -> (Router<S>, Vec<Declared>) {
        (self.router, self.table)
    }
}

/// The declarations of a whole application, looked up per request.
#[derive(Debug, Default)]
pub struct Table {
    by_path: HashMap<String, Vec<Declared>>,
}

/// What the guard found for a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// The route's declaration.
    Found(&'a Declared),
    /// The path is routed, but not for this method: the methods it has.
    WrongMethod(Vec<Method>),
    /// The path is routed but declares nothing: a programming error.
    Undeclared,
}

impl Table {
    /// Build from declarations. Two declarations of the same method and path
    /// are a programming error.
    pub fn new(decls: Vec<Declared>) -> Table {
        let mut by_path: HashMap<String, Vec<Declared>> = HashMap::new();
        for d in decls {
            let list = by_path.entry(d.path.clone()).or_default();
            assert!(
                !list.iter().any(|x| x.method == d.method),
                "routes: {} {} declared twice",
                d.method,
                d.path
            );
            list.push(d);
        }
        Table { by_path }
    }

    pub fn lookup(&self, method: &Method, matched_path: &str) -> Lookup<'_> {
        let Some(list) = self.by_path.get(matched_path) else {
            return Lookup::Undeclared;
        };
        // HEAD is served by the GET handler
        let m = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        match list.iter().find(|d| d.method == *m) {
            Some(d) => Lookup::Found(d),
            None => Lookup::WrongMethod(list.iter().map(|d| d.method.clone()).collect()),
        }
    }

    /// Every declaration, sorted by path then method (for listings and tests).
    pub fn all(&self) -> Vec<&Declared> {
        let mut v: Vec<&Declared> = self.by_path.values().flatten().collect();
        v.sort_by(|a, b| {
            (a.path.as_str(), a.method.as_str()).cmp(&(b.path.as_str(), b.method.as_str()))
        });
        v
    }
}

/// `GET /api/atelier/routes`: every declared route with its permission.
pub async fn listing(
    axum::Extension(t): axum::Extension<std::sync::Arc<Table>>,
) -> axum::Json<serde_json::Value> {
    let routes: Vec<serde_json::Value> = t
        .all()
        .into_iter()
        .map(|d| {
            serde_json::json!({
                "method": d.method.as_str(),
                "path": d.path,
                "access": d.access.as_str(),
                "body": match d.body {
                    BodyKind::Json => "json",
                    BodyKind::Upload => "upload",
                    BodyKind::Raw => "raw",
                },
            })
        })
        .collect();
    axum::Json(serde_json::json!({ "routes": routes }))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ok() -> &'static str {
        "ok"
    }

    #[test]
    fn nesting_prefixes_the_table_and_lookup_finds_by_method() {
        let inner = Routes::<()>::new()
            .get("/runs/get", Access::Read, ok)
            .post("/runs/search", Access::Read, ok)
            .post("/runs/create", Access::Write, ok);
        let r = Routes::<()>::new().nest("/api/2.0/mlflow", inner).add(
            Method::PUT,
            "/files/{*path}",
            Access::Write,
            BodyKind::Upload,
            ok,
        );
        let (_, decls) = r.into_parts();
        let t = Table::new(decls);
        match t.lookup(&Method::HEAD, "/api/2.0/mlflow/runs/get") {
            Lookup::Found(d) => assert_eq!(d.access, Access::Read),
            other => panic!("{other:?}"),
        }
        match t.lookup(&Method::POST, "/api/2.0/mlflow/runs/create") {
            Lookup::Found(d) => assert_eq!((d.access, d.body), (Access::Write, BodyKind::Json)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            t.lookup(&Method::DELETE, "/api/2.0/mlflow/runs/get"),
            Lookup::WrongMethod(vec![Method::GET])
        );
        assert_eq!(t.lookup(&Method::GET, "/not/declared"), Lookup::Undeclared);
        assert_eq!(t.all().len(), 4);
    }

    #[test]
    #[should_panic(expected = "declared twice")]
    fn a_route_declared_twice_is_refused() {
        let r = Routes::<()>::new()
            .get("/a", Access::Read, ok)
            .get("/b", Access::Read, ok);
        let (_, mut decls) = r.into_parts();
        decls[1].path = "/a".into();
        Table::new(decls);
    }
}
