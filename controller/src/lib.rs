//! The workstation controller.
pub mod scan;
