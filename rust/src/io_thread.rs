//! A thread of its own that runs async work, and stays awake briefly after
//! each piece of it.
//!
//! The Python extension hands every Redis call to one such thread. Waking a
//! thread that sleeps costs a context switch, which on a virtual machine
//! runs to tens of microseconds, and a call used to pay two: the event loop
//! waking this thread to send the command, then the reply waking it again.
//! So while a task started or finished within the last `spin` window, the
//! thread keeps polling (its tasks, and its sockets with a zero timeout)
//! instead of sleeping, offering its core to other threads on each turn. A
//! reply that comes back within the window, and a call made soon after the
//! last one, then find it awake: on a local Redis that cuts `store_run`'s
//! latency by a third to a half. The price is CPU: steady traffic keeps the
//! thread spinning, up to a whole core; a window of zero turns it off.
//!
//! Calls that come in a burst (many tasks at once) are better served
//! asleep: picked up one by one as they arrive, each would go to Redis on
//! its own, where a thread woken a little later finds them all and sends
//! them together. So more than [`BURST_STARTS`] tasks starting within
//! [`BURST_WINDOW_NS`] stop the spin until the rate drops again. In a burst,
//! each task also yields once before it starts its work, so that the tasks
//! already queued all hand their commands to the connection before it next
//! writes: with 64 tasks storing runs, half as many writes to Redis and
//! about 8% more stores a second (medians of A/B runs).
//!
//! Scheduling never depends on the spin: tasks are tokio's, and a sleeping
//! thread is woken by tokio as usual.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// The default window: longer than a call's round trip to a local Redis
/// plus the time an event loop takes to make the next call, short enough
/// that an idle process costs nothing noticeable.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(200);

/// More than `BURST_STARTS` tasks starting within `BURST_WINDOW_NS` are a
/// burst (many concurrent calls), and then the thread does not spin: asleep,
/// it lets the calls that arrive meanwhile pile up and sends them to Redis
/// together, which many calls need more than any one call needs a quick
/// start. A few callers taking turns (a call, its reply, the next call) stay
/// well under that rate.
const BURST_STARTS: usize = 4;
const BURST_WINDOW_NS: u64 = 100_000;

/// The longest window a setting may ask for.
pub const MAX_SPIN_US: u64 = 100_000;

/// The window from a setting `name` in whole microseconds: digits only, from
/// 0 to [`MAX_SPIN_US`]; unset or empty means [`DEFAULT_SPIN`].
pub fn spin_setting(name: &str, value: Option<&str>) -> Result<Duration> {
    let Some(text) = value.filter(|t| !t.is_empty()) else { return Ok(DEFAULT_SPIN) };
    let us = Some(text)
        .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|&us| us <= MAX_SPIN_US);
    us.map(Duration::from_micros).ok_or_else(|| {
        Error::config(format!("{name} must be a whole number of microseconds from 0 to {MAX_SPIN_US}, not {text:?}"))
    })
}

/// `last` before any activity: nothing recent.
const NEVER: u64 = u64::MAX;

/// A current-thread tokio runtime driven by a thread of its own. Dropping it
/// stops the thread.
pub struct IoThread {
    handle: Handle,
    activity: Arc<Activity>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Activity {
    epoch: Instant,
    /// When a task last started or finished, in nanoseconds since `epoch`.
    last: AtomicU64,
    spin_ns: u64,
    /// Set while the thread waits on `wake`: only then is a notice needed.
    asleep: AtomicBool,
    stop: AtomicBool,
    wake: Notify,
    /// When the last `BURST_STARTS` tasks started (a ring; written only on
    /// the thread itself), and whether they came in a burst.
    starts: [AtomicU64; BURST_STARTS],
    next_start: AtomicUsize,
    burst: AtomicBool,
    /// Turns of the spin so far, for tests.
    #[cfg(test)]
    spins: AtomicU64,
}

impl Activity {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn started(&self) {
        let now = self.now_ns();
        let slot = self.next_start.load(Ordering::Relaxed);
        self.next_start.store((slot + 1) % BURST_STARTS, Ordering::Relaxed);
        let oldest = self.starts[slot].swap(now, Ordering::Relaxed);
        self.burst.store(oldest != NEVER && now.saturating_sub(oldest) < BURST_WINDOW_NS, Ordering::Relaxed);
        self.touch_at(now);
    }

    fn touch(&self) {
        self.touch_at(self.now_ns());
    }

