//! bcrypt password checks off the event loop.
//!
//! A bcrypt comparison costs tens to hundreds of milliseconds of CPU by design. Run on the
//! single event-loop thread, one client looping on a wrong password would stall every other
//! connection. The broker instead parks the CONNECT and asks for the check
//! ([`broker::Event::CheckPassword`]); the loop hands it to a few worker threads started on first
//! use, which send the result back and wake the poll through a [`mio::Waker`].
//!
//! Memory stays bounded: a parked client has at most one check queued (the broker parses
//! nothing more from it), and a reload asks for one re-check per distinct (hash, password),
//! withdrawing those of the reload before. Every check gets a verdict (checks start in submission order and run
//! in parallel) unless its connection closed first: the loop then raises the check's cancel
//! flag and the workers skip it, so a flood of CONNECTs from clients that hang up costs no
//! bcrypt runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use broker::ClientId;
use broker::auth::PasswordCheck;

/// Most worker threads.
const MAX_THREADS: usize = 4;

/// A finished check.
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    pub(crate) client: ClientId,
    pub(crate) check: PasswordCheck,
    pub(crate) verified: bool,
}

struct Job {
    client: ClientId,
    check: PasswordCheck,
    cancelled: Arc<AtomicBool>,
}

/// The worker pool and its result channel.
pub(crate) struct Hasher {
    waker: Arc<mio::Waker>,
    jobs: Option<Sender<Job>>,
    verdicts_tx: Sender<Verdict>,
    verdicts: Receiver<Verdict>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("started", &self.jobs.is_some())
            .finish_non_exhaustive()
    }
}

impl Hasher {
    /// A pool that wakes the poll through `waker` when a result is ready.
    pub(crate) fn new(waker: mio::Waker) -> Self {
        let (verdicts_tx, verdicts) = channel();
        Self {
            waker: Arc::new(waker),
            jobs: None,
            verdicts_tx,
            verdicts,
        }
    }

    /// Queues a check. Storing `true` in the returned flag withdraws it (the connection is
    /// gone); otherwise a [`Verdict`] follows.
    pub(crate) fn submit(&mut self, client: ClientId, check: PasswordCheck) -> Arc<AtomicBool> {
        let cancelled = Arc::new(AtomicBool::new(false));
        let job = Job {
            client,
            check,
            cancelled: Arc::clone(&cancelled),
        };
        let jobs = self.jobs.get_or_insert_with(|| {
            start_workers(Arc::clone(&self.waker), self.verdicts_tx.clone())
        });
        if let Err(e) = jobs.send(job) {
            // Every worker is gone (thread creation failed): check here rather than lock the
            // client out.
            let job = e.0;
            let verified = job.check.verify();
            let _ = self.verdicts_tx.send(Verdict {
                client: job.client,
                check: job.check,
                verified,
            });
            let _ = self.waker.wake();
        }
        cancelled
    }

    /// The next finished check, if any.
    pub(crate) fn poll(&self) -> Option<Verdict> {
        self.verdicts.try_recv().ok()
    }
}

fn start_workers(waker: Arc<mio::Waker>, verdicts: Sender<Verdict>) -> Sender<Job> {
    let (tx, rx) = channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .clamp(1, MAX_THREADS);
    for i in 0..threads {
        let rx = Arc::clone(&rx);
        let waker = Arc::clone(&waker);
        let verdicts = verdicts.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("bcrypt-{i}"))
            .spawn(move || worker(&rx, &waker, &verdicts));
        if let Err(e) = spawned {
            log::error!("cannot start a password-check thread: {e}");
        }
    }
    tx
}

fn worker(jobs: &Mutex<Receiver<Job>>, waker: &mio::Waker, verdicts: &Sender<Verdict>) {
    loop {
        let job = {
            let Ok(rx) = jobs.lock() else {
                return;
            };
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        if job.cancelled.load(Ordering::Relaxed) {
            continue;
        }
        let verified = job.check.verify();
        let verdict = Verdict {
            client: job.client,
            check: job.check,
            verified,
        };
        if verdicts.send(verdict).is_err() {
            return;
        }
        let _ = waker.wake();
    }
}
