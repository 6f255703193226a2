//! `wssim`: the engineers' tool. `wssim hardware` serves the simulated
//! workstation's field devices on a pseudo-terminal or Modbus TCP port and the
//! camera as an MJPEG stream, writes the devices file a controller config names,
//! and takes faults from a script and from its HTTP control endpoint. `wssim run`
//! runs scenario files: the whole workstation on a virtual clock, with reports.

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Deserialize;
use simulator::faults::parse_script;
use simulator::wire::{HardwarePlan, HardwareSim};
use simulator::{SimConfig, SimWorkstation};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "wssim", about = "Simulated vaccine dispensing workstation hardware")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the simulated devices on real wires until interrupted.
    Hardware {
        /// The simulator's config (TOML): stock, devices file, timings, exposures.
        #[arg(long, default_value = "config/wssim.toml")]
        config: PathBuf,
        /// A fault script (`at SECONDS FAULT`, `on pick|convey N FAULT` per line).
        #[arg(long)]
        faults: Option<PathBuf>,
    },
    /// Run scenario files on a virtual clock; exits 1 naming every expectation that failed.
    Run {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// A folder for NAME.json and NAME.html per scenario.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Seed to repeat or vary a run (default: each file's own).
        #[arg(long)]
        seed: Option<u64>,
    },
}

/// `wssim hardware`'s config file. Relative paths are relative to it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HardwareFile {
    /// The loading manifest: which unit sits in which slot.
    stock: PathBuf,
    /// Where to write the devices file for the controller.
    devices_out: PathBuf,
    #[serde(default)]
    simulator: SimConfig,
    hardware: HardwarePlan,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = matches!(cli.command, Command::Run { .. });
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| if quiet { "error".into() } else { "info".into() }))
        .with_writer(std::io::stderr)
        .init();
    if let Command::Run { files, report, seed } = cli.command {
        return run_scenarios(&files, report.as_deref(), seed);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wssim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wssim: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `wssim run`: each file in turn with a progress line, a verdict per expectation,
/// and the reports. Exit 0 all passed, 1 an expectation failed, 2 a file could not run.
fn run_scenarios(files: &[PathBuf], report: Option<&Path>, seed: Option<u64>) -> ExitCode {
    use std::io::{IsTerminal, Write};
    let mut failed = 0;
    let mut broken = 0;
    let terminal = std::io::stderr().is_terminal();
    for file in files {
        let name = file.display().to_string();
        let progress = |t: std::time::Duration, done: usize, total: usize| {
            if terminal {
                let filled = done * 30 / total.max(1);
                eprint!("\r{name}: [{}{}] {done}/{total} patients, {:.1} h", "#".repeat(filled), " ".repeat(30 - filled), t.as_secs_f64() / 3600.0);
                let _ = std::io::stderr().flush();
            }
        };
        let outcome = scenarios::run_file(file, seed, &progress);
        if terminal {
            eprintln!();
        }
        let r = match outcome {
            Ok(r) => r,
            Err(e) => {
                eprintln!("wssim: {e:#}");
                broken += 1;
                continue;
            }
        };
        let m = &r.metrics;
        println!(
            "{} {}: {} patients, {} administered, {} rejected, {} failed, {} cancelled; {:.1}/h ({:.1} % of the {:.1}/h bound, {}); p95 order to booth {:.0} s; {:.1} virtual h in {:.1} s",
            if r.passed { "PASS" } else { "FAIL" },
            r.scenario,
            m.patients,
            m.administered,
            m.rejected,
            m.failed,
            m.cancelled,
            m.throughput_per_hour,
            r.bound_fraction * 100.0,
            r.bound.per_hour,
            r.bound.bottleneck,
            m.order_to_booth_s.p95,
            m.virtual_hours,
            m.wall_s
        );
        for c in r.checks.iter().filter(|c| !c.passed) {
            println!("  expectation failed: {}: {}", c.name, c.detail);
        }
        if !r.passed {
            failed += 1;
        }
        if let Some(dir) = report {
            let written = std::fs::create_dir_all(dir).and_then(|()| {
                let base = dir.join(r.scenario.replace(['/', ' '], "-"));
                std::fs::write(base.with_extension("json"), serde_json::to_string_pretty(&r).unwrap_or_default())?;
                std::fs::write(base.with_extension("html"), r.html())?;
                Ok(base)
            });
            match written {
                Ok(base) => println!("  report {0}.html and {0}.json", base.display()),
                Err(e) => {
                    eprintln!("wssim: cannot write the report in {}: {e}", dir.display());
                    broken += 1;
                }
            }
        }
    }
    if broken > 0 {
        ExitCode::from(2)
    } else if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let Command::Hardware { config, faults } = cli.command else { return Ok(()) };
    let text = std::fs::read_to_string(&config).with_context(|| format!("cannot read {}", config.display()))?;
    let file: HardwareFile = toml::from_str(&text).with_context(|| format!("{} is not a valid wssim config", config.display()))?;
    let base = config.parent().unwrap_or(Path::new("."));
    let stock_path = base.join(&file.stock);
    let stock = std::fs::read_to_string(&stock_path).with_context(|| format!("cannot read stock {}", stock_path.display()))?;
    let manifest = hal::manifest::parse(&stock).with_context(|| format!("stock {}", stock_path.display()))?;
    let script = match &faults {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read fault script {}", path.display()))?;
            parse_script(&text).map_err(|e| anyhow::anyhow!("fault script {}: {e}", path.display()))?
        }
        None => Vec::new(),
    };

    let sim = SimWorkstation::new(file.simulator, &manifest);
    let hw = HardwareSim::start(sim, &file.hardware).await.context("starting the device servers")?;
    let devices_out = base.join(&file.devices_out);
    if let Some(dir) = devices_out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&devices_out, hw.wire_config_toml()).with_context(|| format!("cannot write {}", devices_out.display()))?;
    println!("wssim hardware: {} units loaded, running {}x real time", manifest.len(), hw.workstation().config().speed);
    println!("  cold store   {:?}", hw.store_endpoint());
    println!("  conveyor     {:?}", hw.conveyor_endpoint());
    println!("  camera       {}", hw.camera_url());
    if let Some(http) = hw.http_address() {
        println!("  control      curl -d 'door open' http://{http}/fault   (state: GET /state)");
    }
    println!("  devices file {}", devices_out.display());
    if !script.is_empty() {
        println!("  fault script {} faults", script.len());
        hw.run_script(script);
    }
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    println!("wssim: stopped");
    Ok(())
}
