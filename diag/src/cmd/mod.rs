//! One module per `wsctl` subcommand.
pub mod dispense;
