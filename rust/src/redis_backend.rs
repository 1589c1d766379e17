//! Redis storage in NeMo Relay's key layout (SPEC §2).
//!
//! One [`ConnectionManager`] (a multiplexed connection that reconnects by
//! itself) is shared by every clone of the backend, so concurrent calls are
//! pipelined on one socket. Every call is bounded by `response_timeout`, and a
//! call that fails because the connection dropped is tried once more on the
//! fresh connection: every write here is idempotent (whole-value SET, and a
//! `store_run` script that never indexes an id twice), so a retry is safe.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, ErrorKind, PushInfo, PushKind, RedisError, RedisResult, Script, Value};
use uuid::Uuid;

use futures_util::future::join_all;

use crate::backend::{encode_for_store, of_agent, off_worker, Backend};
use crate::error::{Error, Result};
use crate::model::{
    AccumulatorState, ExecutionPlan, Observations, RunRecord, StabilityAnalysisResult, TrieEnvelope,
};
use crate::run_cache::{RunCache, RunCacheInfo, DEFAULT_RUN_CACHE_BYTES, UNTRACKED};
use crate::trie_json::Pieces;
use crate::wire::{self, Wire};

pub const DEFAULT_KEY_PREFIX: &str = "nemo_relay:";

/// Connection options; the URL is passed separately so it is never stored
/// with its password.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    pub key_prefix: String,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    /// Bytes of run records `list_runs` keeps decoded (see [`RunCache`]);
    /// `0` keeps none.
    pub run_cache_bytes: usize,
    /// Let Redis tell the run cache when a cached run changes (client-side
    /// caching, on a second connection), so unchanged runs are not read
    /// again at all. Needs Redis 6 or later; without it, or on a server that
    /// refuses, every listed run is read and compared as before.
    pub client_tracking: bool,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            run_cache_bytes: DEFAULT_RUN_CACHE_BYTES,
            client_tracking: true,
        }
    }
}

/// The key layout of SPEC §2.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Keys { prefix: prefix.into() }
    }
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    pub fn run(&self, agent_id: &str, run_id: &Uuid) -> String {
        format!("{}runs:{agent_id}:{run_id}", self.prefix)
    }
    /// A run key from an id as the index holds it (text written by any writer).
    pub fn run_by_text(&self, agent_id: &str, run_id: &str) -> String {
        format!("{}runs:{agent_id}:{run_id}", self.prefix)
    }
    pub fn runs_index(&self, agent_id: &str) -> String {
        format!("{}runs_index:{agent_id}", self.prefix)
    }
    pub fn plan(&self, agent_id: &str) -> String {
        format!("{}plan:{agent_id}", self.prefix)
    }
    pub fn trie(&self, agent_id: &str) -> String {
        format!("{}trie:{agent_id}", self.prefix)
    }
    pub fn accumulators(&self, agent_id: &str) -> String {
        format!("{}accumulators:{agent_id}", self.prefix)
    }
    pub fn observations(&self, agent_id: &str) -> String {
        format!("{}acg_observations:{agent_id}", self.prefix)
    }
    pub fn stability(&self, agent_id: &str) -> String {
        format!("{}acg_stability:{agent_id}", self.prefix)
    }
}

/// Record and index entry in one atomic step. The index is written first: if
/// that fails (say the key holds another type), the script stops before the
/// record exists, so there is never a record without its entry. A new run
/// (no record yet) is appended without looking at the list, which stays O(1);
/// only storing an existing run again searches the list (LPOS), so an entry
/// lost while its record stayed is put back, and none is ever added twice.
static STORE_RUN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 or not redis.call('LPOS', KEYS[2], ARGV[2]) then
  redis.call('RPUSH', KEYS[2], ARGV[2])
end
redis.call('SET', KEYS[1], ARGV[1])
return 0
",
    )
});

/// How many listed agents [`RunsRead::agents`] remembers.
const LISTED_AGENTS: usize = 4096;

/// What `list_runs` keeps between calls.
struct RunsRead {
    cache: RunCache,
    /// Agents this backend has listed: runs it stores for them go into the
    /// cache as they are written, so the next list decodes nothing it wrote.
    /// A process that only writes an agent's runs keeps none of them.
    agents: HashSet<String>,
    tracking: Tracking,
}

/// Redis's server-assisted client-side caching, applied to run records.
///
/// A second connection speaks RESP3 with `CLIENT TRACKING ON OPTIN`: every
/// MGET of runs sent on it is preceded by `CLIENT CACHING YES`, and from
/// then on Redis pushes an `invalidate` message on that connection as soon
/// as any client changes one of those keys. `list_runs` sends its LRANGE on
/// the same connection. Redis answers in order, and the connection hands
/// each push to [`RunsRead::heard`] before it reads the next reply, so by
/// the time the LRANGE reply is in, every change made before Redis ran the
/// LRANGE has untracked its entry; a run still tracked is the run Redis
/// holds, and is handed out without reading it. (The index itself is read
/// every time: it is what changes, and its reply is the point in time the
/// list reflects, as it is without tracking.)
///
/// Pushes and replies race only inside this process: an MGET's reply can
/// be handed to its caller while an invalidation that followed it is
/// already being applied. So a read counts the invalidations heard
/// ([`Tracking::heard`]) before it is sent, and marks what it read as
/// tracked only if none arrived before it had stored its result (both
/// under the one lock): otherwise its entries stay untracked and are read
/// again next time. Losing the connection, or a flush, moves to a new
/// epoch, which untracks every entry at once.
struct Tracking {
    /// Entries tracked under another epoch are not trusted. Starts at 1
    /// ([`UNTRACKED`] is 0).
    epoch: u64,
    /// Invalidation messages heard so far.
    heard: u64,
    link: Link,
    /// Tells connection attempts apart, so a late message from an old
    /// connection cannot take down a newer one.
    next_id: u64,
}

