//! TLS to PostgreSQL (issue 18) against a real server: the test turns
//! `ssl=on` on the server `ATELIER_TEST_DATABASE_URL` names, with a private
//! CA and server certificate made by `openssl` in a temporary folder, and
//! turns it off again at the end. Skipped (with a message) without a server.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use store::scratch::{drop_database, fresh_database, test_database_url};
use store::{MetadataStore, SqlStore};

fn sh(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} (psql and openssl must be on PATH): {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn psql(url: &str, sql: &str) -> String {
    sh(Command::new("psql")
        .args(["-X", "-q", "-t", "-A", "-d", url, "-c", sql])
        .env("PGSSLMODE", "disable"))
}

/// A CA (`name`-ca.pem/.key) and, when `server` is set, a certificate for
/// 127.0.0.1 signed by it (server.pem/.key).
fn make_ca(dir: &Path, name: &str) {
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    sh(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &format!("/CN=Atelier test {name} CA"),
        "-keyout",
        &p(&format!("{name}-ca.key")),
        "-out",
        &p(&format!("{name}-ca.pem")),
    ]));
}

fn make_server_cert(dir: &Path) {
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    sh(Command::new("openssl").args([
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &p("server.key"),
        "-out",
        &p("server.csr"),
    ]));
    sh(Command::new("openssl").args([
        "x509",
        "-req",
        "-in",
        &p("server.csr"),
        "-CA",
        &p("good-ca.pem"),
        "-CAkey",
        &p("good-ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &p("san.ext"),
        "-out",
        &p("server.pem"),
    ]));
}

/// `url` with its query replaced by `query`.
fn with_query(url: &str, query: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    format!("{base}?{query}")
}

fn open(url: &str) -> Result<SqlStore, String> {
    SqlStore::connect(url).map_err(|e| e.to_string())
}

/// Whether the store's idle connection (named by `application_name`) is encrypted.
fn encrypted(server: &str, app: &str) -> bool {
    psql(
        server,
        &format!(
            "SELECT bool_or(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = '{app}'"
        ),
    ) == "t"
}

struct SslOff(String);

impl Drop for SslOff {
    fn drop(&mut self) {
        for sql in [
            "ALTER SYSTEM RESET ssl",
            "ALTER SYSTEM RESET ssl_cert_file",
            "ALTER SYSTEM RESET ssl_key_file",
            "SELECT pg_reload_conf()",
        ] {
            let _ = Command::new("psql")
                .args(["-X", "-q", "-d", &self.0, "-c", sql])
                .env("PGSSLMODE", "disable")
                .output();
        }
    }
}

#[test]
fn postgres_over_tls_checks_the_certificate_as_sslmode_asks() {
    let Some(server) = test_database_url() else {
        println!("skipped: ATELIER_TEST_DATABASE_URL names no PostgreSQL server");
        return;
    };
    let server = with_query(&server, "sslmode=disable");
    let db = fresh_database(&server).expect("a fresh database");
    let db_url = |q: &str| with_query(&db, q);

    // a server without TLS: disable works, require refuses to go on in plain text
    assert_eq!(
        psql(&server, "SHOW ssl"),
        "off",
        "the test server starts without TLS"
    );
    let plain = open(&db_url("sslmode=disable")).expect("sslmode=disable on a plain server");
    plain.create_experiment("plain", None, &[]).unwrap();
    drop(plain);
    let err = open(&db_url("sslmode=require"))
        .err()
        .expect("require without TLS fails");
    assert!(err.contains("TLS"), "{err}");

    // certificates the server can read (it runs as the data folder's owner)
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path(), "good");
    make_ca(dir.path(), "other");
    make_server_cert(dir.path());
    let data_dir = psql(&server, "SHOW data_directory");
    let owner = std::fs::metadata(&data_dir).unwrap();
    for f in [
        dir.path().to_path_buf(),
        dir.path().join("server.key"),
        dir.path().join("server.pem"),
    ] {
        std::os::unix::fs::chown(&f, Some(owner.uid()), Some(owner.gid())).unwrap();
    }
    std::fs::set_permissions(
        dir.path().join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let _restore = SslOff(server.clone());
    let file = |f: &str| dir.path().join(f).to_string_lossy().into_owned();
    psql(
        &server,
        &format!("ALTER SYSTEM SET ssl_cert_file = '{}'", file("server.pem")),
    );
    psql(
        &server,
        &format!("ALTER SYSTEM SET ssl_key_file = '{}'", file("server.key")),
    );
    psql(&server, "ALTER SYSTEM SET ssl = on");
    psql(&server, "SELECT pg_reload_conf()");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while psql(&server, "SHOW ssl") != "on" {
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not turn ssl on"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // SAFETY: this test binary has this one test, and no other thread reads
    // the environment while it is set.
    let set_roots = |f: &str| unsafe { std::env::set_var("SSL_CERT_FILE", f) };

    // a CA the system does not trust: the start-up error names the setting and why
    set_roots(&file("other-ca.pem"));
    for mode in ["require", "verify-full"] {
        let err = open(&db_url(&format!("sslmode={mode}")))
            .err()
            .expect("untrusted CA refused");
        assert!(err.contains("not trusted"), "{err}");
        assert!(err.contains(&format!("sslmode={mode}")), "{err}");
        assert!(err.contains("UnknownIssuer"), "{err}");
        assert!(err.contains("sslrootcert=/path/to/ca.pem"), "{err}");
    }
    // prefer (the default) encrypts without checking the certificate, as libpq
    let s = open(&db_url("application_name=tls-prefer")).expect("prefer connects");
    s.create_experiment("prefer", None, &[]).unwrap();
    assert!(
        encrypted(&server, "tls-prefer"),
        "prefer uses TLS when the server offers it"
    );
    drop(s);

    // the private CA trusted through SSL_CERT_FILE: require and verify-full work
    set_roots(&file("good-ca.pem"));
    for mode in ["require", "verify-ca", "verify-full"] {
        let app = format!("tls-{mode}");
        let s = open(&db_url(&format!("sslmode={mode}&application_name={app}")))
            .unwrap_or_else(|e| panic!("sslmode={mode} with the CA trusted: {e}"));
        let exp = s
            .create_experiment(&format!("over {mode}"), None, &[])
            .unwrap();
        assert_eq!(s.get_experiment(exp).unwrap().name, format!("over {mode}"));
        assert!(s.get_experiment_by_name("plain").is_ok());
        assert!(encrypted(&server, &app), "sslmode={mode} is encrypted");
        drop(s);
    }
    // the host name is checked: the certificate names 127.0.0.1, not localhost
    let by_name = db_url("sslmode=verify-full").replace("127.0.0.1", "localhost");
    let err = open(&by_name)
        .err()
        .expect("a certificate for another name is refused");
    assert!(
        err.contains("not trusted") && err.contains("not valid for name"),
        "{err}"
    );
    assert!(err.contains("connect by a host name"), "{err}");
    // disable stays plain on a TLS server
    let s = open(&db_url("sslmode=disable&application_name=tls-disable")).unwrap();
    assert!(
        !encrypted(&server, "tls-disable"),
        "sslmode=disable is plain"
    );
    drop(s);

    // sslrootcert trusts exactly the CAs in that file, whatever the system trusts
    let root = |f: &str| db_url(&format!("sslmode=verify-full&sslrootcert={}", file(f)));
    open(&root("good-ca.pem")).expect("sslrootcert naming the server's CA");
    let err = open(&root("other-ca.pem"))
        .err()
        .expect("sslrootcert naming another CA");
    assert!(
        err.contains("not trusted") && err.contains("sslrootcert="),
        "{err}"
    );
    let err = open(&db_url("sslmode=verify-all"))
        .err()
        .expect("an unknown sslmode");
    assert!(err.contains("sslmode=verify-all"), "{err}");

    drop(_restore);
    drop_database(&server, &db).unwrap();
}
