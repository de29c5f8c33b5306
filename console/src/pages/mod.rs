//! One module per screen.

pub mod admin;
pub mod dashboard;
pub mod login;
pub mod nodes;
pub mod notifications;
pub mod records;
pub mod storage;
pub mod tasks;
