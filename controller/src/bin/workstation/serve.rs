//! `workstation serve --config FILE`: opens the devices the config names, serves
//! the gRPC API (health NOT_SERVING until recovery is done), homes, recovers and
//! resumes what the last run left unfinished, and serves until SIGTERM or SIGINT,
//! on which it stops gracefully (`Dispatcher::stop_gracefully`) and exits 0.

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
        // On SIGTERM or SIGINT: the graceful stop, then the server ends.
        // Set once the stop is done (motions, journal, feed): the server then ends.
        let (stopped_tx, stopped_rx) = tokio::sync::watch::channel(false);
        let stopper = assembled.dispatcher.clone();
        let feed = assembled.feed.clone();
        tokio::spawn(async move {
            stop_signal().await;
            eprintln!("workstation: stopping gracefully (no new orders; motions under way finish)");
            match stopper.stop_gracefully(STOP_DEADLINE).await {
                Ok((left, true)) => eprintln!("workstation: stopped; {left} dispenses left for the next start to resume"),
                Ok((left, false)) => eprintln!("workstation: stopped with motions still running after {STOP_DEADLINE:?}; {left} dispenses left for the next start"),
                Err(e) => eprintln!("workstation: stopped, but the journal did not record it: {e}"),
            }
            // The last events (the stop's own included) go to the broker if it is there.
            if let Some(feed) = feed {
                let state = feed.flush_and_stop(FEED_FLUSH).await;
                let left = stopper.journal().outbox_backlog().map(|b| b.events).unwrap_or(-1);
                eprintln!("workstation: event feed flushed to event {} ({left} left in the outbox for the next start)", state.acknowledged);
            }
            let _ = stopped_tx.send(true);
        });
        // Metrics for the fleet's Prometheus, if asked for; they end with the server.
        let (server_done_tx, server_done_rx) = tokio::sync::watch::channel(false);
        if let Some(address) = assembled.config.telemetry.metrics_listen {
            let metrics = tokio::net::TcpListener::bind(address).await.with_context(|| format!("telemetry.metrics_listen {address}"))?;
            eprintln!("workstation: metrics on http://{}/metrics", metrics.local_addr()?);
            let mut done = server_done_rx.clone();
            tokio::spawn(controller::ops::metrics::serve(assembled.dispatcher.clone(), metrics, async move {
                let _ = done.wait_for(|d| *d).await;
            }));
        }
        let mut server_stop = stopped_rx.clone();
        let server = tokio::spawn(async move {
            let served = controller::api::server::serve(dispatcher, &server_config, listener, async move {
                let _ = server_stop.wait_for(|s| *s).await;
            })
            .await;
            let _ = server_done_tx.send(true);
            served
        });
        // Clients may connect (and watch health) while the workstation homes and recovers.
        if let Err(e) = assembled.start().await {
            server.abort();
            return Err(e);
        }
        eprintln!("workstation {}: recovered", assembled.dispatcher.workstation_state());
        // After the stop, the server closes its connections; a client holding a
        // stream open (a wall screen's watch) does not keep the process alive.
        let mut server = server;
        tokio::select! {
            done = &mut server => done.context("the gRPC server task")?,
            () = async {
                let mut stopped = stopped_rx;
                let _ = stopped.wait_for(|s| *s).await;
                tokio::time::sleep(SERVER_DRAIN).await;
            } => Ok(()),
        }
    })
}

/// How long the event feed gets to publish what the outbox holds at a stop.
const FEED_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// How long open connections get to close after a graceful stop.
const SERVER_DRAIN: std::time::Duration = std::time::Duration::from_secs(3);

/// How long a graceful stop waits for the motions under way (a belt run is seconds).
const STOP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// SIGTERM (systemd, a container runtime) or SIGINT (Ctrl-C).
async fn stop_signal() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
