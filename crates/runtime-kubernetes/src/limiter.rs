//! `read_qps` / `write_qps`: calls spaced evenly, at most `qps` per second.

use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Spaces calls at least `1/qps` apart; unlimited without a rate.
pub(crate) struct Limiter {
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl Limiter {
    /// A limiter for `qps` calls per second (`None`: no limit).
    pub fn new(qps: Option<f64>) -> Self {
        Self {
            interval: qps
                .filter(|q| q.is_finite() && *q > 0.0)
                .map(|q| Duration::from_secs_f64(1.0 / q)),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for this call's slot.
    pub async fn acquire(&self) {
        let Some(iv) = self.interval else { return };
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + iv;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spaces_calls() {
        let l = Limiter::new(Some(20.0));
        let t0 = Instant::now();
        for _ in 0..3 {
            l.acquire().await;
        }
        assert!(t0.elapsed() >= Duration::from_millis(100));
        let u = Limiter::new(None);
        let t1 = Instant::now();
        u.acquire().await;
        assert!(t1.elapsed() < Duration::from_millis(50));
    }
}
