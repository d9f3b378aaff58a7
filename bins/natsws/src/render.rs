//! Large monitoring replies built without pausing the event loop.
//!
//! A `/connz?subs=detail` page of ten thousand connections holding ten subscriptions each, or
//! a `/subsz?subs=1` of 100,000 subscriptions, is tens of megabytes of JSON: tens to hundreds
//! of milliseconds to take and render, during which a single-threaded loop would serve nobody
//! else. nats-server renders them on the HTTP handler's goroutine (`server/monitor.go`,
//! `HandleConnz`, `HandleSubsz`). Here the loop only checks the query at once
//! ([`crate::monitor::answer`]); when the request reaches the front of the queue its page is
//! chosen ([`crate::monitor::Deferred::choose`]) and filled from the broker a bounded number
//! of subscriptions per tick ([`Renders::step`]), and a worker thread, started on first use,
//! renders the JSON and the HTTP head and sends the bytes back, waking the poll through the
//! loop's [`mio::Waker`].
//!
//! - **In order.** The connection that asked is not read while its reply is being made, so
//!   pipelined requests are answered in order.
//! - **Bounded.** A request waiting its turn holds its checked query only (each connection has
//!   at most one). Pages are chosen and filled one at a time, and at most [`MAX_RENDERING`]
//!   filled pages are with the worker: at most `1 + MAX_RENDERING` pages exist at once,
//!   however many monitoring connections ask.
//! - **Dropped when moot.** A request whose connection is gone is not chosen or filled, and a
//!   reply whose connection is gone is dropped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use broker::Broker;

use crate::monitor::{Clock, Deferred, Page};

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
    work: Work,
}

#[derive(Debug)]
enum Work {
    /// Waiting its turn: the page is not chosen yet.
    Query(Box<Deferred>),
    /// Chosen, being filled.
    Filling(Page),
    /// Complete, waiting for the worker to have room.
    Filled(Page),
    /// Transient, while the state changes.
    Moved,
}

/// What [`Renders::step`] chooses pages with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChooseCtx {
    pub(crate) clock: Clock,
    pub(crate) now: std::time::Instant,
    /// Closed connections are listed at all (`max_closed_clients` is not 0).
    pub(crate) keep_closed: bool,
}

/// The pages being filled and the worker that renders them.
pub(crate) struct Renders {
    waker: Arc<mio::Waker>,
    /// The worker's queue, once it is started.
    jobs: Option<Sender<Job>>,
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

    /// Queues the request `query` of the connection (`key`, `uid`).
    pub(crate) fn push(&mut self, key: usize, uid: u64, keep_alive: bool, query: Box<Deferred>) {
        self.pending.push_back(Pending {
            key,
            uid,
            keep_alive,
            work: Work::Query(query),
        });
    }

    /// True while [`Renders::step`] has something to do now (rather than wait for the worker).
    #[must_use]
    pub(crate) fn has_work(&self) -> bool {
        self.pending
            .front()
            .is_some_and(|p| !matches!(p.work, Work::Filled(_)) || self.rendering < MAX_RENDERING)
    }

    /// How many pages are chosen and not yet rendered (at most `1 + MAX_RENDERING`).
    #[cfg(test)]
    fn n_pages(&self) -> usize {
        let queued = self
            .pending
            .iter()
            .filter(|p| matches!(p.work, Work::Filling(_) | Work::Filled(_)))
            .count();
        queued + self.rendering
    }

    /// Chooses the page of the request at the front, or takes up to about `budget`
    /// subscriptions for it, and hands it to the worker once it is filled and the worker has
    /// room. Requests of connections `alive` denies are dropped.
    pub(crate) fn step(
        &mut self,
        broker: &Broker,
        budget: usize,
        ctx: ChooseCtx,
        alive: impl Fn(usize, u64) -> bool,
    ) {
        while let Some(front) = self.pending.front_mut() {
            if !alive(front.key, front.uid) {
                self.pending.pop_front();
                continue;
            }
            match std::mem::replace(&mut front.work, Work::Moved) {
                Work::Query(query) => {
                    // Choosing looks at every connection (or every subscription's slot
                    // count): the tick's work. The page is filled from the next tick on.
                    front.work =
                        Work::Filling(query.choose(broker, ctx.clock, ctx.now, ctx.keep_closed));
                    return;
                }
                Work::Filling(mut page) => {
                    let filled = page.take_subscriptions(broker, budget);
                    front.work = if filled {
                        Work::Filled(page)
                    } else {
                        Work::Filling(page)
                    };
                    if !filled {
                        return;
                    }
                }
                other => front.work = other,
            }
            if self.rendering >= MAX_RENDERING {
                return;
            }
            let Some(job) = self.pending.pop_front() else {
                return;
            };
            if let Work::Filled(page) = job.work {
                self.hand_over(Job {
                    key: job.key,
                    uid: job.uid,
                    keep_alive: job.keep_alive,
                    page,
                });
            }
            // One page per tick: the next is chosen on the next tick.
            return;
        }
    }

