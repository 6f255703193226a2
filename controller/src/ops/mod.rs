//! What the crew and the pharmacy do around dispensing: stock-in, count and recall,
//! maintenance diagnostics, traces and FHIR export, the fault definitions and board,
//! telemetry and the log book.
pub mod faultboard;
pub mod faults;
pub mod logbook;
pub mod maintenance;
pub mod metrics;
pub mod stock;
pub mod telemetry;
pub mod trace;
