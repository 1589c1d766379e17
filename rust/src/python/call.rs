//! The awaitable every native backend method returns.
//!
//! Each backend method is an `async def` (`relay_store._coroutines`) that
//! calls the native method and awaits the `NativeCall` it returns, at once.
//! Python's coroutine gives the call its coroutine semantics (arguments read
//! when awaited, a warning when never awaited, refusal of re-entry); the
//! `NativeCall` is the iterator under that `await`, with `send`, `throw` and
//! `close`, through which a cancellation reaches the work and aborts it. (A
//! command already sent to Redis may still take effect: aborting stops the
//! waiting, not the server.)
//!
//! Work that needs I/O runs on the tokio runtime. When it finishes, the tokio
//! thread does not touch Python at all: it leaves the result in the call's
//! [`Flight`], queues that flight in the event loop's [`Inbox`] and, if the
//! queue was empty, signals a descriptor the loop watches ([`Wake`]). The
//! loop's reader callback then resolves every finished future in one go, on
//! the loop's own thread. So the I/O thread never waits for the GIL (which a
//! busy event loop may hold for a whole switch interval), completions that
//! finish together cost one wake-up, and no tokio thread can be caught inside
//! the interpreter while it shuts down.
//!
//! Work that never waits (the in-memory backend) runs on the first `send`,
//! on the caller's thread, and finishes there: no tokio, no loop round trip.

use std::future::Future;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyRuntimeError, PyStopIteration, PyValueError};
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;

use crate::error::Error;

/// Turns a finished operation's result into a Python value, on the loop's thread.
pub type Finish = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;
type Work = Pin<Box<dyn Future<Output = Finish> + Send>>;

/// Converts a core result into a [`Finish`] with `convert`, errors into exceptions.
pub fn finish<T: Send + 'static>(
    result: crate::error::Result<T>,
    convert: impl FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
) -> Finish {
    Box::new(move |py| match result {
        Ok(v) => convert(py, v),
        Err(e) => Err(e.into()),
    })
}

enum State {
    /// Runs on the first `send`, on the caller's thread.
    Inline(Finish),
    /// Spawned on tokio at the first `send`.
    Pending(Work),
    Running(Running),
    /// A step is under way (its Python code may let other code run, which
    /// may try to step or close this call too).
    Executing,
    Done,
}

/// What a running call shares with its tokio task and with its loop's inbox.
struct Flight {
    /// The asyncio future the awaiting task waits on. The tokio task never
    /// holds a Python object; the inbox, which the loop holds, shows the
    /// future to Python's collector. So a running loop keeps its waiting
    /// tasks alive (as it does for any task blocked on I/O), and a loop that
    /// was closed and dropped with calls in flight can still be collected.
    future: Mutex<Option<Py<PyAny>>>,
    result: Mutex<Option<Finish>>,
}

impl Flight {
    fn future(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.future.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|f| f.clone_ref(py))
    }
}

struct Running {
    flight: Arc<Flight>,
    shared: Arc<Shared>,
    _task: AbortOnDrop,
}

/// A call that stops running (finished, cancelled, closed or collected)
/// lets go of its future at once, wherever else the flight still lives.
impl Drop for Running {
    fn drop(&mut self) {
        self.shared.in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(&flight_id(&self.flight));
        let future = self.flight.future.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(future);
    }
}

