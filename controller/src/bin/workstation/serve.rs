//! `workstation serve --config FILE`: opens the devices the config names, serves
//! the gRPC API (health NOT_SERVING until recovery is done), homes, recovers and
//! resumes what the last run left unfinished, and serves until Ctrl-C.

use anyhow::Context;
use controller::assemble::prepare;
use controller::config::Config;
use std::path::Path;

pub fn run(config: &Path) -> anyhow::Result<()> {
    let config = Config::load(config)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listen = config.server.listen;
        let assembled = prepare(config).await?;
        let listener = tokio::net::TcpListener::bind(listen).await?;
        eprintln!("workstation {}: serving dispense.v1 on {}", assembled.dispatcher.workstation_state(), listener.local_addr()?);
        let (dispatcher, server_config) = (assembled.dispatcher.clone(), assembled.config.clone());
        let server = tokio::spawn(async move {
            controller::api::server::serve(dispatcher, &server_config, listener, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
        });
        // Clients may connect (and watch health) while the workstation homes and recovers.
        if let Err(e) = assembled.start().await {
            server.abort();
            return Err(e);
        }
        eprintln!("workstation {}: recovered", assembled.dispatcher.workstation_state());
        server.await.context("the gRPC server task")?
    })
}
