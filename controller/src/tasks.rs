//! The controller's background tasks under one stop switch, so a scenario run can
//! stop a whole controller at once, as a crash or a power cut would: every task
//! ends at its next await, and the journal stays as it was last written.

use std::future::Future;
use std::sync::Arc;
use tokio::sync::watch;

/// Spawns the controller's tasks; [`Tasks::stop_all`] ends every one of them.
#[derive(Debug, Clone)]
pub struct Tasks {
    stop: Arc<watch::Sender<bool>>,
}

impl Default for Tasks {
    fn default() -> Self {
        Self { stop: Arc::new(watch::channel(false).0) }
    }
}

impl Tasks {
    /// Runs `task` in the background until it ends or the switch is thrown.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut stop = self.stop.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                // The switch first: a task woken by the stop and by something the stop
                // caused (a channel closing as the controller's state is dropped) ends
                // as a crash would end it, without running one more step.
                biased;
                _ = stop.wait_for(|stopped| *stopped) => {}
                () = task => {}
            }
        })
    }

    /// Ends every task at its next await; tasks spawned afterwards end at once.
    pub fn stop_all(&self) {
        self.stop.send_replace(true);
    }

    /// Whether the switch has been thrown.
    pub fn stopped(&self) -> bool {
        *self.stop.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stopping_ends_running_and_later_tasks() {
        let tasks = Tasks::default();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let running = tasks.spawn({
            let tx = tx.clone();
            async move {
                tx.send(1).ok();
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                tx.send(2).ok();
            }
        });
        assert_eq!(rx.recv().await, Some(1));
        tasks.stop_all();
        running.await.expect("ended");
        tasks.spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            tx.send(3).ok();
        })
        .await
        .expect("ended");
        assert_eq!(rx.recv().await, None, "neither the rest of the first task nor the second ran");
    }
}
