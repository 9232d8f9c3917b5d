//! The files Autopilot makes from an outcome besides the pipeline: the
//! data-exploration and model-quality reports and the notebook that reproduces
//! the best single candidate. The server's job stores them under its run; `atelier
//! automl` writes them beside the pipeline.

use automl::CandidateStatus;
pub use reports::{AutomlCall, HttpCall};

/// A report: its name, its path (relative to the run or the output folder), and
/// its bytes or why it could not be made.
pub type Report = (&'static str, &'static str, Result<Vec<u8>, String>);

/// Rows explained for the SHAP summary of the model-quality report.
const SHAP_ROWS: usize = 300;

/// What the outcome came from, as the reports and notebook name it.
pub struct About {
    /// The training data as the user names it (a dataset name or a path).
    pub dataset: String,
    pub target: String,
    /// The model-quality report's title.
    pub title: String,
    /// The search, as `atelier automl` flags in the notebook.
    pub automl: reports::AutomlCall,
    /// The same search as a server request, when it ran on one.
    pub http: Option<reports::HttpCall>,
    /// A bias report for this facet and label, when the user named one.
    pub bias: Option<clarify::BiasConfig>,
}

/// The data-exploration report, the model-quality report and the candidate
/// notebook, and with a facet Clarify's `analysis.json`. `holdout` is the
/// validation file, when the search scored one. A report that fails is
/// returned as its error: reports are extras, the model still counts.
pub fn outcome_files(
    out: &automl::Outcome,
    table: &tabular::Table,
    holdout: Option<&tabular::Table>,
    about: &About,
) -> Vec<Report> {
    let leaderboard = leaderboard_rows(out);
    let data = reports::data_report(
        table,
        &about.target,
        &reports::DataReportOptions {
            title: Some(about.dataset.clone()),
            problem: Some(out.problem),
            ..Default::default()
        },
    )
    .map(String::into_bytes)
    .map_err(|e| e.to_string());
    let bias = about
        .bias
        .as_ref()
        .map(|cfg| bias_report(out, table, holdout, cfg));
    let bias_input = match &bias {
        Some(Ok(r)) => Some(bias_input(r, &out.validation)),
        _ => None,
    };
    let quality = quality_report(out, table, &leaderboard, about, bias_input);
    let notebook = (|| -> Result<Vec<u8>, String> {
        let best_single = leaderboard
            .first()
            .cloned()
            .ok_or("no finished candidate")?;
        let nb = reports::notebook(&reports::NotebookSpec {
            title: format!("Autopilot candidate: {}", best_single.name),
            data_path: about.dataset.clone(),
            target: about.target.clone(),
            problem: out.problem,
            labels: out.pipeline.labels.clone(),
            metric: out.metric.name().to_string(),
            validation: out.validation.describe.clone(),
            leaderboard: leaderboard.clone(),
            candidate: best_single,
            test_path: None,
            atelier: "atelier".into(),
            automl: Some(about.automl.clone()),
            http: about.http.clone(),
        });
        serde_json::to_vec_pretty(&nb).map_err(|e| e.to_string())
    })();
    let mut files = vec![
        ("data_exploration", "reports/data_exploration.html", data),
        ("model_quality", "reports/model_quality.html", quality),
        ("notebook", "notebooks/autopilot_candidate.ipynb", notebook),
    ];
    if let Some(b) = bias {
        files.push((
            "bias",
            "reports/bias/analysis.json",
            b.map(|r| r.to_json_string().into_bytes()),
        ));
    }
    files
}

/// Clarify's bias report over the rows the search scored, with the chosen
/// model's out-of-fold predictions (honest: no row is predicted by a model
/// that trained on it).
fn bias_report(
    out: &automl::Outcome,
    table: &tabular::Table,
    holdout: Option<&tabular::Table>,
    cfg: &clarify::BiasConfig,
) -> Result<clarify::Report, String> {
    let v = &out.validation;
    let source = if v.holdout_file {
        holdout.ok_or("the validation file is not at hand for the bias report")?
    } else {
        table
    };
    if v.rows.iter().any(|&r| r >= source.rows()) {
        return Err("the scored rows do not match the data".into());
    }
    let scored = source.take(&v.rows);
    let labels = &out.pipeline.labels;
    let probabilities: Vec<f64>;
    let outputs = if out.problem == learn::ProblemType::Regression {
        clarify::Outputs::Values(&v.pred)
    } else {
        let k = labels.len();
        probabilities = if v.outputs == k {
            v.pred.clone()
        } else if k == 2 && v.outputs == 1 {
            // binary out-of-fold predictions as P(labels[1])
            v.pred.iter().flat_map(|p| [1.0 - p, *p]).collect()
        } else {
            return Err(format!("{} outputs per row for {k} classes", v.outputs));
        };
        clarify::Outputs::Classes {
            classes: labels,
            probabilities: &probabilities,
            binary: out.problem == learn::ProblemType::Binary,
        }
    };
    let predicted =
        clarify::predicted_from_outputs(outputs, &scored, cfg).map_err(|e| e.to_string())?;
    clarify::Report::build(&scored, cfg, Some(&predicted)).map_err(|e| e.to_string())
}

