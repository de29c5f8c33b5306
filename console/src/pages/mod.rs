//! One module per screen.

pub mod dashboard;
pub mod login;
pub mod nodes;
pub mod storage;