/// The tracking connection.
enum Link {
    /// Not used: turned off, the cache is off, the server refused, or the
    /// backend is closed.
    Off,
    /// None yet, or lost; opened again (in the background) from `retry_at`.
    Down { retry_at: Option<Instant> },
    Opening { id: u64 },
    Up { id: u64, conn: MultiplexedConnection },
}

/// What a tracked read saw before it was sent.
#[derive(Clone, Copy)]
struct Seen {
    epoch: u64,
    heard: u64,
}

/// The tracking connection as one `list_runs` uses it.
struct Tracked {
    conn: MultiplexedConnection,
    id: u64,
    /// The epoch when the call began: entries tracked under it are trusted
    /// only if it is still current when they are looked up.
    epoch: u64,
}

/// After a failed attempt to open the tracking connection (the server
/// unreachable or busy for a moment), lists read every run until this has
/// passed. An attempt costs one connection made in the background.
const TRACKING_RETRY: Duration = Duration::from_secs(2);

impl Tracking {
    fn new(on: bool) -> Self {
        Tracking { epoch: 1, heard: 0, link: if on { Link::Down { retry_at: None } } else { Link::Off }, next_id: 1 }
    }

    fn seen(&self) -> Seen {
        Seen { epoch: self.epoch, heard: self.heard }
    }

    /// The epoch to mark what a read brought back with: its own, if nothing
    /// could have changed unheard since it was sent.
    fn mark(&self, seen: Option<Seen>) -> u64 {
        match seen {
            Some(seen) if seen.epoch == self.epoch && seen.heard == self.heard => seen.epoch,
            _ => UNTRACKED,
        }
    }

    /// Nothing tracked so far can be trusted any more.
    fn forget_all(&mut self) {
        self.epoch += 1;
    }
}

impl RunsRead {
    /// A message from the tracking connection `id`, applied while that
    /// connection waits to read its next reply.
    fn heard(&mut self, id: u64, info: &PushInfo) {
        match info.kind {
            PushKind::Invalidate => {
                self.tracking.heard += 1;
                match info.data.first() {
                    Some(Value::Array(keys)) => {
                        for key in keys {
                            match key {
                                Value::BulkString(key) => self.cache.untrack(key),
                                Value::SimpleString(key) => self.cache.untrack(key.as_bytes()),
                                _ => self.tracking.forget_all(),
                            }
                        }
                    }
                    // A flush (sent as null), or anything unforeseen.
                    _ => self.tracking.forget_all(),
                }
            }
            PushKind::Disconnection => {
                self.tracking.forget_all();
                if matches!(self.tracking.link, Link::Up { id: up, .. } | Link::Opening { id: up } if up == id) {
                    self.tracking.link = Link::Down { retry_at: None };
                }
            }
            _ => {}
        }
    }
}

fn lock_runs(runs: &Mutex<RunsRead>) -> std::sync::MutexGuard<'_, RunsRead> {
    runs.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Opens the tracking connection `id` and puts it in place, unless the
/// backend moved on meanwhile. A server that refuses RESP3 or tracking
/// (an old Redis, a proxy, an ACL) is not asked again.
async fn open_tracking(runs: Weak<Mutex<RunsRead>>, client: redis::Client, id: u64, connect: Duration, respond: Duration) {
    let listener = runs.clone();
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(connect))
        .set_response_timeout(Some(respond))
        .set_push_sender(move |info: PushInfo| {
            if let Some(runs) = listener.upgrade() {
                lock_runs(&runs).heard(id, &info);
            }
            Ok::<(), std::convert::Infallible>(())
        });
    let opened = tokio::time::timeout(connect + respond, async {
        let mut conn = client.get_multiplexed_async_connection_with_config(&config).await?;
        redis::cmd("CLIENT").arg("TRACKING").arg("ON").arg("OPTIN").query_async::<()>(&mut conn).await?;
        Ok::<_, RedisError>(conn)
    })
    .await;
    let Some(runs) = runs.upgrade() else { return };
    let mut read = lock_runs(&runs);
    if !matches!(read.tracking.link, Link::Opening { id: opening } if opening == id) {
        return;
    }
    read.tracking.link = match opened {
        Ok(Ok(conn)) => {
            read.tracking.forget_all();
            Link::Up { id, conn }
        }
        Ok(Err(e)) if refused(&e) => Link::Off,
        _ => Link::Down { retry_at: Some(Instant::now() + TRACKING_RETRY) },
    };
}

