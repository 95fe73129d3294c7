//! When to order, renew and retry (no I/O; every function takes `now`).
//!
//! Renewal: when a third of the certificate's own lifetime is left (as
//! upstream's acmetool does), so a 90-day certificate renews at day 60, a
//! 6-day one after 4 days: dates come from the certificate, never a fixed
//! period. Retries double from `acme_retry_min` up to a day; a rate-limit
//! answer (RFC 8555 §6.7 `rateLimited`) waits twelve times longer, which
//! keeps well inside Let's Encrypt's limits (5 failed validations per name
//! per hour, 5 duplicate certificates per week) with the default 10 minutes.

/// No order before this: one made with a wrong clock fails, or yields a
/// certificate judged not yet valid.
pub use crate::clock::CLOCK_FLOOR;

/// Longest wait between two attempts.
pub const MAX_BACKOFF: u64 = 86_400;

/// Unix second at which a certificate valid `[not_before, not_after]` is renewed.
pub fn renew_at(not_before: i64, not_after: i64) -> i64 {
    not_after - (not_after - not_before).max(0) / 3
}

/// How a failed order failed (decides the wait before the next one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Network, server error, bad answer: plain backoff.
    Transient,
    /// The CA could not validate a challenge: backoff, and `auto` switches
    /// to the other challenge type.
    Validation,
    /// `urn:ietf:params:acme:error:rateLimited`.
    RateLimited,
}

/// Seconds to wait after the `failures`-th failure in a row (1-based).
pub fn backoff(retry_min: u64, failures: u32, kind: FailureKind) -> u64 {
    let base = retry_min
        .max(1)
        .saturating_mul(1u64 << failures.saturating_sub(1).min(20));
    let d = match kind {
        FailureKind::RateLimited => base.saturating_mul(12),
        _ => base,
    };
    d.min(MAX_BACKOFF)
}

/// Classify an ACME error from its text: the library reports an HTTP error
/// answer as its status and the problem document (RFC 8555 §6.7).
pub fn classify(error_text: &str) -> FailureKind {
    if error_text.contains("error:rateLimited") || error_text.contains("status: 429") {
        FailureKind::RateLimited
    } else {
        FailureKind::Transient
    }
}

/// True for RFC 8555 §6.5 `badNonce`: the request is simply sent again.
pub fn is_bad_nonce(error_text: &str) -> bool {
    error_text.contains("error:badNonce")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_with_a_third_left() {
        let day = 86_400;
        assert_eq!(renew_at(0, 90 * day), 60 * day);
        assert_eq!(renew_at(100, 100 + 6 * day), 100 + 4 * day);
        assert_eq!(renew_at(10, 5), 5);
    }

    #[test]
    fn backoff_doubles_caps_and_rate_limits_wait_longer() {
        use FailureKind::*;
        assert_eq!(backoff(600, 1, Transient), 600);
        assert_eq!(backoff(600, 2, Validation), 1200);
        assert_eq!(backoff(600, 1, RateLimited), 7200);
        assert_eq!(backoff(600, 30, Transient), MAX_BACKOFF);
        assert_eq!(backoff(0, 1, Transient), 1);
        // Five failed validations take more than an hour with the default.
        let total: u64 = (1..=4).map(|n| backoff(600, n, Validation)).sum();
        assert!(total > 3600);
    }

    #[test]
    fn problem_types() {
        assert!(is_bad_nonce(
            r#"non 2xx http status: 400 "{\"type\":\"urn:ietf:params:acme:error:badNonce\"}""#
        ));
        assert_eq!(
            classify(
                r#"non 2xx http status: 429 "{\"type\":\"urn:ietf:params:acme:error:rateLimited\"}""#
            ),
            FailureKind::RateLimited
        );
        assert_eq!(
            classify("io error: connection refused"),
            FailureKind::Transient
        );
    }
}
