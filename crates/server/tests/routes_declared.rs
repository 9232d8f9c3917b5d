//! Every route of every crate is added through `server::routes::Routes`,
//! which makes it declare its permission; the guard refuses a route that
//! declares none at run time, and this test finds one before it ships: no
//! crate may add routes to axum directly.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_crate_adds_a_route_that_declares_no_permission() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crates folder");
    let mut files = Vec::new();
    for c in std::fs::read_dir(crates).expect("read crates").flatten() {
        rust_files(&c.path().join("src"), &mut files);
    }
    assert!(files.len() > 50, "found only {} source files", files.len());
    // the one place that registers with axum, for the declarations it records
    let builder = crates.join("server/src/routes.rs");
    let forbidden = [
        ".route(",
        ".route_service(",
        ".nest_service(",
        ".fallback_service(",
        "routing::get(",
        "routing::post(",
        "routing::put(",
        "routing::delete(",
        "routing::patch(",
        "routing::on(",
    ];
    let mut found = Vec::new();
    for f in &files {
        if *f == builder {
            continue;
        }
        let text = std::fs::read_to_string(f).expect("read source");
        // only code that can reach axum's router can add a route
        if !text.contains("axum") {
            continue;
        }
        // unit tests may build deliberately undeclared routes
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (i, line) in code.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for pat in forbidden {
                if line.contains(pat) {
                    found.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "routes added without a declared permission (use server::routes::Routes):\n{}",
        found.join("\n")
    );
}
