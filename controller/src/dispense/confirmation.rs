//! What the clinic says at the booth, as the dispatcher routes it to the runner
//! waiting for it.

use hal::codes::UnitCode;

/// A confirmation from the clinic, routed to the dispense waiting for it.
#[derive(Debug, Clone)]
pub enum Confirmation {
    /// The guardian validated; `booth_scan` is the unit's code if the clinic scanned it again at the booth.
    Validated { booth_scan: Option<UnitCode> },
    Administered { nurse_id: String, site: Option<String> },
}

