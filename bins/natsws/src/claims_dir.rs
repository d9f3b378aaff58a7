//! The full resolver's directory, read and written off the event loop: one thread takes the
//! claim services' file work (stores, deletes, lookups, lists) in the order the requests came
//! and sends each result back, waking the poll through the loop's [`mio::Waker`]. A slow or
//! stuck disk then stalls only the requests waiting for it, never the other clients.
//!
//! - **Durable before answered.** A store's result is sent once its file is written, synced
//!   and renamed into place ([`crate::durable::write_atomic`]); only then does the loop apply
//!   the JWT and answer `jwt updated`, as the reference answers after `os.WriteFile`.
//! - **In order.** One queue, first in first out: an update then a delete of one account, or
//!   a store then a lookup, run and come back in the order they were asked.
//! - **Never holding the exit.** Stopping waits [`STOP_WAIT`] for the queued jobs, then
//!   leaves a write stuck on the disk to the process's exit (its requester was never told it
//!   succeeded, and the file is replaced whole or not at all).
//! - **Bounded.** At most [`MAX_IN_FLIGHT`] jobs are queued, running, or done and not yet
//!   taken by the loop; [`ClaimsDir::submit`] refuses more and the loop answers the request
//!   with the reference's error shape. A job holds one request body (at most the server's
//!   `max_payload`), a result one JWT (at most [`jwt::MAX_JWT_BYTES`]) or the account list.
//! - **Counted as the reference.** The `limit` of stored JWTs counts those that have not
//!   expired (`server/dirstore.go`: the expiration tracker that enforces the limit drops an
//!   expired JWT), and a LIST leaves expired ones out (`PackWalk`). Unlike the reference,
//!   natsws does not remove an expired JWT's file: it stays for inspection and a lookup.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use broker::auth::jwt;

/// Most jobs queued, running, or done and not yet taken by the loop.
pub(crate) const MAX_IN_FLIGHT: usize = 16;

/// What a deleted JWT's file is renamed to (`server/dirstore.go` `RenameDeleted`).
const DELETED_SUFFIX: &str = ".deleted";

/// How long stopping waits for the queued jobs (a stuck disk must not hold the exit).
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The error a request gets while [`MAX_IN_FLIGHT`] jobs are pending.
pub(crate) const BUSY: &str = "jwt store is busy, try again";

/// File work for the writer thread; `reply` comes back with the result.
#[derive(Debug)]
pub(crate) enum Job {
    /// Store `token` (the request body as sent) as `account`'s JWT.
    Save { account: String, token: String },
    /// Rename the JWT files of `accounts` to `<key>.jwt.deleted`.
    Delete { accounts: Vec<String> },
    /// Read `account`'s JWT.
    Lookup { account: String },
    /// The stored account keys whose JWT has not expired at `now_unix`.
    List { now_unix: i64 },
}

/// A job's result, with the reply subject it was submitted with.
#[derive(Debug)]
pub(crate) struct Done {
    pub(crate) reply: Option<String>,
    pub(crate) outcome: Outcome,
}

/// What a [`Job`] found.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The store of `token` for `account`: done, or the error's text.
    Saved {
        account: String,
        token: String,
        result: Result<(), String>,
    },
    /// The accounts whose file was renamed, how many had none, and the errors' texts.
    Deleted {
        deleted: Vec<String>,
        missing: usize,
        errors: Vec<String>,
    },
    /// The stored JWT, or why it could not be read.
    Lookup(io::Result<String>),
    /// The stored, unexpired account keys in name order.
    List(io::Result<Vec<String>>),
}

#[derive(Debug, Default)]
struct Queue {
    jobs: VecDeque<(Job, Option<String>)>,
    stop: bool,
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

/// The directory, its writer thread, and the results coming back.
#[derive(Debug)]
pub(crate) struct ClaimsDir {
    shared: Arc<Shared>,
    done: Receiver<Done>,
    /// Jobs submitted whose result the loop has not taken.
    in_flight: usize,
    writer: Option<JoinHandle<()>>,
    /// Closed when the writer thread ends.
    ended: Receiver<()>,
}

impl ClaimsDir {
    /// Starts the writer thread for the directory `path` holding at most `limit` unexpired
    /// JWTs; results are announced through `waker`.
    pub(crate) fn start(
        path: PathBuf,
        limit: usize,
        waker: Arc<mio::Waker>,
    ) -> Result<Self, String> {
        let shared = Arc::new(Shared::default());
        let (done_tx, done) = channel();
        let (ended_tx, ended) = channel::<()>();
        let writer = {
            let shared = Arc::clone(&shared);
            let dir = Dir { path, limit };
            std::thread::Builder::new()
                .name("jwt-store".to_owned())
                .spawn(move || {
                    work(&shared, &dir, &done_tx, &waker);
                    drop(ended_tx);
                })
                .map_err(|e| format!("jwt store writer: {e}"))?
        };
        Ok(Self {
            shared,
            done,
            in_flight: 0,
            writer: Some(writer),
            ended,
        })
    }

    /// Queues `job`; gives it back when [`MAX_IN_FLIGHT`] jobs are pending.
    pub(crate) fn submit(&mut self, job: Job, reply: Option<String>) -> Result<(), Job> {
        if self.in_flight >= MAX_IN_FLIGHT {
            return Err(job);
        }
        self.in_flight += 1;
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .jobs
            .push_back((job, reply));
        self.shared.wake.notify_one();
        Ok(())
    }

    /// The next finished job, in submission order.
    pub(crate) fn poll(&mut self) -> Option<Done> {
        let done = self.done.try_recv().ok()?;
        self.in_flight = self.in_flight.saturating_sub(1);
        Some(done)
    }

