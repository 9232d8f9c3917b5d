//! The `atelier` binary: command line, configuration, tracing set-up and
//! wiring of the store, artifact store and HTTP server. Errors are printed
//! once, here, and decide the exit code.

mod autopilot_worker;
mod batch_worker;
mod bench;
mod clarify_cli;
mod config;
mod import_cli;
mod job_worker;
mod jobs_cli;
mod migrate_cli;
mod monitor_cli;
mod notebooks_cli;
mod people_cli;
mod remote;
mod serving_cli;
mod tune_cli;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{CommandFactory, Parser, Subcommand};
use store::MetadataStore;

use config::{ServeArgs, Settings};

#[derive(Parser)]
#[command(
    name = "atelier",
    version,
    about = "A self-hosted machine-learning studio: experiments, models and more, in one binary",
    after_help = "Examples:
  atelier serve                               # Studio and MLflow-compatible API on http://127.0.0.1:5000
  atelier serve --port 8080 --data-dir /srv/atelier
  atelier token create alice --role editor    # print a new API token (shown once)
  MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python train.py"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// (internal) Supervise one job's command for the local executor.
    #[command(hide = true, name = "__supervise")]
    Supervise {
        /// The launch file the executor wrote.
        launch_file: PathBuf,
    },
    /// (internal) Execute a notebook inside a notebook job.
    #[command(hide = true, name = "__notebook-run")]
    NotebookRun(Box<notebooks_cli::ExecArgs>),
    /// (internal) Stage a job on a Ray worker through the server, run its
    /// command there and upload its outputs (manifest in ATELIER_STAGE_MANIFEST).
    #[command(hide = true, name = "job-worker")]
    JobWorker {
        /// The job's command, after `--`.
        #[arg(last = true)]
        argv: Vec<std::ffi::OsString>,
    },
    /// (internal) Evaluate one Autopilot candidate on a cluster worker.
    #[command(hide = true, name = "__autopilot-trial")]
    AutopilotTrial,
    /// (internal) Run a batch transform on a cluster worker.
    #[command(hide = true, name = "__batch-transform")]
    BatchTransformWorker,
    /// Run the server: the Studio web UI and the MLflow-compatible tracking API.
    #[command(
        after_help = "Settings come from flags, then ATELIER_* environment variables, then the --config file, then defaults.
Bound to a non-loopback address, the server refuses to start unless API tokens exist (see `atelier token create`).

Examples:
  atelier serve
  atelier serve --host 0.0.0.0 --port 5000 --data-dir /srv/atelier
  atelier serve --config atelier.toml"
    )]
    Serve(ServeArgs),
    /// Train a model pipeline from a CSV or Parquet file (no server needed).
    #[command(
        after_help = "The output is one pipeline file (preprocessing + model + label decoding) that
`atelier predict` and endpoints load.

Examples:
  atelier train adult.csv --target income --output adult.model
  atelier train housing.parquet --target price --param learning_rate=0.1 --param num_leaves=63 -o price.model
  atelier train ratings.csv --target stars --problem-type regression -o stars.model"
    )]
    Train {
        /// Training data (.csv or .parquet).
        train: PathBuf,
        /// The column to predict.
        #[arg(long)]
        target: String,
        /// The learner: gbm (gradient-boosted trees), rf (random forest), extra-trees
        /// (extremely randomised trees), linear (linear or logistic regression) or mlp (a
        /// small neural network).
        #[arg(long, default_value = "gbm", value_parser = algorithms(), hide_possible_values = true)]
        algorithm: String,
        /// A learner parameter, e.g. --param learning_rate=0.1 (repeatable).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// binary, multiclass or regression (inferred from the target when omitted).
        #[arg(long)]
        problem_type: Option<String>,
        /// Where to write the pipeline file.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Profile a dataset: per column kind, counts, missing, distinct, statistics, top values.
    #[command(
        after_help = "Examples:\n  atelier profile adult.csv\n  atelier profile adult.parquet --json > adult.profile.json"
    )]
    Profile {
        /// Data (.csv or .parquet).
        data: PathBuf,
        /// Print the full, versioned profile as JSON (mergeable sketches included).
        #[arg(long)]
        json: bool,
    },
    /// Predict with a pipeline file: one output row per input row.
    #[command(
        after_help = "The output CSV has `predicted_label` and, for classification, one
`probability_<class>` column per class.

Example:
  atelier predict adult.model new_people.csv --output predictions.csv"
    )]
    Predict {
        /// A pipeline written by `atelier train`.
        model: PathBuf,
        /// Rows to predict (.csv or .parquet), with the training columns (the target may be absent).
        input: PathBuf,
        /// Where to write the predictions CSV.
        #[arg(long, short)]
        output: PathBuf,
        /// Also write each input column's contribution (SHAP value) and the base value;
        /// they add up to the prediction in the space printed on stderr: exact TreeSHAP
        /// for gbm (log-odds / the predicted class's logit / value) and forests
        /// (probability / value), exact linear SHAP for linear models (margin), permutation
        /// SHAP for MLPs and mixed ensembles (probability / value).
        #[arg(long)]
        contributions: bool,
        /// Model evaluations per row for permutation SHAP (MLPs, mixed ensembles): more is
        /// more precise and slower.
        #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(1..))]
        explain_evals: u64,
    },
    /// AutoML: train and tune many candidates within a budget, keep the best (or an ensemble).
    #[command(
        after_help = "Metrics (--metric): binary auc (default), accuracy, balanced_accuracy, f1, f1_macro,
precision, recall, log_loss; multiclass accuracy (default), balanced_accuracy, f1_macro, auc,
log_loss; regression mse (default), rmse, mae, r2. AUC is the binary default because it ranks
models by how well they separate the classes, not by one cut-off.

Validation: 5-fold cross-validation up to 10,000 rows (repeated twice up to 2,000 rows), a 20 %
holdout beyond, or --validation FILE.

Stopping: the search runs until the time budget is spent (the final refit included), unless it
converges first (the last max(20, 40 %) candidates improved the best validation score by less than
one standard error of the paired fold differences) or reaches --max-candidates; the reason is
printed at the end (stopped: …).

With --server URL the data is uploaded and the search runs as a job on that server: every
candidate is logged as a run of the experiment (--experiment, default Autopilot), the best
pipeline is registered as a model version (--model-name, default <file>-<target>), and the
Studio shows the leaderboard live at /autopilot/<job id>. --detach prints the job id and returns.

Examples:
  atelier automl adult.csv --target income --time-budget 60 --output adult.model
  atelier automl houses.parquet --target price --metric rmse --max-candidates 20 -o price.model
  atelier automl churn.csv --target churned --server http://127.0.0.1:5000 --time-budget 600"
    )]
    Automl {
        /// Training data (.csv or .parquet).
        train: PathBuf,
        /// The column to predict.
        #[arg(long)]
        target: String,
        /// Seconds to spend, refit included.
        #[arg(long, default_value_t = 3600.0)]
        time_budget: f64,
        /// Stop after this many candidates (a cap: the time budget, or convergence, usually
        /// ends the search first).
        #[arg(long, default_value_t = automl::MAX_CANDIDATES)]
        max_candidates: usize,
        /// The metric to optimise (see below).
        #[arg(long)]
        metric: Option<String>,
        /// binary, multiclass or regression (inferred when omitted).
        #[arg(long)]
        problem_type: Option<String>,
        /// A separate validation file instead of cross-validation.
        #[arg(long)]
        validation: Option<PathBuf>,
        /// Seed for fold assignment and the search.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Refuse data with fewer rows (with a target value) than this.
        #[arg(long, default_value_t = automl::MIN_ROWS)]
        min_rows: usize,
        /// Where to write the best pipeline (required without --server).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Run as a job on this Atelier server instead of here.
        #[arg(long, env = "ATELIER_SERVER")]
        server: Option<String>,
        /// With --server: the experiment that receives the candidate runs.
        #[arg(long, default_value = "Autopilot")]
        experiment: String,
        /// With --server: the registered model that receives the best pipeline.
        #[arg(long)]
        model_name: Option<String>,
        /// With --server: print the job id and return instead of following the job.
        #[arg(long)]
        detach: bool,
        /// Where to write the data-exploration and model-quality reports and the
        /// candidate notebook [default: <output>.reports beside the pipeline]. With
        /// --server they are stored with the job's run instead.
        #[arg(long, conflicts_with = "no_reports")]
        reports: Option<PathBuf>,
        /// Write no reports (they explain up to 300 rows with SHAP, which takes a
        /// while for ensembles of non-tree models).
        #[arg(long)]
        no_reports: bool,
        #[command(flatten)]
        bias: clarify_cli::AutomlBias,
    },
    /// Tune a training command's hyperparameters on a server: many training jobs, the best kept.
    #[command(
        after_help = "Every trial is a training job (see `atelier jobs run`) with the sampled hyperparameters
