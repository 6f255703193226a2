//! Maintenance mode and motions: `wsctl maintenance enter|exit`, `wsctl home`,
//! `wsctl jog AXIS DISTANCE`, `wsctl selftest`. Motions need maintenance mode under
//! your own lock and every interlock closed; the workstation refuses otherwise.

use super::Ctx;
use super::status::state_name;
use crate::failure::{Exit, Failure, Result};
use crate::show;
use dispense_proto::v1 as pb;
use std::io::{IsTerminal, Write};

#[derive(Debug, clap::Subcommand)]
pub enum Mode {
    /// Take the workstation out of service under your lock.
    Enter {
        /// Why (journalled with your name).
        #[arg(long)]
        reason: String,
        /// The lock lapses after this long unless you enter again (e.g. 15m, 2h).
        #[arg(long, default_value = "15m", value_parser = show::span)]
        timeout: chrono::Duration,
        /// Enter even with units in flight (their motions wait until you exit).
        #[arg(long)]
        force: bool,
    },
    /// Return the workstation to service.
    Exit,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Axis {
    Belt,
    #[value(alias = "x")]
    PickerX,
    #[value(alias = "y")]
    PickerY,
    #[value(alias = "z")]
    PickerZ,
}

#[derive(Debug, clap::Args)]
pub struct Jog {
    /// belt, picker-x (x), picker-y (y) or picker-z (z).
    #[arg(value_enum)]
    axis: Axis,
    /// Millimetres, negative backwards (belt up to 500, picker up to 200).
    #[arg(allow_negative_numbers = true)]
    distance: i32,
}

impl Mode {
    pub async fn run(self, ctx: &Ctx) -> Result<()> {
        let mut client = ctx.maintenance();
        match self {
            Mode::Enter { reason, timeout, force } => {
                let timeout = Some(prost_types::Duration { seconds: timeout.num_seconds(), nanos: 0 });
                let lock = client.enter_maintenance(pb::EnterMaintenanceRequest { reason, timeout, force }).await?.into_inner().lease.unwrap_or_default();
                if ctx.json {
                    return show::json(&serde_json::json!({"holder": lock.holder, "reason": lock.reason, "expire_time": show::when_json(lock.expire_time.as_ref())}));
                }
                println!("in maintenance, held by {} until {} UTC", lock.holder, show::when(lock.expire_time.as_ref()));
            }
            Mode::Exit => {
                let state = client.exit_maintenance(pb::ExitMaintenanceRequest {}).await?.into_inner().state();
                if ctx.json {
                    return show::json(&serde_json::json!({"state": state_name(state)}));
                }
                println!("back in service: {}", state_name(state));
            }
        }
        Ok(())
    }
}

pub async fn home(ctx: &Ctx) -> Result<()> {
    ctx.maintenance().home(pb::HomeRequest {}).await?;
    if ctx.json {
        return show::json(&serde_json::json!({"homed": true}));
    }
    println!("picker and belt homed");
    Ok(())
}

impl Jog {
    pub async fn run(self, ctx: &Ctx) -> Result<()> {
        let axis = match self.axis {
            Axis::Belt => pb::Axis::Belt,
            Axis::PickerX => pb::Axis::PickerX,
            Axis::PickerY => pb::Axis::PickerY,
            Axis::PickerZ => pb::Axis::PickerZ,
        };
        ctx.maintenance().jog(pb::JogRequest { axis: axis as i32, distance_mm: self.distance }).await?;
        let axis = show::name(axis.as_str_name(), "AXIS_");
        if ctx.json {
            return show::json(&serde_json::json!({"axis": axis, "distance_mm": self.distance}));
        }
        println!("jogged {axis} {} mm", self.distance);
        Ok(())
    }
}

/// Runs the self-test: a progress bar on a terminal (stderr), then a pass/fail
/// table. Exits 1 if any step failed.
pub async fn selftest(ctx: &Ctx) -> Result<()> {
    let mut stream = ctx.maintenance().self_test(pb::SelfTestRequest {}).await?.into_inner();
    let bar = std::io::stderr().is_terminal() && !ctx.json;
    let mut steps = Vec::new();
    while let Some(step) = stream.message().await? {
        if bar {
            let done = (step.step as usize * 30) / step.steps.max(1) as usize;
            eprint!("\r[{}{}] {:>2}/{} {:<32}", "#".repeat(done), " ".repeat(30 - done), step.step, step.steps, step.name);
            let _ = std::io::stderr().flush();
        }
        steps.push(step);
    }
    if bar {
        eprintln!();
    }
    let verdict = |s: &pb::SelfTestResponse| if s.skipped { "skipped" } else if s.passed { "pass" } else { "FAIL" };
    let failed = steps.iter().filter(|s| !s.passed && !s.skipped).count();
    if ctx.json {
        let list: Vec<_> = steps.iter().map(|s| serde_json::json!({"step": s.step, "name": s.name, "result": verdict(s).to_lowercase(), "detail": s.detail})).collect();
        show::json(&serde_json::json!({"passed": failed == 0, "failed": failed, "steps": list}))?;
    } else {
        let rows: Vec<Vec<String>> = steps.iter().map(|s| vec![s.step.to_string(), s.name.clone(), verdict(s).to_owned(), s.detail.clone()]).collect();
        show::table(&["#", "CHECK", "RESULT", "DETAIL"], &rows);
        println!("{} of {} checks failed", failed, steps.len());
    }
    if failed > 0 {
        return Err(Failure::new(Exit::CheckFailed, format!("self-test: {failed} check(s) failed")));
    }
    Ok(())
}