fn flight_id(flight: &Arc<Flight>) -> usize {
    Arc::as_ptr(flight) as usize
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[pyclass(frozen, module = "relay_store._native", name = "NativeCall")]
pub struct NativeCall {
    /// The backend method, for reprs.
    name: &'static str,
    state: Mutex<State>,
}

impl NativeCall {
    pub fn inline(name: &'static str, finish: Finish) -> Self {
        NativeCall { name, state: Mutex::new(State::Inline(finish)) }
    }

    /// `work` runs on tokio; `convert` builds its Python result on the loop's thread.
    pub fn on_tokio<T, F, C>(name: &'static str, work: F, convert: C) -> Self
    where
        T: Send + 'static,
        F: Future<Output = crate::error::Result<T>> + Send + 'static,
        C: FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
    {
        let work: Work = Box::pin(async move { finish(work.await, convert) });
        NativeCall { name, state: Mutex::new(State::Pending(work)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state, taken out for one step (`send`, `throw`, `close`), or the
    /// error Python gives for a coroutine stepped while it runs.
    fn take_for_step(&self) -> PyResult<State> {
        let mut state = self.lock();
        if matches!(*state, State::Executing) {
            return Err(PyValueError::new_err("coroutine already executing"));
        }
        Ok(std::mem::replace(&mut *state, State::Executing))
    }
}

/// Ends a step: a call still marked as executing is done.
struct StepGuard<'a>(&'a NativeCall);

impl Drop for StepGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        if matches!(*state, State::Executing) {
            *state = State::Done;
        }
    }
}

fn stop(value: Py<PyAny>) -> PyErr {
    PyStopIteration::new_err((value,))
}

/// Hands an asyncio future to the task driving this coroutine, the way
/// `asyncio.Future.__await__` does.
fn yield_future<'py>(py: Python<'py>, future: &Py<PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let f = future.bind(py);
    f.setattr(pyo3::intern!(py, "_asyncio_future_blocking"), true)?;
    Ok(f.clone())
}

#[pymethods]
impl NativeCall {
    fn __await__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.send(py, py.None().into_bound(py))
    }

    /// The value sent in is ignored, as asyncio's own future iterator
    /// ignores it: asyncio always sends `None`.
    fn send<'py>(&self, py: Python<'py>, _value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        // The state is taken out and the lock released before any Python
        // code runs: Python may switch threads, and another thread touching
        // this call must not block on the lock while holding the GIL.
        let state = self.take_for_step()?;
        // Whatever way this step ends, the call is done unless it put a
        // state back.
        let _step = StepGuard(self);
        match state {
            State::Inline(finish) => Err(stop(finish(py)?)),
            State::Pending(work) => {
                let (future, shared) = Inbox::future_for_running_loop(py)?;
                let handed = yield_future(py, &future)?;
                let flight = Arc::new(Flight { future: Mutex::new(Some(future)), result: Mutex::new(None) });
                shared.in_flight.lock().unwrap_or_else(|e| e.into_inner()).insert(flight_id(&flight), flight.clone());
                let (task_flight, task_shared) = (flight.clone(), shared.clone());
                // Aborted if the call is dropped (cancelled, closed): what has
                // not been sent yet never is, and nothing waits for a reply.
                let task = AbortOnDrop(super::io_thread().spawn(async move {
                    let finished = work.await;
                    *task_flight.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(finished);
                    task_shared.deliver(task_flight);
                }));
                *self.lock() = State::Running(Running { flight, shared, _task: task });
                Ok(handed)
            }
            State::Running(running) => {
                let finished = running.flight.result.lock().unwrap_or_else(|e| e.into_inner()).take();
                match (finished, running.flight.future(py)) {
                    (Some(finish), _) => {
                        drop(running);
                        Err(stop(finish(py)?))
                    }
                    // Woken before the work finished: keep waiting.
                    (None, Some(future)) => {
                        let handed = yield_future(py, &future)?;
                        *self.lock() = State::Running(running);
                        Ok(handed)
                    }
                    (None, None) => Err(PyRuntimeError::new_err("relay_store call lost its future")),
                }
            }
            State::Done => Err(PyRuntimeError::new_err("cannot reuse an already awaited relay_store call")),
            State::Executing => unreachable!("refused by take_for_step"),
        }
    }

    /// Cancellation (or any exception thrown in) stops the work and re-raises,
    /// with the same argument forms as a Python coroutine's `throw`.
    #[pyo3(signature = (exc, value = None, traceback = None))]
    fn throw(
        &self,
        py: Python<'_>,
        exc: Bound<'_, PyAny>,
        value: Option<Bound<'_, PyAny>>,
        traceback: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let previous = self.take_for_step()?;
        let _step = StepGuard(self);
        drop(previous); // aborts running work, outside the lock
        let value = value.filter(|v| !v.is_none());
        let instance = if exc.is_instance_of::<pyo3::types::PyType>() {
            match value {
                Some(v) if v.is_instance(&exc)? => v,
                Some(v) => exc.call1((v,))?,
                None => exc.call0()?,
            }
        } else {
            exc
        };
        if let Some(tb) = traceback.filter(|t| !t.is_none()) {
            instance.call_method1(pyo3::intern!(py, "with_traceback"), (tb,))?;
        }
        let err = PyErr::from_value(instance);
        if err.is_instance_of::<PyStopIteration>(py) {
            // Escaping as StopIteration would read as a normal return (PEP 479).
            let replaced = PyRuntimeError::new_err("coroutine raised StopIteration");
            replaced.set_cause(py, Some(err));
            return Err(replaced);
        }
        Err(err)
    }

    fn __repr__(&self) -> String {
        format!("<relay_store call {}>", self.name)
    }

    fn close(&self) -> PyResult<()> {
        let previous = self.take_for_step()?;
        let _step = StepGuard(self);
        drop(previous);
        Ok(())
    }
}

