//! Intake bursts: background work gives way while the server is taking in a flood of leads or
//! messages.
//!
//! Forms and messenger webhooks are the product's intake: a customer or a form service waits for
//! the answer, and a slow answer is retried or lost upstream. Lead outreach and read-model batches
//! can wait a few seconds. On a small machine they compete for the same cores and the same
//! database, so under a flood (an advertising campaign sending a thousand quiz answers a second)
//! the intake's answers queue behind them.
//!
//! * The server counts the intake requests it takes (answered 2xx; [`IntakeMeter`]). While more
//!   than `INTAKE_BURST_RATE` are taken per second (over the last second), [`report`] keeps the Redis key
//!   `<prefix>:intake:burst` set, expiring a second after its last refresh.
//! * Background processes watch that key ([`BurstSignal`], one read every 200 ms). While it is
//!   set, the leads worker reads no new jobs and the projectors (the dispatcher too) gather events
//!   for half a second (fewer, larger transactions). Neither waits more than `INTAKE_BURST_MAX_DEFER_SECS`
//!   in one burst: a flood that does not end does not stop the outreach, and one that comes back
//!   within that time continues the previous burst.
//! * Nothing depends on the signal for correctness: without Redis, or with the rate at 0, work runs
//!   as usual.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use tokio_util::sync::CancellationToken;

use crate::infra::redis::Redis;

/// How often the server reports and the background reads the burst flag.
pub const TICK: Duration = Duration::from_millis(200);
/// How long the flag outlives its last refresh.
const FLAG_TTL: Duration = Duration::from_secs(1);

/// The Redis key of the burst flag.
pub fn flag_key(prefix: &str) -> String {
    format!("{prefix}:intake:burst")
}

/// Counts the server's intake requests (form and messenger webhooks).
#[derive(Debug, Default)]
pub struct IntakeMeter {
    requests: AtomicU64,
}

impl IntakeMeter {
    pub fn hit(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn total(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// The intake rate over the last second, from counts taken every [`TICK`].
#[derive(Debug)]
pub struct RateWindow {
    counts: std::collections::VecDeque<u64>,
    slots: usize,
}

impl RateWindow {
    pub fn new(window: Duration, tick: Duration) -> Self {
        let slots = (window.as_millis() / tick.as_millis().max(1)).max(1) as usize;
        RateWindow { counts: std::collections::VecDeque::with_capacity(slots + 1), slots }
    }

    /// Adds the running total seen now; returns the requests per second over the window (0 until
    /// the window has two readings).
    pub fn push(&mut self, total: u64, tick: Duration) -> f64 {
        self.counts.push_back(total);
        while self.counts.len() > self.slots + 1 {
            self.counts.pop_front();
        }
        match (self.counts.front(), self.counts.back()) {
            (Some(first), Some(last)) if self.counts.len() > 1 => {
                let span = tick.as_secs_f64() * (self.counts.len() - 1) as f64;
                last.saturating_sub(*first) as f64 / span
            }
            _ => 0.0,
        }
    }
}

/// Keeps the burst flag set while the intake rate is at or above `rate` per second (0: never).
pub async fn report(meter: Arc<IntakeMeter>, redis: Redis, rate: u32, cancel: CancellationToken) {
    if rate == 0 {
        cancel.cancelled().await;
        return;
    }
    let key = flag_key(redis.prefix());
    let mut window = RateWindow::new(Duration::from_secs(1), TICK);
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut on = false;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {},
        }
        let per_second = window.push(meter.total(), TICK);
        let burst = per_second >= f64::from(rate);
        if burst {
            let mut conn = redis.conn();
            let set: redis::RedisResult<()> = conn.pset_ex(&key, 1u8, FLAG_TTL.as_millis() as u64).await;
            if let Err(e) = set {
                tracing::debug!(error = %e, "cannot raise the intake burst flag");
            }
        }
        if burst != on {
            on = burst;
            metrics::gauge!("aisales_intake_burst").set(if on { 1.0 } else { 0.0 });
            if on {
                tracing::info!(
                    per_second = per_second.round(),
                    threshold = rate,
                    "intake burst: background work gives way"
                );
            } else {
                tracing::info!("intake burst over");
            }
        }
    }
}

/// What a background process knows of the burst flag.
#[derive(Clone, Debug)]
pub struct BurstSignal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    on: AtomicBool,
    bursts: std::sync::Mutex<Bursts>,
    changed: tokio::sync::Notify,
    max_defer: Duration,
}

/// When the current burst began, and when the flag last went down. A burst that comes back within
/// the longest deferral continues the previous one, so floods in pulses cannot hold work back for
/// longer than one deferral in every quiet spell of the same length.
#[derive(Debug, Default)]
struct Bursts {
    since: Option<Instant>,
    down_at: Option<Instant>,
}

impl BurstSignal {
    /// A signal that never reports a burst.
    pub fn off() -> Self {
        Self::new(Duration::ZERO)
    }

    fn new(max_defer: Duration) -> Self {
        BurstSignal {
            inner: Arc::new(Inner {
                on: AtomicBool::new(false),
                bursts: std::sync::Mutex::new(Bursts::default()),
                changed: tokio::sync::Notify::new(),
                max_defer,
            }),
        }
    }