/// The server answered, and the answer will stay no: it has no RESP3 or no
/// such command, or this user may not run it. (A busy, loading or failing
/// over server says no only for now; that is retried.)
fn refused(e: &RedisError) -> bool {
    match e.kind() {
        ErrorKind::RESP3NotSupported | ErrorKind::Server(redis::ServerErrorKind::NoPerm) => true,
        ErrorKind::Server(redis::ServerErrorKind::ResponseError) => {
            let said = e.detail().unwrap_or_default().to_ascii_lowercase();
            ["unknown command", "unknown subcommand", "unknown option", "syntax error"].iter().any(|no| said.contains(no))
        }
        _ => false,
    }
}

/// The connection a command went out on is gone (a late reply is told
/// apart first: it fails the call rather than being retried).
fn lost(e: &RedisError) -> bool {
    !e.is_timeout()
        && (e.is_connection_dropped() || e.is_io_error() || e.is_connection_refusal() || e.is_unrecoverable_error())
}

/// Redis storage shared across processes; cheap to clone.
#[derive(Clone)]
pub struct RedisBackend {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    /// Opens the tracking connection (RESP3); `None` when tracking is off.
    tracking_client: Option<redis::Client>,
    connect_timeout: Duration,
    keys: Keys,
    url: RedactedUrl,
    response_timeout: Duration,
    closed: AtomicBool,
    /// Runs decoded by earlier `list_runs` calls. Locked once per batch of
    /// records to look them up, and again to add the new ones, never while
    /// decoding; and by the tracking connection for each message it hears
    /// (which holds it weakly, so a dropped backend closes that connection).
    runs: Arc<Mutex<RunsRead>>,
    /// The process that connected: a child made by `fork` shares the socket
    /// but not the threads that drive it.
    process: crate::process::ProcessId,
}

