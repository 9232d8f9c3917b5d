//! Throw-away stores for tests, on the backend the test run asks for: a
//! SQLite file in a fresh temporary folder, or — when
//! `ATELIER_TEST_DATABASE_URL` names a PostgreSQL server — a fresh database
//! on that server, dropped again when the [`Scratch`] is. Every test that
//! takes its store from here runs on both backends (`cargo xtask test`
//! runs the suites once per backend).

use std::path::PathBuf;

use crate::db::PgPool;
use crate::{Result, SqlStore, StoreError};

/// The variable naming the PostgreSQL server tests use (any database on
/// it; each scratch store gets its own).
pub const TEST_DATABASE_URL: &str = "ATELIER_TEST_DATABASE_URL";

/// The PostgreSQL server tests should use, if any.
pub fn test_database_url() -> Option<String> {
    std::env::var(TEST_DATABASE_URL)
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// A fresh, empty store that cleans up after itself.
pub struct Scratch {
    store: Option<SqlStore>,
    dir: Option<PathBuf>,
    pg: Option<(PgPool, String)>,
    url: Option<String>,
}

impl Scratch {
    /// On PostgreSQL when [`TEST_DATABASE_URL`] is set, else SQLite.
    pub fn new() -> Result<Scratch> {
        match test_database_url() {
            Some(url) => Self::postgres(&url),
            None => Self::sqlite(),
        }
    }

    /// A SQLite store in a fresh temporary folder.
    pub fn sqlite() -> Result<Scratch> {
        let dir =
            std::env::temp_dir().join(format!("atelier-scratch-{}", uuid::Uuid::new_v4().simple()));
        let store = SqlStore::open(dir.join("m.db"))?;
        Ok(Scratch {
            store: Some(store),
            dir: Some(dir),
            pg: None,
            url: None,
        })
    }

    /// A fresh database on the PostgreSQL server of `server_url`.
    pub fn postgres(server_url: &str) -> Result<Scratch> {
        let url = fresh_database(server_url)?;
        let admin = PgPool::new(server_url)?;
        let name = database_of(&url).to_string();
        let store = SqlStore::connect(&url)?;
        Ok(Scratch {
            store: Some(store),
            dir: None,
            pg: Some((admin, name)),
            url: Some(url),
        })
    }

    pub fn store(&self) -> &SqlStore {
        self.store
            .as_ref()
            .expect("the store lives as long as the scratch")
    }

    /// Take the store out (the database or folder is still removed when the
    /// scratch is dropped).
    pub fn take(&mut self) -> SqlStore {
        self.store.take().expect("the store was taken already")
    }

    /// The PostgreSQL URL of the scratch database, when it is one.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// Run SQL on the database directly, outside the store (tests that
    /// tamper with the database as an operator or a newer Atelier would).
    pub fn raw_execute(&self, sql: &str) -> Result<()> {
        match (&self.url, &self.dir) {
            (Some(url), _) => Ok(PgPool::new(url)?.batch_outside_transaction(sql)?),
            (None, Some(dir)) => {
                let c = rusqlite::Connection::open(dir.join("m.db"))
                    .map_err(crate::db::DbError::from)?;
                c.execute_batch(sql).map_err(crate::db::DbError::from)?;
                Ok(())
            }
            _ => Err(StoreError::Internal("no database".into())),
        }
    }

    /// Whether this scratch store is on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.url.is_some()
    }

    /// Open the same store again (as another process would).
    pub fn reopen(&self) -> Result<SqlStore> {
        match (&self.url, &self.dir) {
            (Some(url), _) => SqlStore::connect(url),
            (None, Some(dir)) => SqlStore::open(dir.join("m.db")),
            _ => Err(StoreError::Internal("nothing to reopen".into())),
        }
    }
}

impl std::ops::Deref for Scratch {
    type Target = SqlStore;
    fn deref(&self) -> &SqlStore {
        self.store()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        drop(self.store.take());
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((admin, name)) = &self.pg {
            let _ = admin.batch_outside_transaction(&format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            ));
        }
    }
}

/// Create an empty database on the server of `server_url`; its URL.
pub fn fresh_database(server_url: &str) -> Result<String> {
    let admin = PgPool::new(server_url)?;
    let name = format!("atelier_t_{}", uuid::Uuid::new_v4().simple());
    admin.batch_outside_transaction(&format!("CREATE DATABASE \"{name}\""))?;
    Ok(with_database(server_url, &name))
}

