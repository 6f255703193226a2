//! `wsctl status`: mode, state, faults, interlocks, and each field device's
//! identity, firmware, link health and last heartbeat.

use super::Ctx;
use super::faults::{fault_json, fault_rows};
use crate::failure::Result;
use crate::show;
use dispense_proto::v1 as pb;

#[derive(Debug, clap::Args)]
pub struct Cmd {}

pub fn state_name(state: pb::WorkstationState) -> String {
    show::name(state.as_str_name(), "WORKSTATION_STATE_")
}

fn interlocks_line(i: &pb::Interlocks) -> String {
    if !i.readable {
        return "NOT READABLE (treated as open)".into();
    }
    let mut open = Vec::new();
    if i.estop_pressed {
        open.push("E-STOP PRESSED");
    }
    if i.restock_door_open {
        open.push("RESTOCK DOOR OPEN");
    }
    if i.light_curtain_broken {
        open.push("LIGHT CURTAIN BROKEN");
    }
    if open.is_empty() { "all closed (e-stop released, restock door closed, light curtains clear)".into() } else { open.join(", ") }
}

impl Cmd {
    pub async fn run(self, ctx: &Ctx) -> Result<()> {
        let s = ctx.maintenance().get_status(pb::GetStatusRequest {}).await?.into_inner();
        let interlocks = s.interlocks.clone().unwrap_or_default();
        if ctx.json {
            let devices: Vec<_> = s
                .devices
                .iter()
                .map(|d| {
                    serde_json::json!({
                        "name": d.name, "transport": d.transport, "firmware": d.firmware, "serial_number": d.serial_number,
                        "map_version": d.map_version, "alive": d.alive, "last_heartbeat_time": show::when_json(d.last_heartbeat_time.as_ref()),
                        "requests": d.requests, "retries": d.retries, "failures": d.failures, "reconnects": d.reconnects,
                        "homed": d.homed, "busy": d.busy, "alarms": d.alarms, "error": d.error,
                    })
                })
                .collect();
            let lock = s.maintenance.as_ref().map(|l| serde_json::json!({"holder": l.holder, "reason": l.reason, "expire_time": show::when_json(l.expire_time.as_ref())}));
            return show::json(&serde_json::json!({
                "state": state_name(s.state()),
                "in_flight": s.in_flight,
                "controller_version": s.controller_version,
                "maintenance": lock,
                "interlocks": {"readable": interlocks.readable, "estop_pressed": interlocks.estop_pressed, "restock_door_open": interlocks.restock_door_open, "light_curtain_broken": interlocks.light_curtain_broken},
                "faults": s.faults.iter().map(fault_json).collect::<Vec<_>>(),
                "devices": devices,
                "event_feed": s.event_feed.as_ref().map(|f| serde_json::json!({
                    "connected": f.connected, "waiting_events": f.waiting_events, "oldest_waiting_time": show::when_json(f.oldest_waiting_time.as_ref()),
                    "acknowledged_sequence": f.acknowledged_sequence, "last_failure": f.last_failure,
                })),
            }));
        }
        println!("workstation   {}   {} in flight   controller {}", state_name(s.state()).to_uppercase(), s.in_flight, s.controller_version);
        match &s.maintenance {
            Some(l) => println!("maintenance   held by {} until {} UTC: {}", l.holder, show::when(l.expire_time.as_ref()), l.reason),
            None => println!("maintenance   not in maintenance mode"),
        }
        println!("interlocks    {}", interlocks_line(&interlocks));
        match &s.event_feed {
            None => println!("event feed    none configured"),
            Some(f) => {
                let link = if f.connected { "connected".to_owned() } else { format!("DOWN ({})", f.last_failure) };
                println!("event feed    {link}; {} events waiting; broker has #{}", f.waiting_events, f.acknowledged_sequence);
            }
        }
        if s.faults.is_empty() {
            println!("faults        none active");
        } else {
            println!("faults        {} active:", s.faults.len());
            fault_rows(&s.faults, false);
        }
        if s.devices.is_empty() {
            println!("devices       none on a field bus (hardware simulated in process)");
        } else {
            println!();
            let rows: Vec<Vec<String>> = s
                .devices
                .iter()
                .map(|d| {
                    vec![
                        d.name.clone(),
                        d.transport.clone(),
                        if d.firmware.is_empty() { "?".into() } else { d.firmware.clone() },
                        d.serial_number.clone(),
                        if d.alive { "yes".into() } else { "NO".into() },
                        show::ago(d.last_heartbeat_time.as_ref()),
                        if d.homed { "yes".into() } else { "no".into() },
                        format!("{}/{}/{}", d.requests, d.retries, d.failures),
                        if d.alarms.is_empty() { "-".into() } else { d.alarms.join(",") },
                    ]
                })
                .collect();
            show::table(&["DEVICE", "LINK", "FIRMWARE", "SERIAL", "ALIVE", "LAST HEARTBEAT", "HOMED", "REQ/RETRY/FAIL", "ALARMS"], &rows);
            for d in s.devices.iter().filter(|d| !d.error.is_empty()) {
                println!("  {}: {}", d.name, d.error);
            }
        }
        Ok(())
    }
}
