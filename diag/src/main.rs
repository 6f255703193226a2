//! `wsctl`, the maintenance crew's CLI: a gRPC client of the workstation only (no
//! OpenCV, no SQLite), one module per subcommand under `cmd/`.

mod cmd;
mod failure;
mod settings;
mod show;

use clap::{CommandFactory, Parser, Subcommand};
use cmd::Ctx;
use failure::Failure;
use std::process::ExitCode;

const EXIT_CODES: &str = "Exit codes: 0 done; 1 a check failed (selftest); 2 usage; 3 refused (token, role); \
4 not now (not in maintenance mode, interlock open, lock held by another); 5 bad input or not found; \
6 workstation or device unreachable; 7 other.";

#[derive(Parser)]
#[command(name = "wsctl", about = "Diagnostics for the vaccine dispensing workstation", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    connection: settings::Flags,
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Mode, state, faults, interlocks, and each device's identity, firmware, link health and last heartbeat.
    Status(cmd::status::Cmd),
    /// Live state, faults and booths (redrawn in place on a terminal).
    Watch(cmd::watch::Cmd),
    /// Active faults with code, cause and remedy (--past for cleared ones).
    Faults(cmd::faults::List),
    /// Clear a fault (maintenance role; needs --reason; a device's alarm only in maintenance mode under your lease).
    Clear(cmd::faults::Clear),
    /// Take the workstation out of service, or return it.
    #[command(subcommand)]
    Maintenance(cmd::maintenance::Mode),
    /// Home picker and belt (maintenance mode, interlocks closed).
    Home,
    /// Move one axis (maintenance mode, interlocks closed).
    Jog(cmd::maintenance::Jog),
    /// Run each device's check with a progress bar and a pass/fail table (maintenance mode).
    Selftest,
    /// Interlocks and the latest probe readings.
    Sensors,
    /// Recorded temperatures with a chart and the alarm band.
    Temps(cmd::sensors::Temps),
    /// Raw Modbus registers of a field device.
    Registers(cmd::registers::Cmd),
    /// The scan station's camera.
    #[command(subcommand)]
    Camera(cmd::camera::Cmd),
    /// What the store holds, by product and lot; the stock count's discrepancies.
    Stock,
    /// A unit's chain of custody.
    Trace(cmd::stock::Trace),
    /// The journal and the controller's log, for the service desk.
    #[command(subcommand)]
    Logs(cmd::logs::Cmd),
    /// One dispense: stage, unit, violations.
    Dispense(cmd::dispense::Cmd),
    /// Many workstations at once (a targets file of addresses and tokens).
    #[command(subcommand)]
    Fleet(cmd::fleet::Cmd),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

async fn run(cli: Cli) -> failure::Result<()> {
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "wsctl", &mut std::io::stdout());
        return Ok(());
    }
    if let Command::Fleet(fleet) = cli.command {
        return fleet.run(cli.json, cli.connection.timeouts()?).await;
    }
    let (channel, address) = cli.connection.connect().await?;
    let ctx = Ctx { channel, json: cli.json };
    let done = match cli.command {
        Command::Status(c) => c.run(&ctx).await,
        Command::Watch(c) => c.run(&ctx).await,
        Command::Faults(c) => c.run(&ctx).await,
        Command::Clear(c) => c.run(&ctx).await,
        Command::Maintenance(c) => c.run(&ctx).await,
        Command::Home => cmd::maintenance::home(&ctx).await,
        Command::Jog(c) => c.run(&ctx).await,
        Command::Selftest => cmd::maintenance::selftest(&ctx).await,
        Command::Sensors => cmd::sensors::sensors(&ctx).await,
        Command::Temps(c) => c.run(&ctx).await,
        Command::Registers(c) => c.run(&ctx).await,
        Command::Camera(c) => c.run(&ctx).await,
        Command::Stock => cmd::stock::stock(&ctx).await,
        Command::Trace(c) => c.run(&ctx).await,
        Command::Logs(c) => c.run(&ctx).await,
        Command::Dispense(c) => c.run(&ctx).await,
        Command::Completions { .. } | Command::Fleet(_) => Ok(()),
    };
    // A call that timed out or lost the link names where it was going.
    done.map_err(|f| if f.exit == failure::Exit::Unreachable { Failure::new(f.exit, format!("the workstation at {address}: {}", f.message)) } else { f })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Failure::new(failure::Exit::Other, "").exit_code();
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            failure.exit_code()
        }
    }
}
