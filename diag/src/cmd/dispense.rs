//! `wsctl dispense ID`: one dispense as the workstation knows it.

use super::Ctx;
use crate::failure::Result;
use crate::show;
use dispense_proto::v1 as pb;

#[derive(Debug, clap::Args)]
pub struct Cmd {
    /// The dispense id, e.g. D000001.
    id: String,
}

impl Cmd {
    pub async fn run(self, ctx: &Ctx) -> Result<()> {
        let d = ctx.dispensing().get_dispense(pb::GetDispenseRequest { dispense_id: self.id.clone() }).await?.into_inner().dispense.unwrap_or_default();
        let stage = show::name(d.stage().as_str_name(), "DISPENSE_STAGE_");
        let unit = d.unit.clone().unwrap_or_default();
        let order = d.order.clone().unwrap_or_default();
        if ctx.json {
            let violations: Vec<_> = d.violations.iter().map(|v| serde_json::json!({"id": v.id, "message": v.message})).collect();
            return show::json(&serde_json::json!({
                "dispense_id": d.dispense_id,
                "request_id": d.request_id,
                "stage": stage,
                "finished": d.finished,
                "patient_id": order.patient_id,
                "product_id": order.product_id,
                "booth": order.booth,
                "unit": {"code": unit.code, "lot": unit.lot, "expiry": unit.expiry, "slot": unit.slot},
                "violations": violations,
                "detail": d.detail,
            }));
        }
        println!("{}  {}  (request {})", d.dispense_id, stage, d.request_id);
        println!("  order      {} for patient {} at booth {}", order.product_id, order.patient_id, order.booth);
        if !unit.code.is_empty() {
            println!("  unit       {}  lot {}  exp {}  from {}", unit.code, unit.lot, unit.expiry, unit.slot);
        }
        for v in &d.violations {
            println!("  violation  {}: {}", v.id, v.message);
        }
        if !d.detail.is_empty() {
            println!("  detail     {}", d.detail);
        }
        Ok(())
    }
}
