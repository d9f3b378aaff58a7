//! bcrypt password checks off the event loop, fair between sources and bounded.
//!
//! A bcrypt comparison costs tens to hundreds of milliseconds of CPU by design. Run on the
//! single event-loop thread, one client looping on a wrong password would stall every other
//! connection. The broker instead parks the CONNECT and asks for the check
//! ([`broker::Event::CheckPassword`]); the loop hands it to a few worker threads started on first
//! use, which send the result back and wake the poll through a [`mio::Waker`].
//!
//! - **Fair.** Queued checks wait in one queue per source address, and the workers take from
//!   the sources in turn, a source that had nothing queued first: a burst of wrong passwords
//!   from one address delays a login from another by at most the checks already running.
//! - **Bounded.** A parked client has at most one check queued (the broker parses nothing more
//!   from it); a source has at most [`MAX_QUEUED_PER_SOURCE`] checks queued and all sources
//!   together [`MAX_QUEUED`]. A check over either bound is answered at once as a wrong password,
//!   so the client gets nats-server's `-ERR 'Authorization Violation'`. A reload asks for one
//!   re-check per distinct (hash, password), withdrawing those of the reload before; re-checks
//!   are not counted against a source and never refused, since they stand for running clients.
//! - **Remembered.** A verified (hash, password) pair is remembered as its HMAC-SHA256 under a
//!   key drawn from the OS at start-up (never the password itself), so a returning user does
//!   not pay bcrypt again: the check is answered without queueing. At most [`MAX_REMEMBERED`]
//!   pairs are kept, the oldest forgotten first. A changed hash is a different pair.
//!
//! Every check gets a verdict unless its connection closed first: the loop then raises the
//! check's cancel flag and the workers skip it, so a flood of CONNECTs from clients that hang up
//! costs no bcrypt runs.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use broker::ClientId;
use broker::auth::PasswordCheck;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// Most worker threads.
const MAX_THREADS: usize = 4;
/// Most checks queued for one source address.
pub(crate) const MAX_QUEUED_PER_SOURCE: usize = 8;
/// Most checks queued in all.
pub(crate) const MAX_QUEUED: usize = 1024;
/// Most verified pairs remembered.
pub(crate) const MAX_REMEMBERED: usize = 4096;

/// A finished check.
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    pub(crate) client: ClientId,
    pub(crate) check: PasswordCheck,
    pub(crate) verified: bool,
}

/// Where a check comes from: a connecting client's address, or a reload's re-check of
/// running clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    Client(IpAddr),
    Recheck,
}

struct Job {
    client: ClientId,
    check: PasswordCheck,
    tag: Tag,
    cancelled: Arc<AtomicBool>,
}

/// HMAC-SHA256 of a (hash, password) pair.
type Tag = [u8; 32];

/// The queues and the remembered pairs, shared with the workers.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    work: Condvar,
}

#[derive(Default)]
struct State {
    queues: HashMap<Source, VecDeque<Job>>,
    /// Sources with queued checks, in the order the workers serve them.
    turn: VecDeque<Source>,
    queued: usize,
    remembered: HashSet<Tag>,
    remembered_order: VecDeque<Tag>,
}

impl State {
    fn take(&mut self) -> Option<Job> {
        while let Some(source) = self.turn.pop_front() {
            let Some(queue) = self.queues.get_mut(&source) else {
                continue;
            };
            let job = queue.pop_front();
            if queue.is_empty() {
                self.queues.remove(&source);
            } else {
                self.turn.push_back(source);
            }
            if let Some(job) = job {
                self.queued -= 1;
                return Some(job);
            }
        }
        None
    }

    fn remember(&mut self, tag: Tag) {
        if !self.remembered.insert(tag) {
            return;
        }
        self.remembered_order.push_back(tag);
        if self.remembered_order.len() > MAX_REMEMBERED
            && let Some(oldest) = self.remembered_order.pop_front()
        {
            self.remembered.remove(&oldest);
        }
    }
}

/// What became of a submitted check.
#[derive(Debug)]
pub(crate) enum Submitted {
    /// Queued: a [`Verdict`] follows unless it is withdrawn first.
    Queued(Withdraw),
    /// Answered at once (remembered, or refused because its queue is full): the
    /// [`Verdict`] is already waiting in [`Hasher::poll`], and there is nothing to withdraw.
    Answered,
}

impl Submitted {
    /// Withdraws the check if it is queued (its connection is gone).
    pub(crate) fn withdraw(&self) {
        match self {
            Self::Queued(withdraw) => withdraw.withdraw(),
            Self::Answered => {}
        }
    }
}

/// Withdraws one queued check: the workers skip it and no [`Verdict`] follows.
#[derive(Debug, Clone)]
pub(crate) struct Withdraw(Arc<AtomicBool>);