impl RedisBackend {
    /// Connects, bounded by `connect_timeout` whatever the server does.
    pub async fn connect(url: &str, options: RedisOptions) -> Result<Self> {
        let redacted = RedactedUrl::new(url);
        for (name, d) in [("connect_timeout", options.connect_timeout), ("response_timeout", options.response_timeout)] {
            if d.is_zero() {
                return Err(Error::config(format!("{name} must be positive")));
            }
        }
        install_tls_provider();
        let client = redis::Client::open(url)
            .map_err(|e| Error::config(format!("invalid Redis URL {}: {}", redacted.shown, redacted.scrub(&e.to_string()))))?;
        let track = options.client_tracking && options.run_cache_bytes > 0;
        let tracking_client = if track {
            let info = client.get_connection_info().clone();
            let resp3 = info.redis_settings().clone().set_protocol(redis::ProtocolVersion::RESP3);
            Some(
                redis::Client::open(info.set_redis_settings(resp3))
                    .map_err(|e| Error::config(format!("invalid Redis URL {}: {}", redacted.shown, redacted.scrub(&e.to_string()))))?,
            )
        } else {
            None
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.response_timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(500));
        let conn = match tokio::time::timeout(options.connect_timeout, ConnectionManager::new_with_config(client, config))
            .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                return Err(Error::storage(format!(
                    "cannot connect to {}: {}",
                    redacted.shown,
                    redacted.scrub(&e.to_string())
                )))
            }
            Err(_) => {
                return Err(Error::storage(format!(
                    "cannot connect to {}: no answer within {:?}",
                    redacted.shown, options.connect_timeout
                )))
            }
        };
        Ok(RedisBackend {
            inner: Arc::new(Inner {
                conn,
                tracking_client,
                connect_timeout: options.connect_timeout,
                keys: Keys::new(options.key_prefix),
                url: redacted,
                response_timeout: options.response_timeout,
                closed: AtomicBool::new(false),
                runs: Arc::new(Mutex::new(RunsRead {
                    cache: RunCache::new(options.run_cache_bytes),
                    agents: HashSet::new(),
                    tracking: Tracking::new(track),
                })),
                process: crate::process::ProcessId::current(),
            }),
        })
    }

    /// The URL with its password replaced by `***`.
    pub fn url(&self) -> &str {
        &self.inner.url.shown
    }

    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// Runs one Redis operation: retried once on a dropped connection,
    /// bounded by `response_timeout`, errors scrubbed. (Callers check
    /// `ensure_open` once per operation, not here per command, so an
    /// operation under way when `close` is called still finishes.)
    async fn exec<T, F, Fut>(&self, op: &str, key: &str, mut attempt: F) -> Result<T>
    where
        F: FnMut(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let limit = self.inner.response_timeout;
        let work = async {
            match attempt(self.inner.conn.clone()).await {
                Err(e) if e.is_connection_dropped() || e.is_io_error() || e.is_connection_refusal() => {
                    attempt(self.inner.conn.clone()).await
                }
                other => other,
            }
        };
        match tokio::time::timeout(limit, work).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.failed(op, key, &e)),
            Err(_) => Err(self.no_answer(op, key)),
        }
    }

    fn failed(&self, op: &str, key: &str, e: &RedisError) -> Error {
        Error::storage(format!(
            "Redis {op} of {key:?} on {} failed: {}",
            self.inner.url.shown,
            self.inner.url.scrub(&e.to_string())
        ))
    }

    fn no_answer(&self, op: &str, key: &str) -> Error {
        Error::storage(format!(
            "Redis {op} of {key:?} on {} got no answer within {:?}",
            self.inner.url.shown, self.inner.response_timeout
        ))
    }

    /// The tracking connection, if it is up. When it is down and due to be
    /// opened, opening starts in the background and this call goes without:
    /// no call ever waits for it.
    fn tracked(&self) -> Option<Tracked> {
        let mut read = self.runs_read();
        let epoch = read.tracking.epoch;
        match &read.tracking.link {
            Link::Up { id, conn } => Some(Tracked { conn: conn.clone(), id: *id, epoch }),
            Link::Down { retry_at } if retry_at.is_none_or(|at| Instant::now() >= at) => {
                let client = self.inner.tracking_client.clone()?;
                let id = read.tracking.next_id;
                read.tracking.next_id += 1;
                read.tracking.link = Link::Opening { id };
                drop(read);
                let runs = Arc::downgrade(&self.inner.runs);
                tokio::spawn(open_tracking(runs, client, id, self.inner.connect_timeout, self.inner.response_timeout));
                None
            }
            _ => None,
        }
    }

    /// Runs a command on the tracking connection. `Ok(None)`: that
    /// connection is gone (it is opened again later), and the caller reads
    /// untracked instead, as `exec` would retry on a fresh connection. A
    /// connection that does not answer in time is given up too (it may be
    /// silently dead, and the next call should not wait on it again), but
    /// the call fails as any call does that gets no answer within
    /// `response_timeout`, rather than taking that long once more.
    async fn exec_tracked<T, Fut>(&self, via: &Tracked, op: &str, key: &str, attempt: Fut) -> Result<Option<T>>
    where
        Fut: Future<Output = RedisResult<T>>,
    {
        match tokio::time::timeout(self.inner.response_timeout, attempt).await {
            Ok(Ok(v)) => Ok(Some(v)),
            Ok(Err(e)) if e.is_timeout() => {
                self.give_up_tracking(via);
                Err(self.no_answer(op, key))
            }
            Ok(Err(e)) if lost(&e) => {
                self.give_up_tracking(via);
                Ok(None)
            }
            Ok(Err(e)) => Err(self.failed(op, key, &e)),
            Err(_) => {
                self.give_up_tracking(via);
                Err(self.no_answer(op, key))
            }
        }
    }

    /// Stops using the tracking connection `via` (calls still holding it
    /// finish on it, but what they read is not tracked: its epoch is over),
    /// and opens another on the next list.
    fn give_up_tracking(&self, via: &Tracked) {
        let mut read = self.runs_read();
        read.tracking.forget_all();
        if matches!(read.tracking.link, Link::Up { id, .. } if id == via.id) {
            read.tracking.link = Link::Down { retry_at: None };
        }
    }

    async fn set_value<T: Wire>(&self, key: String, what: impl FnOnce() -> String, value: &T) -> Result<()> {
        let json = encode_for_store(what, value)?;
        self.set_bytes(key, Pieces(vec![json])).await
    }

    /// The command is built once (not again on a retry), with room for the
    /// whole value: grown a doubling at a time, a trie's megabytes were
    /// copied over and over on the I/O thread. With chunked halves, that
    /// cut storing a 5 MB trie to 0.85–0.90× (A/B in one process).
    async fn set_bytes(&self, key: String, json: Pieces) -> Result<()> {
        let mut cmd = redis::Cmd::with_capacity(3, "SET".len() + key.len() + json.total_len());
        cmd.arg("SET").arg(&key).arg(json);
        self.exec("SET", &key, |mut c| {
            let cmd = &cmd;
            async move { cmd.query_async::<()>(&mut c).await }
        })
        .await
    }

    async fn get_value<T: Wire + Send + 'static>(&self, key: String, type_name: &'static str) -> Result<Option<Arc<T>>> {
        let raw: Option<Vec<u8>> = self
            .exec("GET", &key, |mut c| {
                let key = &key;
                async move { redis::cmd("GET").arg(key).query_async(&mut c).await }
            })
            .await?;
        match raw {
            Some(bytes) => decode_value::<T>(bytes, type_name, key).await.map(|v| Some(Arc::new(v))),
            None => Ok(None),
        }
    }

    /// One MGET of `keys`, decoded, each record at its key's position
    /// (`None`: missing from Redis, its index entry dangling). Records whose
    /// text is what an earlier call decoded are taken from the run cache.
    /// `offload`: decode on the blocking pool, so the chunks of one list
    /// decode on every core and the I/O thread stays free for other calls.
    async fn fetch_runs(
        &self,
        index: &str,
        keys: &[String],
        offload: bool,
        via: Option<&Tracked>,
    ) -> Result<Vec<Option<Arc<RunRecord>>>> {
        let (values, seen) = self.mget(index, keys, via).await?;
        let mut found = self.cached_runs(keys, values, seen);
        let missing: Vec<(usize, Vec<u8>)> = found
            .iter_mut()
            .enumerate()
            .filter_map(|(at, slot)| match slot {
                Slot::Missing(json) => Some((at, std::mem::take(json))),
                _ => None,
            })
            .collect();
        if !missing.is_empty() {
            let size: usize = missing.iter().map(|(_, json)| json.len()).sum();
            let decoded = if offload || size >= BLOCKING_DECODE_BYTES {
                off_worker(move || decode_runs(missing)).await?
            } else {
                decode_runs(missing)
            };
            let decoded = decoded.map_err(|(at, e)| decode_error("RunRecord", &keys[at], e))?;
            let read = &mut *self.runs_read();
            let mark = read.tracking.mark(seen);
            for (at, json, record) in decoded {
                if read.cache.is_enabled() {
                    read.cache.put(keys[at].clone(), json, record.clone(), mark);
                }
                found[at] = Slot::Ready(record);
            }
        }
        Ok(found
            .into_iter()
            .map(|slot| match slot {
                Slot::Ready(record) => Some(record),
                _ => None,
            })
            .collect())
    }

    /// The values at `keys`, read on the tracking connection when there is
    /// one (asking Redis to track them), with what tracking had heard
    /// before they were asked for; or read untracked.
    #[allow(clippy::type_complexity)]
    async fn mget(
        &self,
        index: &str,
        keys: &[String],
        via: Option<&Tracked>,
    ) -> Result<(Vec<Option<Vec<u8>>>, Option<Seen>)> {
        if let Some(via) = via {
            // The epoch of the connection the read goes out on, which may be
            // gone by the time it is answered: marked with the current one
            // instead, its entries could outlive the only connection Redis
            // would have told of a change.
            let seen = Seen { epoch: via.epoch, ..self.runs_read().tracking.seen() };
            let mut conn = via.conn.clone();
            let mut pipe = redis::pipe();
            pipe.cmd("CLIENT").arg("CACHING").arg("YES").ignore().cmd("MGET").arg(keys);
            let sent = pipe.query_async::<(Vec<Option<Vec<u8>>>,)>(&mut conn);
            if let Some((values,)) = self.exec_tracked(via, "MGET", index, sent).await? {
                return Ok((values, Some(seen)));
            }
        }
        let values = self
            .exec("MGET", index, |mut c| async move { redis::cmd("MGET").arg(keys).query_async(&mut c).await })
            .await?;
        Ok((values, None))
    }

    /// Each value an MGET returned: absent, already decoded (the cache held
    /// a record decoded from the very same bytes), or still to decode.
    fn cached_runs(&self, keys: &[String], values: Vec<Option<Vec<u8>>>, seen: Option<Seen>) -> Vec<Slot> {
        let read = &mut *self.runs_read();
        let enabled = read.cache.is_enabled();
        let mark = read.tracking.mark(seen);
        keys.iter()
            .zip(values)
            .map(|(key, value)| match value {
                None => Slot::Absent,
                Some(json) => match enabled.then(|| read.cache.get(key, &json, mark)).flatten() {
                    Some(record) => Slot::Ready(record),
                    None => Slot::Missing(json),
                },
            })
            .collect()
    }

    /// Checked once when an operation starts: an operation already under way
    /// when `close` is called finishes normally.
    fn ensure_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(Error::storage("backend is closed"))
        } else if self.inner.process != crate::process::ProcessId::current() {
            Err(Error::storage(format!(
                "this backend was connected in process {} and cannot be used after a fork: connect again in this process",
                self.inner.process.pid
            )))
        } else {
            Ok(())
        }
    }

    /// The run cache and the agents listed. A panic elsewhere while it was
    /// held cannot leave it inconsistent (every cached entry is checked
    /// against the text Redis returns), so a poisoned lock is used as is.
    fn runs_read(&self) -> std::sync::MutexGuard<'_, RunsRead> {
        lock_runs(&self.inner.runs)
    }

    /// How the run cache has served `list_runs` so far.
    pub fn run_cache_info(&self) -> RunCacheInfo {
        let read = self.runs_read();
        RunCacheInfo { tracking: matches!(read.tracking.link, Link::Up { .. }), ..read.cache.info() }
    }

    pub fn close_now(&self) {
        self.inner.closed.store(true, Ordering::Release);
        // Closes the tracking connection now rather than with the backend.
        let mut read = self.runs_read();
        read.tracking.link = Link::Off;
        read.tracking.forget_all();
    }
}

