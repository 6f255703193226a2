//! The controller's front door: orders, confirmations, queries, maintenance mode and
//! stock operations, as the gRPC layer calls them (no gRPC here).
mod dispatcher;
mod error;
mod maintenance;
mod orders;
mod stock;

pub use crate::dispense::core::{BoothView, BoothsPicture, MaintenanceLease, Settings};
pub use dispatcher::Dispatcher;
pub use error::DispatchError;
pub use orders::{Started, Watch};
