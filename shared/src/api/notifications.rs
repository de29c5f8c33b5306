//! Notification channels and their deliveries.

use super::yes;
use crate::status::DeliveryStatus;
use serde::{Deserialize, Serialize};

/// `POST /api/notifications`, `PUT /api/notifications/:id` and `POST /api/notifications/test`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationRequest {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Event names (`backup_success`, `backup_failed`, …).
    pub events: Vec<String>,
    /// Backup failures are sent only once this many runs of the task failed in a row (1 = every
    /// failure).
    #[serde(default = "one")]
    pub failure_threshold: u32,
    /// The type's configuration; secrets may be sent as `********` on update to keep them.
    pub config: serde_json::Value,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationSummary {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub enabled: bool,
    pub events: Vec<String>,
    pub failure_threshold: u32,
    /// The newest delivery's outcome (`sent`, `failed`, `pending`), if any.
    pub last_delivery_status: Option<DeliveryStatus>,
    pub last_delivery_at: Option<String>,
    pub last_delivery_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationDetail {
    #[serde(flatten)]
    pub summary: NotificationSummary,
    /// Secrets replaced by `********`.
    pub config: serde_json::Value,
    pub masked_fields: Vec<String>,
}

/// A test message went out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationTestResult {
    pub success: bool,
    pub message: String,
}

/// One attempt-tracked message to one channel (`GET /api/notifications/:id/deliveries`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationDelivery {
    pub id: i64,
    pub channel_id: i64,
    pub channel_name: String,
    pub event: String,
    pub title: String,
    /// `pending` (waiting for its next attempt), `sending`, `sent` or `failed` (given up).
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<String>,
    pub last_error: String,
    pub created_at: String,
    pub sent_at: Option<String>,
}