/// The pieces go straight into the command as one argument.
impl redis::ToRedisArgs for Pieces {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        use std::io::Write as _;
        let mut arg = out.writer_for_next_arg();
        for piece in &self.0 {
            arg.write_all(piece).expect("writing to memory does not fail");
        }
    }
}

/// rustls needs one process-wide crypto provider for `rediss://`; a host
/// application may already have installed its own, which is then kept.
fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Payloads larger than this are decoded on the blocking pool, so the one
/// I/O worker keeps serving other calls meanwhile.
const BLOCKING_DECODE_BYTES: usize = 128 * 1024;

/// Records fetched per MGET. Redis runs one command at a time, so one MGET of
/// a long index would hold up every other client for as long as it takes
/// (about 0.9 ms per 1,000 runs here); MGETs of 128 sent back to back cost
/// the same round trip and the same total, in slices of about 0.1 ms. A list
/// shorter than `2 * MIN_CHUNK` is one MGET: splitting it costs more than it
/// saves.
const MGET_CHUNK: usize = 128;
const MIN_CHUNK: usize = 16;

/// The ids an index lists, each once, at its first position: another writer
/// may list an id twice, or spell it otherwise (`57E1…` where relay-store and
/// NeMo Relay write `57e1…`; a record stored back then gets a second entry
/// in the canonical spelling). Spellings of one UUID count as one id, read
/// from the canonical spelling's key when that is listed, since that is the
/// record last stored by either; text that is no UUID counts as itself.
fn distinct_ids(listed: &[String]) -> Vec<&str> {
    let canonical = |text: &str| Uuid::parse_str(text).is_ok_and(|u| u.hyphenated().to_string() == text);
    let mut chosen: Vec<&str> = Vec::with_capacity(listed.len());
    let mut at: HashMap<std::result::Result<Uuid, &str>, usize> = HashMap::with_capacity(listed.len());
    for text in listed {
        let id = Uuid::parse_str(text).map_err(|_| text.as_str());
        match at.get(&id) {
            None => {
                at.insert(id, chosen.len());
                chosen.push(text);
            }
            Some(&i) if !canonical(chosen[i]) && canonical(text) => chosen[i] = text,
            Some(_) => {}
        }
    }
    chosen
}