/// The report as the model-quality page shows it.
fn bias_input(r: &clarify::Report, v: &automl::Validation) -> reports::BiasInput {
    let metrics = |ms: &[clarify::MetricResult]| -> Vec<reports::BiasMetric> {
        ms.iter()
            .map(|m| reports::BiasMetric {
                name: m.name.to_string(),
                description: m.description.to_string(),
                value: m.value.as_ref().ok().copied(),
                error: m.value.as_ref().err().cloned(),
            })
            .collect()
    };
    let pre = &r.pre_training;
    let groups = pre
        .facets
        .iter()
        .map(|f| reports::BiasGroup {
            value_or_threshold: f.value_or_threshold.clone(),
            pre_training: metrics(&f.metrics),
            post_training: r
                .post_training
                .as_ref()
                .and_then(|p| {
                    p.facets
                        .iter()
                        .find(|g| g.value_or_threshold == f.value_or_threshold)
                })
                .map(|g| metrics(&g.metrics))
                .unwrap_or_default(),
        })
        .collect();
    reports::BiasInput {
        facet: pre.facet.clone(),
        label: format!("'{}' = {}", pre.label, pre.label_value_or_threshold),
        source: format!(
            "{} rows, each predicted out of fold ({})",
            r.rows, v.describe
        ),
        groups,
    }
}

/// Finished candidates, best first.
fn leaderboard_rows(out: &automl::Outcome) -> Vec<reports::LeaderboardRow> {
    out.leaderboard
        .iter()
        .filter(|c| c.status == CandidateStatus::Done)
        .enumerate()
        .map(|(i, c)| reports::LeaderboardRow {
            rank: i + 1,
            name: c.name.clone(),
            algorithm: c.algorithm.name().to_string(),
            score: c.score,
            fit_seconds: c.fit_seconds,
            params: c.params.clone(),
        })
        .collect()
}

fn quality_report(
    out: &automl::Outcome,
    table: &tabular::Table,
    leaderboard: &[reports::LeaderboardRow],
    about: &About,
    bias: Option<reports::BiasInput>,
) -> Result<Vec<u8>, String> {
    let p = &out.pipeline;
    // SHAP on a sample of rows: exact for trees and linear models,
    // sampled permutations (bounded work) for MLPs and mixed ensembles
    let n = table.rows();
    let step = (n / SHAP_ROWS).max(1);
    let rows: Vec<usize> = (0..n).step_by(step).take(SHAP_ROWS).collect();
    let sample = table.take(&rows);
    let opts = learn::ExplainOptions {
        max_evals: 256,
        ..Default::default()
    };
    let shap = match p.contributions_with(&sample, &opts) {
        Ok(c) => {
            let classes: Vec<usize> = if out.problem == learn::ProblemType::Multiclass {
                let pred = p.predict(&sample).map_err(|e| e.to_string())?;
                let k = pred.classes.len().max(1);
                pred.probabilities
                    .chunks(k)
                    .map(|r| (0..k).max_by(|&a, &b| r[a].total_cmp(&r[b])).unwrap_or(0))
                    .collect()
            } else {
                vec![0; sample.rows()]
            };
            reports::ShapInput::from_contributions(
                &c,
                &sample,
                |i| classes.get(i).copied().unwrap_or(0),
                SHAP_ROWS,
            )
            .ok()
        }
        Err(e) => {
            tracing::warn!("no SHAP summary: {e}");
            None
        }
    };
    let input = reports::QualityInput {
        title: about.title.clone(),
        problem: out.problem,
        target: about.target.clone(),
        labels: p.labels.clone(),
        metric: out.metric.name().to_string(),
        higher_is_better: out.metric.higher_is_better(),
        best_score: out.score,
        validation: format!("out-of-fold predictions of {}", out.validation.describe),
        leaderboard: leaderboard.to_vec(),
        y_true: out.validation.y.clone(),
        predictions: out.validation.pred.clone(),
        feature_importance: p.importance(),
        shap,
        bias,
    };
    reports::quality_report(&input)
        .map(String::into_bytes)
        .map_err(|e| e.to_string())
}
