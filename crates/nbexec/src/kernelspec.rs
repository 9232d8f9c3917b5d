//! Kernel spec discovery, as `jupyter kernelspec list` does it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// How a kernel wants to be interrupted (`interrupt_mode` in `kernel.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InterruptMode {
    /// SIGINT to the kernel's process group (the default).
    #[default]
    Signal,
    /// An `interrupt_request` on the control channel.
    Message,
}

/// One installed kernel (a directory holding a `kernel.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct KernelSpec {
    /// The directory name, lower-cased (what notebooks put in `metadata.kernelspec.name`).
    pub name: String,
    pub display_name: String,
    pub language: String,
    /// The command line, with `{connection_file}` (and possibly `{resource_dir}`,
    /// `{prefix}`) still to be substituted.
    pub argv: Vec<String>,
    /// The kernel spec's directory (its `{resource_dir}`).
    pub dir: PathBuf,
    pub interrupt_mode: InterruptMode,
    /// Extra environment from `kernel.json` (`${VAR}` is substituted from the
    /// launching environment when the kernel starts).
    pub env: BTreeMap<String, String>,
}

/// The environment prefix of a Python executable (`sys.prefix`): the folder
/// above its `bin/`, without resolving the venv's symlinks.
pub(crate) fn python_prefix(python: &Path) -> Option<PathBuf> {
    let via = |p: &Path| -> Option<PathBuf> {
        let bin = p.parent()?;
        if bin.file_name()? == "bin" {
            bin.parent().map(Path::to_path_buf)
        } else {
            None
        }
    };
    via(python).or_else(|| via(&python.canonicalize().ok()?))
}

/// The directories searched for kernel specs, highest priority first:
/// `$JUPYTER_PATH` entries, the Python environment's `share/jupyter`
/// (the prefix of `python`, else `$VIRTUAL_ENV` / `$CONDA_PREFIX`), the user's
/// data dir (`$JUPYTER_DATA_DIR`, else `$XDG_DATA_HOME/jupyter`, else
/// `~/.local/share/jupyter`), then `/usr/local/share/jupyter` and
/// `/usr/share/jupyter`; each with `/kernels` appended. This is
/// `jupyter_core.paths.jupyter_path("kernels")` for a Python running in a
/// virtual environment.
pub fn kernel_dirs(python: Option<&Path>) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Some(jp) = std::env::var_os("JUPYTER_PATH") {
        roots.extend(std::env::split_paths(&jp).filter(|p| !p.as_os_str().is_empty()));
    }
    let prefix = match python {
        Some(p) => python_prefix(p),
        None => std::env::var_os("VIRTUAL_ENV")
            .or_else(|| std::env::var_os("CONDA_PREFIX"))
            .map(PathBuf::from),
    };
    if let Some(prefix) = prefix {
        roots.push(prefix.join("share/jupyter"));
    }
    if let Some(dir) = std::env::var_os("JUPYTER_DATA_DIR") {
        roots.push(PathBuf::from(dir));
    } else if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        roots.push(PathBuf::from(xdg).join("jupyter"));
    } else if let Some(home) = std::env::var_os("HOME") {
        roots.push(PathBuf::from(home).join(".local/share/jupyter"));
    }
    roots.push(PathBuf::from("/usr/local/share/jupyter"));
    roots.push(PathBuf::from("/usr/share/jupyter"));
    let mut dirs: Vec<PathBuf> = Vec::new();
    for root in roots {
        let dir = root.join("kernels");
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// Kernel specs visible to `python` (see [`kernel_dirs`] for the search
/// order), the first found winning for each name, sorted by name. When no
/// `python3` spec is installed but `python`'s environment has ipykernel, the
/// built-in `python3` spec is added, as `jupyter_client` does.
pub fn kernelspecs(python: Option<&Path>) -> Vec<KernelSpec> {
    let mut found: BTreeMap<String, KernelSpec> = BTreeMap::new();
    for dir in kernel_dirs(python) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        entries.sort();
        for path in entries {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let name = name.to_lowercase();
            if found.contains_key(&name) || !path.join("kernel.json").is_file() {
                continue;
            }
            match read_spec(&name, &path) {
                Ok(spec) => {
                    found.insert(name, spec);
                }
                Err(reason) => tracing::warn!(
                    dir = %path.display(),
                    "skipping kernel spec with an unreadable kernel.json: {reason}"
                ),
            }
        }
    }
    if !found.contains_key("python3")
        && let Some(spec) = python.and_then(native_python_spec)
    {
        found.insert(spec.name.clone(), spec);
    }
    found.into_values().collect()
}

