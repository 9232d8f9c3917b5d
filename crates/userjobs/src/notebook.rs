//! Notebook jobs: the checks made when one is submitted (the run itself is
//! `atelier __notebook-run`, on the job's executor like any command).

use std::path::Path;

use crate::spec::NotebookSpec;

/// The kernel a notebook job names must exist for the kernels' Python: a
/// missing one is refused at submit time with the names that do exist. (A
/// job without a kernel name uses the notebook's own, checked when it runs:
/// the notebook is read then.)
pub fn check_kernel(nb: &NotebookSpec, python: Option<&Path>) -> Result<(), String> {
    let Some(name) = &nb.kernel else {
        return Ok(());
    };
    let specs = nbexec::kernelspecs(python);
    if specs.iter().any(|k| &k.name == name) {
        return Ok(());
    }
    let names: Vec<&str> = specs.iter().map(|k| k.name.as_str()).collect();
    Err(if names.is_empty() {
        format!(
            "no kernel '{name}': no Jupyter kernel is installed for the notebooks' Python{} (install one: `pip install ipykernel`)",
            python
                .map(|p| format!(" ({})", p.display()))
                .unwrap_or_default()
        )
    } else {
        format!(
            "no kernel '{name}'; the kernels available are: {}",
            names.join(", ")
        )
    })
}