    fn touch_at(&self, now: u64) {
        if self.spin_ns == 0 {
            return;
        }
        self.last.store(now, Ordering::Relaxed);
        if !self.burst.load(Ordering::Relaxed) && self.asleep.swap(false, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    /// Recent activity, and calls not coming in a burst.
    fn should_spin(&self) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        last != NEVER && self.now_ns().saturating_sub(last) < self.spin_ns && !self.burst.load(Ordering::Relaxed)
    }
}

impl IoThread {
    /// Starts the thread called `name`, whose blocking work runs on threads
    /// called `pool_name`; `spin` is the window it stays awake after activity.
    pub fn start(name: &str, pool_name: &str, spin: Duration) -> std::io::Result<IoThread> {
        let activity = Arc::new(Activity {
            epoch: Instant::now(),
            last: AtomicU64::new(NEVER),
            spin_ns: u64::try_from(spin.as_nanos()).unwrap_or(u64::MAX),
            asleep: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            wake: Notify::new(),
            starts: std::array::from_fn(|_| AtomicU64::new(NEVER)),
            next_start: AtomicUsize::new(0),
            burst: AtomicBool::new(false),
            #[cfg(test)]
            spins: AtomicU64::new(0),
        });
        let runtime =
            tokio::runtime::Builder::new_current_thread().thread_name(pool_name).enable_all().build()?;
        let handle = runtime.handle().clone();
        let driven = activity.clone();
        let thread = std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            runtime.block_on(drive(driven));
            // Blocking jobs still running finish on their own threads.
            runtime.shutdown_background();
        })?;
        Ok(IoThread { handle, activity, thread: Some(thread) })
    }

    /// Runs `work` on the thread; it is aborted if the handle is aborted.
    pub fn spawn<F>(&self, work: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let activity = self.activity.clone();
        self.handle.spawn(async move {
            let running = Running::new(activity);
            // In a burst, yield first (see the module's notes). A call that
            // starts just as a burst ends does not, so it may reach Redis
            // before calls made just before it, as it may through a pool of
            // connections; calls awaited one after another keep their order.
            if running.0.burst.load(Ordering::Relaxed) {
                tokio::task::yield_now().await;
            }
            work.await;
            drop(running);
        })
    }

    #[cfg(test)]
    fn asleep(&self) -> bool {
        self.activity.asleep.load(Ordering::Acquire)
    }

    #[cfg(test)]
    fn spins(&self) -> u64 {
        self.activity.spins.load(Ordering::Relaxed)
    }
}

