//! The rules a dose must pass, as pure functions and data: the patient's order, the
//! product catalog, 三查七对一验证 (verification), and the stock records with the
//! FEFO choice. Nothing here touches a device, the journal or the clock.
pub mod catalog;
pub mod heat_stability;
pub mod inventory;
pub mod order;
pub mod verify;
