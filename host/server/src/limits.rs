//! Request-level limits: the per-key token bucket, the per-account share of the run slots and the
//! calendar-month window of run limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::{Date, Month, OffsetDateTime, Time};
use uuid::Uuid;

/// Per-key token buckets (`rate` tokens a second, at most `burst`). A rate of `0` disables the limiter.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// A limiter of `rate` requests a second with bursts of `burst`.
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; `Err(wait)` when none is left.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        if self.rate <= 0.0 || !self.rate.is_finite() {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            // Forget full buckets so the map stays bounded.
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }
}

/// The month key (`YYYY-MM`, UTC) that run counters are kept under.
pub fn month_key(now: OffsetDateTime) -> String {
    format!("{:04}-{:02}", now.year(), u8::from(now.month()))
}

/// The start of the next calendar month (UTC), when counters reset.
pub fn next_month_start(now: OffsetDateTime) -> OffsetDateTime {
    let (year, month) = match now.month() {
        Month::December => (now.year() + 1, Month::January),
        m => (now.year(), m.next()),
    };
    let date = Date::from_calendar_date(year, month, 1).unwrap_or(now.date());
    date.with_time(Time::MIDNIGHT).assume_utc()
}

/// RFC 3339 text of a time.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn bucket_allows_burst_then_refuses() {
        let limiter = RateLimiter::new(0.001, 3);
        for _ in 0..3 {
            assert!(limiter.check("k").is_ok());
        }
        assert!(limiter.check("k").is_err());
        assert!(limiter.check("other").is_ok());
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let limiter = RateLimiter::new(0.0, 1);
        for _ in 0..100 {
            assert!(limiter.check("k").is_ok());
        }
    }

    #[test]
    fn month_window() {
        let now = datetime!(2026-12-31 23:59 UTC);
        assert_eq!(month_key(now), "2026-12");
        assert_eq!(rfc3339(next_month_start(now)), "2027-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(next_month_start(datetime!(2026-02-10 1:00 UTC))),
            "2026-03-01T00:00:00Z"
        );
    }
}

/// Runs each account has executing, against `[limits] max_concurrent_runs_per_account`.
#[derive(Debug, Clone)]
pub struct AccountSlots {
    limit: usize,
    held: Arc<Mutex<HashMap<Uuid, usize>>>,
}

/// One run's slot of its account; given back on drop.
#[derive(Debug)]
pub struct AccountSlot {
    account_id: Uuid,
    held: Arc<Mutex<HashMap<Uuid, usize>>>,
}

impl AccountSlots {
    /// `limit` runs per account (`0`: unlimited).
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            held: Arc::default(),
        }
    }

    /// A slot for one more run of `account_id`; `Ok(None)` when there is no per-account limit, `Err(limit)`
    /// when the account already has `limit` runs executing.
    pub fn try_acquire(&self, account_id: Uuid) -> Result<Option<AccountSlot>, usize> {
        if self.limit == 0 {
            return Ok(None);
        }
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let n = held.entry(account_id).or_insert(0);
        if *n >= self.limit {
            return Err(self.limit);
        }
        *n += 1;
        Ok(Some(AccountSlot {
            account_id,
            held: self.held.clone(),
        }))
    }
}

impl Drop for AccountSlot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.account_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.account_id);
            }
        }
    }
}
