//! Thin handlers grouped by resource: extract, call the store or domain, respond.

pub mod auth;
pub mod health;

use crate::config::AppState;
use crate::error::ApiError;
use stowage_shared::time::Timestamp;
use worker::{Env, Request};

/// Everything a handler needs for one request.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub req: Request,
    pub env: &'a Env,
    pub now: Timestamp,
}

impl Ctx<'_> {
    pub fn state(&self) -> Result<AppState, ApiError> {
        AppState::from_env(self.env)
    }
}
