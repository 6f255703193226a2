//! Modbus RTU and TCP drivers for the cold store controller and the conveyor PLC,
//! built on tokio-modbus, with the register map of `hal/REGISTERS.md`.

pub mod map;
pub mod field;
pub mod link;
pub mod drivers;
