//! How long to wait before reconnecting: exponential, capped, jittered, so
//! that a fleet of gateways does not reconnect in lockstep after a broker
//! restart.

use std::time::Duration;

/// Exponential backoff from 0.5 s to 30 s with +/-20 % jitter.
#[derive(Debug, Default)]
pub(super) struct Backoff {
    attempt: u32,
}

impl Backoff {
    pub(super) fn reset(&mut self) {
        self.attempt = 0;
    }

    pub(super) fn next_delay(&mut self) -> Duration {
        let base = (0.5 * 2f64.powi(self.attempt.min(6) as i32)).min(30.0);
        self.attempt += 1;
        // Jitter from the clock's nanoseconds: good enough to de-synchronise
        // a fleet, and needs no RNG state.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = 0.8 + 0.4 * (nanos % 1000) as f64 / 1000.0;
        Duration::from_secs_f64(base * jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_resets() {
        let mut b = Backoff::default();
        let first = b.next_delay();
        assert!((0.4..=0.6).contains(&first.as_secs_f64()), "{first:?}");
        let mut last = first;
        for _ in 0..20 {
            last = b.next_delay();
        }
        assert!((24.0..=36.0).contains(&last.as_secs_f64()), "{last:?}");
        b.reset();
        assert!(b.next_delay() < Duration::from_secs(1));
    }
}
