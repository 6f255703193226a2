//! The newcomer's demo: a workstation on simulated hardware, and a clinic that sends
//! it a stream of patients through the real gRPC API over loopback, confirms each
//! guardian validation and administration, prints progress and a summary.

use anyhow::Context;
use controller::api::auth::layer::{TokenEntry, new_token, token_hash};
use controller::api::auth::roles::Role;
use controller::api::server::serve;
use controller::assemble::assemble;
use controller::config::HardwareConfig;
use controller::journal::clock::Clock;
use simulator::wire::{Exposure, HardwarePlan, HardwareSim};
use dispense_proto::v1 as pb;
use dispense_proto::v1::dispensing_service_client::DispensingServiceClient;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use dispense_proto::client::Authorized;

/// Patients of the demo: name, the vaccine and dose due, age in days, and earlier
/// doses (product, dose number, age in days when given).
type PriorDoses = &'static [(&'static str, u32, i64)];
const PATIENTS: &[(&str, &str, u32, i64, PriorDoses)] = &[
    ("Wang Xiaoming", "HepB", 1, 1, &[]),
    ("Li Na", "IPV", 1, 65, &[("HepB", 1, 0), ("HepB", 2, 31)]),
    ("Zhang Wei", "DTaP", 1, 62, &[("HepB", 1, 0)]),
    ("Liu Yang", "MMR", 1, 245, &[]),
    ("Chen Jie", "HepB", 2, 33, &[("HepB", 1, 0)]),
    ("Yang Fan", "JE-L", 1, 250, &[]),
    ("Zhao Lei", "MPSV-A", 1, 190, &[]),
    ("Huang Min", "DTaP", 2, 125, &[("DTaP", 1, 61)]),
    ("Zhou Tao", "IPV", 2, 95, &[("IPV", 1, 62)]),
    ("Wu Hao", "MMR", 1, 260, &[]),
    ("Xu Jing", "HepB", 3, 185, &[("HepB", 1, 0), ("HepB", 2, 30)]),
    ("Sun Li", "DTaP", 1, 70, &[]),
];

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub patients: usize,
    /// Drive the simulator over the real wires (Modbus RTU on a pseudo-terminal for
    /// the store, Modbus TCP for the conveyor, the camera through OpenCV), as
    /// `wssim hardware` would; false calls the device models in process.
    pub over_the_wire: bool,
    /// Machine seconds between arrivals.
    pub arrival_every_s: f64,
    /// Machine seconds the guardian takes to validate, and the nurse to administer.
    pub guardian_s: f64,
    pub nurse_s: f64,
}

/// How one patient's visit ended.
#[derive(Debug)]
struct Visit {
    /// The final dispense of each attempt (a rejected unit means a second attempt).
    attempts: Vec<pb::Dispense>,
}

