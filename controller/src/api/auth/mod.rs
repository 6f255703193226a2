//! Who may call what: the tower layer under every service (authentication, roles,
//! rate and stream limits) and the role table it applies.
pub mod extract;
pub mod layer;
pub mod roles;
