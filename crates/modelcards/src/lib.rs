//! # modelcards — model cards and the Model Dashboard
//!
//! Brief overview (issue 15):
//!
//! - **Model cards** ([`card`]): one per registered model version, with
//!   SageMaker's sections (`model_overview`, `intended_uses` with its
//!   `risk_rating`, `business_details`, `training_details`,
//!   `evaluation_details`, `additional_information`). Creating a card fills
//!   `model_overview`, `training_details.training_job_details` (the run, its
//!   parameters and metrics, the dataset and the job that produced the
//!   version) from lineage, and `evaluation_details` from the Autopilot job's
//!   model-quality report when the version came from one. People fill in the
//!   rest while the card is a Draft.
//! - **Statuses** (SageMaker's `ModelCardStatus`): `Draft → PendingReview →
//!   Approved → Archived`, and `PendingReview → Draft` when the reviewer asks
//!   for changes (a `comment` saying which is required). Content changes only
//!   in Draft; approving needs the admin role (an editor cannot approve what
//!   they may deploy); Archived is final. Every change — creation, an edit
//!   (each field's old and new value), a status change (with its comment) — is
//!   appended to the card's history with the authenticated principal (the
//!   identity's name: `local` on an open server), the time and the client's
//!   address.
//! - **The deploy rule**: a registered model may require an Approved card
//!   before any of its versions is deployed
//!   (`PUT /api/atelier/model-card-requirements/<model>`, admin). The check is
//!   the store's `deploy_refusal`, which `serving` calls when an endpoint is
//!   created or updated: a 400 saying what to do.
//! - **The dashboard** ([`dashboard`]): `GET /api/atelier/dashboard`, every
//!   registered model with its versions in production (served by an
//!   endpoint), the endpoints with weights and this process's request counts,
//!   each monitor type's status with its last execution and alert, the last
//!   batch transform and the card statuses — from a fixed number of store
//!   reads whatever the number of models (no per-model calls).
//!
//! All state is in the store; nothing is kept in memory between requests.

pub mod api;
pub mod card;
pub mod dashboard;

pub use api::{ModelCards, router};