(SM_HP_<NAME>, hyperparameters.json); its run is a child of the tuning's parent run. The
objective is the last value of the metric the script logs. The server needs --job-workers
of at least --parallel + 1: the tuning job holds one worker while its trials run.

Examples:
  atelier tune --objective val_loss:minimize --param lr=log-uniform:1e-3:1 \\
      --param depth=int:2:8 --param booster=choice:gbtree,dart --max-jobs 20 --parallel 2 \\
      --early-stopping median --input train=data/train.csv --code . -- python train.py"
    )]
    Tune(Box<tune_cli::TuneArgs>),
    /// Notebooks: run one as a job on a server, or make the Python environment notebooks use.
    Notebooks {
        #[command(subcommand)]
        action: NotebooksCommand,
    },
    /// Background jobs on a server (Autopilot, batch transform, …).
    Jobs {
        #[command(subcommand)]
        action: JobsCommand,
    },
    /// Deploy a model to a real-time endpoint on a running server.
    #[command(
        after_help = "MODEL is models:/<name>/<version>, models:/<name>@<alias> (the registry), or a pipeline
file written by `atelier train` (uploaded to the server's artifact store). Deploying to an existing
endpoint replaces the variant of that name (default AllTraffic) and keeps the others, so
--variant and --weight build A/B splits. Set ATELIER_TOKEN (or MLFLOW_TRACKING_TOKEN) when the
server requires authentication.

Examples:
  atelier deploy adult.model --name adult
  atelier deploy models:/adult/2 --name adult --variant challenger --weight 0.1
  curl -H 'Content-Type: text/csv' --data-binary @rows.csv http://127.0.0.1:5000/endpoints/adult/invocations"
    )]
    Deploy {
        /// models:/<name>/<version>, models:/<name>@<alias>, or a pipeline file.
        model: String,
        /// The endpoint's name (letters, digits, '-', '_', '.').
        #[arg(long)]
        name: String,
        /// The server to deploy to.
        #[arg(long, default_value = "http://127.0.0.1:5000")]
        server: String,
        /// The production variant to create or replace.
        #[arg(long, default_value = "AllTraffic")]
        variant: String,
        /// The variant's share of traffic, relative to the others' weights.
        #[arg(long, default_value_t = 1.0)]
        weight: f64,
        /// Percentage of invocations captured (request and response) [default: 20].
        #[arg(long)]
        sampling_percentage: Option<f64>,
        /// Turn data capture off.
        #[arg(long)]
        no_capture: bool,
        /// Invocations in flight at most; more get 503 [default: 128].
        #[arg(long)]
        max_concurrency: Option<usize>,
    },
    /// Endpoint operations beyond deploy: shadow tests.
    Endpoints {
        #[command(subcommand)]
        action: serving_cli::EndpointsCommand,
    },
    /// Predict files or folders in bulk (CSV in, `<file>.out` CSV out; Parquet in, `<stem>.out.parquet` out).
    #[command(
        after_help = "With a pipeline file, runs here. With a registry model (models:/...) or --server,
runs as a job on the server (inputs uploaded, outputs downloaded); progress is shown either way.
A row that cannot be predicted is reported with its line number (in <file>.out.errors too)
and its prediction fields are left empty; the other rows are kept.

Examples:
  atelier batch-transform adult.model new_people.csv --output predictions/
  atelier batch-transform adult.model incoming/ --output scored/ --join-input
  atelier batch-transform models:/adult@champion incoming/ --output scored/"
    )]
    BatchTransform {
        /// A pipeline file, or models:/<name>/<version> / models:/<name>@<alias>.
        model: String,
        /// A .csv or .parquet file, or a folder of them.
        input: PathBuf,
        /// The folder to write `<file>.out` into.
        #[arg(long, short)]
        output: PathBuf,
        /// Run on this server as a job.
        #[arg(long)]
        server: Option<String>,
        /// Write the input columns before the predictions.
        #[arg(long)]
        join_input: bool,
    },
    /// Model Monitor: baseline a dataset, then check new data for drift and constraint violations.
    Monitor {
        #[command(subcommand)]
        action: monitor_cli::MonitorCommand,
    },
    /// Clarify: bias reports with SageMaker Clarify's metrics and analysis.json.
    Clarify {
        #[command(subcommand)]
        action: clarify_cli::ClarifyCommand,
    },
    /// Benchmarks that print Atelier's figures beside its peers'.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
    /// Import data from another tracking server (`atelier import mlflow --from sqlite:///mlflow.db`).
    Import {
        #[command(subcommand)]
        source: import_cli::ImportCommand,
    },
    /// Move this installation's metadata to PostgreSQL (and artifacts to S3), counts verified.
    Migrate(migrate_cli::MigrateArgs),
    /// Manage API tokens (sent as `Authorization: Bearer <token>`, e.g. via MLFLOW_TRACKING_TOKEN).
    Token {
        #[command(subcommand)]
        action: TokenCommand,
    },
    /// Manage people: Studio sign-in, server admins, sessions.
    Users {
        #[command(subcommand)]
        action: people_cli::UsersCommand,
    },
    /// Manage projects (MLflow workspaces) and who has which role in them.
    Projects {
        #[command(subcommand)]
        action: people_cli::ProjectsCommand,
    },
    /// Read the audit log (every change, sign-in and failed sign-in) as JSON Lines.
    Audit(people_cli::AuditArgs),
}

