//! The gRPC face of the controller: one module per `dispense.v1` service, each
//! translating messages to domain calls and back; `errors` (how errors become
//! statuses), `convert` (field types), `auth` (who may call), `privacy` (what each role sees of patients), `pages` (page sizes and tokens), `server` (serving it
//! all on a socket). The only modules that touch proto types.

pub mod auth;
pub mod convert;
pub mod dispensing;
pub mod errors;
pub mod maintenance;
pub mod monitoring;
pub mod pages;
pub mod privacy;
pub mod server;
pub mod stock;
pub mod trace;
