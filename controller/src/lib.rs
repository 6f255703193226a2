//! The workstation controller: verification rules, inventory, journal, the dispense
//! flow and its runner, the workstation state, and (in `api`) the gRPC server.
//! One folder per concern; ARCHITECTURE.md maps them.
pub mod api;
pub mod assemble;
pub mod coldchain;
pub mod config;
pub mod dispatch;
pub mod dispense;
pub mod feed;
pub mod journal;
pub mod motion;
pub mod ops;
pub mod rules;
pub mod scan;
pub mod tasks;
