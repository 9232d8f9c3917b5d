//! Datasets: files users upload for Autopilot and batch jobs, kept in the
//! artifact store under [`DATASETS`], one file per name.

use crate::ArtifactPath;

/// Datasets live in the artifact store under this folder, one file each.
pub const DATASETS: &str = "datasets";

/// File name endings Autopilot reads.
const EXTENSIONS: &[&str] = &["csv", "tsv", "txt", "parquet", "pq"];

/// The folder of project `workspace`'s datasets: [`DATASETS`] for the
/// default project (where every dataset lived before projects), else
/// `projects/<workspace>/datasets`.
pub fn datasets_dir(workspace: &str) -> String {
    crate::projects::in_project(workspace, DATASETS)
}

/// The artifact path of project `workspace`'s dataset named `name`.
pub fn dataset_path_in(workspace: &str, name: &str) -> Result<ArtifactPath, String> {
    let p = dataset_path(name)?;
    if datasets_dir(workspace) == DATASETS {
        return Ok(p);
    }
    ArtifactPath::parse(&format!("{}/{name}", datasets_dir(workspace))).map_err(|e| e.to_string())
}

/// The artifact path of a dataset named `name` in the default project (one
/// file name, with a `.csv`, `.tsv`, `.txt`, `.parquet` or `.pq` ending).
pub fn dataset_path(name: &str) -> Result<ArtifactPath, String> {
    if name.is_empty() || name.len() > 200 {
        return Err("a dataset name is 1 to 200 characters".into());
    }
    if name.contains('/') || name.contains('\\') || name.starts_with('.') {
        return Err(format!(
            "'{name}' is not a dataset name: give a file name without folders, like 'churn.csv'"
        ));
    }
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if !EXTENSIONS.contains(&ext.as_str()) {
        return Err(format!(
            "'{name}' is not a supported file: Autopilot reads CSV (.csv, .tsv, .txt) and Parquet (.parquet, .pq)"
        ));
    }
    ArtifactPath::parse(&format!("{DATASETS}/{name}")).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_project_keeps_its_datasets_apart() {
        assert_eq!(
            dataset_path_in("default", "a.csv").unwrap().as_str(),
            "datasets/a.csv"
        );
        assert_eq!(
            dataset_path_in("team-a", "a.csv").unwrap().as_str(),
            "projects/team-a/datasets/a.csv"
        );
        assert!(dataset_path_in("team-a", "../a.csv").is_err());
    }

    #[test]
    fn dataset_names_are_single_supported_files() {
        assert!(dataset_path("churn.csv").is_ok());
        assert!(dataset_path("a b.PARQUET").is_ok());
        for bad in [
            "",
            "../x.csv",
            "a/b.csv",
            ".hidden.csv",
            "x.xlsx",
            "noext",
            "a\\b.csv",
        ] {
            assert!(dataset_path(bad).is_err(), "{bad}");
        }
        assert!(
            dataset_path("x.xlsx")
                .unwrap_err()
                .contains("CSV (.csv, .tsv, .txt) and Parquet")
        );
    }
}
