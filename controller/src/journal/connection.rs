//! The journal's connections: one SQLite file (WAL, synchronous commits), its one
//! writer behind a mutex and a small pool of readers beside it (WAL lets them read
//! while it writes), its schema brought up to date on opening, and the clock that
//! stamps it. No journal work runs on a runtime worker: see [`off_runtime`]. The
//! tables' operations are in one file per family beside this one.

use crate::journal::clock::Clock;
use crate::journal::error::{JournalError, Result};
use crate::journal::schema;
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Readers beside the writer: the API's long reads (histories, exports, traces) at once.
const READERS: u32 = 4;

#[derive(Debug)]
pub struct Journal {
    conn: Mutex<Connection>,
    /// Read-only connections, each read in one snapshot.
    readers: r2d2::Pool<r2d2_sqlite::SqliteConnectionManager>,
    clock: Clock,
    /// Bumped after every committed hold, so a unit waiting at a booth learns of
    /// its hold at once without asking the database every second.
    pub(crate) holds: tokio::sync::watch::Sender<u64>,
    /// Simulation only: set once a crash point fired (see [`Journal::crash_after`]).
    crashed: Arc<AtomicBool>,
    /// The controller's claim on the journal file (see [`Journal::claim`]).
    claim: Mutex<Option<std::fs::File>>,
    /// This journal's key for [`Journal::patient_ref`].
    patient_key: Vec<u8>,
    /// How long each write took, commit included (the fleet metrics read it).
    write_seconds: prometheus_client::metrics::histogram::Histogram,
    /// Whether events are added to the outbox (see `outbox`).
    pub(crate) outbox_on: AtomicBool,
    /// Set when a write added an event; the write notifies [`Self::outbox_added`] once committed.
    pub(crate) outbox_pending: AtomicBool,
    pub(crate) outbox_added: Arc<tokio::sync::Notify>,
}