#[derive(Subcommand)]
enum NotebooksCommand {
    /// Run a notebook headless as a job (papermill's conventions) and follow its output.
    #[command(
        after_help = "The cell tagged `parameters` is followed by an injected cell tagged `injected-parameters`,
as papermill does; the executed notebook (with papermill's metadata) is the job run's artifact
output/notebook/<file>, saved after every cell. Metrics the notebook logs with mlflow land in
the job's run. The exit code is 0 when every cell ran.

Examples:
  atelier notebooks run analysis.ipynb -p alpha=0.5 -p epochs=3 --output out.ipynb
  atelier notebooks run workspace:reports/weekly.ipynb --cell-timeout 600 --detach"
    )]
    Run(Box<notebooks_cli::RunArgs>),
    /// Make the Python environment of JupyterLab and notebook kernels in the data folder
    /// (<data-dir>/python: jupyterlab, ipykernel, mlflow, pandas, matplotlib, scikit-learn).
    Setup {
        #[arg(long, env = "ATELIER_DATA_DIR", default_value = config::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// The Python that makes the virtual environment.
        #[arg(long, default_value = "python3")]
        python: String,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Run your own command as a processing or training job and follow its output.
    #[command(
        after_help = "Inputs are datasets/<file>, runs:/<run>/<path>, models:/<name>@<alias> or /<version>,
or local files and folders (uploaded first). The code is --code DIR, else the files the
command names that exist here (e.g. prep.py). The job's folder stands in for /opt/ml; see
`crates/userjobs/src/layout.rs` for SageMaker's and MLflow's variables the command gets.

Examples:
  atelier jobs run --kind processing --name prep --input raw=data/raw.csv --output clean \\
      -- python prep.py --min-rows 100
  atelier jobs run --kind training --input train=runs:/<run>/output/clean \\
      --hyperparameter lr=0.1 --rule LossNotDecreasing --rule Overfit:patience=3 \\
      --max-runtime 3600 -- python train.py"
    )]
    Run(Box<jobs_cli::RunArgs>),
    /// A processing or training job's output; -f follows it until the job ends.
    Logs {
        id: String,
        #[arg(short, long)]
        follow: bool,
        #[arg(long, env = "ATELIER_SERVER", default_value = remote::DEFAULT_SERVER)]
        server: String,
    },
    /// Stop a job: SIGTERM to its command, SIGKILL after the grace period.
    Stop {
        id: String,
        #[arg(long, env = "ATELIER_SERVER", default_value = remote::DEFAULT_SERVER)]
        server: String,
    },
    /// Newest first.
    List {
        #[arg(long, env = "ATELIER_SERVER", default_value = remote::DEFAULT_SERVER)]
        server: String,
        /// Only jobs of this kind (e.g. automl).
        #[arg(long)]
        kind: Option<String>,
    },
    /// One job as JSON (spec, progress, result, error).
    Show {
        id: String,
        #[arg(long, env = "ATELIER_SERVER", default_value = remote::DEFAULT_SERVER)]
        server: String,
    },
    /// Ask a job to stop; a running job stops after the step in progress.
    Cancel {
        id: String,
        #[arg(long, env = "ATELIER_SERVER", default_value = remote::DEFAULT_SERVER)]
        server: String,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// AutoML on every benchmark dataset at a fixed budget, beside LightGBM, FLAML and AutoGluon
    /// run in the same run.
    #[command(
        after_help = "The peers (LightGBM defaults, FLAML, AutoGluon tabular) run one after the other, never
beside Atelier, through bench/automl/peers.py in venvs created under target/bench-automl/ from the
pinned bench/automl/requirements-*.txt (the first run installs them). --peers anchors prints the
figures of datasets/anchors/automl.json instead (measured at another time); --no-peers runs
Atelier alone.

Example (from the repository's root):
  atelier bench automl --time-budget 60 --json target/bench-automl.json --readme README.md"
    )]
    Automl {
        /// The folder with the seven dataset CSVs (and anchors/automl.json for --peers anchors):
        /// the repository's datasets/ (the default works from the repository's root).
        #[arg(long, value_name = "DIR", default_value = "datasets")]
        data: PathBuf,
        /// Seconds per dataset, for Atelier and for each AutoML peer.
        #[arg(long, default_value_t = 60.0)]
        time_budget: f64,
        /// Candidates per dataset at most (as `atelier automl --max-candidates`).
        #[arg(long, default_value_t = automl::MAX_CANDIDATES)]
        max_candidates: usize,
        /// Only these datasets (comma-separated names).
        #[arg(long, value_delimiter = ',')]
        datasets: Vec<String>,
        /// Also write the results (and the machine, date and versions) as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Where the peers' figures come from: live (run them now) or anchors (figures
        /// measured at another time, from datasets/anchors/automl.json).
        #[arg(long, value_enum, default_value = "live", num_args = 0..=1, default_missing_value = "live")]
        peers: bench::Peers,
        /// Run Atelier alone.
        #[arg(long, conflicts_with = "peers")]
        no_peers: bool,
        /// The folder with peers.py and the requirement files (the repository's bench/automl).
        #[arg(long, value_name = "DIR", default_value = "bench/automl")]
        peers_dir: PathBuf,
        /// Where the peers' venvs and logs go.
        #[arg(long, value_name = "DIR", default_value = "target/bench-automl")]
        work_dir: PathBuf,
        /// The Python that creates the venvs.
        #[arg(long, default_value = "python3")]
        python: PathBuf,
        /// Write the table into this README between <!-- bench:automl --> and
        /// <!-- /bench:automl --> (off by default).
        #[arg(long, value_name = "PATH")]
        readme: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it (it is stored hashed and shown only once).
    #[command(
        after_help = "Example:\n  atelier token create ci-bot --role editor --data-dir /srv/atelier"
    )]
    Create {
        /// A unique name for the token (who or what uses it).
        name: String,
        /// The most the token may do: viewer (read only), editor (read and write) or admin.
        #[arg(long, default_value = "admin")]
        role: String,
        /// The user the token belongs to: it acts with their roles, capped by --role.
        /// Without it, a service token: --role in every project (admin: a server admin).
        #[arg(long)]
        user: Option<String>,
        /// Refuse the token after this many days [default: never].
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
        #[arg(long, env = "ATELIER_DATA_DIR", default_value = config::DEFAULT_DATA_DIR)]
        data_dir: std::path::PathBuf,
    },
    /// List token names and roles.
    List {
        #[arg(long, env = "ATELIER_DATA_DIR", default_value = config::DEFAULT_DATA_DIR)]
        data_dir: std::path::PathBuf,
    },
    /// Revoke a token by name.
    Revoke {
        name: String,
        #[arg(long, env = "ATELIER_DATA_DIR", default_value = config::DEFAULT_DATA_DIR)]
        data_dir: std::path::PathBuf,
    },
}

/// The learners `atelier train --algorithm` accepts: exactly those of
/// `learn::Algorithm::parse` (a test trains each one listed in the help).
fn algorithms() -> clap::builder::PossibleValuesParser {
    use clap::builder::PossibleValue;
    clap::builder::PossibleValuesParser::new([
        PossibleValue::new("gbm"),
        PossibleValue::new("rf").alias("random-forest"),
        PossibleValue::new("extra-trees").alias("et"),
        PossibleValue::new("linear"),
        PossibleValue::new("mlp"),
    ])
}