impl Withdraw {
    pub(crate) fn withdraw(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The worker pool, its queues and its result channel.
pub(crate) struct Hasher {
    waker: Arc<mio::Waker>,
    key: Hmac<Sha256>,
    shared: Arc<Shared>,
    started: bool,
    verdicts_tx: Sender<Verdict>,
    verdicts: Receiver<Verdict>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl Hasher {
    /// A pool that wakes the poll through `waker` when a result is ready. `key` keys the
    /// remembered pairs' HMAC: it must come from the OS's random source.
    pub(crate) fn new(waker: Arc<mio::Waker>, key: [u8; 64]) -> Self {
        let (verdicts_tx, verdicts) = channel();
        Self {
            waker,
            key: <Hmac<Sha256> as hmac::digest::KeyInit>::new(&key.into()),
            shared: Arc::default(),
            started: false,
            verdicts_tx,
            verdicts,
        }
    }

    fn tag(&self, check: &PasswordCheck) -> Tag {
        let mut mac = self.key.clone();
        // The hash has a fixed alphabet without NUL: the pair is encoded unambiguously.
        mac.update(check.hash().as_bytes());
        mac.update(&[0]);
        mac.update(check.password().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Queues a check from `source`, or answers it at once when the pair is remembered or
    /// the source's queue (or the whole queue) is full.
    pub(crate) fn submit(
        &mut self,
        client: ClientId,
        source: Source,
        check: PasswordCheck,
    ) -> Submitted {
        let tag = self.tag(&check);
        let cancelled = Arc::new(AtomicBool::new(false));
        let answer = {
            let mut state = self
                .shared
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let source_len = state.queues.get(&source).map_or(0, VecDeque::len);
            if state.remembered.contains(&tag) {
                Some(true)
            } else if source != Source::Recheck
                && (source_len >= MAX_QUEUED_PER_SOURCE || state.queued >= MAX_QUEUED)
            {
                Some(false)
            } else {
                if source_len == 0 {
                    // A source with nothing queued goes first: a login from an address that
                    // is not flooding waits only for the checks already running.
                    state.turn.push_front(source);
                }
                state.queues.entry(source).or_default().push_back(Job {
                    client,
                    check: check.clone(),
                    tag,
                    cancelled: Arc::clone(&cancelled),
                });
                state.queued += 1;
                None
            }
        };
        if let Some(verified) = answer {
            let _ = self.verdicts_tx.send(Verdict {
                client,
                check,
                verified,
            });
            let _ = self.waker.wake();
            return Submitted::Answered;
        }
        if !self.started {
            self.started = start_workers(&self.shared, &self.waker, &self.verdicts_tx);
        }
        if self.started {
            self.shared.work.notify_one();
        } else {
            // No worker could be started: check here rather than lock the client out.
            let job = self
                .shared
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(job) = job {
                run(&self.shared, job, &self.verdicts_tx, &self.waker);
            }
        }
        Submitted::Queued(Withdraw(cancelled))
    }

    /// The next finished check, if any.
    pub(crate) fn poll(&self) -> Option<Verdict> {
        self.verdicts.try_recv().ok()
    }
}

/// Starts the workers; false when not even one could be started.
fn start_workers(
    shared: &Arc<Shared>,
    waker: &Arc<mio::Waker>,
    verdicts: &Sender<Verdict>,
) -> bool {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .clamp(1, MAX_THREADS);
    let mut started = false;
    for i in 0..threads {
        let shared = Arc::clone(shared);
        let waker = Arc::clone(waker);
        let verdicts = verdicts.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("bcrypt-{i}"))
            .spawn(move || worker(&shared, &waker, &verdicts));
        match spawned {
            Ok(_) => started = true,
            Err(e) => log::error!("cannot start a password-check thread: {e}"),
        }
    }
    started
}

fn worker(shared: &Shared, waker: &mio::Waker, verdicts: &Sender<Verdict>) {
    loop {
        let job = {
            let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if let Some(job) = state.take() {
                    break job;
                }
                state = shared
                    .work
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        if !run(shared, job, verdicts, waker) {
            return;
        }
    }
}

/// Runs one check (unless withdrawn) and sends its verdict. False once the loop is gone.
fn run(shared: &Shared, job: Job, verdicts: &Sender<Verdict>, waker: &mio::Waker) -> bool {
    if job.cancelled.load(Ordering::Relaxed) {
        return true;
    }
    let verified = job.check.verify();
    if verified {
        shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remember(job.tag);
    }
    let verdict = Verdict {
        client: job.client,
        check: job.check,
        verified,
    };
    if verdicts.send(verdict).is_err() {
        return false;
    }
    let _ = waker.wake();
    true
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// Takes every queued job and says which source (the first byte of its tag) each came from.
    fn drain(state: &mut State) -> Vec<u8> {
        std::iter::from_fn(|| state.take().map(|job| job.tag[0])).collect()
    }

    #[test]
    fn sources_take_turns() {
        let mut broker = broker::Broker::new(broker::Config::default(), Instant::now());
        let peer = "127.0.0.1:1".parse().unwrap();
        let client = broker.register_client(
            Instant::now(),
            broker::ClientParams::new(broker::ConnectionType::Standard, peer),
        );
        let mut state = State::default();
        let sources = [1, 1, 1, 1, 2, 1, 3, 2];
        for marker in sources {
            let source = Source::Client([127, 0, 0, marker].into());
            if !state.queues.contains_key(&source) {
                state.turn.push_front(source);
            }
            let mut tag = [0; 32];
            tag[0] = marker;
            state.queues.entry(source).or_default().push_back(Job {
                client,
                check: PasswordCheck::new("$2a$04$x", "p"),
                tag,
                cancelled: Arc::default(),
            });
            state.queued += 1;
        }
        // Five checks from .1 queued first do not make .2 and .3 wait for them: a source with
        // nothing queued goes first, then the sources take turns.
        assert_eq!(drain(&mut state), [3, 2, 1, 2, 1, 1, 1, 1]);
        assert_eq!(state.queued, 0);
        assert!(state.turn.is_empty() && state.queues.is_empty());
    }

    #[test]
    fn remembered_pairs_are_bounded() {
        let mut state = State::default();
        for i in 0..MAX_REMEMBERED + 10 {
            let mut tag = [0u8; 32];
            tag[..8].copy_from_slice(&(i as u64).to_le_bytes());
            state.remember(tag);
        }
        assert_eq!(state.remembered.len(), MAX_REMEMBERED);
        assert_eq!(state.remembered_order.len(), MAX_REMEMBERED);
        assert!(
            !state.remembered.contains(&[0; 32]),
            "the oldest went first"
        );
    }
}
