//! `atelier users` and `atelier projects`: people, their roles per project,
//! and projects (MLflow workspaces), managed on the data folder's store
//! (or `ATELIER_DATABASE_URL`) directly — the way in before anyone can
//! sign in, and for scripts. Results go to stdout, confirmations to stderr.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use store::{AuditEntry, AuditQuery, MetadataStore, Workspace, WorkspaceDeletion};

#[derive(clap::Args)]
pub struct Where {
    #[arg(long, env = "ATELIER_DATA_DIR", default_value = crate::config::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Add a user. A password (read from stdin) lets them sign in to the Studio;
    /// without one they use API tokens only.
    #[command(after_help = "Examples:
  printf '%s\\n' \"$PASSWORD\" | atelier users create alice --password-stdin
  atelier users create ci-bot
  atelier users create root --admin --password-stdin < password.txt
Then give them roles: atelier projects grant team-a alice editor")]
    Create {
        name: String,
        /// A server admin: manages projects and people, admin in every project.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        at: Where,
    },
    /// List users with their projects and roles.
    List {
        #[command(flatten)]
        at: Where,
    },
    /// Set a user's password from the first line of stdin (ends their Studio sessions).
    Password {
        name: String,
        #[command(flatten)]
        at: Where,
    },
    /// Make a user a server admin, or not (`--revoke`).
    Admin {
        name: String,
        #[arg(long)]
        revoke: bool,
        #[command(flatten)]
        at: Where,
    },
    /// Sign a user out of every Studio session.
    SignOut {
        name: String,
        #[command(flatten)]
        at: Where,
    },
    /// Delete a user with their tokens, sessions and roles.
    Delete {
        name: String,
        #[command(flatten)]
        at: Where,
    },
}

#[derive(Subcommand)]
pub enum ProjectsCommand {
    /// List projects.
    List {
        #[command(flatten)]
        at: Where,
    },
    /// Create a project (an MLflow workspace: `mlflow.set_workspace("NAME")`).
    Create {
        /// 2–63 lowercase letters, digits and inner hyphens.
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        at: Where,
    },
    /// Delete an empty project (`--move-to-default` moves all it holds to `default` first; its name stays retired while its artifact folder holds files).
    Delete {
        name: String,
        #[arg(long)]
        move_to_default: bool,
        #[command(flatten)]
        at: Where,
    },
    /// List a project's members and their roles.
    Members {
        name: String,
        #[command(flatten)]
        at: Where,
    },
    /// Give a user a role in a project: viewer, editor or admin.
    #[command(after_help = "Example:\n  atelier projects grant team-a alice editor")]
    Grant {
        project: String,
        user: String,
        role: String,
        #[command(flatten)]
        at: Where,
    },
    /// Take a user's role in a project away.
    Revoke {
        project: String,
        user: String,
        #[command(flatten)]
        at: Where,
    },
}

/// `atelier audit`: read the audit log as JSON Lines, newest first.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  atelier audit --since-hours 24
  atelier audit --actor alice --action experiments > alice.jsonl")]
pub struct AuditArgs {
    /// Only what this user (or service token) did.
    #[arg(long)]
    actor: Option<String>,
    /// Only what was done in this project.
    #[arg(long)]
    project: Option<String>,
    /// Only actions or targets containing this text (e.g. `sign-in`, `DELETE`, `endpoints`).
    #[arg(long)]
    action: Option<String>,
    /// Only the last N hours.
    #[arg(long, value_name = "N")]
    since_hours: Option<u32>,
    #[arg(long, default_value_t = 100_000)]
    limit: usize,
    #[command(flatten)]
    at: Where,
}

pub fn audit(a: AuditArgs) -> anyhow::Result<()> {
    let st = crate::open_store(&a.at.data_dir)?;
    let rows = st.search_audit(&AuditQuery {
        actor: a.actor,
        workspace: a.project,
        action: a.action,
        since_ms: a
            .since_hours
            .map(|h| store::now_ms() - i64::from(h) * 3600 * 1000),
        until_ms: None,
        before_id: None,
        limit: a.limit,
    })?;
    let mut out = std::io::stdout().lock();
    for e in &rows {
        use std::io::Write;
        writeln!(out, "{}", server::audit::entry_json(e))?;
    }
    Ok(())
}

/// Record a change made from the command line (actor `cli`).
pub fn record(st: &dyn MetadataStore, action: &str, target: &str, detail: serde_json::Value) {
    let e = AuditEntry {
        at_ms: store::now_ms(),
        actor: "cli".into(),
        action: format!("atelier {action}"),
        target: target.into(),
        detail: detail.to_string(),
        ..Default::default()
    };
    if let Err(err) = st.append_audit(&e) {
        eprintln!("warning: could not write the audit record: {err}");
    }
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let p = line.trim_end_matches(['\n', '\r']).to_string();
    server::people::check_password(&p).map_err(|e| anyhow::anyhow!(e.message))?;
    Ok(p)
}

fn hash(p: &str) -> anyhow::Result<String> {
    server::people::hash_password(p).map_err(|e| anyhow::anyhow!(e.message))
}

