//! The workstation controller: verification rules, inventory, journal, the dispense
//! flow and its runner, the workstation state, and (in `api`) the gRPC server.
pub mod access;
pub mod api;
pub mod catalog;
pub mod coldchain;
pub mod coldwatch;
pub mod config;
pub mod daemon;
pub mod decode;
pub mod demo;
pub mod dispatcher;
pub mod faultboard;
pub mod faults;
pub mod flow;
pub mod gate;
pub mod inventory;
pub mod journal;
pub mod logbook;
pub mod maintenance;
pub mod order;
pub mod recovery;
mod runner;
pub mod scan;
pub mod stock;
pub mod telemetry;
pub mod trace;
pub mod verify;
pub mod workstation;
