//! What the scenarios crate's tests share: the `wssim` process.
#![allow(dead_code)] // each test binary uses its own subset

pub mod wssim_process;
