//! The workstation controller.
pub mod catalog;
pub mod flow;
pub mod inventory;
pub mod journal;
pub mod order;
pub mod scan;
pub mod verify;
