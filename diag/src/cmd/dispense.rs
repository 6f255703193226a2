//! `wsctl dispense ID [--json]`: one dispense as the workstation knows it.

use dispense_proto::v1 as pb;
use dispense_proto::v1::dispensing_service_client::DispensingServiceClient;
use dispense_proto::client::Authorized;

#[derive(Debug, clap::Args)]
pub struct Cmd {
    /// The dispense id, e.g. D000001.
    id: String,
    /// Print JSON for machines.
    #[arg(long)]
    json: bool,
}

impl Cmd {
    pub async fn run(self, mut client: DispensingServiceClient<Authorized>) -> anyhow::Result<()> {
        let response = client
            .get_dispense(pb::GetDispenseRequest { dispense_id: self.id.clone() })
            .await
            .map_err(|s| anyhow::anyhow!("{}: {}", self.id, s.message()))?;
        let d = response.into_inner().dispense.ok_or_else(|| anyhow::anyhow!("empty answer for {}", self.id))?;
        let stage = pb::DispenseStage::try_from(d.stage).map_or("UNKNOWN", |s| s.as_str_name()).trim_start_matches("DISPENSE_STAGE_");
        let unit = d.unit.unwrap_or_default();
        let order = d.order.unwrap_or_default();
        if self.json {
            let violations: Vec<_> = d.violations.iter().map(|v| serde_json::json!({"id": v.id, "message": v.message})).collect();
            let value = serde_json::json!({
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
            });
            println!("{}", serde_json::to_string_pretty(&value)?);
        } else {
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
        }
        Ok(())
    }
}
