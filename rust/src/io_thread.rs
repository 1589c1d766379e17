//! A thread of its own that runs async work, and stays awake briefly after
//! each piece of it.
//!
//! The Python extension hands every Redis call to one such thread. Waking a
//! thread that sleeps costs a context switch, which on a virtual machine
//! runs to tens of microseconds, and a call used to pay two: the event loop
//! waking this thread to send the command, then the reply waking it again.
//! So for a short window after a task starts or finishes, the thread keeps
//! polling (its tasks, and its sockets with a zero timeout) instead of
//! sleeping, and gives its core to any other thread that wants it meanwhile.
//! A reply that comes back within the window, and a call made soon after the
//! last one, then find it awake: that halves `store_run`'s latency on a
//! local Redis. The price is at most one window of CPU after the last call
//! of a burst; a window of zero turns it off.
//!
//! Scheduling never depends on the spin: tasks are tokio's, and a sleeping
//! thread is woken by tokio as usual.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The default window: longer than a call's round trip to a local Redis
/// plus the time an event loop takes to make the next call, short enough
/// that an idle process costs nothing noticeable.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(200);

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
}

impl Activity {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.last.store(self.now_ns(), Ordering::Relaxed);
        if self.asleep.swap(false, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    fn recent(&self) -> bool {
        self.now_ns().saturating_sub(self.last.load(Ordering::Relaxed)) < self.spin_ns
    }
}

impl IoThread {
    /// Starts the thread; `spin` is the window it stays awake after activity.
    pub fn start(name: &str, spin: Duration) -> std::io::Result<IoThread> {
        let activity = Arc::new(Activity {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
            spin_ns: u64::try_from(spin.as_nanos()).unwrap_or(u64::MAX),
            asleep: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            wake: Notify::new(),
        });
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
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
            activity.touch();
            work.await;
            activity.touch();
        })
    }

    #[cfg(test)]
    fn asleep(&self) -> bool {
        self.activity.asleep.load(Ordering::Acquire)
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

/// The thread's main task: spin while there was recent activity, else sleep
/// until a task starts.
async fn drive(activity: Arc<Activity>) {
    while !activity.stop.load(Ordering::Acquire) {
        if activity.recent() {
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

    #[test]
    fn work_runs_there_and_the_thread_sleeps_once_the_window_has_passed() {
        let io = IoThread::start("test-io", Duration::from_millis(300)).unwrap();
        let (tx, rx) = mpsc::channel();
        io.spawn(async move {
            // Timers and the blocking pool work on this runtime.
            tokio::time::sleep(Duration::from_millis(1)).await;
            let name = tokio::task::spawn_blocking(|| 21 * 2).await.unwrap();
            tx.send((std::thread::current().name().map(str::to_owned), name)).unwrap();
        });
        let (name, value) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!((name.as_deref(), value), (Some("test-io"), 42));
        assert!(!io.asleep(), "awake right after a task finished");
        wait_until("the thread sleeps", || io.asleep());
        // A new task wakes it, and it stays awake for the window.
        let (tx, rx) = mpsc::channel();
        io.spawn(async move { tx.send(()).unwrap() });
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(!io.asleep());
        wait_until("the thread sleeps again", || io.asleep());
    }

    #[test]
    fn a_zero_window_never_spins_and_still_runs_work() {
        let io = IoThread::start("test-io", Duration::ZERO).unwrap();
        for i in 0..3 {
            let (tx, rx) = mpsc::channel();
            io.spawn(async move { tx.send(i).unwrap() });
            assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), i);
            wait_until("the thread sleeps", || io.asleep());
        }
    }

    #[test]
    fn dropping_it_stops_the_thread_even_while_it_spins() {
        for spin in [Duration::ZERO, Duration::from_secs(60)] {
            let io = IoThread::start("test-io", spin).unwrap();
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
}
