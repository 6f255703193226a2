//! Simulated time: every device duration is given in machine seconds and divided by
//! the speed factor, on tokio's clock (so tests may also pause and advance it).

use std::time::Duration;

/// Maps machine seconds onto tokio time. `speed = 10.0` runs the hardware ten times faster.
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    speed: f64,
}

impl SimClock {
    pub fn new(speed: f64) -> Self {
        assert!(speed > 0.0 && speed.is_finite(), "speed factor must be positive, got {speed}");
        Self { speed }
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    pub fn scaled(&self, machine_seconds: f64) -> Duration {
        Duration::from_secs_f64(machine_seconds / self.speed)
    }

    pub async fn sleep(&self, machine_seconds: f64) {
        tokio::time::sleep(self.scaled(machine_seconds)).await;
    }
}
