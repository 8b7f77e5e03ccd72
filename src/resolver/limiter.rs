//! Politeness: spacing the queries to one resolver so it never sees more than its limit.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::lock;

/// Spaces queries to one resolver so it never sees more than its configured rate.
///
/// Turns are spaced evenly; a task that wakes late (a busy machine) would then send closer to the
/// next one than the spacing, so the moments queries actually go out are also kept, and a query
/// waits until the one `per_second` queries before it is a full second old.
#[derive(Debug)]
pub struct RateLimiter {
    /// Minimum gap between two queries; zero when unlimited.
    spacing: Duration,
    /// The limit itself, for the window check.
    per_second: usize,
    /// The earliest moment the next query may go out.
    next: Mutex<Instant>,
    /// When the latest `per_second` queries went out, oldest first.
    sent: Mutex<VecDeque<Instant>>,
}

impl RateLimiter {
    /// A limiter for `per_second` queries per second; 0 means unlimited.
    pub fn new(per_second: u32) -> Self {
        let spacing = if per_second == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs(1) / per_second
        };
        RateLimiter {
            spacing,
            per_second: per_second as usize,
            next: Mutex::new(Instant::now()),
            sent: Mutex::new(VecDeque::new()),
        }
    }

    /// Waits for this caller's turn. Turns are handed out in call order.
    pub async fn acquire(&self) {
        if self.spacing.is_zero() {
            return;
        }
        let slot = {
            let mut next = lock(&self.next);
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.spacing;
            slot
        };
        tokio::time::sleep_until(slot).await;
        // The strict bound: no more than `per_second` sends in any one-second window.
        loop {
            let wait_until = {
                let mut sent = lock(&self.sent);
                let now = Instant::now();
                match sent.front() {
                    Some(&oldest)
                        if sent.len() >= self.per_second
                            && now.duration_since(oldest) < Duration::from_secs(1) =>
                    {
                        oldest + Duration::from_secs(1)
                    }
                    _ => {
                        if sent.len() >= self.per_second {
                            sent.pop_front();
                        }
                        sent.push_back(now);
                        return;
                    }
                }
            };
            tokio::time::sleep_until(wait_until).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_spaces_queries() {
        let limiter = RateLimiter::new(4);
        let start = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        // Five turns at 4 per second: the fifth goes out one second after the first.
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn no_more_than_the_limit_in_any_second_even_when_turns_bunch() {
        let limiter = RateLimiter::new(4);
        let mut sent = Vec::new();
        for _ in 0..9 {
            // Turns bunch up when tasks wake late; model the worst case, every turn "now".
            *limiter.next.lock().unwrap() = Instant::now();
            limiter.acquire().await;
            sent.push(Instant::now());
        }
        // Any five consecutive sends span at least a second: never five within one.
        for five in sent.windows(5) {
            assert!(
                five[4].duration_since(five[0]) >= Duration::from_secs(1),
                "{sent:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_rate_never_waits() {
        let limiter = RateLimiter::new(0);
        let start = Instant::now();
        for _ in 0..1000 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