/// Finished futures waiting for their event loop, plus the descriptor that
/// wakes the loop.
pub struct Shared {
    /// Every call of this loop that is running, by flight identity.
    in_flight: Mutex<std::collections::HashMap<usize, Arc<Flight>>>,
    queue: Mutex<Vec<Arc<Flight>>>,
    wake: Wake,
}

/// What the I/O thread writes to wake the event loop, and the loop's reader
/// callback reads: an eventfd on Linux (one small system call each way,
/// where a socket pair costs a socket buffer per wake-up; about 2 µs off a
/// call's round trip in A/B runs), a socket pair elsewhere.
enum Wake {
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    EventFd(std::os::fd::OwnedFd),
    Pair { tx: UnixStream, rx: UnixStream },
}

impl Wake {
    fn new() -> std::io::Result<Wake> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::FromRawFd;
            // SAFETY: eventfd returns a new descriptor that nothing else owns, or -1.
            let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
            if fd >= 0 {
                return Ok(Wake::EventFd(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }));
            }
        }
        let (tx, rx) = UnixStream::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        Ok(Wake::Pair { tx, rx })
    }

    /// The descriptor the loop watches.
    fn fd(&self) -> i32 {
        match self {
            Wake::EventFd(fd) => fd.as_raw_fd(),
            Wake::Pair { rx, .. } => rx.as_raw_fd(),
        }
    }

    /// A full counter or socket buffer means a wake-up is pending already.
    fn wake(&self) {
        match self {
            Wake::EventFd(fd) => {
                let one: u64 = 1;
                // SAFETY: writes the 8 bytes of a live u64 to a descriptor we own.
                let _ = unsafe { libc::write(fd.as_raw_fd(), (&raw const one).cast(), 8) };
            }
            Wake::Pair { tx, .. } => {
                let _ = (&*tx).write(&[1]);
            }
        }
    }

    /// Takes every pending wake-up, so the loop sleeps until the next one.
    fn clear(&self) {
        match self {
            Wake::EventFd(fd) => {
                let mut count: u64 = 0;
                // SAFETY: reads at most 8 bytes into a live u64, from a descriptor we own.
                let _ = unsafe { libc::read(fd.as_raw_fd(), (&raw mut count).cast(), 8) };
            }
            Wake::Pair { rx, .. } => {
                let mut buf = [0u8; 256];
                loop {
                    match (&*rx).read(&mut buf) {
                        Ok(n) if n == buf.len() => continue,
                        Ok(_) => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    }
                }
            }
        }
    }
}

impl Shared {
    /// Called on a tokio thread: queues the finished flight, never touching Python.
    fn deliver(&self, flight: Arc<Flight>) {
        let was_empty = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            let was_empty = queue.is_empty();
            queue.push(flight);
            was_empty
        };
        if was_empty {
            self.wake.wake();
        }
    }
}