/// What became of one key of an MGET.
enum Slot {
    /// No such record (its index entry dangles).
    Absent,
    Ready(Arc<RunRecord>),
    Missing(Vec<u8>),
}

/// Decodes records, each given with its position among the keys; on
/// failure, the position of the first that does not decode (the caller knows
/// its key). The text comes back beside each record, for the cache.
#[allow(clippy::type_complexity)]
fn decode_runs(
    texts: Vec<(usize, Vec<u8>)>,
) -> std::result::Result<Vec<(usize, Vec<u8>, Arc<RunRecord>)>, (usize, serde_json::Error)> {
    texts
        .into_iter()
        .map(|(at, json)| match wire::from_json::<RunRecord>(&json) {
            Ok(record) => Ok((at, json, Arc::new(record))),
            Err(e) => Err((at, e)),
        })
        .collect()
}

/// Decodes one stored value, off the I/O worker when it is large.
async fn decode_value<T: Wire + Send + 'static>(bytes: Vec<u8>, type_name: &'static str, key: String) -> Result<T> {
    if bytes.len() < BLOCKING_DECODE_BYTES {
        return decode::<T>(&bytes, type_name, &key);
    }
    off_worker(move || decode::<T>(&bytes, type_name, &key)).await?
}

fn decode<T: Wire>(bytes: &[u8], type_name: &str, key: &str) -> Result<T> {
    wire::from_json::<T>(bytes).map_err(|e| decode_error(type_name, key, e))
}

fn decode_error(type_name: &str, key: &str, e: impl std::fmt::Display) -> Error {
    Error::serialization(format!("cannot decode {type_name} at key {key:?}: {e}"))
}

impl Backend for RedisBackend {
    async fn store_run(&self, record: Arc<RunRecord>) -> Result<()> {
        self.ensure_open()?;
        let json = encode_for_store(|| format!("run {}", record.id), &*record)?;
        let key = self.inner.keys.run(&record.agent_id, &record.id);
        let index = self.inner.keys.runs_index(&record.agent_id);
        let id = record.id.to_string();
        self.exec("store_run", &key, |mut c| {
            let (key, index, json, id) = (&key, &index, &json, &id);
            async move {
                STORE_RUN
                    .key(key)
                    .key(index)
                    .arg(json)
                    .arg(id)
                    .invoke_async::<i64>(&mut c)
                    .await
                    .map(|_| ())
            }
        })
        .await?;
        // Redis now holds exactly this text, and it decodes to this record:
        // a later list_runs need not decode it again. (Should another writer
        // change it meanwhile, the text no longer matches and it is decoded.)
        let mut read = self.runs_read();
        if read.cache.is_enabled() && read.agents.contains(&record.agent_id) {
            read.cache.put(key, json, record, UNTRACKED);
        }
        Ok(())
    }

