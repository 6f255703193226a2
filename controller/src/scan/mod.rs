//! The scan station's pipeline: frames decoded to a unit code, and the vote across
//! frames.
mod pipeline;

pub use pipeline::*;
