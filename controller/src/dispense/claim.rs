//! A station lock a resumed dispense claims before any runner starts (H-16): held
//! at once, or — should another resumed dispense hold it already — waited for,
//! never done without.

use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};

#[derive(Debug)]
pub(crate) enum Claim {
    Held(OwnedMutexGuard<()>),
    /// Another resumed dispense holds it: two units claiming one place, which no
    /// consistent journal holds. Waited for by the runner before its first step.
    Busy(Arc<Mutex<()>>),
}

impl Claim {
    pub(crate) fn of(lock: &Arc<Mutex<()>>) -> Self {
        lock.clone().try_lock_owned().map_or_else(|_| Self::Busy(lock.clone()), Self::Held)
    }

    /// The lock itself, once this claim holds it.
    pub(crate) async fn hold(self, dispense: &str) -> OwnedMutexGuard<()> {
        match self {
            Self::Held(guard) => guard,
            Self::Busy(lock) => {
                tracing::warn!(dispense, "resumed: another resumed dispense holds a station this one needs; waiting for it");
                lock.lock_owned().await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Two resumed dispenses claim one gate: the second waits for it and holds it
    /// once the first lets go (it used to run without it).
    #[tokio::test]
    async fn a_claim_on_a_busy_station_waits_for_it() {
        let gate = Arc::new(Mutex::new(()));
        let first = Claim::of(&gate);
        let second = Claim::of(&gate);
        assert!(matches!(first, Claim::Held(_)), "{first:?}");
        assert!(matches!(second, Claim::Busy(_)), "{second:?}");
        let waiting = tokio::spawn(async move { second.hold("D2").await });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished(), "the second claim must wait while the first holds the gate");
        drop(first);
        let held = tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("taken once free").expect("joined");
        assert!(gate.try_lock().is_err(), "the second claim now holds the gate");
        drop(held);
        assert!(gate.try_lock().is_ok());
    }
}
