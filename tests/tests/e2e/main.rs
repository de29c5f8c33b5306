//! End-to-end tests through the real `wrangler dev`: every test starts its own server with its own
//! state, so they run in parallel. `make test` builds the Worker and installs wrangler first.

mod auth;
mod console;
mod cron;
mod database_backups;
mod databases;
mod dev_script;
mod errors;
mod google_drive;
mod hardening;
mod health;
mod links;
mod nodes;
mod notifications;
mod operations;
mod rclone_backends;
mod records;
mod repositories;
mod repository_databases;
mod runs;
mod schema;
mod ssh;
mod storage;
mod storage_layer;
mod tasks;
mod tokens;