impl Journal {
    /// Opens (or creates) the journal; its lines are stamped by the system clock.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_clock(path, Clock::system())
    }

    /// Opens the journal with the clock everything in the controller goes by.
    pub fn open_with_clock(path: &Path, clock: Clock) -> Result<Self> {
        Self::open_with(path, clock, true)
    }

    /// [`Self::open_with_clock`]; `host_fsync = false` only for simulation (see
    /// `[journal] host_fsync`): commits are not waited for on the host's disk.
    pub fn open_with(path: &Path, clock: Clock, host_fsync: bool) -> Result<Self> {
        let conn = Connection::open(path)?;
        // WAL lets readers run beside the writer; FULL makes each commit durable
        // before the hardware command it records is sent.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", if host_fsync { "FULL" } else { "OFF" })?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Room for every statement the journal runs, so none is parsed twice.
        conn.set_prepared_statement_cache_capacity(64);
        schema::bring_up_to_date(&conn)?;
        let patient_key = schema::patient_ref_key(&conn)?;
        let manager = r2d2_sqlite::SqliteConnectionManager::file(path).with_init(|c| {
            c.set_prepared_statement_cache_capacity(64);
            c.execute_batch("PRAGMA query_only = ON; PRAGMA busy_timeout = 5000;")
        });
        // Readers are opened when first needed (none at start: a journal opened only
        // to write pays nothing for them).
        let readers = r2d2::Pool::builder().max_size(READERS).min_idle(Some(0)).build(manager).map_err(|e| JournalError::Corrupt(format!("journal readers: {e}")))?;
        Ok(Self { conn: Mutex::new(conn), readers, clock, holds: tokio::sync::watch::channel(0).0, crashed: Arc::default(), claim: Mutex::default(), patient_key,
            write_seconds: prometheus_client::metrics::histogram::Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 16)),
            outbox_on: AtomicBool::new(false),
            outbox_pending: AtomicBool::new(false),
            outbox_added: Arc::default(),
        })
    }

    /// Claims the journal at `path` for this controller: one controller per journal
    /// (SAFETY H-21). Two would each resume the other's dispenses and move the
    /// machine on their behalf. The claim is an exclusive lock on `<path>.lock`,
    /// which the operating system drops when the process dies however it dies, so a
    /// crash never leaves the journal claimed; readers (`workstation trace`) take no
    /// claim. Refused, naming the journal, while another controller holds it.
    pub fn claim(&self, path: &Path) -> Result<()> {
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock_path = std::path::PathBuf::from(lock_path);
        let lock_name = lock_path.display().to_string();
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(|error| JournalError::Lock { lock: lock_name.clone(), error })?;
        match file.try_lock() {
            Ok(()) => {
                *self.claim.lock().unwrap_or_else(|p| p.into_inner()) = Some(file);
                Ok(())
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(JournalError::InUse { journal: path.display().to_string(), lock: lock_name }),
            Err(std::fs::TryLockError::Error(error)) => Err(JournalError::Lock { lock: lock_name, error }),
        }
    }

    /// Gives the claim up: simulation only, where a controller "dies" inside a
    /// process that lives on (a real one's claim goes with its process).
    pub fn give_up_claim(&self) {
        self.claim.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Simulation only: a crash point between two journal writes. The next
    /// `commits` commits go through; every one after is rolled back, as if the
    /// process had died right there, and `fired` is notified once. The controller
    /// then behaves as a dead one would — nothing it decides after is kept — until
    /// the simulation stops it and starts a new one on the file.
    pub fn crash_after(&self, commits: u64) -> Arc<tokio::sync::Notify> {
        let fired = Arc::new(tokio::sync::Notify::new());
        let (signal, crashed) = (fired.clone(), self.crashed.clone());
        let mut seen = 0_u64;
        self.conn().commit_hook(Some(move || {
            seen += 1;
            if seen <= commits {
                return false;
            }
            if !crashed.swap(true, Ordering::SeqCst) {
                signal.notify_one();
            }
            true
        }));
        fired
    }

    /// Whether a crash point fired: the controller on this journal is dead.
    pub fn crashed(&self) -> bool {
        self.crashed.load(Ordering::SeqCst)
    }

    /// A patient's pseudonymous reference, `pt-` and 12 hex digits: the same patient
    /// always gets the same one on this workstation, and nobody without the
    /// journal's key can tell who it is (a plain hash of a short clinic id could be
    /// reversed by trying every id). Logs, exports and the roles that may not see
    /// patients get this instead of the patient's identity.
    pub fn patient_ref(&self, patient_id: &str) -> String {
        use hmac::{KeyInit, Mac};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.patient_key).expect("HMAC takes a key of any length");
        mac.update(patient_id.as_bytes());
        let digest = mac.finalize().into_bytes();
        format!("pt-{}", digest.iter().take(6).map(|b| format!("{b:02x}")).collect::<String>())
    }

    /// Folds the write-ahead log into the database file (a clean stop leaves one
    /// file that any SQLite tool reads whole).
    pub fn checkpoint(&self) -> Result<()> {
        self.write(|conn| Ok(conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?))
    }

    /// The time by the controller's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The writer, locked: for the tables' writes and the reads that decide
    /// them. Call it inside [`Self::write`] (or in tests) so that neither the wait
    /// for the lock nor the commit's fsync holds a runtime worker.
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the writer, off the runtime's workers.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let started = std::time::Instant::now();
        let done = off_runtime(|| f(&mut self.conn()));
        self.write_seconds.observe(started.elapsed().as_secs_f64());
        // Once committed (or rolled back: a spare wake-up costs the publisher one read).
        if self.outbox_pending.swap(false, Ordering::SeqCst) {
            self.outbox_added.notify_one();
        }
        done
    }

    /// The histogram of the journal's write times (for the fleet metrics).
    pub fn write_seconds(&self) -> prometheus_client::metrics::histogram::Histogram {
        self.write_seconds.clone()
    }

    /// Runs `f` on a reader, in one snapshot (a read transaction), off the
    /// runtime's workers and beside the writer: a long read neither waits for
    /// the writer nor makes it wait. It sees what was committed when it began.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        off_runtime(|| {
            let mut conn = self.readers.get().map_err(|e| JournalError::Corrupt(format!("no journal reader: {e}")))?;
            let tx = conn.transaction()?;
            let out = f(&tx)?;
            tx.finish()?;
            Ok(out)
        })
    }
}

/// Runs blocking journal work where it cannot stall the runtime. On a worker of a
/// multi-threaded runtime (the daemon), tokio's `block_in_place` first hands the
/// worker's other tasks (the devices' heartbeats, the API) to another thread, so a
/// commit's fsync or a long read never holds them up; elsewhere (the simulation's
/// single-threaded virtual-time runtime, a plain thread) it just runs, as the
/// simulation must stay deterministic.
pub(crate) fn off_runtime<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