fn main() -> ExitCode {
    let cli = parse_cli();
    quiet_on_closed_pipe(&cli.command);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Rust ignores SIGPIPE, so `atelier profile data.csv --json | head` would
/// panic on its next print once `head` has gone. Commands that print and
/// exit get the default back (they end quietly, as `cat` does); the server,
/// the benchmark and the internal job supervisors keep ignoring it, since
/// they write to sockets and children's pipes and must outlive a closed one.
fn quiet_on_closed_pipe(command: &Command) {
    if matches!(
        command,
        Command::Serve(_)
            | Command::Supervise { .. }
            | Command::NotebookRun(_)
            | Command::JobWorker { .. }
            | Command::Bench { .. }
    ) {
        return;
    }
    // SAFETY: called before any thread is started; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The command line, parsed. After a missing required argument clap's usage
/// line also lists every option that was given, as if those were required
/// too; it is replaced by the command's own usage (what is required, the
/// rest as `[OPTIONS]`).
fn parse_cli() -> Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    Cli::try_parse_from(&args).unwrap_or_else(|mut e| {
        if e.kind() == clap::error::ErrorKind::MissingRequiredArgument
            && let Some(usage) = usage_of(&args)
        {
            e.insert(
                clap::error::ContextKind::Usage,
                clap::error::ContextValue::StyledStr(usage),
            );
        }
        e.exit()
    })
}

/// The usage of the (sub)command `args` name, e.g. `atelier jobs run`.
fn usage_of(args: &[std::ffi::OsString]) -> Option<clap::builder::StyledStr> {
    let mut root = Cli::command();
    root.build();
    let mut at = &root;
    for a in args.iter().skip(1) {
        let a = a.to_str()?;
        if a == "--" {
            break;
        }
        if a.starts_with('-') {
            continue;
        }
        match at.find_subcommand(a) {
            Some(sub) => at = sub,
            None => break,
        }
    }
    Some(at.clone().render_usage())
}

fn init_tracing(filter: &str) {
    // the PostgreSQL driver logs every statement at debug level: quiet
    // unless the filter names it
    let filter = if filter.contains("tokio_postgres") {
        filter.to_string()
    } else {
        format!("{filter},tokio_postgres=warn")
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour_on_stderr())
        .try_init();
}

/// Colours only for a terminal (a log file gets plain text), and never with
/// `NO_COLOR` set to anything but "" (<https://no-color.org>).
fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The metadata store: PostgreSQL when `ATELIER_DATABASE_URL` is set (the
/// commands other than `serve` read it from there), else SQLite in the data folder.
fn open_store(data_dir: &std::path::Path) -> anyhow::Result<store::SqlStore> {
    let url = std::env::var("ATELIER_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .map(artifacts::Secret::new);
    open_store_at(data_dir, url.as_ref())
}

fn open_store_at(
    data_dir: &std::path::Path,
    database_url: Option<&artifacts::Secret>,
) -> anyhow::Result<store::SqlStore> {
    let test_url;
    let database_url = match (database_url, store::scratch::test_database_url()) {
        (None, Some(server)) => {
            // tests only: each data folder gets its own database on that server
            std::fs::create_dir_all(data_dir).ok();
            let url = store::scratch::database_for_folder(&server, data_dir).map_err(|e| {
                anyhow::anyhow!(
                    "the test database server ({}): {e}",
                    store::scratch::TEST_DATABASE_URL
                )
            })?;
            test_url = artifacts::Secret::new(url);
            Some(&test_url)
        }
        (url, _) => url,
    };
    match database_url {
        Some(url) => {
            let store = store::SqlStore::connect(url.expose().trim());
            // the message names the database without its password
            store.map_err(|e| {
                anyhow::anyhow!("opening the metadata store in PostgreSQL (--database-url): {e}")
            })
        }
        None => store::SqlStore::open(data_dir.join("metadata.db"))
            .with_context(|| format!("opening the metadata store in {}", data_dir.display())),
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Supervise { launch_file } => {
            // Its stderr is the job's supervisor.log: plain text.
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .try_init();
            return Ok(jobs::local::supervise(&launch_file));
        }
        Command::JobWorker { argv } => return Ok(job_worker::run(argv)),
        Command::Serve(args) => {
            let settings = Settings::resolve(args)?;
            init_tracing(&settings.log);
            serve(settings)?;
        }
        Command::Train {
            train,
            target,
            algorithm,
            params,
            problem_type,
            output,
        } => {
            init_tracing("warn");
            let started = std::time::Instant::now();
            let mut kv = Vec::new();
            for p in &params {
                let (k, v) = p.split_once('=').ok_or_else(|| {
                    anyhow::anyhow!(
                        "--param {p}: write it as KEY=VALUE, e.g. --param learning_rate=0.1"
                    )
                })?;
                kv.push((k.trim().to_string(), v.trim().to_string()));
            }
            let problem = match problem_type.as_deref() {
                None => None,
                Some(p) => Some(learn::ProblemType::parse(p).ok_or_else(|| {
                    anyhow::anyhow!("--problem-type {p}: use binary, multiclass or regression")
                })?),
            };
            let opts = learn::TrainOptions {
                algorithm: learn::Algorithm::parse(&algorithm)?,
                params: kv,
                problem,
            };
            remote::readable_file(&train)?;
            eprintln!("reading {}", train.display());
            let table = tabular::read_path(&train)?;
            for w in &table.warnings {
                eprintln!("warning: {w}");
            }
            eprintln!("{} rows, {} columns", table.rows(), table.columns.len());
            let tty = {
                use std::io::IsTerminal;
                std::io::stderr().is_terminal()
            };
            let mut bar_open = false;
            let pipeline = learn::train_with_events(&table, &target, &opts, &mut |e| match e {
                learn::TrainEvent::Message(msg) => {
                    if bar_open {
                        eprintln!();
                        bar_open = false;
                    }
                    eprintln!("{msg}");
                }
                learn::TrainEvent::Iteration(p) => {
                    let loss = p
                        .valid_loss
                        .map_or(String::new(), |l| format!("  validation loss {l:.5}"));
                    if tty {
                        use std::io::Write;
                        let width = 30usize;
                        let filled = (p.iteration * width / p.total.max(1)).min(width);
                        eprint!(
                            "\r[{}{}] iteration {}/{}{loss}\x1b[K",
                            "#".repeat(filled),
                            "-".repeat(width - filled),
                            p.iteration,
                            p.total
                        );
                        let _ = std::io::stderr().flush();
                        bar_open = true;
                    } else if p.iteration % 50 == 0 || p.iteration == 1 {
                        // per-iteration metrics, thinned for logs
                        eprintln!("iteration {}/{}{loss}", p.iteration, p.total);
                    }
                }
            })?;
            if bar_open {
                eprintln!();
            }
            pipeline.save(&output)?;
            let top: Vec<String> = pipeline
                .importance()
                .iter()
                .take(5)
                .map(|(c, g)| format!("{c} {:.0}%", g * 100.0))
                .collect();
            eprintln!("most important: {}", top.join(", "));
            let metrics: Vec<String> = pipeline
                .metadata
                .metrics
                .iter()
                .map(|(k, v)| format!("{k}={v:.4}"))
                .collect();
            if !metrics.is_empty() {
                eprintln!("holdout metrics: {}", metrics.join(" "));
            }
            eprintln!(
                "wrote {} in {:.1} s",
                output.display(),
                started.elapsed().as_secs_f64()
            );
        }
        Command::Predict {
            model,
            input,
            output,
            contributions,
            explain_evals,
        } => {
            init_tracing("warn");
            let pipeline = learn::Pipeline::load(&model)?;
            let table = tabular::read_path(&input)?;
            for w in &table.warnings {
                eprintln!("warning: {w}");
            }
            let pred = pipeline.predict(&table)?;
            let mut csv = pred.to_csv();
            if contributions {
                let opts = learn::ExplainOptions {
                    max_evals: usize::try_from(explain_evals).unwrap_or(usize::MAX),
                    ..Default::default()
                };
                csv = with_contributions(&pipeline, &table, &pred, &csv, &opts)?;
            }
            std::fs::write(&output, csv)
                .with_context(|| format!("writing {}", output.display()))?;
            eprintln!(
                "wrote {} predictions to {}",
                pred.labels.len(),
                output.display()
            );
        }
        Command::Automl {
            train,
            target,
            time_budget,
            max_candidates,
            metric,
            problem_type,
            validation,
            seed,
            min_rows,
            output,
            server,
            experiment,
            model_name,
            detach,
            reports,
            no_reports,
            bias,
        } => {
            init_tracing("warn");
            let bias = bias.spec();
            if bias.is_some() && no_reports {
                bail!("--facet adds a bias report to the reports: drop --no-reports");
            }
            match server {
                Some(server) => {
                    let mut spec = serde_json::json!({
                        "target": target,
                        "time_budget": time_budget,
                        "max_candidates": max_candidates,
                        "seed": seed,
                        "min_rows": min_rows,
                        "experiment_name": experiment,
                    });
                    if let Some(m) = metric {
                        spec["metric"] = m.into();
                    }
                    if let Some(p) = problem_type {
                        spec["problem_type"] = p.into();
                    }
                    if let Some(n) = model_name {
                        spec["model_name"] = n.into();
                    }
                    if let Some(b) = &bias {
                        spec["bias"] = serde_json::to_value(b)?;
                    }
                    remote::automl(remote::RemoteAutoml {
                        server: &server,
                        train: &train,
                        validation: validation.as_deref(),
                        spec,
                        output: output.as_deref(),
                        detach,
                    })?;
                }
                None => {
                    let Some(output) = output else {
                        bail!(
                            "give --output FILE for the best pipeline (or --server URL to run on a server)"
                        );
                    };
                    let reports = (!no_reports).then(|| {
                        reports.unwrap_or_else(|| {
                            let mut dir = output.clone().into_os_string();
                            dir.push(".reports");
                            PathBuf::from(dir)
                        })
                    });
                    automl_cli(
                        &train,
                        &target,
                        time_budget,
                        max_candidates,
                        metric,
                        problem_type,
                        validation,
                        seed,
                        min_rows,
                        &output,
                        reports.as_deref(),
                        bias,
                    )?;
                }
            }
        }
        Command::Tune(args) => {
            init_tracing("warn");
            return tune_cli::run(*args);
        }
        Command::NotebookRun(args) => {
            init_tracing("warn");
            return notebooks_cli::exec(*args);
        }
        Command::AutopilotTrial => {
            init_tracing("warn");
            return autopilot_worker::run();
        }
        Command::BatchTransformWorker => {
            init_tracing("warn");
            return batch_worker::run();
        }
        Command::Notebooks { action } => {
            init_tracing("warn");
            return match action {
                NotebooksCommand::Run(args) => notebooks_cli::run(*args),
                NotebooksCommand::Setup { data_dir, python } => {
                    notebooks_cli::setup(&data_dir, &python)
                }
            };
        }
        Command::Jobs { action } => {
            init_tracing("warn");
            match action {
                JobsCommand::List { server, kind } => remote::list_jobs(&server, kind.as_deref())?,
                JobsCommand::Show { id, server } => remote::show_job(&server, &id)?,
                JobsCommand::Cancel { id, server } | JobsCommand::Stop { id, server } => {
                    remote::cancel_job(&server, &id)?
                }
                JobsCommand::Logs { id, follow, server } => {
                    return jobs_cli::logs(&server, &id, follow);
                }
                JobsCommand::Run(args) => return jobs_cli::run(*args),
            }
        }
        Command::Deploy {
            model,
            name,
            server,
            variant,
            weight,
            sampling_percentage,
            no_capture,
            max_concurrency,
        } => {
            init_tracing("warn");
            serving_cli::deploy(serving_cli::DeployArgs {
                model,
                name,
                server,
                variant,
                weight,
                sampling_percentage,
                no_capture,
                max_concurrency,
            })?;
        }
        Command::Endpoints { action } => {
            init_tracing("warn");
            serving_cli::endpoints(action)?;
        }
        Command::BatchTransform {
            model,
            input,
            output,
            server,
            join_input,
        } => {
            init_tracing("warn");
            serving_cli::batch_transform(serving_cli::BatchArgs {
                model,
                input,
                output,
                server,
                join_input,
            })?;
        }
        Command::Profile { data, json } => {
            init_tracing("warn");
            let table = tabular::read_path(&data)?;
            for w in &table.warnings {
                eprintln!("warning: {w}");
            }
            let profile = tabular::Profile::of(&table);
            if json {
                println!("{}", profile.to_json());
            } else {
                print!("{}", profile_text(&profile));
            }
        }
        Command::Monitor { action } => {
            init_tracing("warn");
            monitor_cli::run(action)?;
        }
        Command::Clarify { action } => {
            init_tracing("warn");
            clarify_cli::run(action)?;
        }
        Command::Bench {
            which:
                BenchCommand::Automl {
                    data,
                    time_budget,
                    max_candidates,
                    datasets,
                    json,
                    peers,
                    no_peers,
                    peers_dir,
                    work_dir,
                    python,
                    readme,
                },
        } => {
            init_tracing("warn");
            bench::automl(&bench::AutomlBench {
                data,
                time_budget,
                max_candidates,
                datasets,
                json_out: json,
                peers: if no_peers { bench::Peers::None } else { peers },
                peers_dir,
                work_dir,
                python,
                readme,
            })?;
        }
        Command::Import { source } => {
            init_tracing("warn");
            import_cli::run(source)?;
        }
        Command::Migrate(args) => {
            init_tracing("warn");
            migrate_cli::run(args)?;
        }
        Command::Users { action } => {
            init_tracing("warn");
            people_cli::users(action)?;
        }
        Command::Projects { action } => {
            init_tracing("warn");
            people_cli::projects(action)?;
        }
        Command::Audit(args) => {
            init_tracing("warn");
            people_cli::audit(args)?;
        }
        Command::Token { action } => {
            init_tracing("warn");
            match action {
                TokenCommand::Create {
                    name,
                    role,
                    user,
                    expires_in_days,
                    data_dir,
                } => {
                    if server::Role::parse(&role).is_none() {
                        bail!("unknown role '{role}': use viewer, editor or admin");
                    }
                    let store = open_store(&data_dir)?;
                    let token = server::new_token();
                    let h = server::hash_token(&token);
                    let expires =
                        expires_in_days.map(|d| store::now_ms() + i64::from(d) * 24 * 3600 * 1000);
                    match &user {
                        None => store.create_token(&name, &role, &h, expires)?,
                        Some(u) => store.create_user_token(u, &name, &role, &h, expires)?,
                    }
                    people_cli::record(
                        &store,
                        "token create",
                        &name,
                        serde_json::json!({"user": user, "role": role, "expires": expires}),
                    );
                    println!("{token}");
                    eprintln!(
                        "Token '{name}' ({role}) created. Keep it safe: it is not shown again."
                    );
                }
                TokenCommand::List { data_dir } => {
                    let store = open_store(&data_dir)?;
                    for t in store.list_tokens()? {
                        println!(
                            "{}\t{}\t{}\tcreated {}\t{}",
                            t.name,
                            t.user.as_deref().unwrap_or("(service)"),
                            t.role,
                            t.created,
                            t.expires
                                .map_or("never expires".to_string(), |e| format!("expires {e}"))
                        );
                    }
                }
                TokenCommand::Revoke { name, data_dir } => {
                    let store = open_store(&data_dir)?;
                    store.revoke_token(&name)?;
                    people_cli::record(&store, "token revoke", &name, serde_json::json!({}));
                    eprintln!("Token '{name}' revoked.");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)]
fn automl_cli(
    train: &std::path::Path,
    target: &str,
    time_budget: f64,
    max_candidates: usize,
    metric: Option<String>,
    problem_type: Option<String>,
    validation: Option<PathBuf>,
    seed: u64,
    min_rows: usize,
    output: &std::path::Path,
    reports: Option<&std::path::Path>,
    bias: Option<autopilot::BiasSpec>,
) -> anyhow::Result<()> {
    use std::io::{IsTerminal, Write};
    if !(time_budget.is_finite() && time_budget > 0.0) {
        bail!("--time-budget must be a positive number of seconds");
    }
    let problem = match problem_type.as_deref() {
        None => None,
        Some(p) => Some(learn::ProblemType::parse(p).ok_or_else(|| {
            anyhow::anyhow!("--problem-type {p}: use binary, multiclass or regression")
        })?),
    };
    let started = std::time::Instant::now();
    let table = tabular::read_path(train)?;
    for w in &table.warnings {
        eprintln!("warning: {w}");
    }
    let validation_path = validation.as_ref().map(|v| v.display().to_string());
    let validation = match validation {
        Some(v) => Some(tabular::read_path(&v)?),
        None => None,
    };
    // the facet's mistakes (unknown column or value) before the search, not after
    let bias = match bias {
        Some(b) => {
            let cfg = b.config(target).map_err(|e| anyhow::anyhow!(e))?;
            clarify::Report::build(&table, &cfg, None)?;
            Some(cfg)
        }
        None => None,
    };
    let opts = automl::Options {
        time_budget: std::time::Duration::from_secs_f64(time_budget),
        max_candidates,
        metric,
        problem,
        seed,
        validation,
        cancel: None,
        min_rows,
        trials: None,
    };
    let tty = std::io::stderr().is_terminal();
    let mut best: Option<(f64, String)> = None;
    let mut n = 0usize;
    let mut metric_name = String::new();
    let mut higher = true;
    let outcome = automl::run(&table, target, &opts, &mut |ev| match ev {
        automl::Event::Started {
            problem,
            metric,
            validation,
            reason,
            ..
        } => {
            metric_name = metric.name().to_string();
            higher = metric.higher_is_better();
            // the validation plan names the row count ("… on 344 rows")
            eprintln!(
                "{} problem ({reason}); optimising {} over {validation}",
                problem.as_str(),
                metric.name()
            );
        }
        automl::Event::Candidate(c) => {
            n += 1;
            if c.status == automl::CandidateStatus::Done
                && best
                    .as_ref()
                    .is_none_or(|(b, _)| if higher { c.score > *b } else { c.score < *b })
            {
                best = Some((c.score, c.name.clone()));
            }
            let elapsed = started.elapsed().as_secs_f64();
            let width = 30usize;
            let filled = ((elapsed / time_budget).min(1.0) * width as f64) as usize;
            let bar: String = "#".repeat(filled) + &"-".repeat(width - filled);
            let best_txt = best
                .as_ref()
                .map_or("-".into(), |(s, name)| format!("{s:.4} ({name})"));
            let line = format!(
                "[{bar}] {elapsed:>5.0}/{time_budget:.0} s  {n:>3}/{max_candidates} candidates  best {metric_name} {best_txt}"
            );
            if tty {
                eprint!("\r{line}\x1b[K");
                let _ = std::io::stderr().flush();
            } else {
                eprintln!("{line}");
            }
        }
        automl::Event::Ensemble {
            members,
            score,
            best_single,
        } => {
            if tty {
                eprintln!();
            }
            eprintln!(
                "ensemble of {} candidates: {score:.4} (best single {best_single:.4})",
                members.len()
            );
        }
        automl::Event::Refitting { members } => {
            eprintln!("refitting {members} model(s) on all rows");
        }
        automl::Event::Stopped {
            reason,
            candidates,
            elapsed_s,
        } => {
            if tty {
                eprintln!();
            }
            eprintln!(
                "search over after {candidates} candidates in {elapsed_s:.1} s ({})",
                reason.kind().replace('_', " ")
            );
        }
    })?;
    eprintln!("\nleaderboard ({}):", outcome.metric.name());
    eprintln!(
        "{:>4}  {:<20} {:>10} {:>8} {:>6}  params",
        "rank",
        "candidate",
        outcome.metric.name(),
        "fit s",
        "trees"
    );
    for (i, c) in outcome.leaderboard.iter().enumerate().take(15) {
        let status = match &c.status {
            automl::CandidateStatus::Done => format!("{:>10.4}", c.score),
            automl::CandidateStatus::Stopped => format!("{:>10}", "stopped"),
            automl::CandidateStatus::Pruned => format!("{:>10}", "pruned"),
            automl::CandidateStatus::Failed(_) => format!("{:>10}", "failed"),
        };
        let params: Vec<String> = c.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        eprintln!(
            "{:>4}  {:<20} {status} {:>8.1} {:>6}  {}",
            i + 1,
            c.name,
            c.fit_seconds,
            c.iterations,
            params.join(" ")
        );
    }
    outcome.pipeline.save(output)?;
    eprintln!(
        "wrote {} ({}, validation {} {:.4}) in {:.1} s",
        output.display(),
        outcome.pipeline.metadata.algorithm,
        outcome.metric.name(),
        outcome.score,
        started.elapsed().as_secs_f64()
    );
    eprintln!("stopped: {}", outcome.stop_reason.describe(outcome.metric));
    if let Some(dir) = reports {
        eprintln!("writing the reports (SHAP on up to 300 rows)…");
        let about = autopilot::outputs::About {
            dataset: train.display().to_string(),
            target: target.to_string(),
            title: format!("{} → {target}", train.display()),
            automl: autopilot::outputs::AutomlCall {
                time_budget,
                max_candidates,
                seed,
                validation_path,
            },
            http: None,
            bias,
        };
        for (name, rel, made) in
            autopilot::outputs::outcome_files(&outcome, &table, opts.validation.as_ref(), &about)
        {
            match made {
                Ok(bytes) => {
                    let path = dir.join(rel);
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent)
                            .with_context(|| format!("creating {}", parent.display()))?;
                    }
                    std::fs::write(&path, bytes)
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!("wrote {}", path.display());
                }
                Err(e) => eprintln!("warning: the {name} report could not be made: {e}"),
            }
        }
    }
    Ok(())
}

/// The profile as a table people read.
fn profile_text(p: &tabular::Profile) -> String {
    let mut out = format!("{} rows, {} columns\n\n", p.rows, p.columns.len());
    out.push_str(&format!(
        "{:<24} {:<12} {:>8} {:>9} {:>12} {:>12} {:>12} {:>12} {:>12}  top values\n",
        "column", "kind", "missing", "distinct", "min", "mean", "median", "max", "std"
    ));
    let f = |v: Option<f64>| v.map_or("".to_string(), |v| format!("{v:.4}"));
    for c in &p.columns {
        let kind = format!("{:?}", c.kind).to_lowercase();
        let (min, mean, med, max, std) = match &c.numeric {
            Some(n) if n.moments.count > 0 => (
                f(Some(n.moments.min)),
                f(Some(n.moments.mean)),
                f(c.quantile(0.5)),
                f(Some(n.moments.max)),
                f(Some(n.moments.std())),
            ),
            _ => Default::default(),
        };
        let top = c.categories.as_ref().map_or(String::new(), |t| {
            t.top(3)
                .iter()
                .map(|(v, n)| format!("{v} ({n})"))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let approx = if c.distinct.is_exact() { "" } else { "~" };
        out.push_str(&format!(
            "{:<24} {:<12} {:>8} {:>9} {min:>12} {mean:>12} {med:>12} {max:>12} {std:>12}  {top}\n",
            c.name,
            kind,
            c.missing,
            format!("{approx}{:.0}", c.distinct_estimate()),
        ));
    }
    out
}

/// Append `contribution_<column>` and `contribution_base` to prediction CSV rows.
fn with_contributions(
    p: &learn::Pipeline,
    table: &tabular::Table,
    pred: &learn::Predictions,
    csv: &str,
    opts: &learn::ExplainOptions,
) -> anyhow::Result<String> {
    let c = p.contributions_with(table, opts)?;
    eprintln!(
        "contributions: {} in {} space (each row's contributions + base = its {})",
        c.method.as_str(),
        c.space.as_str(),
        match (c.space, c.outputs) {
            (learn::Space::Value, _) => "predicted value",
            (learn::Space::Probability, 1) => "probability of the positive class",
            (learn::Space::Probability, _) => "predicted class's probability",
            (learn::Space::LogOdds, _) => "log-odds of the positive class",
            (learn::Space::Logits, _) => "predicted class's softmax logit",
        }
    );
    let mut out = String::with_capacity(csv.len() * 2);
    for (i, line) in csv.lines().enumerate() {
        out.push_str(line);
        if i == 0 {
            for name in &c.columns {
                out.push_str(&format!(",contribution_{name}"));
            }
            out.push_str(",contribution_base");
        } else {
            let row = i - 1;
            // multiclass: explain the predicted class
            let k = if c.outputs > 1 {
                pred.classes
                    .iter()
                    .position(|l| *l == pred.labels[row])
                    .unwrap_or(0)
            } else {
                0
            };
            for v in c.row(row, k) {
                out.push_str(&format!(",{v}"));
            }
        }
        out.push('\n');
    }
    Ok(out)
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn serve(s: Settings) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    std::fs::create_dir_all(&s.data_dir)
        .with_context(|| format!("creating the data directory {}", s.data_dir.display()))?;
    let store = open_store_at(&s.data_dir, s.database_url.as_ref())?;
    // where the metadata is, for the start-up line (no password)
    let metadata_at = match store.path() {
        Some(_) => String::new(),
        None => format!(", metadata in {}", store.location()),
    };
    // someone must be able to get in: a token, or a user with a password
    let has_tokens =
        !store.list_tokens()?.is_empty() || store.list_users()?.iter().any(|u| u.has_password);
    let auth = if s.require_auth || !is_loopback(&s.host) {
        if !has_tokens {
            bail!(
                "refusing to serve on {} without authentication: create an API token first with\n  atelier token create admin --data-dir {}\nor a server admin who signs in to the Studio with\n  atelier users create NAME --admin --password-stdin --data-dir {}\n(on a loopback address the server may run open, as MLflow does)",
                s.host,
                s.data_dir.display(),
                s.data_dir.display()
            );
        }
        server::AuthMode::Required
    } else {
        server::AuthMode::Open
    };
    let site = server::SitePolicy::new(&s.allowed_hosts, &s.cors_allowed_origins)
        .map_err(anyhow::Error::msg)?;
    let local_paths = s.allow_local_paths && auth == server::AuthMode::Open;
    if s.allow_local_paths && !local_paths {
        tracing::warn!(
            "--allow-local-paths is ignored: with authentication on, jobs never read or write this machine's files by path"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // an S3 store is checked (probe object written, read, deleted) before
    // anything else starts: wrong credentials stop here, not at the first upload
    let artifacts = match &s.artifacts {
        config::ArtifactsAt::Local(dir) => artifacts::ArtifactStore::local(dir)?,
        config::ArtifactsAt::S3(s3) => rt.block_on(artifacts::ArtifactStore::s3(s3))?,
    };
    tracing::info!("artifacts: {}", artifacts.describe());
    // users' own code runs under a supervisor process that outlives this
    // one, so another server (or this one restarted) re-attaches to it
    let local: Arc<dyn jobs::executor::Executor> = Arc::new(
        jobs::local::LocalExecutor::for_current_exe()
            .map_err(|e| anyhow::anyhow!("the local job executor: {e}"))?,
    );
    // or on a Ray cluster, checked now: a wrong address stops here, not at the
    // first job
    let primary: Arc<dyn jobs::executor::Executor> = match &s.executor {
        config::ExecutorAt::Local => local.clone(),
        config::ExecutorAt::Ray { address } => {
            let ray = jobs::ray::RayExecutor::new(address)
                .map_err(|e| anyhow::anyhow!("--ray-address: {e}"))?
                .with_shared_filesystem(s.ray_shared_filesystem)
                .with_worker_atelier_bin(s.ray_atelier_bin.clone());
            let version = ray.probe().map_err(|e| {
                anyhow::anyhow!(
                    "--executor ray: {e}\n(set the Ray head's dashboard address with --ray-address, ATELIER_RAY_ADDRESS or ray_address in the config file)"
                )
            })?;
            if s.ray_shared_filesystem {
                tracing::info!(
                    "jobs run on the Ray cluster at {address} (Ray {version}); its workers must see {} at the same path (--ray-shared-filesystem)",
                    s.data_dir.join("jobs").display()
                );
            } else {
                let bin = s.ray_atelier_bin.clone().unwrap_or_else(|| {
                    std::env::current_exe()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                });
                tracing::info!(
                    "jobs run on the Ray cluster at {address} (Ray {version}), staged on the workers through this server by `{bin} job-worker`"
                );
            }
            Arc::new(ray)
        }
    };
    // a job is followed by the executor that started it, so jobs started
    // before a switch of --executor go on (a Ray handle names its own head)
    let executor: Arc<dyn jobs::executor::Executor> = Arc::new(jobs::executor::Routed::new(
        primary,
        vec![local, Arc::new(jobs::ray::RayExecutor::follower())],
    ));
    let mut state = server::AppState {
        store: Arc::new(store),
        artifacts,
        auth,
        max_artifact_bytes: s.max_artifact_bytes,
        max_request_bytes: usize::try_from(s.max_request_bytes).unwrap_or(usize::MAX),
        site: Arc::new(site),
        jobs: None,
        mlflow_webhooks: None,
    };
    rt.block_on(async move {
        // endpoints come back before the server reports ready
        let endpoints = serving::Serving::new(state.store.clone(), state.artifacts.clone());
        let up = endpoints.restore().await?;
        if up > 0 {
            tracing::info!("{up} endpoint(s) back in service");
        }
        let listener = tokio::net::TcpListener::bind((s.host.as_str(), s.port))
            .await
            .with_context(|| {
                format!(
                    "binding {}:{} (is another server using the port? try --port)",
                    s.host, s.port
                )
            })?;
        let addr = listener.local_addr()?;
        let mut jobs_dir = s.data_dir.join("jobs");
        if matches!(s.executor, config::ExecutorAt::Ray { .. }) {
            // a Ray job starts in the head's own folder: its paths must be absolute
            jobs_dir = std::path::absolute(&jobs_dir)
                .with_context(|| format!("the job folder {}", jobs_dir.display()))?;
        }
        // webhook targets follow the server's policy (no loopback, private or
        // metadata addresses unless allowed)
        let webhooks = monitoring::alerts::WebhookPolicy::parse(&s.webhook_allowed_hosts)
            .map_err(anyhow::Error::msg)?;
        let webhook_check: userjobs::runner::WebhookCheck = {
            let p = webhooks.clone();
            Arc::new(move |url: &str| p.check_url(url))
        };
        // what jobs and notebooks are told to log to: the bound address, unless
        // they run elsewhere (a Ray cluster) and reach this server by another name
        let tracking_uri = s
            .jobs_tracking_uri
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let notebook_python = s.notebook_python();
        let user_job = |kind| {
            Arc::new(
                userjobs::UserJobRunner::new(
                    kind,
                    executor.clone(),
                    jobs_dir.clone(),
                    tracking_uri.clone(),
                )
                .with_job_tokens(auth == server::AuthMode::Required)
                .with_webhook_check(webhook_check.clone())
                .with_notebook_python(notebook_python.clone()),
            ) as Arc<dyn jobs::Runner>
        };
        // on a cluster, Autopilot's candidates and batch transforms run there
        let cluster = match &s.executor {
            config::ExecutorAt::Local => None,
            config::ExecutorAt::Ray { .. } => {
                let mint_token: Option<jobs::cluster::MintToken> =
                    (auth == server::AuthMode::Required).then(|| {
                        Arc::new(|st: &dyn store::MetadataStore, name: &str, ws: &str| {
                            let t = server::new_token();
                            match st.revoke_token(name) {
                                Ok(()) | Err(store::StoreError::NotFound(_)) => {}
                                Err(e) => return Err(e.to_string()),
                            }
                            // the workers act in the job's project only
                            st.create_project_token(name, "editor", &server::hash_token(&t), ws)
                                .map_err(|e| e.to_string())?;
                            Ok(t)
                        }) as jobs::cluster::MintToken
                    });
                Some(jobs::cluster::Cluster {
                    executor: executor.clone(),
                    tracking_uri: tracking_uri.clone(),
                    // the program on the workers (--ray-atelier-bin), else this one
                    atelier_bin: executor.worker_atelier_bin().unwrap_or_else(|| {
                        std::env::current_exe()
                            .map(|p| p.display().to_string())
                            .unwrap_or_else(|_| "atelier".into())
                    }),
                    slots: autopilot::cluster::DEFAULT_SLOTS,
                    mint_token,
                })
            }
        };
        let autopilot_runner = match &cluster {
            None => autopilot::AutomlRunner::local(),
            Some(c) => autopilot::AutomlRunner::on_cluster(c.clone()),
        };
        let batch_runner = match &cluster {
            None => serving::job::BatchTransformRunner::new(local_paths),
            Some(c) => serving::job::BatchTransformRunner::new(local_paths).with_cluster(c.clone()),
        };
        // tuning jobs submit their trials through the queue (attached once it runs)
        let tuner = Arc::new(tuning::TuningRunner::new());
        // Two workers by default: a long AutoML job does not hold up a batch transform.
        let runners: Vec<Arc<dyn jobs::Runner>> = vec![
            user_job(userjobs::JobKind::Processing),
            user_job(userjobs::JobKind::Training),
            user_job(userjobs::JobKind::Notebook),
            Arc::new(autopilot_runner),
            // this machine's files by path only when asked for, and never with auth
            Arc::new(batch_runner),
            Arc::new(monitoring::ExecutionRunner),
            Arc::new(monitoring::BaselineRunner),
            tuner.clone(),
        ];
        let queue = jobs::Queue::start(
            state.store.clone(),
            state.artifacts.clone(),
            runners,
            jobs::QueueOptions {
                workers: s.job_workers,
                lease: std::time::Duration::from_secs(s.job_lease_seconds),
                ..Default::default()
            },
        )?;
        state.jobs = Some(queue.clone());
        tuner.attach(&queue, s.job_workers);
        // Model Monitor: schedules fire on their cron; their gauges join /metrics;
        // webhooks go out from the store's outbox, only to targets the policy allows
        monitoring::scheduler::spawn(state.store.clone(), queue.clone());
        // Debugger rules attached to experiments watch their running runs
        userjobs::experiments::spawn(state.store.clone())
            .context("starting the Debugger's experiment watcher")?;
        monitoring::alerts::spawn_delivery(state.store.clone(), webhooks.clone())
            .context("starting the webhook delivery loop")?;
        // MLflow's registry webhooks: the same client and policy, their own outbox
        let mlflow_webhooks = server::mlflow_webhooks::Sender::new(
            monitoring::alerts::client(webhooks.clone()),
            webhook_check.clone(),
        );
        server::mlflow_webhooks::spawn_delivery(state.store.clone(), mlflow_webhooks.clone())
            .context("starting the MLflow webhook delivery loop")?;
        state.mlflow_webhooks = Some(mlflow_webhooks);
        let monitor_store = state.store.clone();
        endpoints.add_metrics(Arc::new(move |ws: &str| {
            monitoring::prometheus(monitor_store.as_ref(), ws)
        }));
        let monitor_routes = monitoring::router(monitoring::Monitoring {
            store: state.store.clone(),
            artifacts: state.artifacts.clone(),
            queue: queue.clone(),
            webhooks,
        });
        // notebooks: a JupyterLab per space (proxied, never exposed), previews,
        // notebook jobs and their schedules
        let workspaces_root = s.data_dir.join("workspaces");
        let spaces = spaces::Spaces::new(spaces::SpacesConfig {
            python: notebook_python
                .clone()
                .unwrap_or_else(|| PathBuf::from("python3")),
            workspaces_root: workspaces_root.clone(),
            state_root: s.data_dir.join("spaces"),
            idle_timeout: std::time::Duration::from_secs(s.notebook_idle_seconds),
            start_timeout: std::time::Duration::from_secs(120),
            env: [("MLFLOW_TRACKING_URI".to_string(), tracking_uri.clone())]
                .into_iter()
                .collect(),
            // with authentication on, each start of a space gets a fresh token
            // of its own for its kernels: its person's (at most editor, and only
            // in the projects where they have a role); a space of no person (a
            // service token's) gets a service token as before
            space_env: (auth == server::AuthMode::Required).then(|| {
                let st = state.store.clone();
                spaces::SpaceEnv(Arc::new(move |space: &str| {
                    let name = format!("space:{space}");
                    let _ = st.revoke_token(&name);
                    let t = server::new_token();
                    let hash = server::hash_token(&t);
                    let owner = st.list_users().ok().and_then(|users| {
                        users
                            .into_iter()
                            .find(|u| spaces::space_name_for(Some(&u.name)) == space)
                    });
                    let made = match owner {
                        Some(u) => st.create_user_token(&u.name, &name, "editor", &hash, None),
                        None => st.create_token(&name, "editor", &hash, None),
                    };
                    match made {
                        Ok(_) => [("MLFLOW_TRACKING_TOKEN".to_string(), t)]
                            .into_iter()
                            .collect(),
                        Err(e) => {
                            tracing::warn!(%space, "could not make the space's token: {e}");
                            Default::default()
                        }
                    }
                }))
            }),
            // and the token goes when the space stops
            on_stop: (auth == server::AuthMode::Required).then(|| {
                let st = state.store.clone();
                spaces::SpaceHook(Arc::new(move |space: &str| {
                    match st.revoke_token(&format!("space:{space}")) {
                        Ok(()) | Err(store::StoreError::NotFound(_)) => {}
                        Err(e) => tracing::warn!(%space, "could not revoke the space's token: {e}"),
                    }
                }))
            }),
        });
        spaces.spawn_keeper();
        let nb = notebooks::Notebooks {
            store: state.store.clone(),
            artifacts: state.artifacts.clone(),
            queue: queue.clone(),
            workspaces_root,
            python: notebook_python.clone(),
            webhook_check: Some(webhook_check.clone()),
        };
        notebooks::schedule::spawn(nb.clone());
        let notebook_routes = notebooks::api::router(nb).merge(spaces::routes(spaces.clone()));
        let shown_host = if addr.ip().is_ipv6() {
            format!("[{}]", addr.ip())
        } else {
            addr.ip().to_string()
        };
        println!(
            "Atelier {} — Studio at http://{shown_host}:{}/  (data in {}{metadata_at}, auth {}, ready in {} ms)",
            env!("CARGO_PKG_VERSION"),
            addr.port(),
            s.data_dir.display(),
            if auth == server::AuthMode::Required {
                "required"
            } else {
                "open on loopback"
            },
            started.elapsed().as_millis()
        );
        tracing::info!(%addr, "serving");
        let (state_store, state_artifacts) = (state.store.clone(), state.artifacts.clone());
        server::serve_with(
            listener,
            state,
            serving::api::router(endpoints.clone())
                .merge(monitor_routes)
                .merge(notebook_routes)
                .merge(modelcards::router(modelcards::ModelCards {
                    store: endpoints.store().clone(),
                    serving: Some(endpoints.clone()),
                }))
                .merge(userjobs::api::router(userjobs::api::UserJobs {
                    store: state_store,
                    artifacts: state_artifacts,
                    executor,
                })),
            shutdown_signal(),
        )
        .await?;
        // no JupyterLab (nor its kernels) outlives the server
        spaces.shutdown().await;
        // captured requests still queued reach the artifact store
        endpoints.flush_capture().await;
        // running jobs end as cancelled rather than being cut off mid-write
        let _ = tokio::task::spawn_blocking(move || queue.shutdown()).await;
        tracing::info!("stopped");
        Ok::<_, anyhow::Error>(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