pub async fn run(mut config: controller::config::Config, options: DemoOptions) -> anyhow::Result<()> {
    let simulator = crate::rig::sim_config(&config).context("the demo drives simulated hardware")?;
    let (speed, booths) = (simulator.speed, simulator.booths);
    let journal_path = config.journal.path.clone();
    let mut wire = None;
    if options.over_the_wire {
        let sim = crate::rig::simulated_workstation(&config)?;
        let plan = HardwarePlan {
            store: Exposure::Rtu { baud: 115_200 },
            conveyor: Exposure::Tcp { bind: "127.0.0.1:0".parse()? },
            http: "127.0.0.1:0".parse()?,
        };
        let hardware = HardwareSim::start(sim, &plan).await.context("starting the hardware simulator")?;
        let devices = journal_path.with_extension("devices.toml");
        std::fs::write(&devices, hardware.wire_config_toml()).with_context(|| format!("writing {}", devices.display()))?;
        println!("Simulated hardware on the wire: store {:?}, conveyor {:?}, camera {}", hardware.store_endpoint(), hardware.conveyor_endpoint(), hardware.camera_url());
        config.hardware = HardwareConfig::Wire { devices, frame_timeout_ms: 2_000 };
        wire = Some(hardware);
    }
    // The demo's clinic gets a fresh token of its own for this run.
    let token = new_token()?;
    config.auth.tokens.push(TokenEntry { name: "demo-clinic".into(), role: Role::Clinic, sha256: token_hash(&token) });
    let (assembled, physical) = match &wire {
        Some(hardware) => (assemble(config).await?, hardware.workstation().clone()),
        None => crate::rig::assemble_in_process(config, Clock::system()).await?,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server_config = assembled.config.clone();
    let dispatcher = assembled.dispatcher.clone();
    let server = tokio::spawn(async move {
        serve(dispatcher, &server_config, listener, async {
            let _ = stop_rx.await;
        })
        .await
    });
    let channel = dispense_proto::client::connect(&format!("http://{addr}"), Some(&token), None).await.map_err(|e| anyhow::anyhow!("connecting to the workstation: {e}"))?;
    let client = DispensingServiceClient::new(channel);

    println!("Workstation ready: simulated hardware ({booths} booths, running {speed}x real time), gRPC on {addr}");
    println!("Journal: {}", journal_path.display());
    println!("A clinic now sends {} patients through the gRPC API, one every {:.0} s (machine time).\n", options.patients, options.arrival_every_s);

    let started = Instant::now();
    let options = Arc::new(options);
    let mut visits = Vec::new();
    for i in 0..options.patients {
        let (name, product, dose, age_days, prior) = PATIENTS[i % PATIENTS.len()];
        let born = chrono::Utc::now().date_naive() - chrono::Duration::days(age_days);
        let history = prior
            .iter()
            .map(|&(product, dose_number, at)| pb::PriorDose { product_id: product.into(), dose_number, date: (born + chrono::Duration::days(at)).to_string() })
            .collect();
        let patient = Patient {
            number: i + 1,
            name: name.to_owned(),
            product: product.to_owned(),
            dose,
            birth_date: born.to_string(),
            history,
            booth: (i % usize::from(booths)) as u32 + 1,
        };
        let (client, options) = (client.clone(), options.clone());
        let delay = Duration::from_secs_f64(i as f64 * options.arrival_every_s / speed);
        visits.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            patient.visit(client, &options, speed, started).await
        }));
    }
    let mut results = Vec::new();
    for v in visits {
        results.push(v.await??);
    }
    let wall = started.elapsed();
    summarise(&results, speed, wall);
    println!(
        "  physical check         {} units reached booth trays, {} lie in the reject bin, {} still in store",
        physical.deliveries().len(),
        physical.reject_bin().len(),
        physical.occupied_slots()
    );
    let counts = assembled.dispatcher.journal().stock_counts()?;
    let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
    println!("  journal stock          {}", counts.join(", "));
    let _ = stop_tx.send(());
    server.await??;
    Ok(())
}

struct Patient {
    number: usize,
    name: String,
    product: String,
    dose: u32,
    birth_date: String,
    history: Vec<pb::PriorDose>,
    booth: u32,
}