impl Drop for IoThread {
    fn drop(&mut self) {
        self.activity.stop.store(true, Ordering::Release);
        self.activity.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A task between its start and its end, however it ends (an aborted
/// task is dropped without finishing).
struct Running(Arc<Activity>);

impl Running {
    fn new(activity: Arc<Activity>) -> Self {
        activity.started();
        Running(activity)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.touch();
    }
}

/// The thread's main task: spin while there was recent activity, else sleep
/// until a task starts.
async fn drive(activity: Arc<Activity>) {
    while !activity.stop.load(Ordering::Acquire) {
        if activity.should_spin() {
            #[cfg(test)]
            activity.spins.fetch_add(1, Ordering::Relaxed);
            std::thread::yield_now();
            // Back to the runtime, which runs ready tasks and polls its
            // sockets without blocking before it polls this task again.
            tokio::task::yield_now().await;
        } else {
            activity.asleep.store(true, Ordering::Release);
            activity.wake.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn wait_until(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn start(spin: Duration) -> IoThread {
        IoThread::start("test-io", "test-io-pool", spin).unwrap()
    }

    /// A timer and a blocking job, then the names of the threads they ran on.
    fn timer_and_blocking_job(io: &IoThread, sleep: Duration) -> (Option<String>, Option<String>) {
        let (tx, rx) = mpsc::channel();
        io.spawn(async move {
            tokio::time::sleep(sleep).await;
            let pool = tokio::task::spawn_blocking(|| std::thread::current().name().map(str::to_owned)).await.unwrap();
            tx.send((std::thread::current().name().map(str::to_owned), pool)).unwrap();
        });
        rx.recv_timeout(Duration::from_secs(5)).expect("the work finishes")
    }

    #[test]
    fn work_runs_there_and_the_thread_sleeps_once_the_window_has_passed() {
        let io = start(Duration::from_millis(300));
        let names = timer_and_blocking_job(&io, Duration::from_millis(1));
        assert_eq!(names, (Some("test-io".to_owned()), Some("test-io-pool".to_owned())));
        assert!(!io.asleep(), "awake right after a task finished");
        wait_until("the thread sleeps", || io.asleep());
        assert!(io.spins() > 0);
        // A new task wakes it, and it stays awake for the window.
        let (tx, rx) = mpsc::channel();
        io.spawn(async move { tx.send(()).unwrap() });
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(!io.asleep());
        wait_until("the thread sleeps again", || io.asleep());
    }

    #[test]
    fn timers_and_blocking_jobs_wake_a_sleeping_thread() {
        // No window, and a window that ends long before the timer fires.
        for (spin, sleep) in [(Duration::ZERO, Duration::from_millis(5)), (Duration::from_millis(1), Duration::from_millis(20))]
        {
            let io = start(spin);
            for _ in 0..3 {
                let names = timer_and_blocking_job(&io, sleep);
                assert_eq!(names.0.as_deref(), Some("test-io"));
            }
        }
    }

    #[test]
    fn a_zero_window_never_spins() {
        let io = start(Duration::ZERO);
        for i in 0..20 {
            let (tx, rx) = mpsc::channel();
            io.spawn(async move { tx.send(i).unwrap() });
            assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), i);
        }
        wait_until("the thread sleeps", || io.asleep());
        assert_eq!(io.spins(), 0);
    }

    #[test]
    fn a_new_thread_does_not_spin_before_any_work() {
        let io = start(Duration::from_secs(60));
        wait_until("the thread sleeps", || io.asleep());
        assert_eq!(io.spins(), 0);
    }

    #[test]
    fn many_spawns_from_several_threads_at_uneven_gaps_all_run() {
        // A window shorter than many of the gaps, so the thread keeps going
        // to sleep and being woken, from two threads at once.
        let io = Arc::new(start(Duration::from_micros(20)));
        let done = Arc::new(AtomicU64::new(0));
        std::thread::scope(|s| {
            for seed in 0..2u64 {
                let (io, done) = (io.clone(), done.clone());
                s.spawn(move || {
                    let mut x = seed + 1;
                    for _ in 0..5_000 {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        let done = done.clone();
                        io.spawn(async move {
                            done.fetch_add(1, Ordering::Relaxed);
                        });
                        let gap = x >> 58; // 0 to 63 µs
                        if gap > 40 {
                            std::thread::sleep(Duration::from_micros(gap));
                        }
                    }
                });
            }
        });
        wait_until("every task ran", || done.load(Ordering::Relaxed) == 10_000);
    }

    #[test]
    fn a_burst_of_tasks_stops_the_spin_until_tasks_come_slowly_again() {
        let io = Arc::new(start(Duration::from_secs(60)));
        let (tx, rx) = mpsc::channel();
        let inner = io.clone();
        io.spawn(async move {
            // Spawned on the I/O thread itself, they start back to back.
            for _ in 0..50 {
                let tx = tx.clone();
                inner.spawn(async move { tx.send(()).unwrap() });
            }
        });
        for _ in 0..50 {
            rx.recv_timeout(Duration::from_secs(5)).unwrap();
        }
        wait_until("the thread sleeps, although the window is a minute long", || io.asleep());
        // Calls taking turns, well apart: spinning again.
        for _ in 0..BURST_STARTS + 1 {
            std::thread::sleep(Duration::from_millis(1));
            let (tx, rx) = mpsc::channel();
            io.spawn(async move { tx.send(()).unwrap() });
            rx.recv_timeout(Duration::from_secs(5)).unwrap();
        }
        let spins = io.spins();
        wait_until("the thread spins", || io.spins() > spins + 10);
        assert!(!io.asleep());
    }

    #[test]
    fn dropping_it_stops_the_thread_even_while_it_spins() {
        for spin in [Duration::ZERO, Duration::from_secs(60)] {
            let io = start(spin);
            let (tx, rx) = mpsc::channel();
            io.spawn(async move { tx.send(()).unwrap() });
            rx.recv_timeout(Duration::from_secs(5)).unwrap();
            let (done_tx, done_rx) = mpsc::channel();
            std::thread::spawn(move || {
                drop(io);
                done_tx.send(()).unwrap();
            });
            done_rx.recv_timeout(Duration::from_secs(5)).expect("drop returns once the thread has stopped");
        }
    }

    #[test]
    fn the_setting_takes_whole_microseconds_within_bounds() {
        let read = |v: Option<&str>| spin_setting("SPIN", v);
        assert_eq!(read(None).unwrap(), DEFAULT_SPIN);
        assert_eq!(read(Some("")).unwrap(), DEFAULT_SPIN);
        assert_eq!(read(Some("0")).unwrap(), Duration::ZERO);
        assert_eq!(read(Some("250")).unwrap(), Duration::from_micros(250));
        assert_eq!(read(Some("100000")).unwrap(), Duration::from_millis(100));
        assert_eq!(read(Some("0000200")).unwrap(), Duration::from_micros(200));
        for bad in ["abc", "-1", "+5", " 200", "200 ", "1.5", "100001", "99999999999999999999"] {
            let e = read(Some(bad)).unwrap_err().to_string();
            assert!(e.contains("SPIN must be a whole number of microseconds from 0 to 100000"), "{bad}: {e}");
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }
}
