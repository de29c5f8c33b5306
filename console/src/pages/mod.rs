//! One module per screen.

pub mod dashboard;
pub mod login;
pub mod nodes;
pub mod records;
pub mod storage;
pub mod tasks;
