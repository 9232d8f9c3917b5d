//! `atelier clarify bias`: the command-line face of the `clarify` crate
//! (a data file and optionally a model in, Clarify's analysis.json out, a
//! table printed).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum ClarifyCommand {
    /// Bias report with SageMaker Clarify's metrics: pre-training (CI, DPL, KL, JS, LP, TVD, KS, CDDL)
    /// and, with --model, post-training (DPPL, DI, DCA, DAR, DRR, AD, RD, DCR, SD, TE, FT, CDDPL, GE).
    #[command(
        after_help = "The facet's sensitive group (facet d) is --facet-values, or the values above --facet-threshold;
without either, each value of the facet is reported against the rest. The label's positive
outcome is --label-values or the values above --label-threshold (default: true, or 1 for a 0/1
target). A metric undefined for the data (a division by zero, no --group for CDDL/CDDPL, a
non-numeric feature for FT) is written with \"value\": null and its \"error\", as Clarify does.

Examples:
  atelier clarify bias adult.csv --target income --label-values '>50K' --facet sex --facet-values Female --group race -o bias/
  atelier clarify bias adult.csv --target income --label-values '>50K' --facet age --facet-threshold 40 --model adult.model -o bias/"
    )]
    Bias {
        /// Data (.csv or .parquet) with the target, the facet and the model's input columns.
        data: PathBuf,
        /// The label (target) column.
        #[arg(long)]
        target: String,
        /// Positive label value(s), comma-separated.
        #[arg(long, value_delimiter = ',', conflicts_with = "label_threshold")]
        label_values: Vec<String>,
        /// Numeric label: values above this are positive.
        #[arg(long)]
        label_threshold: Option<f64>,
        /// The facet (sensitive attribute) column.
        #[arg(long)]
        facet: String,
        /// The facet value(s) forming the sensitive group, comma-separated.
        #[arg(long, value_delimiter = ',', conflicts_with = "facet_threshold")]
        facet_values: Vec<String>,
        /// Numeric facet: values above this form the sensitive group.
        #[arg(long)]
        facet_threshold: Option<f64>,
        /// Group column for the conditional demographic disparities (CDDL, CDDPL).
        #[arg(long, value_name = "COL")]
        group: Option<String>,
        /// A pipeline from `atelier train` or `atelier automl`: adds the post-training metrics.
        #[arg(long)]
        model: Option<PathBuf>,
        /// A binary classifier's predicted label is positive when the probability of the
        /// positive label(s) exceeds this.
        #[arg(long, default_value_t = 0.5)]
        probability_threshold: f64,
        /// Directory for analysis.json.
        #[arg(long, short)]
        output: PathBuf,
    },
}

/// `atelier automl`'s bias flags: a Clarify report in the model-quality report.
#[derive(clap::Args, Debug, Default)]
pub struct AutomlBias {
    /// Add a bias report (SageMaker Clarify's metrics on the out-of-fold predictions) for
    /// this facet (sensitive attribute) column to the model-quality report.
    #[arg(long, help_heading = "Bias report")]
    pub facet: Option<String>,
    /// The facet value(s) forming the sensitive group, comma-separated (default: each value).
    #[arg(
        long,
        value_delimiter = ',',
        requires = "facet",
        conflicts_with = "facet_threshold",
        help_heading = "Bias report"
    )]
    pub facet_values: Vec<String>,
    /// Numeric facet: values above this form the sensitive group.
    #[arg(long, requires = "facet", help_heading = "Bias report")]
    pub facet_threshold: Option<f64>,
    /// Positive label value(s), comma-separated (default: true, or 1 for a 0/1 target).
    #[arg(
        long,
        value_delimiter = ',',
        requires = "facet",
        conflicts_with = "label_threshold",
        help_heading = "Bias report"
    )]
    pub label_values: Vec<String>,
    /// Numeric target: values above this are the positive outcome.
    #[arg(long, requires = "facet", help_heading = "Bias report")]
    pub label_threshold: Option<f64>,
    /// Group column for the conditional demographic disparities (CDDL, CDDPL).
    #[arg(
        long = "bias-group",
        value_name = "COL",
        requires = "facet",
        help_heading = "Bias report"
    )]
    pub group: Option<String>,
}

impl AutomlBias {
    /// The bias part of an Autopilot spec, when a facet was named.
    pub fn spec(self) -> Option<autopilot::BiasSpec> {
        let facet = self.facet?;
        Some(autopilot::BiasSpec {
            facet,
            facet_values: self.facet_values,
            facet_threshold: self.facet_threshold,
            label_values: self.label_values,
            label_threshold: self.label_threshold,
            group: self.group,
        })
    }
}

pub fn run(cmd: ClarifyCommand) -> anyhow::Result<()> {
    let ClarifyCommand::Bias {
        data,
        target,
        label_values,
        label_threshold,
        facet,
        facet_values,
        facet_threshold,
        group,
        model,
        probability_threshold,
        output,
    } = cmd;
    if !(0.0..=1.0).contains(&probability_threshold) {
        bail!("--probability-threshold must be between 0 and 1");
    }
    let cfg = clarify::BiasConfig {
        label: target,
        label_selector: clarify::Selector::from_parts(&label_values, label_threshold),
        facet,
        facet_selector: clarify::Selector::from_parts(&facet_values, facet_threshold),
        group,
        probability_threshold,
    };
    let table = tabular::read_path(&data)?;
    for w in &table.warnings {
        eprintln!("warning: {w}");
    }
    // the data and the configuration first, so their mistakes come before the model's
    let pre_only = clarify::Report::build(&table, &cfg, None)?;
    let predicted = match &model {
        None => None,
        Some(m) => {
            let pipeline = learn::Pipeline::load(m)?;
            Some(clarify::predicted_positive(&pipeline, &table, &cfg)?)
        }
    };
    let report = match predicted {
        None => pre_only,
        Some(p) => clarify::Report::build(&table, &cfg, Some(&p))?,
    };
    std::fs::create_dir_all(&output).with_context(|| format!("creating {}", output.display()))?;
    let path = output.join("analysis.json");
    std::fs::write(&path, report.to_json_string())
        .with_context(|| format!("writing {}", path.display()))?;
    print!("{}", report.table_text());
    eprintln!("{} rows; wrote {}", report.rows, path.display());
    Ok(())
}
