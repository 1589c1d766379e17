//! State that belongs to one process.
//!
//! A child made by `fork` gets a copy of the parent's memory but only the
//! thread that forked: a tokio runtime or a semaphore whose permits are held
//! by the parent's threads would hang the child forever. A [`PerProcess`]
//! value is made anew the first time a process asks for it.

use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// Which process this is. The pid alone is not enough: once a process has
/// exited, a grandchild of it can be given its pid and would take the dead
/// process's threads for its own. So the number of forks this memory has
/// gone through counts too, which no descendant shares with its ancestor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    pub pid: u32,
    forks: u64,
}

static FORKS: AtomicU64 = AtomicU64::new(0);

/// The pid, kept here because `getpid` is a system call each time (glibc
/// stopped caching it), and every storage call asks: three system calls a
/// `store_run`. Set before the fork handler is registered and again by that
/// handler in each child; read only once [`REGISTERED`] says the handler is
/// in place, so a child forked before that asks the kernel. (A child made
/// without running atfork handlers, by a raw `clone`, `syscall(SYS_fork)` or
/// glibc's `_Fork`, would be taken for its parent; `fork`, `os.fork`,
/// `multiprocessing` and `subprocess` with `preexec_fn` all run them, and
/// `vfork`/`posix_spawn` children exec before they could call us.)
#[cfg(unix)]
static PID: AtomicU32 = AtomicU32::new(0);

/// Whether [`count_fork`] is registered in this process.
#[cfg(unix)]
static REGISTERED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Runs in the child, right after `fork`, before any other code of it.
#[cfg(unix)]
extern "C" fn count_fork() {
    // SAFETY: getpid is async-signal-safe, so allowed here.
    PID.store(unsafe { libc::getpid() } as u32, Ordering::Relaxed);
    FORKS.fetch_add(1, Ordering::Relaxed);
}

impl ProcessId {
    pub fn current() -> ProcessId {
        // Registered before anything that depends on it is made, and so
        // before any fork that could copy such a thing. A plain read once
        // registered, as this runs on every call. (Not a `Once`: a fork while
        // another thread ran it would leave the child's copy stuck half-run.
        // Two threads racing here may both register, which only makes a
        // child count its fork twice: counts are only compared for equality.
        // The module registers at import, before any thread of ours exists.)
        #[cfg(unix)]
        let pid = {
            if !REGISTERED.load(Ordering::Acquire) {
                PID.store(std::process::id(), Ordering::Relaxed);
                // SAFETY: the handler only calls getpid and stores atomics,
                // which is allowed in a child between fork and exec.
                let failed = unsafe { libc::pthread_atfork(None, None, Some(count_fork)) };
                assert_eq!(failed, 0, "pthread_atfork failed");
                REGISTERED.store(true, Ordering::Release);
            }
            PID.load(Ordering::Relaxed)
        };
        #[cfg(not(unix))]
        let pid = std::process::id();
        ProcessId { pid, forks: FORKS.load(Ordering::Relaxed) }
    }
}

pub struct PerProcess<T: 'static> {
    current: AtomicPtr<Owned<T>>,
}

struct Owned<T> {
    process: ProcessId,
    value: T,
}

impl<T: Send + Sync + 'static> PerProcess<T> {
    pub const fn new() -> Self {
        PerProcess { current: AtomicPtr::new(std::ptr::null_mut()) }
    }

    /// This process's value, made with `make` on first use. Values are never
    /// freed: one per process that asks, and the one a child inherits cannot
    /// be dropped safely (its threads are gone).
    pub fn get(&self, make: impl Fn() -> T) -> &T {
        self.get_in(ProcessId::current(), make)
    }

    fn get_in(&self, process: ProcessId, make: impl Fn() -> T) -> &T {
        loop {
            let current = self.current.load(Ordering::Acquire);
            // SAFETY: a non-null pointer here comes from `Box::leak` below and is never freed.
            if let Some(owned) = unsafe { current.as_ref() } {
                if owned.process == process {
                    return &owned.value;
                }
            }
            let fresh: *mut Owned<T> = Box::leak(Box::new(Owned { process, value: make() }));
            if self.current.compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                // SAFETY: just published; never freed.
                return unsafe { &(*fresh).value };
            }
            // Another thread was first: use its value. Ours was never shared.
            // SAFETY: `fresh` came from `Box::leak` above and was not published.
            drop(unsafe { Box::from_raw(fresh) });
        }
    }
}

impl<T: Send + Sync + 'static> Default for PerProcess<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::{PerProcess, ProcessId};

    #[test]
    fn one_value_per_process_even_when_threads_race_for_it() {
        static VALUE: PerProcess<Box<u64>> = PerProcess::new();
        let seen: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> =
                (0..8).map(|i| s.spawn(move || &**VALUE.get(|| Box::new(i)) as *const u64 as usize)).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "every thread got the same value");
    }

    #[test]
    fn a_fork_makes_a_new_value_even_where_the_pid_is_the_same() {
        static VALUE: PerProcess<u64> = PerProcess::new();
        let here = ProcessId::current();
        assert_eq!(*VALUE.get_in(here, || 1), 1);
        assert_eq!(*VALUE.get_in(here, || 2), 1, "same process, same value");
        // A descendant that was given this process's pid after it exited.
        let descendant = ProcessId { forks: here.forks + 1, ..here };
        assert_eq!(*VALUE.get_in(descendant, || 3), 3);
    }

    #[test]
    fn a_forked_child_counts_the_fork() {
        let parent = ProcessId::current();
        assert_eq!(parent.pid, std::process::id(), "the kept pid is the real one");
        // SAFETY: the child only reads atomics and the pid, then exits
        // without running any destructor.
        match unsafe { libc::fork() } {
            -1 => panic!("fork failed"),
            0 => {
                let child = ProcessId::current();
                // More than one fork if two test threads both registered.
                let ok = child.forks > parent.forks
                    && child.pid != parent.pid
                    && child.pid == unsafe { libc::getpid() } as u32;
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            pid => {
                let mut status = 0;
                assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
                assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child saw {status}");
                assert_eq!(ProcessId::current(), parent, "the parent is unchanged");
            }
        }
    }
}
