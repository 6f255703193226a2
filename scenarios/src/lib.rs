//! Scenario simulations of the whole workstation on a virtual clock.
