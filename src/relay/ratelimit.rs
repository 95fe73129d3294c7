//! Per-sender rate limit: GCRA (generic cell rate algorithm) with
//! `max_user_send_per_minute` and a burst of `max_user_send_burst_size`
//! (spec §5.2 step 1: 10 at once, then one per second by default).

use std::collections::HashMap;

pub struct RateLimiter {
    /// Seconds between messages at the sustained rate.
    interval: f64,
    burst: f64,
    /// sender -> theoretical arrival time (seconds).
    tat: HashMap<String, f64>,
}

const MAX_TRACKED: usize = 100_000;

impl RateLimiter {
    pub fn new(per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            interval: 60.0 / per_minute.max(1) as f64,
            burst: burst.max(1) as f64,
            tat: HashMap::new(),
        }
    }

    /// Take one message for `sender` at time `now` (seconds). `Err(wait)`
    /// gives the seconds until the next message would be allowed.
    pub fn check(&mut self, sender: &str, now: f64) -> Result<(), f64> {
        if self.tat.len() >= MAX_TRACKED {
            // Entries whose TAT is in the past carry no state: drop them.
            self.tat.retain(|_, t| *t > now);
        }
        let tat = self.tat.get(sender).copied().unwrap_or(now).max(now);
        let new_tat = tat + self.interval;
        let allowed_at = new_tat - self.interval * self.burst;
        if allowed_at > now {
            return Err(allowed_at - now);
        }
        self.tat.insert(sender.to_string(), new_tat);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let mut r = RateLimiter::new(60, 10);
        for _ in 0..10 {
            assert!(r.check("a", 100.0).is_ok());
        }
        assert!(r.check("a", 100.0).is_err());
        assert!(r.check("b", 100.0).is_ok(), "independent per sender");
        assert!(r.check("a", 100.5).is_err());
        assert!(r.check("a", 101.0).is_ok(), "one more per second");
        assert!(r.check("a", 101.0).is_err());
    }
}
