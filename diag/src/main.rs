//! `wsctl`, the maintenance crew's CLI: a gRPC client of the workstation only (no
//! OpenCV, no SQLite), one file per subcommand. This first cut reads dispenses; the
//! maintenance service (status, faults, jog, self-test…) arrives with issue 9.

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "wsctl", about = "Diagnostics for the vaccine dispensing workstation", version)]
struct Cli {
    /// The workstation's gRPC address.
    #[arg(long, default_value = "http://127.0.0.1:50051", global = true)]
    addr: String,
    /// Bearer token (the workstation stores only its hash); also from WSCTL_TOKEN.
    #[arg(long, env = "WSCTL_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show one dispense: stage, unit, violations, timestamps.
    Dispense(cmd::dispense::Cmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let channel = dispense_proto::client::connect(&cli.addr, cli.token.as_deref(), None)
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach the workstation at {}: {e}", cli.addr))?;
        let client = dispense_proto::v1::dispensing_service_client::DispensingServiceClient::new(channel);
        match cli.command {
            Command::Dispense(cmd) => cmd.run(client).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
