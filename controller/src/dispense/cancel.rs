//! The cancel window of a queued dispense, shared by the dispatcher (who asks) and
//! the runner (who closes it when it reserves a unit).

/// Whether a dispense can still be cancelled. The dispatcher asks, the runner
/// closes the window under the same lock the moment it reserves a unit, so a
/// cancel is either honoured before anything is picked or refused.
#[derive(Debug, Default)]
pub struct CancelWindow {
    state: std::sync::Mutex<CancelState>,
    pub requested: tokio::sync::Notify,
}

#[derive(Debug, Default)]
enum CancelState {
    #[default]
    Open,
    Requested(String),
    Closed,
}

impl CancelWindow {
    /// Asks for cancellation; false once the window has closed.
    pub fn request(&self, detail: String) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match *state {
            CancelState::Open => {
                *state = CancelState::Requested(detail);
                self.requested.notify_one();
                true
            }
            CancelState::Requested(_) => true,
            CancelState::Closed => false,
        }
    }

    /// Closes the window, or returns the cancellation asked for.
    pub fn close(&self) -> Option<String> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match std::mem::replace(&mut *state, CancelState::Closed) {
            CancelState::Requested(detail) => Some(detail),
            CancelState::Open | CancelState::Closed => None,
        }
    }
}

