//! The stock records (table `stock_units`): the manifest's import, a unit's state
//! through its life, holds (recall, quarantine, cold chain) and the stock queries.

use crate::journal::rows::Cached;
use crate::dispense::status::UnitInfo;
use crate::journal::connection::Journal;
use crate::journal::error::{JournalError, Result};
use crate::journal::rows::{insert_step, parse_time};
use crate::journal::entry::StepKind;
use crate::journal::outbox::EventKind;
use serde_json::json;
use crate::rules::inventory::{Hold, StockRecord, UnitState};
use chrono::{DateTime, NaiveDate, Utc};
use hal::manifest::ManifestUnit;
use rusqlite::{OptionalExtension, params};

/// Which units [`Journal::list_stock`] returns; every criterion set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StockFilter {
    /// Any of these GTINs (a product's).
    pub gtins: Option<Vec<String>>,
    pub lot: Option<String>,
    /// Expiring on or before this day.
    pub expires_by: Option<NaiveDate>,
    pub state: Option<UnitState>,
    pub held_only: bool,
}


/// A unit's consumed heat budget: what it used in the places it left, and what
/// its place's odometer has run since it came there (see the schema, version 6).
/// In a query on `stock_units`.
macro_rules! heat {
    () => {
        "(heat_consumed + COALESCE((SELECT total FROM heat_odometers o WHERE o.gtin = stock_units.gtin AND o.state = stock_units.state), 0) - heat_mark)"
    };
}

/// The columns [`row_to_record`] reads, in its order.
const SELECT_RECORD: &str = concat!("SELECT code, gtin, lot, expiry, slot, state, dispense_id, hold, hold_reason, left_store_at, ", heat!(), " FROM stock_units");