    fn stop(&mut self) {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stop = true;
        self.shared.wake.notify_one();
        let Some(writer) = self.writer.take() else {
            return;
        };
        // A job stuck on the disk is left to the process's exit: its requester was never
        // told it succeeded, and the write replaces the file whole or not at all.
        if self.ended.recv_timeout(STOP_WAIT) == Err(RecvTimeoutError::Timeout) {
            log::warn!("jwt store: writes still pending at exit are abandoned");
            return;
        }
        if writer.join().is_err() {
            log::error!("jwt store: the writer thread panicked");
        }
    }
}

impl Drop for ClaimsDir {
    /// Finishes the queued jobs (their files are written; nobody is answered) for at most
    /// [`STOP_WAIT`], and stops.
    fn drop(&mut self) {
        self.stop();
    }
}

fn work(shared: &Shared, dir: &Dir, done: &Sender<Done>, waker: &mio::Waker) {
    loop {
        let (job, reply) = {
            let mut queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if let Some(next) = queue.jobs.pop_front() {
                    break next;
                }
                if queue.stop {
                    return;
                }
                queue = shared
                    .wake
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        let outcome = dir.run(job);
        // The loop may be gone at shutdown; the file work is done either way.
        if done.send(Done { reply, outcome }).is_ok() {
            let _ = waker.wake();
        }
    }
}

/// A full resolver's directory, as the writer thread works on it.
#[derive(Debug)]
struct Dir {
    path: PathBuf,
    limit: usize,
}

impl Dir {
    fn run(&self, job: Job) -> Outcome {
        match job {
            Job::Save { account, token } => {
                let result = self.save(&account, &token);
                Outcome::Saved {
                    account,
                    token,
                    result,
                }
            }
            Job::Delete { accounts } => {
                let mut deleted = Vec::new();
                let mut missing = 0;
                let mut errors = Vec::new();
                for account in accounts {
                    match delete(&self.path(&account)) {
                        Ok(true) => deleted.push(account),
                        Ok(false) => missing += 1,
                        Err(e) => errors.push(e.to_string()),
                    }
                }
                Outcome::Deleted {
                    deleted,
                    missing,
                    errors,
                }
            }
            Job::Lookup { account } => Outcome::Lookup(self.lookup(&account)),
            Job::List { now_unix } => Outcome::List(self.list_unexpired(now_unix)),
        }
    }

    fn path(&self, account: &str) -> PathBuf {
        self.path.join(format!("{account}.jwt"))
    }

    fn lookup(&self, account: &str) -> io::Result<String> {
        if !jwt::is_public_key(account, jwt::KeyPairType::Account) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid public key",
            ));
        }
        read_jwt(&self.path(account))
    }

    /// The stored account keys, in name order (`PackWalk`).
    fn list(&self) -> io::Result<Vec<String>> {
        let mut keys: Vec<String> = fs::read_dir(&self.path)?
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|name| name.strip_suffix(".jwt").map(str::to_owned))
            .filter(|k| jwt::is_public_key(k, jwt::KeyPairType::Account))
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Whether `account`'s stored JWT has expired at `now_unix` (one that does not decode
    /// never expires, as the reference's tracker keeps it forever).
    fn expired(&self, account: &str, now_unix: i64) -> bool {
        let exp = read_jwt(&self.path(account))
            .ok()
            .and_then(|t| jwt::decode_generic(t.trim()).ok())
            .map_or(0, |(data, _)| data.exp);
        exp > 0 && exp < now_unix
    }

    /// The keys of [`Dir::list`] whose JWT has not expired at `now_unix`.
    fn list_unexpired(&self, now_unix: i64) -> io::Result<Vec<String>> {
        let mut keys = self.list()?;
        keys.retain(|key| !self.expired(key, now_unix));
        Ok(keys)
    }

    /// Stores `token` as `account`'s JWT. Once `limit` unexpired JWTs are stored, a JWT for
    /// an account the store does not hold (unexpired) is refused (`jwt store is full`); one
    /// replacing a held JWT always goes in (`DirJWTStore.write`). Expired JWTs do not count:
    /// the reference's expiration tracker, which enforces the limit, drops them.
    fn save(&self, account: &str, token: &str) -> Result<(), String> {
        let path = self.path(account);
        if self.limit != usize::MAX {
            let now_unix = crate::operator::now_unix();
            let held = path.exists() && !self.expired(account, now_unix);
            if !held
                && self
                    .list_unexpired(now_unix)
                    .map_err(|e| e.to_string())?
                    .len()
                    >= self.limit
            {
                return Err("jwt store is full".to_owned());
            }
        }
        fs::create_dir_all(&self.path)
            .and_then(|()| crate::durable::write_atomic(&path, token.as_bytes()))
            .map_err(|e| e.to_string())
    }
}

/// Reads a stored JWT, at most [`jwt::MAX_JWT_BYTES`], as it was stored (the reference
/// stores and answers the request's body as sent).
fn read_jwt(path: &Path) -> io::Result<String> {
    if fs::metadata(path)?.len() > jwt::MAX_JWT_BYTES as u64 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "jwt too large"));
    }
    fs::read_to_string(path)
}

/// Renames a JWT's file to `<key>.jwt.deleted`: `true` when it did, `false` when there was no
/// file. As in the reference (`DirJWTStore.delete`), a missing file counts as deleted but
/// changes nothing: the live account stays.
fn delete(path: &Path) -> io::Result<bool> {
    let mut to = path.as_os_str().to_owned();
    to.push(DELETED_SUFFIX);
    match fs::rename(path, PathBuf::from(to)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}
