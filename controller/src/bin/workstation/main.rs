//! `workstation`: the controller daemon (`serve`), the newcomer's demo (`demo`) and
//! the label decoder for image files (`decode`).

use clap::{Parser, Subcommand};
use controller::config::Config;
use controller::daemon::{assemble, serve};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "workstation", about = "Vaccine dispensing workstation controller", version)]
struct Cli {
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
    /// Start the workstation on simulated hardware and send it a stream of patients
    /// through the gRPC API, with progress and a summary.
    Demo {
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
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(controller::logbook::Tee)
        .init();
    let cli = Cli::parse();
    // Decoding files needs no runtime.
    if let Command::Decode { images, json } = &cli.command {
        return if controller::decode::run(images, *json) { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config } => {
            let config = Config::load(&config)?;
            let listen = config.server.listen;
            let assembled = assemble(config).await?;
            let listener = tokio::net::TcpListener::bind(listen).await?;
            eprintln!("workstation {}: serving dispense.v1 on {}", assembled.dispatcher.workstation_state(), listener.local_addr()?);
            serve(assembled.dispatcher, &assembled.config, listener, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
        }
        Command::Demo { config, patients, arrival_every, journal, in_process } => {
            let mut config = Config::load(&config)?;
            // A fresh journal each run, so the demo always starts from the manifest.
            let _temp = match journal {
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
            let options = controller::demo::DemoOptions { patients, over_the_wire: !in_process, arrival_every_s: arrival_every, guardian_s: 4.0, nurse_s: 6.0 };
            controller::demo::run(config, options).await
        }
        Command::Trace { config, unit, patient, fhir, csv } => controller::trace::cli(&Config::load(&config)?, unit, patient, fhir, csv),
        Command::Decode { .. } => Ok(()),
        Command::Token { name, role } => {
            let role: controller::access::Role = toml::Value::String(role.clone())
                .try_into()
                .map_err(|_| anyhow::anyhow!("--role {role:?}: must be clinic, pharmacist, maintenance or observer"))?;
            let token = controller::gate::new_token()?;
            println!("token (give this to {name}; it is not stored anywhere):\n  {token}\n");
            println!("add to the config:\n[[auth.tokens]]\nname = {name:?}\nrole = \"{role}\"\nsha256 = \"{}\"", controller::gate::token_hash(&token));
            Ok(())
        }
    }
}