    /// Watches the flag of `redis`'s deployment until `cancel` fires. `max_defer` of zero: never
    /// gives way (and reads nothing).
    pub fn watch(redis: Redis, max_defer: Duration, cancel: CancellationToken) -> Self {
        let signal = Self::new(max_defer);
        if !max_defer.is_zero() {
            tokio::spawn(signal.clone().poll(redis, cancel));
        }
        signal
    }

    async fn poll(self, redis: Redis, cancel: CancellationToken) {
        let key = flag_key(redis.prefix());
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = ticker.tick() => {},
            }
            let mut conn = redis.conn();
            // Redis away: no burst (work goes on as usual).
            let on: bool = conn.exists(&key).await.unwrap_or(false);
            self.set(on);
        }
        self.set(false);
    }

    fn set(&self, on: bool) {
        let was = self.inner.on.swap(on, Ordering::SeqCst);
        if was == on {
            return;
        }
        let mut bursts = self.inner.bursts.lock().unwrap_or_else(|e| e.into_inner());
        if on {
            let continues = bursts.down_at.is_some_and(|down| down.elapsed() < self.inner.max_defer);
            if bursts.since.is_none() || !continues {
                bursts.since = Some(Instant::now());
            }
        } else {
            bursts.down_at = Some(Instant::now());
        }
        drop(bursts);
        metrics::gauge!("aisales_intake_burst_seen").set(if on { 1.0 } else { 0.0 });
        self.inner.changed.notify_waiters();
    }

    /// Time left for background work to give way: `None` when there is no burst, or when the
    /// burst has lasted longer than the longest deferral.
    fn deferral_left(&self) -> Option<Duration> {
        if !self.inner.on.load(Ordering::SeqCst) {
            return None;
        }
        let since = self.inner.bursts.lock().unwrap_or_else(|e| e.into_inner()).since?;
        self.inner.max_defer.checked_sub(since.elapsed()).filter(|left| !left.is_zero())
    }

    /// Whether background work should give way now.
    pub fn is_on(&self) -> bool {
        self.deferral_left().is_some()
    }

    /// Waits while background work should give way (the burst goes on and its deferral is not used
    /// up), or until `cancel`. Returns how long it waited.
    pub async fn wait_out(&self, cancel: &CancellationToken) -> Duration {
        let started = Instant::now();
        while let Some(left) = self.deferral_left() {
            let changed = self.inner.changed.notified();
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = changed => {},
                _ = tokio::time::sleep(left) => {},
            }
        }
        started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_taken_over_the_last_second() {
        let tick = Duration::from_millis(200);
        let mut w = RateWindow::new(Duration::from_secs(1), tick);
        assert_eq!(w.push(0, tick), 0.0);
        // 20 requests per tick = 100 per second.
        let mut total = 0;
        let mut rate = 0.0;
        for _ in 0..10 {
            total += 20;
            rate = w.push(total, tick);
        }
        assert!((rate - 100.0).abs() < 1e-9, "{rate}");
        // The flood stops: after a second the old ticks have left the window.
        for _ in 0..5 {
            rate = w.push(total, tick);
        }
        assert_eq!(rate, 0.0);
    }

    #[tokio::test]
    async fn background_work_waits_for_the_burst_to_end() {
        let signal = BurstSignal::new(Duration::from_secs(30));
        assert!(!signal.is_on());
        signal.set(true);
        assert!(signal.is_on());
        let waiting = {
            let signal = signal.clone();
            tokio::spawn(async move { signal.wait_out(&CancellationToken::new()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "work went on during the burst");
        signal.set(false);
        let waited = tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap();
        assert!(waited >= Duration::from_millis(50));
        assert!(signal.wait_out(&CancellationToken::new()).await < Duration::from_millis(50), "no burst, no wait");
    }

    #[tokio::test]
    async fn a_burst_that_does_not_end_stops_holding_work_back() {
        let signal = BurstSignal::new(Duration::from_millis(100));
        signal.set(true);
        let waited = tokio::time::timeout(Duration::from_secs(5), signal.wait_out(&CancellationToken::new()))
            .await
            .expect("the deferral is bounded");
        assert!(waited >= Duration::from_millis(90), "{waited:?}");
        assert!(!signal.is_on(), "the flag is still up, but its deferral is used up");
    }

    #[tokio::test]
    async fn a_flood_in_pulses_is_one_burst_until_a_quiet_spell_as_long_as_the_deferral() {
        let signal = BurstSignal::new(Duration::from_millis(300));
        signal.set(true);
        tokio::time::sleep(Duration::from_millis(200)).await;
        signal.set(false);
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Back after a short pause: the same burst, with what is left of its deferral.
        signal.set(true);
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(!signal.is_on(), "a pulse got a new deferral");
        // After a quiet spell as long as the deferral, a new burst is held back again.
        signal.set(false);
        tokio::time::sleep(Duration::from_millis(320)).await;
        signal.set(true);
        assert!(signal.is_on());
    }

    #[test]
    fn a_signal_with_no_deferral_never_holds_work_back() {
        let signal = BurstSignal::off();
        signal.set(true);
        assert!(!signal.is_on());
    }
}
