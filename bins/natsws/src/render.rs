//! Large monitoring replies built without pausing the event loop.
//!
//! A `/connz?subs=detail` page of ten thousand connections holding ten subscriptions each is
//! some twenty megabytes of JSON: tens of milliseconds to take and render, during which a
//! single-threaded loop would serve nobody else. nats-server renders it on the HTTP handler's
//! goroutine (`server/monitor.go`, `HandleConnz`). Here the loop chooses the page at once
//! ([`crate::monitor::answer`]), then takes its subscriptions a bounded number per tick
//! ([`Renders::step`]), and a worker thread, started on first use, renders the JSON and the
//! HTTP head and sends the bytes back, waking the poll through the loop's [`mio::Waker`].
//!
//! - **In order.** The connection that asked is not read while its reply is being made, so
//!   pipelined requests are answered in order.
//! - **Bounded.** Pages are filled one at a time, and at most [`MAX_RENDERING`] filled pages are
//!   with the worker: what the pages waiting their turn hold is their connections' summaries.
//! - **Dropped when moot.** A page whose connection is gone is not filled, and a reply whose
//!   connection is gone is dropped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use broker::Broker;

use crate::monitor::ConnzPage;

/// Most filled pages handed to the worker and not yet rendered.
const MAX_RENDERING: usize = 2;

/// A reply made for the connection (`key`, `uid`) of the loop's table.
#[derive(Debug)]
pub(crate) struct Rendered {
    pub(crate) key: usize,
    pub(crate) uid: u64,
    pub(crate) keep_alive: bool,
    /// The whole HTTP response.
    pub(crate) bytes: Vec<u8>,
}

#[derive(Debug)]
struct Pending {
    key: usize,
    uid: u64,
    keep_alive: bool,
    page: Box<ConnzPage>,
    /// Every subscription of the page is taken.
    filled: bool,
}

/// The pages being filled and the worker that renders them.
pub(crate) struct Renders {
    waker: Arc<mio::Waker>,
    /// The worker's queue, once it is started.
    jobs: Option<Sender<Pending>>,
    done_tx: Sender<Rendered>,
    done: Receiver<Rendered>,
    /// Pages handed to the worker whose reply has not been taken by [`Renders::poll`].
    rendering: usize,
    pending: VecDeque<Pending>,
}

impl std::fmt::Debug for Renders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renders")
            .field("rendering", &self.rendering)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Renders {
    /// Replies are announced through `waker`.
    pub(crate) fn new(waker: Arc<mio::Waker>) -> Self {
        let (done_tx, done) = channel();
        Self {
            waker,
            jobs: None,
            done_tx,
            done,
            rendering: 0,
            pending: VecDeque::new(),
        }
    }

    /// Queues `page` for the connection (`key`, `uid`).
    pub(crate) fn push(&mut self, key: usize, uid: u64, keep_alive: bool, page: Box<ConnzPage>) {
        self.pending.push_back(Pending {
            key,
            uid,
            keep_alive,
            page,
            filled: false,
        });
    }

    /// True while [`Renders::step`] has something to do now (rather than wait for the worker).
    #[must_use]
    pub(crate) fn has_work(&self) -> bool {
        self.pending
            .front()
            .is_some_and(|p| !p.filled || self.rendering < MAX_RENDERING)
    }

    /// Takes up to about `budget` subscriptions for the pages waiting, in order, and hands the
    /// filled ones to the worker while it has room. Pages of connections `alive` denies are
    /// dropped.
    pub(crate) fn step(
        &mut self,
        broker: &Broker,
        budget: usize,
        alive: impl Fn(usize, u64) -> bool,
    ) {
        while let Some(front) = self.pending.front_mut() {
            if !alive(front.key, front.uid) {
                self.pending.pop_front();
                continue;
            }
            if !front.filled {
                front.filled = front.page.take_subscriptions(broker, budget);
                if !front.filled {
                    return;
                }
            }
            if self.rendering >= MAX_RENDERING {
                return;
            }
            let Some(job) = self.pending.pop_front() else {
                return;
            };
            self.hand_over(job);
            // One page per tick: the next is filled on the next tick.
            return;
        }
    }

    fn hand_over(&mut self, job: Pending) {
        if self.jobs.is_none() {
            self.jobs = start_worker(&self.waker, &self.done_tx);
        }
        self.rendering += 1;
        let job = match &self.jobs {
            Some(jobs) => match jobs.send(job) {
                Ok(()) => return,
                Err(unsent) => {
                    self.jobs = None;
                    unsent.0
                }
            },
            None => job,
        };
        // No worker: render here rather than never answer.
        let _ = self.done_tx.send(render(job));
        let _ = self.waker.wake();
    }

    /// The next finished reply, if any.
    pub(crate) fn poll(&mut self) -> Option<Rendered> {
        let done = self.done.try_recv().ok()?;
        self.rendering = self.rendering.saturating_sub(1);
        Some(done)
    }
}

fn render(job: Pending) -> Rendered {
    Rendered {
        key: job.key,
        uid: job.uid,
        keep_alive: job.keep_alive,
        bytes: job.page.render().to_bytes(job.keep_alive),
    }
}

/// Starts the worker; `None` when it could not be started.
fn start_worker(waker: &Arc<mio::Waker>, done: &Sender<Rendered>) -> Option<Sender<Pending>> {
    let (jobs_tx, jobs) = channel::<Pending>();
    let waker = Arc::clone(waker);
    let done = done.clone();
    let spawned = std::thread::Builder::new()
        .name("monitor-render".to_owned())
        .spawn(move || {
            for job in jobs {
                if done.send(render(job)).is_err() {
                    return;
                }
                let _ = waker.wake();
            }
        });
    match spawned {
        Ok(_) => Some(jobs_tx),
        Err(e) => {
            log::error!("cannot start the monitoring render thread: {e}");
            None
        }
    }
}
