//! `wsctl stock` (what the store holds, by product and lot, with holds and the
//! stock count's discrepancies) and `wsctl trace CODE` (a unit's chain of custody).

use super::Ctx;
use crate::failure::Result;
use crate::show;
use dispense_proto::v1 as pb;
use std::collections::BTreeMap;

#[derive(Debug, clap::Args)]
pub struct Trace {
    /// The unit's code, in any printed form.
    code: String,
}

pub async fn stock(ctx: &Ctx) -> Result<()> {
    let mut client = ctx.stock();
    let mut units = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::ListStockRequest { state: pb::UnitState::InStore as i32, page_token: page_token.clone(), ..Default::default() };
        let page = client.list_stock(request).await?.into_inner();
        units.extend(page.units);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let count = client.count_stock(pb::CountStockRequest { warn_days: 30 }).await?.into_inner();
    // (product, lot) -> (units, held, expiry, the most heat budget any unit used)
    let mut lots: BTreeMap<(String, String), (usize, usize, String, f64)> = BTreeMap::new();
    for u in &units {
        let entry = lots.entry((u.product_id.clone(), u.lot.clone())).or_insert((0, 0, u.expiry.clone(), 0.0));
        entry.0 += 1;
        entry.1 += usize::from(u.hold != pb::HoldKind::Unspecified as i32);
        entry.3 = entry.3.max(u.heat_budget_used);
    }
    if ctx.json {
        let lots: Vec<_> = lots
            .iter()
            .map(|((p, l), (n, held, exp, heat))| serde_json::json!({"product_id": p, "lot": l, "expiry": exp, "units": n, "held": held, "heat_budget_used_max": heat}))
            .collect();
        let discrepancies: Vec<_> = count.discrepancies.iter().map(|d| serde_json::json!({"slot": d.slot, "code": d.code, "kind": d.kind})).collect();
        let expiring: Vec<_> = count.expiring.iter().map(|e| serde_json::json!({"code": e.code, "slot": e.slot, "expiry": e.expiry, "days_left": e.days_left})).collect();
        return show::json(&serde_json::json!({
            "in_store": units.len(), "occupied_slots": count.occupied, "held": count.held,
            "lots": lots, "discrepancies": discrepancies, "expiring_within_30_days": expiring,
        }));
    }
    let rows: Vec<Vec<String>> = lots.iter().map(|((p, l), (n, held, exp, heat))| vec![p.clone(), l.clone(), exp.clone(), n.to_string(), held.to_string(), format!("{:.3}", heat * 100.0)]).collect();
    show::table(&["PRODUCT", "LOT", "EXPIRY", "UNITS", "HELD", "HEAT MAX %"], &rows);
    println!("{} units in store, {} slots occupied by the sensors, {} held", units.len(), count.occupied, count.held);
    for d in &count.discrepancies {
        println!("  DISCREPANCY {} at {}{}", d.kind, d.slot, if d.code.is_empty() { String::new() } else { format!(": {}", d.code) });
    }
    if !count.expiring.is_empty() {
        println!("  {} unit(s) expire within 30 days", count.expiring.len());
    }
    Ok(())
}

impl Trace {
    pub async fn run(self, ctx: &Ctx) -> Result<()> {
        let trace = ctx.trace().get_unit_trace(pb::GetUnitTraceRequest { code: self.code }).await?.into_inner();
        let unit = trace.unit.unwrap_or_default();
        let state = show::name(unit.state().as_str_name(), "UNIT_STATE_");
        if ctx.json {
            let events: Vec<_> = trace.events.iter().map(|e| serde_json::json!({"seq": e.seq, "event_time": show::when_json(e.event_time.as_ref()), "dispense_id": e.dispense_id, "kind": e.kind, "step": e.step, "detail": e.detail})).collect();
            return show::json(&serde_json::json!({
                "code": unit.code, "product_id": unit.product_id, "lot": unit.lot, "expiry": unit.expiry, "slot": unit.slot,
                "state": state, "hold": show::name(unit.hold().as_str_name(), "HOLD_KIND_"), "hold_reason": unit.hold_reason,
                "heat_budget_used": unit.heat_budget_used, "events": events,
            }));
        }
        println!("{}  {} lot {} exp {}  slot {}  {}", unit.code, unit.product_id, unit.lot, unit.expiry, unit.slot, state);
        if !unit.hold_reason.is_empty() {
            println!("held: {}", unit.hold_reason);
        }
        println!("vial monitor: {:.3} % of the heat budget used", unit.heat_budget_used * 100.0);
        let rows: Vec<Vec<String>> = trace.events.iter().map(|e| vec![show::when(e.event_time.as_ref()), e.dispense_id.clone(), e.kind.clone(), e.step.clone(), e.detail.clone()]).collect();
        show::table(&["AT", "DISPENSE", "KIND", "STEP", "DETAIL"], &rows);
        Ok(())
    }
}
