//! `wssim demo`: the newcomer's clinic day, the workstation on simulated hardware
//! serving a stream of patients through its gRPC API, with progress and a summary
//! (`./scripts/demo` runs it).

use controller::config::Config;
use scenarios::demo::DemoOptions;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value = "config/simulated.toml")]
    config: PathBuf,
    #[arg(long, default_value_t = 12)]
    patients: usize,
    /// Machine seconds between patient arrivals.
    #[arg(long, default_value_t = 6.0)]
    arrival_every: f64,
    /// Keep the journal at this path instead of a fresh temporary file.
    #[arg(long)]
    journal: Option<PathBuf>,
    /// Call the simulated devices in process instead of over Modbus and the camera stream.
    #[arg(long)]
    in_process: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut config = Config::load(&args.config)?;
    // A fresh journal each run, so the demo always starts from the manifest.
    let _temp = match args.journal {
        Some(path) => {
            config.journal.path = path;
            None
        }
        None => {
            let dir = tempfile::tempdir()?;
            config.journal.path = dir.path().join("demo-journal.db");
            Some(dir)
        }
    };
    let options = DemoOptions { patients: args.patients, over_the_wire: !args.in_process, arrival_every_s: args.arrival_every, guardian_s: 4.0, nurse_s: 6.0 };
    scenarios::demo::run(config, options).await
}