impl Patient {
    async fn visit(self, mut client: DispensingServiceClient<Authorized>, options: &DemoOptions, speed: f64, t0: Instant) -> anyhow::Result<Visit> {
        let mut attempts = Vec::new();
        // A rejected unit is replaced by a second order, as a clinic would.
        for attempt in 1..=2 {
            let request_id = format!("demo-{}-{attempt}", self.number);
            let order = pb::PatientOrder {
                patient_id: format!("P{:04}", self.number),
                patient_name: self.name.clone(),
                product_id: self.product.clone(),
                booth: self.booth,
                dose_number: self.dose,
                birth_date: self.birth_date.clone(),
                health_check_attested: true,
                history: self.history.clone(),
                ..Default::default()
            };
            let id = client.start_dispense(pb::StartDispenseRequest { request_id, order: Some(order) }).await?.into_inner().dispense_id;
            let mut stream = client.watch_dispense(pb::WatchDispenseRequest { dispense_id: id.clone() }).await?.into_inner();
            let mut last = None;
            while let Some(update) = stream.message().await? {
                let Some(d) = update.dispense else { continue };
                self.print(&d, t0);
                match pb::DispenseStage::try_from(d.stage) {
                    Ok(pb::DispenseStage::AwaitingValidation) => {
                        tokio::time::sleep(Duration::from_secs_f64(options.guardian_s / speed)).await;
                        // The nurse scans the unit in the tray once more as the guardian validates.
                        let booth_scan = d.unit.as_ref().map(|u| u.code.clone()).unwrap_or_default();
                        client.confirm_validation(pb::ConfirmValidationRequest { dispense_id: id.clone(), booth_scan }).await?;
                    }
                    Ok(pb::DispenseStage::AwaitingAdministration) => {
                        tokio::time::sleep(Duration::from_secs_f64(options.nurse_s / speed)).await;
                        client
                            .confirm_administration(pb::ConfirmAdministrationRequest { dispense_id: id.clone(), nurse_id: format!("N{}", self.booth), ..Default::default() })
                            .await?;
                    }
                    _ => {}
                }
                last = Some(d);
            }
            let last = last.ok_or_else(|| anyhow::anyhow!("dispense {id} sent no progress"))?;
            let rejected = last.stage == pb::DispenseStage::Rejected as i32;
            attempts.push(last);
            if !rejected {
                break;
            }
        }
        Ok(Visit { attempts })
    }

    fn print(&self, d: &pb::Dispense, t0: Instant) {
        let stage = pb::DispenseStage::try_from(d.stage).map_or("?".to_owned(), |s| s.as_str_name().trim_start_matches("DISPENSE_STAGE_").to_lowercase());
        let mut extra = String::new();
        if let Some(u) = &d.unit {
            if matches!(stage.as_str(), "picking" | "awaiting_validation") {
                extra = format!("  slot {} lot {} exp {}", u.slot, u.lot, u.expiry);
            }
        }
        if !d.violations.is_empty() {
            let v: Vec<String> = d.violations.iter().map(|v| format!("{}: {}", v.id, v.message)).collect();
            extra = format!("  {}", v.join("; "));
        } else if !d.detail.is_empty() {
            extra = format!("  {}", d.detail);
        }
        println!(
            "[{:6.1}s] #{:02} {:<14} {:<7} booth {} {} {:<24}{}",
            t0.elapsed().as_secs_f64(),
            self.number,
            self.name,
            self.product,
            self.booth,
            d.dispense_id,
            stage,
            extra
        );
    }
}

fn seconds_between(a: &Option<prost_types::Timestamp>, b: &Option<prost_types::Timestamp>) -> Option<f64> {
    let (a, b) = (a.as_ref()?, b.as_ref()?);
    Some((b.seconds - a.seconds) as f64 + f64::from(b.nanos - a.nanos) / 1e9)
}

fn summarise(visits: &[Visit], speed: f64, wall: Duration) {
    let all: Vec<&pb::Dispense> = visits.iter().flat_map(|v| &v.attempts).collect();
    let count = |stage: pb::DispenseStage| all.iter().filter(|d| d.stage == stage as i32).count();
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &all {
        for v in &d.violations {
            *reasons.entry(v.id.as_str()).or_default() += 1;
        }
    }
    let to_booth: Vec<f64> = all.iter().filter_map(|d| seconds_between(&d.create_time, &d.booth_arrival_time)).collect();
    let mean = if to_booth.is_empty() { 0.0 } else { to_booth.iter().sum::<f64>() / to_booth.len() as f64 };
    let reasons: Vec<String> = reasons.iter().map(|(id, n)| format!("{id} x{n}")).collect();
    println!("\nSummary");
    println!("  patients               {}", visits.len());
    println!("  orders sent            {}", all.len());
    println!("  dispensed              {}", count(pb::DispenseStage::Administered));
    println!("  rejected               {}{}", count(pb::DispenseStage::Rejected), if reasons.is_empty() { String::new() } else { format!("  ({})", reasons.join(", ")) });
    println!("  failed                 {}", count(pb::DispenseStage::Failed));
    println!("  mean order-to-booth    {:.1} s machine time ({:.2} s wall at {speed}x)", mean * speed, mean);
    println!("  demo wall time         {:.1} s", wall.as_secs_f64());
}