/// The database of a data folder on the test server of `server_url`
/// (named from the folder's path, so a server restarted on the same folder
/// finds its data again), created when missing. The binary uses this when
/// [`TEST_DATABASE_URL`] is set, so every test that starts `atelier serve`
/// on a fresh folder runs on PostgreSQL without knowing it.
pub fn database_for_folder(server_url: &str, folder: &std::path::Path) -> Result<String> {
    use sha2::Digest;
    let canonical = std::fs::canonicalize(folder).unwrap_or_else(|_| folder.to_path_buf());
    let digest = sha2::Sha256::digest(canonical.to_string_lossy().as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("atelier_f_{hex}");
    let url = with_database(server_url, &name);
    // created when missing (another process may make it at the same moment)
    crate::db::ensure_database(&url)?;
    Ok(url)
}

/// Drop a database made by [`fresh_database`].
pub fn drop_database(server_url: &str, url: &str) -> Result<()> {
    let admin = PgPool::new(server_url)?;
    admin.batch_outside_transaction(&format!(
        "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
        database_of(url)
    ))?;
    Ok(())
}

fn path_span(url: &str) -> (usize, usize) {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let start = url[after_scheme..]
        .find('/')
        .map(|i| after_scheme + i)
        .unwrap_or(url.len());
    let end = url[start..]
        .find('?')
        .map(|i| start + i)
        .unwrap_or(url.len());
    (start, end)
}

fn database_of(url: &str) -> &str {
    let (a, b) = path_span(url);
    url[a..b].trim_start_matches('/')
}

fn with_database(url: &str, name: &str) -> String {
    let (a, b) = path_span(url);
    format!("{}/{}{}", &url[..a], name, &url[b..])
}

#[cfg(test)]
mod tests {
    use crate::MetadataStore;

    /// Live pages: a write through one process moves the generation every
    /// other process on the database reports (within its 200 ms cache).
    #[test]
    fn a_write_through_one_store_moves_the_generation_another_sees() {
        let sc = super::Scratch::new().unwrap();
        let other = sc.reopen().unwrap();
        let before = other.write_generation();
        sc.create_experiment("seen-elsewhere", None, &[]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(250));
        assert!(other.write_generation() > before);
        // a quiet write (a lease renewal) does not
        let g = other.write_generation();
        sc.create_job("k", "j", "{}").unwrap();
        let j = sc.claim_job("w", &["k"], 60_000).unwrap().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(250));
        let g2 = other.write_generation();
        assert!(g2 > g);
        sc.renew_job_lease(&j.id, "w", 60_000).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(250));
        assert_eq!(other.write_generation(), g2);
    }
    /// A NUL character is bad input on PostgreSQL (which cannot store it
    /// in text), never a database failure: the API turns it into a 400.
    #[test]
    fn a_nul_character_in_text_is_the_callers_mistake() {
        let sc = super::Scratch::new().unwrap();
        let r = sc.create_experiment("nul\0name", None, &[]);
        if sc.is_postgres() {
            let e = r.unwrap_err();
            assert!(matches!(e, crate::StoreError::InvalidParameter(_)), "{e:?}");
            assert!(e.to_string().contains("NUL"), "{e}");
        } else {
            assert!(r.is_ok());
        }
    }

    /// A made-up page token with a huge offset is a 400 on both backends,
    /// not an overflow or a database error.
    #[test]
    fn a_page_token_past_any_result_is_refused() {
        use base64::Engine;
        let sc = super::Scratch::new().unwrap();
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{{\"offset\": {}}}", u64::MAX));
        let q = crate::SearchExperiments {
            page_token: Some(token),
            ..Default::default()
        };
        let e = sc.search_experiments(&q).unwrap_err();
        assert!(matches!(e, crate::StoreError::InvalidParameter(_)), "{e:?}");
    }

    /// A server drops its store inside its runtime when it shuts down (or
    /// fails to start): that must not panic on either backend.
    #[test]
    fn a_store_dropped_inside_an_async_runtime_goes_quietly() {
        let sc = super::Scratch::new().unwrap();
        let store = sc.reopen().unwrap();
        store.create_experiment("before-drop", None, &[]).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move { drop(store) });
        assert!(sc.get_experiment_by_name("before-drop").is_ok());
    }

    #[test]
    fn database_names_in_urls() {
        let u = "postgres://u:p@127.0.0.1:5432/atelier?sslmode=disable";
        assert_eq!(super::database_of(u), "atelier");
        assert_eq!(
            super::with_database(u, "x"),
            "postgres://u:p@127.0.0.1:5432/x?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgres://h:1", "x"),
            "postgres://h:1/x"
        );
    }
}
