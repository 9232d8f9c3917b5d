//! Model cards (issue 15): one card per registered model version, its
//! append-only change history, and the per-model rule "an Approved card is
//! required before a version is deployed".
//!
//! A card's `content` is JSON owned by the `modelcards` crate (SageMaker's
//! model card sections); so are the status names and which transitions are
//! allowed. The store keeps the status as text so that the deploy gate
//! ([`ModelCardStore::deploy_refusal`]) can be answered by one read, and
//! every change is a compare-and-swap on the card's `revision` written in
//! the same transaction as its history row.

use crate::Result;

/// The card status that lets a version be deployed when its model requires it.
pub const CARD_APPROVED: &str = "Approved";

/// One model card, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelCard {
    /// A fresh id per card (history rows refer to it, so a deleted and
    /// re-created version never inherits an old card's history).
    pub card_id: String,
    pub model_name: String,
    pub version: i64,
    pub status: String,
    /// JSON owned by the `modelcards` crate.
    pub content: String,
    /// 1 when created, + 1 on every change.
    pub revision: i64,
    pub created_ms: i64,
    pub created_by: String,
    pub updated_ms: i64,
    pub updated_by: String,
}

/// Who made a change, when, from where, and what it was.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CardChange {
    /// The authenticated principal (the identity's name).
    pub principal: String,
    /// The client's address as the server saw it.
    pub address: String,
    /// `create`, `update`, `status` (owned by the `modelcards` crate).
    pub action: String,
    /// What changed, JSON owned by the `modelcards` crate.
    pub changes: String,
}

/// One row of a card's history (append-only).
#[derive(Debug, Clone, PartialEq)]
pub struct CardHistoryEntry {
    pub id: i64,
    pub card_id: String,
    /// The card's revision this change produced.
    pub revision: i64,
    pub at_ms: i64,
    pub principal: String,
    pub address: String,
    pub action: String,
    /// The status after the change.
    pub status: String,
    pub changes: String,
}

/// A registered model's card rule.
#[derive(Debug, Clone, PartialEq)]
pub struct CardRequirement {
    pub model_name: String,
    pub require_approved_card: bool,
    pub updated_ms: i64,
    pub updated_by: String,
}

/// The latest jobs of one name, light: a few fields picked out of the
/// spec and result JSON instead of whole documents (dashboards).
#[derive(Debug, Clone, PartialEq)]
pub struct JobBrief {
    pub id: String,
    pub name: String,
    pub status: crate::JobStatus,
    pub error: Option<String>,
    pub created_ms: i64,
    pub ended_ms: Option<i64>,
    /// The values of the asked fields, in order, as JSON text (`None` when absent).
    pub fields: Vec<Option<String>>,
}

/// Model-card operations (a supertrait of [`crate::MetadataStore`]).
pub trait ModelCardStore {
    /// Create the card of an existing version (`NotFound` for an unknown
    /// version, `AlreadyExists` when it has one), with its first history row.
    fn create_model_card(
        &self,
        model_name: &str,
        version: i64,
        status: &str,
        content: &str,
        change: &CardChange,
    ) -> Result<ModelCard>;
    /// `NotFound` when the version has no card.
    fn get_model_card(&self, model_name: &str, version: i64) -> Result<ModelCard>;
    /// Replace status and content while the card is still at `expected_revision`
    /// (`InvalidState` naming the current revision otherwise: someone else
    /// changed it), appending `change` to its history in the same transaction.
    fn update_model_card(
        &self,
        model_name: &str,
        version: i64,
        expected_revision: i64,
        status: &str,
        content: &str,
        change: &CardChange,
    ) -> Result<ModelCard>;
    /// A card's history, oldest first.
    fn model_card_history(&self, card_id: &str) -> Result<Vec<CardHistoryEntry>>;
    /// Every card (content left empty: for lists and the dashboard).
    fn list_model_cards(&self) -> Result<Vec<ModelCard>>;
    /// Set a registered model's rule (`NotFound` for an unknown model).
    fn set_card_requirement(
        &self,
        model_name: &str,
        require_approved_card: bool,
        by: &str,
    ) -> Result<CardRequirement>;
    /// Every model's rule that was ever set.
    fn card_requirements(&self) -> Result<Vec<CardRequirement>>;
    /// The deploy gate: `Some(why and what to do)` when `model_name` requires
    /// an Approved card and `version`'s card is missing or not Approved.
    fn deploy_refusal(&self, model_name: &str, version: i64) -> Result<Option<String>>;
    /// The latest `per_name` jobs of each name of one kind, newest first within
    /// a name, with `fields` picked out of their JSON (`spec.<key>` or
    /// `result.<key>`, keys of letters, digits and `_`).
    fn recent_jobs_by_name(
        &self,
        kind: &str,
        per_name: usize,
        fields: &[&str],
    ) -> Result<Vec<JobBrief>>;
}
