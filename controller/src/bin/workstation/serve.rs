//! `workstation serve --config FILE`: opens the devices the config names, recovers,
//! and serves the gRPC API until Ctrl-C.

use anyhow::Context;
use controller::assemble::assemble;
use controller::config::Config;
use std::path::Path;

pub fn run(config: &Path) -> anyhow::Result<()> {
    let config = Config::load(config)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listen = config.server.listen;
        let assembled = assemble(config).await?;
        let listener = tokio::net::TcpListener::bind(listen).await?;
        eprintln!("workstation {}: serving dispense.v1 on {}", assembled.dispatcher.workstation_state(), listener.local_addr()?);
        controller::api::server::serve(assembled.dispatcher, &assembled.config, listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })
}
