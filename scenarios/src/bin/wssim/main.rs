//! `wssim`: the engineers' tool, one file per subcommand. `hardware` serves the
//! simulated devices on real wires; `serve` runs the controller on the simulator
//! in process; `demo` is the newcomer's clinic day; `run` runs scenario files on a
//! virtual clock, with reports; `hunt` runs random worlds, one per seed, and judges
//! them; `sweep` runs one scenario over a grid of settings for capacity planning.

mod demo;
mod hardware;
mod hunt;
mod progress;
mod run;
mod serve;
mod sweep;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
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
    /// Run the controller on the simulator in process (a config with `[hardware]
    /// kind = "simulated"`) and serve its gRPC API until interrupted.
    Serve {
        #[arg(long, default_value = "config/simulated.toml")]
        config: PathBuf,
    },
    /// Start the workstation on simulated hardware and send it a stream of patients
    /// through the gRPC API, with progress and a summary.
    Demo(demo::Args),
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
    /// Generate and run a random world and clinic day per seed; exits 1 if any seed
    /// failed a check, printing the command that replays it.
    Hunt {
        /// Seeds: `A..B` (both included) or one seed.
        #[arg(long)]
        seeds: String,
        /// Seeds run at once (threads).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// A JSON line per seed and a final summary line (seeds, dispenses, violations, digest).
        #[arg(long)]
        json: bool,
        /// Where failing seeds' shrunk scenarios are written.
        #[arg(long, default_value = ".")]
        keep: PathBuf,
        /// Print the scenario each seed generates instead of running it (to run it
        /// with `wssim run`, or keep it in the library).
        #[arg(long)]
        worlds: bool,
    },
    /// Run one scenario over a grid of settings (booths, arrivals per hour,
    /// ordering, hours) and report the planner's figures per point, with charts.
    Sweep(sweep::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_filter = match cli.command {
        Command::Run { .. } | Command::Hunt { .. } | Command::Sweep(_) => "error",
        Command::Demo(_) | Command::Serve { .. } => "warn",
        Command::Hardware { .. } => "info",
    };
    controller::ops::logbook::init(controller::ops::logbook::LogFormat::Text, default_filter);
    if let Command::Run { files, report, seed } = cli.command {
        return run::run(&files, report.as_deref(), seed);
    }
    if let Command::Hunt { seeds, jobs, json, keep, worlds } = cli.command {
        return if worlds { hunt::print_worlds(&seeds) } else { hunt::run(&seeds, jobs, json, &keep) };
    }
    if let Command::Sweep(args) = cli.command {
        return sweep::run(args);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wssim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Hardware { config, faults } => hardware::run(&config, faults.as_deref()).await,
            Command::Serve { config } => serve::run(&config).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Run { .. } | Command::Hunt { .. } | Command::Sweep(_) => Ok(()),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wssim: {e:#}");
            ExitCode::FAILURE
        }
    }
}
