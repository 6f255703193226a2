//! `wssim serve --config FILE`: the controller on the simulator's device models in
//! process, serving its gRPC API until Ctrl-C (what `workstation serve` does on real
//! devices).

use controller::config::Config;
use controller::journal::clock::Clock;
use std::path::Path;

pub async fn run(config: &Path) -> anyhow::Result<()> {
    let config = Config::load(config)?;
    let listen = config.server.listen;
    let (assembled, _simulator) = scenarios::rig::assemble_in_process(config, Clock::system()).await?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("workstation {} on simulated hardware: serving dispense.v1 on {}", assembled.dispatcher.workstation_state(), listener.local_addr()?);
    controller::api::server::serve(assembled.dispatcher, &assembled.config, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
