//! `wsctl fleet status --targets FILE`: one table for many workstations — state,
//! active faults, queue, cabinet temperature, field links — asked concurrently,
//! each within the connect and request timeouts; one that does not answer is shown
//! as unreachable, the others still are. The targets file (TOML) lists each
//! workstation's name, address and token (an observer's token is enough).

use crate::failure::{Exit, Failure, Result};
use dispense_proto::v1 as pb;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// The state of every workstation in the targets file.
    Status {
        /// TOML: `[[workstation]]` with `name`, `addr` (http:// or https://), `token`,
        /// and optionally `ca` (PEM) for TLS.
        #[arg(long)]
        targets: PathBuf,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Targets {
    workstation: Vec<Target>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Target {
    name: String,
    addr: String,
    token: String,
    ca: Option<PathBuf>,
}

/// One workstation's line of the table.
#[derive(Debug, Serialize)]
struct Row {
    name: String,
    addr: String,
    reachable: bool,
    /// Why not, when unreachable or refused.
    error: Option<String>,
    state: String,
    faults: Vec<String>,
    in_flight: u32,
    queue: usize,
    cabinet_celsius: Option<f64>,
    /// Field devices answering, of all (links healthy).
    links_up: usize,
    links: usize,
    /// The event feed: "-" without one, "ok" connected with nothing much waiting,
    /// else what is wrong.
    feed: String,
}

impl Cmd {
    pub async fn run(self, json: bool, timeouts: dispense_proto::client::Timeouts) -> Result<()> {
        let Cmd::Status { targets } = self;
        let text = std::fs::read_to_string(&targets).map_err(|e| Failure::new(Exit::BadInput, format!("{}: {e}", targets.display())))?;
        let list: Targets = toml::from_str(&text).map_err(|e| Failure::new(Exit::BadInput, format!("{}: {e}", targets.display())))?;
        let asks = list.workstation.into_iter().map(|t| async move {
            // The whole ask bounded too: a workstation that accepts and then stalls a stream.
            match tokio::time::timeout(timeouts.connect + timeouts.request * 3, ask(&t, timeouts)).await {
                Ok(Ok(row)) => row,
                Ok(Err(why)) => unreachable(&t, why),
                Err(_) => unreachable(&t, "no answer in time".into()),
            }
        });
        // All at once, in the file's order.
        let rows: Vec<Row> = futures::future::join_all(asks).await;
        if json {
            return crate::show::json(&serde_json::json!({ "workstations": rows }));
        }
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                if !r.reachable {
                    return vec![r.name.clone(), r.addr.clone(), format!("UNREACHABLE: {}", r.error.clone().unwrap_or_default()), String::new(), String::new(), String::new(), String::new(), String::new()];
                }
                vec![
                    r.name.clone(),
                    r.addr.clone(),
                    r.state.clone(),
                    if r.faults.is_empty() { "-".into() } else { r.faults.join(",") },
                    format!("{} queued / {} in flight", r.queue, r.in_flight),
                    r.cabinet_celsius.map_or("?".into(), |c| format!("{c:.1} °C")),
                    format!("{}/{}", r.links_up, r.links),
                    r.feed.clone(),
                ]
            })
            .collect();
        crate::show::table(&["WORKSTATION", "ADDRESS", "STATE", "FAULTS", "QUEUE", "CABINET", "LINKS", "FEED"], &cells);
        let down = rows.iter().filter(|r| !r.reachable).count();
        if down > 0 {
            return Err(Failure::new(Exit::Unreachable, format!("{down} of {} workstations unreachable", rows.len())));
        }
        Ok(())
    }
}

fn unreachable(t: &Target, why: String) -> Row {
    Row { name: t.name.clone(), addr: t.addr.clone(), reachable: false, error: Some(why), state: String::new(), faults: vec![], in_flight: 0, queue: 0, cabinet_celsius: None, links_up: 0, links: 0, feed: String::new() }
}

async fn ask(t: &Target, timeouts: dispense_proto::client::Timeouts) -> std::result::Result<Row, String> {
    let tls = match &t.ca {
        Some(ca) => Some(dispense_proto::client::ClientTls { ca_pem: std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?, domain: None, identity: None }),
        None => None,
    };
    let channel = dispense_proto::client::connect_with(&t.addr, Some(&t.token), tls.as_ref(), timeouts).await.map_err(|e| e.to_string())?;
    let status = pb::maintenance_service_client::MaintenanceServiceClient::new(channel.clone()).get_status(pb::GetStatusRequest {}).await.map_err(|e| e.message().to_owned())?.into_inner();
    let queue = pb::dispensing_service_client::DispensingServiceClient::new(channel.clone()).list_queue(pb::ListQueueRequest { page_size: 1000, ..Default::default() }).await.map(|q| q.into_inner().dispenses.iter().filter(|d| d.stage() == pb::DispenseStage::Queued).count()).unwrap_or(0);
    let mut monitoring = pb::monitoring_service_client::MonitoringServiceClient::new(channel);
    let cabinet = match monitoring.watch_temperatures(pb::WatchTemperaturesRequest {}).await {
        Ok(stream) => match tokio::time::timeout(timeouts.request, stream.into_inner().message()).await {
            Ok(Ok(Some(sample))) => {
                let cabinet: Vec<f64> = sample.readings.iter().filter(|r| r.probe.starts_with("cabinet")).filter_map(|r| r.celsius).collect();
                (!cabinet.is_empty()).then(|| cabinet.iter().sum::<f64>() / cabinet.len() as f64)
            }
            _ => None,
        },
        Err(_) => None,
    };
    Ok(Row {
        name: t.name.clone(),
        addr: t.addr.clone(),
        reachable: true,
        error: None,
        state: crate::show::name(status.state().as_str_name(), "WORKSTATION_STATE_"),
        faults: status.faults.iter().map(|f| f.code.clone()).collect(),
        in_flight: status.in_flight,
        queue,
        cabinet_celsius: cabinet,
        links_up: status.devices.iter().filter(|d| d.alive).count(),
        links: status.devices.len(),
        feed: feed(status.event_feed.as_ref()),
    })
}

/// The feed column: its link to the broker and what waits.
fn feed(feed: Option<&pb::EventFeed>) -> String {
    match feed {
        None => "-".into(),
        Some(f) if f.connected && f.waiting_events < 100 => "ok".into(),
        Some(f) if f.connected => format!("catching up ({} waiting)", f.waiting_events),
        Some(f) => format!("DOWN ({} waiting)", f.waiting_events),
    }
}
