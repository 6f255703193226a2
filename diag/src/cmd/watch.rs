//! `wsctl watch`: the workstation's state, faults and booths, live. On a terminal a
//! compact view redrawn in place; otherwise one plain line per change.

use super::Ctx;
use super::status::state_name;
use crate::failure::Result;
use crate::show;
use dispense_proto::v1 as pb;
use std::io::IsTerminal;

#[derive(Debug, clap::Args)]
pub struct Cmd {
    /// Stop after this many updates (default: until interrupted).
    #[arg(long)]
    count: Option<usize>,
}

fn booth_line(b: &pb::Booth) -> String {
    let stage = show::name(b.stage().as_str_name(), "DISPENSE_STAGE_");
    let holder = if b.dispense_id.is_empty() { "free".to_owned() } else { format!("{} {} ({})", b.dispense_id, stage, b.patient_name) };
    format!("booth {}: {holder}{}", b.booth, if b.waiting > 0 { format!(", {} waiting", b.waiting) } else { String::new() })
}

impl Cmd {
    pub async fn run(self, ctx: &Ctx) -> Result<()> {
        let mut monitoring = ctx.monitoring();
        let mut states = monitoring.watch_workstation(pb::WatchWorkstationRequest {}).await?.into_inner();
        let mut booths = monitoring.watch_booths(pb::WatchBoothsRequest {}).await?.into_inner();
        let live = std::io::stdout().is_terminal() && !ctx.json;
        let (mut state, mut booth_view) = (None::<pb::WatchWorkstationResponse>, None::<pb::WatchBoothsResponse>);
        let mut updates = 0;
        while self.count.is_none_or(|n| updates < n) {
            let now = chrono::Utc::now().format("%H:%M:%S");
            tokio::select! {
                s = states.message() => {
                    let Some(s) = s? else { break };
                    if ctx.json {
                        let faults: Vec<_> = s.faults.iter().map(super::faults::fault_json).collect();
                        println!("{}", serde_json::json!({"event": "workstation", "state": state_name(s.state()), "in_flight": s.in_flight, "faults": faults}));
                    } else if !live {
                        let faults: Vec<&str> = s.faults.iter().map(|f| f.id.as_str()).collect();
                        println!("{now} state={} in_flight={} faults=[{}]", state_name(s.state()), s.in_flight, faults.join(","));
                    }
                    state = Some(s);
                }
                b = booths.message() => {
                    let Some(b) = b? else { break };
                    if ctx.json {
                        let list: Vec<_> = b.booths.iter().map(|x| serde_json::json!({"booth": x.booth, "dispense_id": x.dispense_id, "stage": show::name(x.stage().as_str_name(), "DISPENSE_STAGE_"), "patient": x.patient_name, "waiting": x.waiting})).collect();
                        println!("{}", serde_json::json!({"event": "booths", "booths": list}));
                    } else if !live {
                        println!("{now} {}", b.booths.iter().map(booth_line).collect::<Vec<_>>().join(" | "));
                    }
                    booth_view = Some(b);
                }
            }
            updates += 1;
            if live {
                // Redraw in place: home, clear, then the picture.
                print!("\x1b[H\x1b[2J");
                if let Some(s) = &state {
                    println!("{now}  {}  {} in flight", state_name(s.state()).to_uppercase(), s.in_flight);
                    for f in &s.faults {
                        println!("  FAULT {}  {}  — {}", f.id, f.detail, f.remedy);
                    }
                }
                for b in booth_view.iter().flat_map(|v| &v.booths) {
                    println!("  {}", booth_line(b));
                }
            }
        }
        Ok(())
    }
}
