//! Simulated workstation hardware for engineers and tests: device models with state
//! and nominal timings on tokio time, and a camera that renders real label pixels.
//!
//! The models implement `hal`'s device traits and enforce the real machine's rules
//! (no motion with an interlock open, one unit per tray, the belt runs forwards),
//! so code that passes here does not break on the real machine. The simulator
//! never reaches into the controller.

mod booths;
mod camera;
pub mod clock;
pub mod config;
mod conveyor;
pub mod injection;
pub mod label;
mod sensors;
mod store;
pub mod thermal;
pub mod wire;
mod workstation;
mod world;

pub use clock::SimClock;
pub use config::{SimConfig, Timings};
pub use workstation::SimWorkstation;
pub use world::{CarrierMotion, Delivery};
