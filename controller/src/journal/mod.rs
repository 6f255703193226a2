//! The journal: one SQLite file that is the source of truth for stock records,
//! dispenses and every step taken, and the controller's clock that stamps it. One
//! file per table family; `connection` opens the file, `schema` migrates it.
pub mod clock;
mod connection;
mod dispenses;
mod entry;
mod error;
mod outbox;
mod readings;
mod rows;
mod schema;
mod stock;
mod steps;
#[cfg(test)]
mod tests;

pub use connection::Journal;
pub use error::{JournalError, Result};
pub use outbox::{Backlog, EventKind, OutboxEvent};
pub use dispenses::Created;
pub use schema::SCHEMA_VERSION;
pub use stock::{StockFilter, unit_info};
pub use steps::Intended;
pub use entry::{Entry, Intent, Outcome, StepData, StepKind, station_name};
