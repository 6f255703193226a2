//! `wsctl faults` (active and past faults with code, cause and remedy) and
//! `wsctl clear ID --reason TEXT` (needs the maintenance role).

use super::Ctx;
use crate::failure::Result;
use crate::show;
use dispense_proto::v1 as pb;

#[derive(Debug, clap::Args)]
pub struct List {
    /// Also the faults that have cleared.
    #[arg(long)]
    past: bool,
    /// How far back the past goes (e.g. 24h, 7d).
    #[arg(long, default_value = "24h", value_parser = show::span)]
    since: chrono::Duration,
}

#[derive(Debug, clap::Args)]
pub struct Clear {
    /// The fault's id, as `wsctl faults` shows it (e.g. CV-02@conveyor).
    id: String,
    /// What was done about it (journalled with your name).
    #[arg(long)]
    reason: String,
}

pub fn fault_json(f: &pb::Fault) -> serde_json::Value {
    serde_json::json!({
        "id": f.id, "code": f.code, "source": f.source, "cause": f.cause, "remedy": f.remedy, "detail": f.detail,
        "raise_time": show::when_json(f.raise_time.as_ref()), "clear_time": show::when_json(f.clear_time.as_ref()), "cleared_by": f.cleared_by,
    })
}

/// A table of faults, each followed by its cause and remedy.
pub fn fault_rows(faults: &[pb::Fault], past: bool) {
    for f in faults {
        let when = if past { format!("{} -> {}", show::when(f.raise_time.as_ref()), show::when(f.clear_time.as_ref())) } else { format!("since {}", show::when(f.raise_time.as_ref())) };
        println!("  {:<28} {}  {}", f.id, when, f.detail);
        println!("  {:<28} cause:  {}", "", f.cause);
        println!("  {:<28} remedy: {}", "", f.remedy);
        if past && !f.cleared_by.is_empty() {
            println!("  {:<28} cleared by {}", "", f.cleared_by);
        }
    }
}

impl List {
    pub async fn run(self, ctx: &Ctx) -> Result<()> {
        let since = show::timestamp(chrono::Utc::now() - self.since);
        // Every page of past faults.
        let mut request = pb::ListFaultsRequest { include_past: self.past, start_time: Some(since), ..Default::default() };
        let mut faults = ctx.maintenance().list_faults(request.clone()).await?.into_inner();
        while !faults.next_page_token.is_empty() {
            request.page_token = std::mem::take(&mut faults.next_page_token);
            let page = ctx.maintenance().list_faults(request.clone()).await?.into_inner();
            faults.past.extend(page.past);
            faults.next_page_token = page.next_page_token;
        }
        if ctx.json {
            return show::json(&serde_json::json!({
                "active": faults.active.iter().map(fault_json).collect::<Vec<_>>(),
                "past": faults.past.iter().map(fault_json).collect::<Vec<_>>(),
            }));
        }
        if faults.active.is_empty() {
            println!("no active faults");
        } else {
            println!("{} active:", faults.active.len());
            fault_rows(&faults.active, false);
        }
        if self.past {
            println!("{} cleared since {}:", faults.past.len(), show::when(Some(&since)));
            fault_rows(&faults.past, true);
        }
        Ok(())
    }
}

impl Clear {
    pub async fn run(self, ctx: &Ctx) -> Result<()> {
        let cleared = ctx.maintenance().clear_fault(pb::ClearFaultRequest { fault_id: self.id.clone(), reason: self.reason }).await?.into_inner().fault.unwrap_or_default();
        if ctx.json {
            return show::json(&fault_json(&cleared));
        }
        println!("cleared {} (by {})", cleared.id, cleared.cleared_by);
        Ok(())
    }
}