impl Journal {
    /// Stocks the manifest's units that the journal does not know yet; returns how many.
    pub fn import_manifest(&self, units: &[ManifestUnit]) -> Result<usize> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            let mut added = 0;
            for u in units {
                let code = hal::codes::UnitCode::Gs1(u.code.clone()).canonical();
                let expiry = u.code.expiry.map(|d| d.to_string()).unwrap_or_default();
                let inserted = tx.exec(
                    "INSERT OR IGNORE INTO stock_units (code, gtin, lot, expiry, slot, state) VALUES (?1, ?2, ?3, ?4, ?5, 'in_store')",
                    params![code, u.code.gtin, u.code.lot.clone().unwrap_or_default(), expiry, u.slot.to_string()],
                )?;
                if inserted == 1 {
                    added += 1;
                    insert_step(&tx, self.now(), None, Some(&code), StepKind::Stock, "stocked", &format!("slot {}", u.slot), None)?;
                    self.enqueue(&tx, EventKind::Stock, || json!({ "unit": code, "gtin": u.code.gtin, "lot": u.code.lot, "expiry": expiry, "slot": u.slot.to_string(), "source": "loading manifest" }))?;
                }
            }
            tx.commit()?;
            Ok(added)
        })
    }

    /// Units in store of the given GTINs, earliest expiry first.
    pub fn units_in_store(&self, gtins: &[String]) -> Result<Vec<StockRecord>> {
        self.write(|conn| {
            // Only the product's rows are read (one `?` per GTIN): allocation reads this
            // for every dispense.
            let wanted = vec!["?"; gtins.len()].join(", ");
            let mut stmt = conn.prepare_cached(&format!("{SELECT_RECORD} WHERE state = 'in_store' AND gtin IN ({wanted}) ORDER BY expiry, slot"))?;
            let rows = stmt.query_map(rusqlite::params_from_iter(gtins), row_to_record)?.collect::<rusqlite::Result<Vec<RecordRow>>>()?;
            rows.into_iter().collect()
        })
    }

    /// The unit [`choose_fefo`](crate::rules::inventory::choose_fefo) would choose
    /// from the product's whole stock, read without reading that stock (a clinic
    /// day's store holds hundreds of one lot): per GTIN, the units in store, not
    /// held, not spent and valid on `valid_on`, of the earliest such expiry (found
    /// through the index, in expiry order) are read, code, slot and heat only; the
    /// earliest expiry, then the most heat used, then the lowest slot is chosen here
    /// (slots do not sort as text). The rule still judges the one record returned.
    pub fn earliest_usable_in_store(&self, gtins: &[String], valid_on: NaiveDate) -> Result<Vec<StockRecord>> {
        let chosen = self.write(|conn| {
            const END: f64 = crate::rules::inventory::HEAT_END_POINT;
            let mut best: Option<(NaiveDate, f64, hal::SlotAddress, String)> = None;
            {
                for gtin in gtins {
                    // Every unit of a product in store shares one odometer: its heat is
                    // `heat_consumed - heat_mark` plus that.
                    let odometer: f64 = conn.row("SELECT COALESCE((SELECT total FROM heat_odometers WHERE gtin = ?1 AND state = 'in_store'), 0)", [gtin], |r| r.get(0))?;
                    let mut stmt = conn.prepare_cached(
                        "SELECT code, slot, expiry, heat_consumed - heat_mark FROM stock_units
                         WHERE state = 'in_store' AND gtin = ?1 AND hold IS NULL AND expiry >= ?2 AND heat_consumed - heat_mark < ?3
                           AND expiry = (SELECT expiry FROM stock_units
                                         WHERE state = 'in_store' AND gtin = ?1 AND hold IS NULL AND expiry >= ?2 AND heat_consumed - heat_mark < ?3
                                         ORDER BY expiry LIMIT 1)",
                    )?;
                    let rows = stmt.query_map(params![gtin, valid_on.to_string(), END - odometer], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, f64>(3)?)))?;
                    for row in rows {
                        let (code, slot, expiry, relative) = row?;
                        let corrupt = |what: String| JournalError::Corrupt(format!("{code}: {what}"));
                        let slot: hal::SlotAddress = slot.parse().map_err(|e| corrupt(format!("{e}")))?;
                        let expiry = NaiveDate::parse_from_str(&expiry, "%Y-%m-%d").map_err(|e| corrupt(format!("expiry {expiry:?}: {e}")))?;
                        let heat = relative + odometer;
                        // Earliest expiry, then the more exposed, then the lowest slot.
                        let better = best.as_ref().is_none_or(|(e, h, s, _)| expiry.cmp(e).then(h.total_cmp(&heat)).then(slot.cmp(s)).is_lt());
                        if better {
                            best = Some((expiry, heat, slot, code));
                        }
                    }
                }
            }
            Ok(best.map(|(.., code)| code))
        })?;
        // Outside the closure: the writer is not reentrant.
        Ok(match chosen {
            Some(code) => self.stock_record(&code)?.into_iter().collect(),
            None => Vec::new(),
        })
    }

    pub fn stock_record(&self, code: &str) -> Result<Option<StockRecord>> {
        self.write(|conn| {
            let row = conn
                .row(
                    &format!("{SELECT_RECORD} WHERE code = ?1"),
                    [code],
                    row_to_record,
                )
                .optional()?;
            row.transpose()
        })
    }

    /// Moves a unit to a new state, journalling the change in the same transaction.
    pub fn set_unit_state(&self, code: &str, state: UnitState, dispense_id: &str) -> Result<()> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            // Leaving the store starts the unit's time out of refrigeration.
            let left = (state == UnitState::Picked).then(|| self.now().to_rfc3339());
            let changed = tx.exec(
                "UPDATE stock_units SET state = ?2, dispense_id = ?3, left_store_at = COALESCE(?4, left_store_at) WHERE code = ?1",
                params![code, state.as_str(), dispense_id, left],
            )?;
            if changed != 1 {
                return Err(JournalError::Corrupt(format!("no stock record {code}")));
            }
            insert_step(&tx, self.now(), Some(dispense_id), Some(code), StepKind::Stock, state.as_str(), "", None)?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Stocks one unit received at the restock door; false when the code is already
    /// known (the journal never has one code twice).
    pub fn stock_unit(&self, record: &StockRecord, detail: &str) -> Result<bool> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            let inserted = tx.exec(
                "INSERT OR IGNORE INTO stock_units (code, gtin, lot, expiry, slot, state) VALUES (?1, ?2, ?3, ?4, ?5, 'in_store')",
                params![record.code, record.gtin, record.lot, record.expiry.to_string(), record.slot.to_string()],
            )?;
            if inserted == 1 {
                insert_step(&tx, self.now(), None, Some(&record.code), StepKind::Stock, "stocked", &format!("slot {}; {detail}", record.slot), None)?;
                self.enqueue(&tx, EventKind::Stock, || json!({ "unit": record.code, "gtin": record.gtin, "lot": record.lot, "expiry": record.expiry.to_string(), "slot": record.slot.to_string(), "source": detail }))?;
            }
            tx.commit()?;
            Ok(inserted == 1)
        })
    }

    /// Units matching a filter, earliest expiry first: at most `limit` of them,
    /// after the unit `after` (expiry, code) in that order (where a page starts).
    pub fn list_stock(&self, filter: &StockFilter, after: Option<&(NaiveDate, String)>, limit: usize) -> Result<Vec<StockRecord>> {
        self.read(|conn| {
            let mut clauses = vec!["1 = 1".to_owned()];
            let mut values: Vec<String> = Vec::new();
            let bind = |clause: &str, value: String, values: &mut Vec<String>| {
                values.push(value);
                clause.replace('?', &format!("?{}", values.len()))
            };
            if let Some(gtins) = &filter.gtins {
                let marks: Vec<String> = gtins.iter().map(|g| bind("?", g.clone(), &mut values)).collect();
                clauses.push(format!("gtin IN ({})", if marks.is_empty() { "NULL".to_owned() } else { marks.join(", ") }));
            }
            if let Some(lot) = &filter.lot {
                clauses.push(bind("lot = ?", lot.clone(), &mut values));
            }
            if let Some(day) = filter.expires_by {
                clauses.push(bind("expiry <= ?", day.to_string(), &mut values));
            }
            if let Some(state) = filter.state {
                clauses.push(bind("state = ?", state.as_str().to_owned(), &mut values));
            }
            if filter.held_only {
                clauses.push("hold IS NOT NULL".to_owned());
            }
            if let Some((expiry, code)) = after {
                let expiry = bind("?", expiry.to_string(), &mut values);
                clauses.push(format!("(expiry, code) > ({expiry}, {})", bind("?", code.clone(), &mut values)));
            }
            let limit = bind("?", limit.to_string(), &mut values);
            let sql = format!("{SELECT_RECORD} WHERE {} ORDER BY expiry, code LIMIT CAST({limit} AS INTEGER)", clauses.join(" AND "));
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(values.iter()), row_to_record)?.collect::<rusqlite::Result<Vec<RecordRow>>>()?;
            rows.into_iter().collect()
        })
    }

    /// Every unit the journal says is in the store (held or not), by slot.
    pub fn all_in_store(&self) -> Result<Vec<StockRecord>> {
        self.units_in_state(UnitState::InStore)
    }

    /// Every unit in one state (held or not), by slot.
    pub fn units_in_state(&self, state: UnitState) -> Result<Vec<StockRecord>> {
        self.write(|conn| {
            let mut stmt = conn.prepare_cached(&format!("{SELECT_RECORD} WHERE state = ?1 ORDER BY slot"))?;
            let rows = stmt.query_map([state.as_str()], row_to_record)?.collect::<rusqlite::Result<Vec<RecordRow>>>()?;
            rows.into_iter().collect()
        })
    }

    /// Holds every unit of a batch that has not been given or binned yet (in the store
    /// or on its way: verification refuses it); returns how many.
    pub fn hold_batch(&self, gtins: Option<&[String]>, lot: &str, hold: Hold, reason: &str, actor: &str) -> Result<usize> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            let codes: Vec<String> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT code, gtin FROM stock_units WHERE lot = ?1 AND state IN ('in_store', 'picked', 'delivered') ORDER BY code",
                )?;
                let rows = stmt.query_map(params![lot], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter().filter(|(_, gtin)| gtins.is_none_or(|wanted| wanted.contains(gtin))).map(|(code, _)| code).collect()
            };
            for code in &codes {
                tx.exec("UPDATE stock_units SET hold = ?2, hold_reason = ?3 WHERE code = ?1", params![code, hold.as_str(), reason])?;
                insert_step(&tx, self.now(), None, Some(code), StepKind::Hold, hold.as_str(), &format!("batch {lot}: {reason} (by {actor})"), None)?;
                self.enqueue(&tx, EventKind::Hold, || json!({ "unit": code, "hold": hold.as_str(), "lot": lot, "reason": reason, "by": actor }))?;
            }
            tx.commit()?;
            self.holds_changed();
            Ok(codes.len())
        })
    }

    /// Lifts a unit's hold after review, recording why and who.
    pub fn release_hold(&self, code: &str, reason: &str, actor: &str) -> Result<bool> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            let changed = tx.exec("UPDATE stock_units SET hold = NULL, hold_reason = NULL WHERE code = ?1 AND hold IS NOT NULL", [code])?;
            if changed == 1 {
                insert_step(&tx, self.now(), None, Some(code), StepKind::Hold, "released", &format!("{reason} (by {actor})"), None)?;
                self.enqueue(&tx, EventKind::Hold, || json!({ "unit": code, "hold": null, "released": true, "reason": reason, "by": actor }))?;
            }
            tx.commit()?;
            Ok(changed == 1)
        })
    }

    /// Changes whenever a hold is committed.
    pub fn watch_holds(&self) -> tokio::sync::watch::Receiver<u64> {
        self.holds.subscribe()
    }

    fn holds_changed(&self) {
        self.holds.send_modify(|generation| *generation += 1);
    }

    /// Puts a unit on hold (recall, quarantine, cold-chain exposure) with the reason
    /// and who did it; held units are never picked and fail verification.
    pub fn hold_unit(&self, code: &str, hold: Hold, reason: &str, actor: &str) -> Result<()> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            let changed = tx.exec("UPDATE stock_units SET hold = ?2, hold_reason = ?3 WHERE code = ?1", params![code, hold.as_str(), reason])?;
            if changed != 1 {
                return Err(JournalError::Corrupt(format!("no stock record {code}")));
            }
            insert_step(&tx, self.now(), None, Some(code), StepKind::Hold, hold.as_str(), &format!("{reason} (by {actor})"), None)?;
            self.enqueue(&tx, EventKind::Hold, || json!({ "unit": code, "hold": hold.as_str(), "reason": reason, "by": actor }))?;
            tx.commit()?;
            self.holds_changed();
            Ok(())
        })
    }

    /// Puts every unit in the store (of these GTINs, or all when `gtins` is `None`)
    /// on a cold-chain hold after an excursion; returns how many were held.
    pub fn hold_exposed(&self, gtins: Option<&[String]>, since: DateTime<Utc>, hold: Hold, reason: &str) -> Result<usize> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            // Exposed: in the cabinet now, or left it (picked, at a gate, in a tray) after
            // the excursion began; a unit given or binned is beyond holding.
            let rows: Vec<(String, String, String, Option<String>)> = {
                let mut stmt = tx.prepare_cached("SELECT code, gtin, state, left_store_at FROM stock_units WHERE state IN ('in_store', 'picked', 'delivered') AND hold IS NULL")?;
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?.collect::<rusqlite::Result<Vec<_>>>()?
            };
            let mut codes = Vec::new();
            for (code, gtin, state, left) in rows {
                let exposed = match left.as_deref() {
                    _ if state == UnitState::InStore.as_str() => true,
                    Some(left) => parse_time(left)? >= since,
                    // Out of the store with no time it left: it may have been in the cabinet (fail closed).
                    None => true,
                };
                if exposed {
                    codes.push((code, gtin));
                }
            }
            let mut held = 0;
            for (code, gtin) in codes.iter().filter(|(_, g)| gtins.is_none_or(|list| list.contains(g))) {
                tx.exec("UPDATE stock_units SET hold = ?3, hold_reason = ?2 WHERE code = ?1", params![code, reason, hold.as_str()])?;
                insert_step(&tx, self.now(), None, Some(code), StepKind::Hold, hold.as_str(), &format!("{reason} ({gtin})"), None)?;
                self.enqueue(&tx, EventKind::Hold, || json!({ "unit": code, "gtin": gtin, "hold": hold.as_str(), "reason": reason, "by": "cold-chain watch" }))?;
                held += 1;
            }
            tx.commit()?;
            self.holds_changed();
            Ok(held)
        })
    }

    /// Adds a share of heat budget consumed to every unit of a product (GTIN) in a
    /// state, for each `(gtin, state, share)` — the units in one place share its
    /// temperature, so the place's odometer is charged, not each unit — in one
    /// transaction; returns the units this brought to their vial monitor's end point.
    pub fn add_heat(&self, shares: &[(String, UnitState, f64)]) -> Result<Vec<String>> {
        self.write(|conn| {
            const END: f64 = crate::rules::inventory::HEAT_END_POINT;
            let tx = conn.transaction()?;
            let mut spent = Vec::new();
            for (gtin, state, delta) in shares {
                if *delta <= 0.0 {
                    continue;
                }
                let before: f64 = tx.row("SELECT COALESCE((SELECT total FROM heat_odometers WHERE gtin = ?1 AND state = ?2), 0)", params![gtin, state.as_str()], |r| r.get(0))?;
                let after = before + delta;
                tx.exec(
                    "INSERT INTO heat_odometers (gtin, state, total) VALUES (?1, ?2, ?3) ON CONFLICT (gtin, state) DO UPDATE SET total = excluded.total",
                    params![gtin, state.as_str(), after],
                )?;
                // Reached its end point now: consumed + mark-relative odometer was below
                // the end before this charge and is at or past it after. The intervals of
                // successive charges meet exactly, so a unit is reported once.
                let mut reached = tx.prepare_cached(
                    "SELECT code FROM stock_units WHERE gtin = ?1 AND state = ?2 AND heat_consumed - heat_mark >= ?3 AND heat_consumed - heat_mark < ?4",
                )?;
                for code in reached.query_map(params![gtin, state.as_str(), END - after, END - before], |r| r.get::<_, String>(0))? {
                    spent.push(code?);
                }
            }
            tx.commit()?;
            spent.sort();
            Ok(spent)
        })
    }

    /// Counts units by state, for summaries.
    pub fn stock_counts(&self) -> Result<Vec<(String, i64)>> {
        self.write(|conn| {
            let mut stmt = conn.prepare_cached("SELECT state, COUNT(*) FROM stock_units GROUP BY state ORDER BY state")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }
}

type RecordRow = Result<StockRecord>;

fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecordRow> {
    let (code, gtin, lot): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
    let (expiry, slot, state, dispense_id): (String, String, String, Option<String>) = (r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?);
    let (hold, hold_reason, left_store_at): (Option<String>, Option<String>, Option<String>) = (r.get(7)?, r.get(8)?, r.get(9)?);
    let heat_consumed: f64 = r.get(10)?;
    Ok((|| {
        Ok(StockRecord {
            hold: match hold {
                Some(kind) => Some((
                    Hold::parse(&kind).ok_or_else(|| JournalError::Corrupt(format!("{code}: hold {kind:?}")))?,
                    hold_reason.unwrap_or_default(),
                )),
                None => None,
            },
            left_store_at: left_store_at
                .map(|t| chrono::DateTime::parse_from_rfc3339(&t).map(|t| t.with_timezone(&chrono::Utc)))
                .transpose()
                .map_err(|e| JournalError::Corrupt(format!("{code}: left_store_at: {e}")))?,
            heat_consumed,
            expiry: NaiveDate::parse_from_str(&expiry, "%Y-%m-%d").map_err(|e| JournalError::Corrupt(format!("{code}: expiry {expiry:?}: {e}")))?,
            slot: slot.parse().map_err(|e| JournalError::Corrupt(format!("{code}: {e}")))?,
            state: UnitState::parse(&state).ok_or_else(|| JournalError::Corrupt(format!("{code}: state {state:?}")))?,
            code,
            gtin,
            lot,
            dispense_id,
        })
    })())
}

/// The unit info a status shows, from its stock record.
pub fn unit_info(record: &StockRecord) -> UnitInfo {
    UnitInfo { code: record.code.clone(), gtin: record.gtin.clone(), lot: record.lot.clone(), expiry: record.expiry, slot: record.slot.to_string() }
}
