//! `workstation`: the controller daemon (`serve`), the journal's exports (`trace`),
//! API tokens (`token`) and the label decoder for image files (`decode`). One file
//! per subcommand.

mod decode;
mod serve;
mod token;
mod trace;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "workstation", about = "Vaccine dispensing workstation controller", version)]
struct Cli {
    /// How log lines are written to stderr: text (coloured on a terminal) or json.
    #[arg(long, global = true, value_enum, default_value_t = controller::ops::logbook::LogFormat::Text)]
    log_format: controller::ops::logbook::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller: open the devices named in the config and serve gRPC.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Export from the journal a unit's chain of custody, a patient's dispenses (JSON,
    /// or CSV with --csv), or an administered dose as a FHIR R4 Immunization.
    Trace {
        #[arg(long, default_value = "config/simulated.toml")]
        config: PathBuf,
        #[arg(long, group = "what")]
        unit: Option<String>,
        #[arg(long, group = "what")]
        patient: Option<String>,
        /// A dispense id: its Immunization resource.
        #[arg(long, group = "what")]
        fhir: Option<String>,
        #[arg(long)]
        csv: bool,
    },
    /// Make a new API token: prints the token (give it to the caller) and the
    /// `[[auth.tokens]]` entry (only its hash) to add to the config.
    Token {
        /// Who will hold it: the actor the journal records.
        #[arg(long)]
        name: String,
        /// clinic, pharmacist, maintenance or observer.
        #[arg(long)]
        role: String,
    },
    /// Decode label images through the scan station's pipeline; exits 1 if any file
    /// has no readable code.
    Decode {
        #[arg(required = true)]
        images: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    controller::ops::logbook::init(cli.log_format, "warn");
    let outcome = match cli.command {
        // Decoding files needs no runtime.
        Command::Decode { images, json } => return if decode::run(&images, json) { ExitCode::SUCCESS } else { ExitCode::FAILURE },
        Command::Serve { config } => serve::run(&config),
        Command::Trace { config, unit, patient, fhir, csv } => controller::config::Config::load(&config).map_err(anyhow::Error::from).and_then(|c| trace::run(&c, unit, patient, fhir, csv)),
        Command::Token { name, role } => token::run(&name, &role),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