    fn hand_over(&mut self, job: Job) {
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

/// A filled page for the worker.
#[derive(Debug)]
struct Job {
    key: usize,
    uid: u64,
    keep_alive: bool,
    page: Page,
}

fn render(job: Job) -> Rendered {
    Rendered {
        key: job.key,
        uid: job.uid,
        keep_alive: job.keep_alive,
        bytes: job.page.render().to_bytes(job.keep_alive),
    }
}

/// Starts the worker; `None` when it could not be started.
fn start_worker(waker: &Arc<mio::Waker>, done: &Sender<Rendered>) -> Option<Sender<Job>> {
    let (jobs_tx, jobs) = channel::<Job>();
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Instant;

    use broker::{ClientParams, CloseReason, ConnectionType};
    use bytes::BytesMut;

    use crate::monitor::{self, Bound, MonitorCtx, Ops, Reply};
    use crate::monitor_request::Endpoint;

    /// However many requests wait, at most `1 + MAX_RENDERING` pages are chosen at once (a
    /// waiting request holds its query only), and every request is answered, in order.
    #[test]
    fn waiting_requests_hold_no_pages() {
        const N_REQUESTS: usize = 40;
        let settings =
            crate::settings::from_options(&natsconf::options::Options::default()).unwrap();
        let now = Instant::now();
        let mut broker = Broker::new(settings.broker.clone(), now);
        let addr = "127.0.0.1:5000".parse().unwrap();
        for i in 0..50 {
            let id = broker.register_client(now, ClientParams::new(ConnectionType::Standard, addr));
            let subs: String = (0..20).map(|j| format!("SUB c.{i}.{j} {j}\r\n")).collect();
            let mut input = BytesMut::from(format!("CONNECT {{}}\r\n{subs}").as_bytes());
            broker.handle_input(id, now, &mut input);
            if i % 2 == 0 {
                broker.close_client(id, now, CloseReason::ClientClosed);
            }
            while broker.poll_event().is_some() {}
        }
        let bound = Bound::default();
        let stats = BTreeMap::new();
        let clock = Clock::now();
        let ops = Ops::default();
        let ctx = MonitorCtx {
            settings: &settings,
            bound: &bound,
            clock,
            now,
            start: now,
            config_load_time: now,
            http_req_stats: &stats,
            healthy: true,
            rss_bytes: 0,
            cpu_percent: 0.0,
            ops: &ops,
        };
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let mut renders = Renders::new(waker);
        for key in 0..N_REQUESTS {
            let (endpoint, query) = if key % 2 == 0 {
                (Endpoint::Connz, "state=all&subs=detail")
            } else {
                (Endpoint::Subsz, "subs=1&limit=5000")
            };
            let Reply::Deferred(d) = monitor::answer(endpoint, query, &mut broker, &ctx) else {
                panic!("{query} answered at once");
            };
            renders.push(key, 7, true, d);
        }
        let choose = ChooseCtx {
            clock,
            now,
            keep_closed: true,
        };
        let mut answered = Vec::new();
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        while answered.len() < N_REQUESTS {
            assert!(Instant::now() < deadline, "{} answered", answered.len());
            renders.step(&broker, 64, choose, |_, _| true);
            assert!(renders.n_pages() <= 1 + MAX_RENDERING, "{renders:?}");
            while let Some(done) = renders.poll() {
                let body = done.bytes.split(|b| *b == b'{').count();
                assert!(body > 100, "a short reply");
                answered.push(done.key);
            }
            if !renders.has_work() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        assert_eq!(answered, (0..N_REQUESTS).collect::<Vec<_>>());
    }
}