fn read_spec(name: &str, dir: &Path) -> Result<KernelSpec, String> {
    let text = std::fs::read_to_string(dir.join("kernel.json")).map_err(|e| e.to_string())?;
    let json: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let argv: Vec<String> = json
        .get("argv")
        .and_then(Value::as_array)
        .ok_or("no \"argv\" list")?
        .iter()
        .map(|a| {
            a.as_str()
                .map(str::to_owned)
                .ok_or("\"argv\" holds a non-string")
        })
        .collect::<Result<_, _>>()?;
    if argv.is_empty() {
        return Err("\"argv\" is empty".into());
    }
    let text_field = |key: &str| json.get(key).and_then(Value::as_str).map(str::to_owned);
    let interrupt_mode = match text_field("interrupt_mode").as_deref() {
        Some("message") => InterruptMode::Message,
        _ => InterruptMode::Signal,
    };
    let env = json
        .get("env")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Ok(KernelSpec {
        name: name.to_owned(),
        display_name: text_field("display_name").unwrap_or_else(|| name.to_owned()),
        language: text_field("language").unwrap_or_default(),
        argv,
        dir: dir.to_path_buf(),
        interrupt_mode,
        env,
    })
}

/// ipykernel's built-in spec for `python`, if its environment has ipykernel.
fn native_python_spec(python: &Path) -> Option<KernelSpec> {
    let prefix = python_prefix(python)?;
    let lib = std::fs::read_dir(prefix.join("lib")).ok()?;
    let resources = lib
        .filter_map(|e| e.ok())
        .flat_map(|e| {
            let p = e.path();
            [p.join("site-packages"), p.join("dist-packages")]
        })
        .map(|site| site.join("ipykernel"))
        .find(|pkg| pkg.join("__init__.py").is_file())?
        .join("resources");
    Some(KernelSpec {
        name: "python3".into(),
        display_name: "Python 3 (ipykernel)".into(),
        language: "python".into(),
        argv: [
            python.to_string_lossy().as_ref(),
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
        ]
        .map(str::to_owned)
        .to_vec(),
        dir: resources,
        interrupt_mode: InterruptMode::Signal,
        env: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_of_a_venv_python_is_not_resolved_through_symlinks() {
        assert_eq!(
            python_prefix(Path::new("/opt/venv/bin/python")),
            Some(PathBuf::from("/opt/venv"))
        );
    }

    #[test]
    fn reads_a_kernel_json() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kdir = dir.path().join("kernels/MyKernel");
        std::fs::create_dir_all(&kdir).expect("mkdir");
        std::fs::write(
            kdir.join("kernel.json"),
            r#"{"argv": ["python", "-m", "k", "-f", "{connection_file}"], "display_name": "K",
                "language": "python", "interrupt_mode": "message", "env": {"A": "1"}}"#,
        )
        .expect("write");
        let spec = read_spec("mykernel", &kdir).expect("spec");
        assert_eq!(spec.display_name, "K");
        assert_eq!(spec.interrupt_mode, InterruptMode::Message);
        assert_eq!(spec.env.get("A").map(String::as_str), Some("1"));
        assert!(read_spec("x", dir.path()).is_err());
    }
}
