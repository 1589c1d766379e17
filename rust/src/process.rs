//! State that belongs to one process.
//!
//! A child made by `fork` gets a copy of the parent's memory but only the
//! thread that forked: a tokio runtime or a semaphore whose permits are held
//! by the parent's threads would hang the child forever. A [`PerProcess`]
//! value is made anew the first time a process asks for it.

use std::sync::atomic::{AtomicPtr, Ordering};

pub struct PerProcess<T: 'static> {
    current: AtomicPtr<Owned<T>>,
}

struct Owned<T> {
    pid: u32,
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
        let pid = std::process::id();
        loop {
            let current = self.current.load(Ordering::Acquire);
            // SAFETY: a non-null pointer here comes from `Box::leak` below and is never freed.
            if let Some(owned) = unsafe { current.as_ref() } {
                if owned.pid == pid {
                    return &owned.value;
                }
            }
            let fresh: *mut Owned<T> = Box::leak(Box::new(Owned { pid, value: make() }));
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
    use super::PerProcess;

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
}