pub fn users(cmd: UsersCommand) -> anyhow::Result<()> {
    match cmd {
        UsersCommand::Create {
            name,
            admin,
            password_stdin,
            at,
        } => {
            let phc = if password_stdin {
                Some(hash(&read_password()?)?)
            } else {
                None
            };
            let st = crate::open_store(&at.data_dir)?;
            st.create_user(&name, phc.as_deref(), admin)?;
            record(
                &st,
                "users create",
                &name,
                serde_json::json!({"admin": admin, "password": phc.is_some()}),
            );
            eprintln!(
                "User '{name}' created{}{}.",
                if admin { " as a server admin" } else { "" },
                if phc.is_some() {
                    ", who can sign in to the Studio"
                } else {
                    " (API tokens only: atelier token create NAME --user …)"
                }
            );
        }
        UsersCommand::List { at } => {
            let st = crate::open_store(&at.data_dir)?;
            for u in st.list_users()? {
                let roles = st.member_roles(&u.name)?;
                let roles: Vec<String> = roles.iter().map(|(w, r)| format!("{w}:{r}")).collect();
                println!(
                    "{}\t{}\t{}\t{}",
                    u.name,
                    if u.is_admin { "server-admin" } else { "-" },
                    if u.has_password {
                        "password"
                    } else {
                        "tokens-only"
                    },
                    if roles.is_empty() {
                        "-".to_string()
                    } else {
                        roles.join(",")
                    }
                );
            }
        }
        UsersCommand::Password { name, at } => {
            let phc = hash(&read_password()?)?;
            let st = crate::open_store(&at.data_dir)?;
            st.set_user_password(&name, Some(&phc))?;
            record(&st, "users password", &name, serde_json::json!({}));
            eprintln!("Password of '{name}' set; their Studio sessions have ended.");
        }
        UsersCommand::Admin { name, revoke, at } => {
            let st = crate::open_store(&at.data_dir)?;
            st.set_user_admin(&name, !revoke)?;
            record(
                &st,
                "users admin",
                &name,
                serde_json::json!({"admin": !revoke}),
            );
            eprintln!(
                "'{name}' is {} a server admin.",
                if revoke { "no longer" } else { "now" }
            );
        }
        UsersCommand::SignOut { name, at } => {
            let st = crate::open_store(&at.data_dir)?;
            st.get_user(&name)?;
            let n = st.end_sessions(&name)?;
            record(
                &st,
                "users sign-out",
                &name,
                serde_json::json!({"ended": n}),
            );
            eprintln!("Ended {n} session(s) of '{name}'.");
        }
        UsersCommand::Delete { name, at } => {
            let st = crate::open_store(&at.data_dir)?;
            st.delete_user(&name)?;
            record(&st, "users delete", &name, serde_json::json!({}));
            eprintln!("User '{name}' deleted with their tokens, sessions and roles.");
        }
    }
    Ok(())
}

pub fn projects(cmd: ProjectsCommand) -> anyhow::Result<()> {
    match cmd {
        ProjectsCommand::List { at } => {
            for w in crate::open_store(&at.data_dir)?.list_workspaces()? {
                println!("{}\t{}", w.name, w.description.unwrap_or_default());
            }
        }
        ProjectsCommand::Create {
            name,
            description,
            at,
        } => {
            if name == store::DEFAULT_WORKSPACE {
                bail!("the 'default' project always exists");
            }
            server::workspace::validate_name(&name).map_err(|e| anyhow::anyhow!(e.message))?;
            let st = crate::open_store(&at.data_dir)?;
            match st.create_workspace(&Workspace {
                name: name.clone(),
                description,
                default_artifact_root: None,
                creation_time: 0,
            }) {
                // a deleted project's name: only the server sees the artifact store
                Err(store::StoreError::InvalidState(m)) => bail!(
                    "{m} Once projects/{name}/ is empty, create it through the server \
                     (`mlflow` client: MlflowClient().create_workspace(\"{name}\")), which checks \
                     the folder and frees the name."
                ),
                other => {
                    other?;
                }
            }
            record(&st, "projects create", &name, serde_json::json!({}));
            eprintln!(
                "Project '{name}' created. Give people roles: atelier projects grant {name} USER editor"
            );
        }
        ProjectsCommand::Delete {
            name,
            move_to_default,
            at,
        } => {
            let mode = if move_to_default {
                WorkspaceDeletion::SetDefault
            } else {
                WorkspaceDeletion::Restrict
            };
            let st = crate::open_store(&at.data_dir)?;
            st.delete_workspace(&name, mode)?;
            record(
                &st,
                "projects delete",
                &name,
                serde_json::json!({"move_to_default": move_to_default}),
            );
            eprintln!("Project '{name}' deleted.");
        }
        ProjectsCommand::Members { name, at } => {
            for (u, r) in crate::open_store(&at.data_dir)?.list_members(&name)? {
                println!("{u}\t{r}");
            }
        }
        ProjectsCommand::Grant {
            project,
            user,
            role,
            at,
        } => {
            let st = crate::open_store(&at.data_dir)?;
            st.set_member(&project, &user, &role)?;
            record(
                &st,
                "projects grant",
                &project,
                serde_json::json!({"user": user, "role": role}),
            );
            eprintln!("'{user}' is now {role} in project '{project}'.");
        }
        ProjectsCommand::Revoke { project, user, at } => {
            let st = crate::open_store(&at.data_dir)?;
            st.remove_member(&project, &user)?;
            record(
                &st,
                "projects revoke",
                &project,
                serde_json::json!({"user": user}),
            );
            eprintln!("'{user}' has no role in project '{project}' any more.");
        }
    }
    Ok(())
}