/// One per event loop, kept as an attribute of the loop. It holds no
/// reference to the loop, so it (and its descriptor) go when the loop goes.
#[pyclass(frozen, module = "relay_store._native", name = "_Inbox")]
pub struct Inbox {
    shared: Arc<Shared>,
}

const LOOP_ATTR: &str = "_relay_store_inbox";

impl Inbox {
    /// A new future of the running loop, and the inbox that will resolve it.
    fn future_for_running_loop(py: Python<'_>) -> PyResult<(Py<PyAny>, Arc<Shared>)> {
        static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let get_loop = GET_RUNNING_LOOP.get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("asyncio")?.getattr("get_running_loop")?.unbind())
        })?;
        let event_loop = get_loop.bind(py).call0()?;
        let shared = match event_loop.getattr(LOOP_ATTR).ok().and_then(|i| i.cast_into::<Inbox>().ok()) {
            Some(inbox) => inbox.get().shared.clone(),
            None => Self::install(py, &event_loop)?,
        };
        let future = event_loop.call_method0(pyo3::intern!(py, "create_future"))?.unbind();
        Ok((future, shared))
    }

    fn install(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<Shared>> {
        let wake = Wake::new().map_err(|e| Error::storage(format!("cannot create wake-up descriptor: {e}")))?;
        let fd = wake.fd();
        let shared = Arc::new(Shared { in_flight: Mutex::default(), queue: Mutex::new(Vec::new()), wake });
        let inbox = Bound::new(py, Inbox { shared: shared.clone() })?;
        // Attribute first: if the loop cannot carry it, no reader is left
        // behind; if the reader cannot be added, the attribute goes again,
        // so the next call fails the same way instead of waiting forever.
        event_loop.setattr(LOOP_ATTR, &inbox)?;
        let drain = inbox.getattr("_drain")?;
        let args = PyTuple::new(py, [fd.into_pyobject(py)?.into_any(), drain])?;
        if let Err(e) = event_loop.call_method1("add_reader", args) {
            let _ = event_loop.delattr(LOOP_ATTR);
            return Err(e);
        }
        Ok(shared)
    }
}

#[pymethods]
impl Inbox {
    /// The futures of the loop's running calls: the loop holds its inbox,
    /// the inbox holds them. A lock held elsewhere means a call is starting
    /// or stopping right now, on a thread that holds the GIL, so no
    /// collection runs meanwhile; skipping is then safe.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Ok(in_flight) = self.shared.in_flight.try_lock() {
            for flight in in_flight.values() {
                if let Ok(future) = flight.future.try_lock() {
                    if let Some(future) = &*future {
                        visit.call(future)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The loop is garbage: its calls will never be resolved.
    fn __clear__(&self) {
        let flights: Vec<Arc<Flight>> =
            self.shared.in_flight.lock().unwrap_or_else(|e| e.into_inner()).drain().map(|(_, f)| f).collect();
        for flight in flights {
            let future = flight.future.lock().unwrap_or_else(|e| e.into_inner()).take();
            drop(future);
        }
    }

    /// The loop's reader callback: resolve every future that finished.
    fn _drain(&self, py: Python<'_>) -> PyResult<()> {
        self.shared.wake.clear();
        let ready = std::mem::take(&mut *self.shared.queue.lock().unwrap_or_else(|e| e.into_inner()));
        // A call that was cancelled or collected meanwhile has no future left.
        for future in ready.iter().filter_map(|flight| flight.future(py)) {
            let f = future.bind(py);
            // A cancelled task has cancelled its future already. One future
            // failing must not leave the others of the batch unresolved.
            let done = f.call_method0(pyo3::intern!(py, "done")).and_then(|d| d.is_truthy());
            if let Ok(false) = done {
                let _ = f.call_method1(pyo3::intern!(py, "set_result"), (py.None(),));
            }
        }
        Ok(())
    }
}
