//! Stock operations as the dispatcher offers them: the count, stock-in at the
//! restock door, batch recall, unit quarantine and release (the work is in
//! `ops::stock`; here, the required fields and the answers).

use crate::dispatch::dispatcher::Dispatcher;
use crate::dispatch::error::DispatchError;

impl Dispatcher {
    /// The stock count: the store's slot sensors against the journal, and units
    /// expiring within `warn_days`.
    pub async fn stock_count(&self, warn_days: i64) -> Result<crate::ops::stock::CountReport, DispatchError> {
        let today = self.core.journal.clock().today();
        crate::ops::stock::count(self.core.devices.store.as_ref(), &self.core.journal, today, warn_days).await.map_err(DispatchError::from)
    }

    /// Stock-in of a delivery at the restock door.
    pub async fn stock_in(&self, delivery: &crate::ops::stock::Delivery, actor: &str) -> Result<crate::ops::stock::StockInReport, DispatchError> {
        Self::require(&[("actor", actor), ("lot", &delivery.lot), ("note", &delivery.note)])?;
        if delivery.codes.is_empty() {
            return Err(DispatchError::InvalidArgument { field: "codes", reason: "a delivery has at least one unit".into() });
        }
        let today = self.core.journal.clock().today();
        crate::ops::stock::stock_in(&self.core.journal, &self.core.catalog, self.core.devices.store.as_ref(), delivery, today, actor).await.map_err(DispatchError::from)
    }

    /// Recalls a batch; every unit not yet given is held and never picked.
    pub fn recall_batch(&self, gtin: Option<&str>, lot: &str, reason: &str, actor: &str) -> Result<usize, DispatchError> {
        Self::require(&[("lot", lot), ("reason", reason), ("actor", actor)])?;
        self.refuse_if_stopped()?;
        match crate::ops::stock::recall_batch(&self.core.journal, &self.core.catalog, gtin, lot, reason, actor)? {
            0 => Err(DispatchError::NoSuchStock(format!("no unit of batch {lot} is in stock or on its way"))),
            held => Ok(held),
        }
    }

    pub fn quarantine_unit(&self, code: &str, reason: &str, actor: &str) -> Result<(), DispatchError> {
        Self::require(&[("code", code), ("reason", reason), ("actor", actor)])?;
        let code = Self::canonical(code)?;
        if self.core.journal.stock_record(&code)?.is_none() {
            return Err(DispatchError::NoSuchStock(format!("unit {code} is not in the journal")));
        }
        Ok(crate::ops::stock::quarantine_unit(&self.core.journal, &code, reason, actor)?)
    }

    /// Lifts a hold after review (e.g. a pharmacist clears a cold-chain exposure).
    pub fn release_hold(&self, code: &str, reason: &str, actor: &str) -> Result<(), DispatchError> {
        Self::require(&[("code", code), ("reason", reason), ("actor", actor)])?;
        let code = Self::canonical(code)?;
        if !self.core.journal.release_hold(&code, reason, actor)? {
            return Err(DispatchError::NoSuchStock(format!("unit {code} is not on hold")));
        }
        Ok(())
    }
}
