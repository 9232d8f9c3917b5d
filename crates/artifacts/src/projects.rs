//! Which project owns a place in the artifact store.
//!
//! The layout is one rule: an experiment's artifacts live under its numeric
//! id (its project is the experiment's); every other folder of the default
//! project (where everything lived before projects) sits at the top
//! (`datasets/`, `capture/<endpoint>/`, `jobs-code/…`), and every other
//! project's under `projects/<name>/` with the same folders inside. So a
//! place's owner follows from its path alone (plus the experiment's project
//! for numeric ids), and a name that one project frees and another takes
//! (an endpoint's) never hands over what the first one left behind.

use crate::ArtifactPath;

/// The project every artifact belonged to before projects existed.
pub const DEFAULT_PROJECT: &str = "default";

/// Where `rel` (a folder such as `capture/churn` or `jobs-code/5b2c`) lives
/// for project `workspace`: `rel` itself in the default project, else
/// `projects/<workspace>/<rel>`.
pub fn in_project(workspace: &str, rel: &str) -> String {
    if workspace.is_empty() || workspace == DEFAULT_PROJECT {
        rel.to_string()
    } else if rel.is_empty() {
        format!("projects/{workspace}")
    } else {
        format!("projects/{workspace}/{rel}")
    }
}

/// Who owns a path (see the module's rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Home<'a> {
    /// An experiment's artifacts: the experiment's project owns them.
    Experiment(i64),
    /// A project's own folder.
    Project(&'a str),
    /// The store's root and the list of projects' folders, which name every
    /// project: a server administrator's only.
    ServerAdmin,
}

/// The owner of `path` (see the module's rule).
pub fn home(path: &ArtifactPath) -> Home<'_> {
    let mut parts = path.as_str().split('/');
    let first = parts.next().unwrap_or_default();
    let second = parts.next().unwrap_or_default();
    match first {
        "" => Home::ServerAdmin,
        "projects" if second.is_empty() => Home::ServerAdmin,
        "projects" => Home::Project(second),
        // an experiment id as the server writes it: digits, no sign, no leading zero
        _ if first.bytes().all(|b| b.is_ascii_digit())
            && (first == "0" || !first.starts_with('0')) =>
        {
            match first.parse::<i64>() {
                Ok(id) => Home::Experiment(id),
                Err(_) => Home::Project(DEFAULT_PROJECT),
            }
        }
        _ => Home::Project(DEFAULT_PROJECT),
    }
}

/// Whether a caller in project `workspace` (`admin`: a server
/// administrator) may read or write `path`. `experiment_project` names an
/// experiment's project (`None` when there is no such experiment: then its
/// leftovers are a server administrator's). `retired` says whether a
/// project name belonged to a deleted project whose folder passed to the
/// default project (asked only when the default project wants another's).
pub fn may_use(
    path: &ArtifactPath,
    workspace: &str,
    admin: bool,
    experiment_project: impl FnOnce(i64) -> Option<String>,
    retired: impl FnOnce(&str) -> bool,
) -> bool {
    let workspace = if workspace.is_empty() {
        DEFAULT_PROJECT
    } else {
        workspace
    };
    match home(path) {
        Home::ServerAdmin => admin,
        Home::Project(p) => p == workspace || (workspace == DEFAULT_PROJECT && retired(p)),
        Home::Experiment(id) => match experiment_project(id) {
            Some(p) => p == workspace,
            None => admin,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ArtifactPath {
        ArtifactPath::parse(s).unwrap()
    }

    #[test]
    fn every_path_has_one_owner() {
        assert_eq!(home(&p("")), Home::ServerAdmin);
        assert_eq!(home(&p("projects")), Home::ServerAdmin);
        assert_eq!(
            home(&p("projects/team-b/capture/ep")),
            Home::Project("team-b")
        );
        assert_eq!(home(&p("capture/ep/v1")), Home::Project("default"));
        assert_eq!(home(&p("jobs-code/5b2c")), Home::Project("default"));
        assert_eq!(home(&p("12/abc/artifacts")), Home::Experiment(12));
        // only the ids the server writes: "012" or "+12" is a folder of the default project
        assert_eq!(home(&p("012/x")), Home::Project("default"));
        assert_eq!(home(&p("+12/x")), Home::Project("default"));
        assert_eq!(home(&p("0/x")), Home::Experiment(0));
    }

    #[test]
    fn a_project_reaches_its_own_folders_only() {
        let exp = |id: i64| (id == 1).then(|| "team-b".to_string());
        let none = |_: &str| false;
        assert!(may_use(&p("projects/team-b/x"), "team-b", false, exp, none));
        assert!(!may_use(
            &p("projects/team-b/x"),
            "team-a",
            false,
            exp,
            none
        ));
        assert!(!may_use(&p("capture/ep"), "team-b", false, exp, none));
        assert!(may_use(&p("capture/ep"), "", false, exp, none));
        assert!(may_use(&p("1/r/artifacts"), "team-b", false, exp, none));
        assert!(!may_use(&p("1/r/artifacts"), "default", false, exp, none));
        // a deleted experiment's leftovers and the root: administrators only
        assert!(!may_use(&p("2/r"), "default", false, exp, none));
        assert!(may_use(&p("2/r"), "default", true, exp, none));
        assert!(!may_use(&p(""), "default", false, exp, none));
        assert!(may_use(&p("projects"), "team-b", true, exp, none));
        // a deleted project's folder passed to the default project, and only to it
        let gone = |p: &str| p == "team-c";
        assert!(may_use(
            &p("projects/team-c/x"),
            "default",
            false,
            exp,
            gone
        ));
        assert!(may_use(&p("projects/team-c/x"), "", false, exp, gone));
        assert!(!may_use(
            &p("projects/team-c/x"),
            "team-b",
            false,
            exp,
            gone
        ));
        assert!(!may_use(
            &p("projects/team-b/x"),
            "default",
            false,
            exp,
            gone
        ));
    }

    #[test]
    fn folders_are_placed_by_project() {
        assert_eq!(in_project("default", "capture/ep"), "capture/ep");
        assert_eq!(in_project("", "capture/ep"), "capture/ep");
        assert_eq!(
            in_project("team-b", "capture/ep"),
            "projects/team-b/capture/ep"
        );
    }
}
