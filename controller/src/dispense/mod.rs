//! The life of a dispense: the pure flow (statig), the runner that drives the devices
//! through it, the core and locks the runners share, carriers, and recovery after a
//! restart.
pub mod cancel;
pub mod carriers;
pub(crate) mod claim;
pub mod confirmation;
pub(crate) mod core;
pub mod flow;
pub(crate) mod locks;
pub mod recovery;
pub(crate) mod runner;
pub mod status;
pub(crate) mod streaks;
pub mod workstation;