    /// Two round trips whatever the number of runs: LRANGE for the index,
    /// then MGETs for the records it names, all sent back to back so they
    /// share one round trip. (A Lua script could do it in one, but copying
    /// every record into Lua and back cost the server more than the extra
    /// round trip.)
    async fn list_runs(&self, agent_id: &str) -> Result<Vec<Arc<RunRecord>>> {
        self.ensure_open()?;
        {
            let mut read = self.runs_read();
            if read.cache.is_enabled() && !read.agents.contains(agent_id) {
                // Bounded: past this many agents, stores go uncached until
                // each agent is listed again, and nothing else changes.
                if read.agents.len() >= LISTED_AGENTS {
                    read.agents.clear();
                }
                read.agents.insert(agent_id.to_owned());
            }
        }
        let index = self.inner.keys.runs_index(agent_id);
        let mut via = self.tracked();
        let listed = match &via {
            Some(t) => {
                let mut conn = t.conn.clone();
                let mut cmd = redis::cmd("LRANGE");
                cmd.arg(&index).arg(0).arg(-1);
                let sent = cmd.query_async::<Vec<Vec<u8>>>(&mut conn);
                self.exec_tracked(t, "LRANGE", &index, sent).await?
            }
            None => None,
        };
        let listed = match listed {
            Some(listed) => listed,
            None => {
                via = None;
                self.exec("LRANGE", &index, |mut c| {
                    let index = &index;
                    async move { redis::cmd("LRANGE").arg(index).arg(0).arg(-1).query_async::<Vec<Vec<u8>>>(&mut c).await }
                })
                .await?
            }
        };
        let listed = listed
            .into_iter()
            .map(|id| String::from_utf8(id).map_err(|e| decode_error("run id", &index, e)))
            .collect::<Result<Vec<String>>>()?;
        let keys = distinct_ids(&listed).into_iter().map(|id| self.inner.keys.run_by_text(agent_id, id));
        // Runs Redis is tracking for this backend cannot have changed since
        // they were read (see `Tracking`): only the others are read.
        let mut found: Vec<Option<Arc<RunRecord>>> = Vec::with_capacity(listed.len());
        let (mut unread_at, mut unread) = (Vec::new(), Vec::new());
        {
            let read = &mut *self.runs_read();
            let epoch = via.as_ref().filter(|t| t.epoch == read.tracking.epoch).map_or(UNTRACKED, |t| t.epoch);
            for key in keys {
                let record = read.cache.get_tracked(&key, epoch);
                if record.is_none() {
                    unread_at.push(found.len());
                    unread.push(key);
                }
                found.push(record);
            }
        }
        if !unread.is_empty() {
            // Past a few runs, at least two chunks of even size, each decoded
            // on the blocking pool, so both cores decode. (The replies mostly
            // arrive together: redis-rs reads all it can before the chunks'
            // tasks resume.)
            let chunks = if unread.len() < 2 * MIN_CHUNK { 1 } else { unread.len().div_ceil(MGET_CHUNK).max(2) };
            let size = unread.len().div_ceil(chunks);
            let parts =
                join_all(unread.chunks(size).map(|part| self.fetch_runs(&index, part, chunks > 1, via.as_ref()))).await;
            // The first failure in list order, whichever reply came back first.
            let parts = parts.into_iter().collect::<Result<Vec<_>>>()?;
            for (at, record) in unread_at.into_iter().zip(parts.into_iter().flatten()) {
                found[at] = record;
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    async fn store_plan(&self, plan: Arc<ExecutionPlan>) -> Result<()> {
        self.ensure_open()?;
        let key = self.inner.keys.plan(&plan.agent_id);
        self.set_value(key, || of_agent("plan", &plan.agent_id), &*plan).await
    }

    async fn load_plan(&self, agent_id: &str) -> Result<Option<Arc<ExecutionPlan>>> {
        self.ensure_open()?;
        self.get_value(self.inner.keys.plan(agent_id), "ExecutionPlan").await
    }

    async fn store_trie(&self, agent_id: &str, envelope: Arc<TrieEnvelope>) -> Result<()> {
        self.ensure_open()?;
        let key = self.inner.keys.trie(agent_id);
        let what = || of_agent("trie", agent_id);
        match crate::trie_json::encode_parallel(envelope.clone()).await {
            Some(encoded) => {
                let json = encoded.map_err(|e| match e {
                    Error::Serialization(m) => Error::serialization(format!("cannot store {}: {m}", what())),
                    other => other,
                })?;
                self.set_bytes(key, json).await
            }
            None => self.set_value(key, what, &*envelope).await,
        }
    }

    async fn load_trie(&self, agent_id: &str) -> Result<Option<Arc<TrieEnvelope>>> {
        self.ensure_open()?;
        self.get_value(self.inner.keys.trie(agent_id), "TrieEnvelope").await
    }

    async fn store_accumulators(&self, agent_id: &str, state: Arc<AccumulatorState>) -> Result<()> {
        self.ensure_open()?;
        let key = self.inner.keys.accumulators(agent_id);
        self.set_value(key, || of_agent("accumulators", agent_id), &*state).await
    }

    async fn load_accumulators(&self, agent_id: &str) -> Result<Option<Arc<AccumulatorState>>> {
        self.ensure_open()?;
        self.get_value(self.inner.keys.accumulators(agent_id), "AccumulatorState").await
    }

    async fn store_observations(&self, agent_id: &str, observations: Arc<Observations>) -> Result<()> {
        self.ensure_open()?;
        let key = self.inner.keys.observations(agent_id);
        self.set_value(key, || of_agent("observations", agent_id), &*observations).await
    }

    async fn load_observations(&self, agent_id: &str) -> Result<Option<Arc<Observations>>> {
        self.ensure_open()?;
        self.get_value(self.inner.keys.observations(agent_id), "list of PromptIR").await
    }

    async fn store_stability(&self, agent_id: &str, result: Arc<StabilityAnalysisResult>) -> Result<()> {
        self.ensure_open()?;
        let key = self.inner.keys.stability(agent_id);
        self.set_value(key, || of_agent("stability result", agent_id), &*result).await
    }

    async fn load_stability(&self, agent_id: &str) -> Result<Option<Arc<StabilityAnalysisResult>>> {
        self.ensure_open()?;
        self.get_value(self.inner.keys.stability(agent_id), "StabilityAnalysisResult").await
    }

    async fn close(&self) -> Result<()> {
        self.close_now();
        Ok(())
    }
}

/// A connection URL that can be shown: the password (in the userinfo, or a
/// `pass`/`password` query parameter of a unix URL) replaced by `***`, plus
/// what to scrub from messages of the Redis client, which may echo it.
#[derive(Debug, Clone)]
pub struct RedactedUrl {
    pub shown: String,
    secrets: Vec<String>,
}

impl RedactedUrl {
    pub fn new(raw: &str) -> Self {
        let mut secrets = Vec::new();
        let shown = match url::Url::parse(raw) {
            Ok(mut parsed) => {
                if let Some(pw) = parsed.password().filter(|p| !p.is_empty()) {
                    secrets.push(pw.to_owned());
                    if let Ok(decoded) = percent_decode(pw) {
                        secrets.push(decoded);
                    }
                    let _ = parsed.set_password(Some("***"));
                }
                let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
                if pairs.iter().any(|(k, _)| k == "pass" || k == "password") {
                    let mut q = parsed.query_pairs_mut();
                    q.clear();
                    for (k, v) in &pairs {
                        if k == "pass" || k == "password" {
                            secrets.push(v.clone());
                            q.append_pair(k, "***");
                        } else {
                            q.append_pair(k, v);
                        }
                    }
                }
                parsed.to_string().replace("%2A%2A%2A", "***")
            }
            // Unparseable: show nothing of it that could hold a secret.
            Err(_) => match raw.split_once("://") {
                Some((scheme, _)) => format!("{scheme}://<unparseable>"),
                None => "<unparseable URL>".to_owned(),
            },
        };
        if shown.contains("<unparseable") {
            // Whatever sits between "//" and "@" may be credentials.
            if let Some(rest) = raw.split_once("://").map(|(_, r)| r) {
                if let Some((userinfo, _)) = rest.rsplit_once('@') {
                    if let Some((_, pw)) = userinfo.split_once(':') {
                        secrets.push(pw.to_owned());
                    } else {
                        secrets.push(userinfo.to_owned());
                    }
                }
            }
        }
        secrets.retain(|s| !s.is_empty());
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        RedactedUrl { shown, secrets }
    }

    /// Removes every trace of the password from a message.
    pub fn scrub(&self, msg: &str) -> String {
        self.secrets.iter().fold(msg.to_owned(), |m, s| m.replace(s.as_str(), "***"))
    }
}

fn percent_decode(s: &str) -> std::result::Result<String, std::str::Utf8Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    std::str::from_utf8(&out).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_counts_once_however_it_is_spelled() {
        let lower = "0191c0de-0000-7000-8000-00000000000a";
        let upper = "0191C0DE-0000-7000-8000-00000000000A";
        let other = "0191c0de-0000-7000-8000-00000000000b";
        let listed = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // First position kept; the canonical spelling's key read.
        assert_eq!(distinct_ids(&listed(&[upper, other, lower])), [lower, other]);
        assert_eq!(distinct_ids(&listed(&[lower, other, upper, lower])), [lower, other]);
        assert_eq!(distinct_ids(&listed(&[upper, upper])), [upper]);
        // Text that is no UUID is an id of its own, compared as text.
        assert_eq!(distinct_ids(&listed(&["x", "X", "x", other])), ["x", "X", other]);
    }

    #[test]
    fn keys_follow_the_nemo_relay_layout() {
        let k = Keys::new("nemo_relay:");
        let id = Uuid::parse_str("0191c0de-0000-7000-8000-000000000001").unwrap();
        assert_eq!(k.run("a", &id), "nemo_relay:runs:a:0191c0de-0000-7000-8000-000000000001");
        assert_eq!(k.run_by_text("a", "x"), "nemo_relay:runs:a:x");
        assert_eq!(k.runs_index("a"), "nemo_relay:runs_index:a");
        assert_eq!(k.plan("a"), "nemo_relay:plan:a");
        assert_eq!(k.trie("a"), "nemo_relay:trie:a");
        assert_eq!(k.accumulators("a"), "nemo_relay:accumulators:a");
        assert_eq!(k.observations("a"), "nemo_relay:acg_observations:a");
        assert_eq!(k.stability("a"), "nemo_relay:acg_stability:a");
    }

    #[test]
    fn passwords_are_redacted_and_scrubbed() {
        let u = RedactedUrl::new("redis://user:s%40cret@127.0.0.1:6380/2");
        assert_eq!(u.shown, "redis://user:***@127.0.0.1:6380/2");
        assert_eq!(u.scrub("auth failed for s@cret and s%40cret"), "auth failed for *** and ***");
        let u = RedactedUrl::new("redis://:hunter2@localhost");
        assert_eq!(u.shown, "redis://:***@localhost");
        let u = RedactedUrl::new("unix:///tmp/redis.sock?db=1&pass=hunter2");
        assert_eq!(u.shown, "unix:///tmp/redis.sock?db=1&pass=***");
        assert_eq!(u.scrub("x hunter2 y"), "x *** y");
        let u = RedactedUrl::new("redis://user:pa ss@[bad");
        assert!(!u.shown.contains("pa ss"), "{}", u.shown);
        assert_eq!(u.scrub("pa ss"), "***");
        assert_eq!(RedactedUrl::new("redis://localhost:6379").shown, "redis://localhost:6379");
    }
}
