//! The cold chain: alarm rules as a pure state machine over samples (`rules`) and
//! the task that samples the probes, journals and holds exposed units (`watch`).
pub mod rules;
pub mod watch;
