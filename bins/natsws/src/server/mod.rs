//! The single-threaded mio event loop (docs/style.md §6). `Server` owns the poll and routes:
//! listener readiness to accepting, connection readiness to the connection's driver, signals
//! to lifecycle and reload, the waker to the password verdicts, the JWT directory's results and
//! the rendered replies; once per tick it
//! fires the deadlines, acts on the broker's events, flushes dirty connections and removes
//! closed ones.
//!
//! The rooms, each of which a reader finds in one file:
//! - `listeners`: binding (dual stack), accepting, TLS per listener, the ports file;
//! - `table`: the connections (slab, client index, dirty/ready/reap queues, timers);
//! - `ctx`: what the handlers share (table, broker, settings, codec state);
//! - `driver`: one connection's read → input → flush → deadline → removal, routed by kind;
//! - `nats`, `ws`, `http`: the handler of each kind of connection;
//! - `events`: the broker's events and the bcrypt verdicts;
//! - `lifecycle`: signals, shutdown, lame duck;
//! - `reload`: the transactional SIGHUP reload;
//! - `link`: the leaf-node connections natsws dials to its hubs (name resolution off the
//!   loop, client TLS, reconnecting with backoff).

mod claims;
mod ctx;
mod driver;
mod events;
mod http;
mod lifecycle;
mod link;
mod listeners;
mod nats;
mod reload;
mod table;
mod ws;

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use broker::Broker;
use bytes::BytesMut;
use mio::{Events, Poll, Token};

use self::ctx::{Ctx, MonitorState};
use self::events::PasswordChecks;
pub(crate) use self::lifecycle::Exit;
use self::lifecycle::{Lifecycle, Signal};
use self::link::Links;
use self::listeners::{
    CLIENT_LISTENER, HTTP_LISTENER, HTTPS_LISTENER, LEAF_LISTENER, Listeners, MQTT_LISTENER,
    WS_LISTENER,
};
use self::table::{CONN_TOKEN_BASE, Table};
use crate::cli::Cli;
use crate::monitor::Clock;
use crate::settings::Settings;

const SIGNALS: Token = Token(4);
/// The one waker of the poll: bcrypt verdicts, name resolutions, rendered replies or the
/// JWT directory's results are ready.
const WAKER: Token = Token(5);

/// The server.
#[derive(Debug)]
pub(crate) struct Server {
    poll: Poll,
    listeners: Listeners,
    ctx: Ctx,
    lifecycle: Lifecycle,
    checks: PasswordChecks,
    links: Links,
    cli: Cli,
}

impl Server {
    /// Binds every listener and logs the start-up banner. Fatal errors come back as text.
    pub(crate) fn new(mut settings: Settings, cli: Cli) -> Result<Self, String> {
        let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
        let registry = poll
            .registry()
            .try_clone()
            .map_err(|e| format!("poll: {e}"))?;
        let lifecycle = Lifecycle::new(&registry, SIGNALS)?;
        let waker = Arc::new(mio::Waker::new(&registry, WAKER).map_err(|e| format!("waker: {e}"))?);
        let mut hasher_key = [0u8; 64];
        crate::ids::os_random(&mut hasher_key)?;
        let mut ws_policy = None;
        let mut ws_tls = None;
        if let Some(ws) = &settings.websocket {
            ws_policy = Some(
                ws_handshake::Policy::new(&ws.handshake).map_err(|e| format!("websocket: {e}"))?,
            );
            if let Some(spec) = &ws.tls {
                ws_tls = Some(spec.load()?);
            }
        }
        let listeners = Listeners::bind(&registry, &mut settings, ws_tls)?;
        let now = Instant::now();
        let mut broker =
            Broker::try_new(settings.broker.clone(), now).map_err(|e| e.to_string())?;
        broker.set_max_closed_clients(settings.max_closed_clients);
        let claims = claims::ClaimsStore::start(&settings, &mut broker, &waker)?;
        let mqtt_store = match &settings.store_dir {
            Some(dir) => Some(open_mqtt_store(
                std::path::Path::new(dir),
                &mut broker,
                now,
            )?),
            None => None,
        };
        let links = Links::new(
            &settings.leaf.remotes,
            settings.leaf.reconnect,
            Arc::clone(&waker),
            now,
        )?;
        log::info!("Server is ready");
        let ctx = Ctx {
            registry,
            conns: Table::default(),
            broker,
            settings,
            ws_policy,
            deflater: ws_codec::Deflater::new(),
            inflater: ws_codec::Inflater::new(),
            arena: BytesMut::new(),
            link_events: Vec::new(),
            renders: crate::render::Renders::new(Arc::clone(&waker)),
            mqtt_store,
            claims,
            monitor: MonitorState {
                clock: Clock::now(),
                start: now,
                config_load_time: now,
                http_req_stats: BTreeMap::new(),
                bound: listeners.bound.clone(),
                healthy: true,
                ops: crate::monitor::Ops::default(),
            },
        };
        Ok(Self {
            poll,
            listeners,
            ctx,
            lifecycle,
            checks: PasswordChecks::new(crate::hasher::Hasher::new(waker, hasher_key)),
            links,
            cli,
        })
    }

    /// Writes the pid file and the ports file.
    pub(crate) fn write_files(&mut self, argv0: &str) -> Result<(), String> {
        let settings = &self.ctx.settings;
        if let Some(pid_file) = &settings.pid_file {
            std::fs::write(pid_file, std::process::id().to_string())
                .map_err(|e| format!("Could not write pidfile: {e}"))?;
        }
        if let Some(dir) = &settings.ports_file_dir {
            self.listeners.write_ports_file(settings, dir, argv0)?;
        }
        Ok(())
    }

    /// Runs until shutdown.
    pub(crate) fn run(&mut self) -> Exit {
        match crate::sched::request_slice(crate::sched::LOOP_SLICE) {
            Ok(crate::sched::Outcome::Set(slice)) => {
                log::debug!("event loop scheduler slice set to {slice:?}");
            }
            Ok(crate::sched::Outcome::Kept) => {
                log::debug!("event loop scheduler policy and slice kept as started");
            }
            Ok(crate::sched::Outcome::Unsupported) => {
                log::debug!("event loop scheduler slice: not supported by this kernel");
            }
            Err(e) => log::debug!("event loop scheduler slice not set: {e}"),
        }
        let mut events = Events::with_capacity(1024);
        let mut tick_start: Option<Instant> = None;
        loop {
            // The clock read that ends a tick also sets the poll's timeout.
            let tick_end = Instant::now();
            if let Some(start) = tick_start {
                self.ctx
                    .monitor
                    .ops
                    .tick
                    .observe(tick_end.saturating_duration_since(start));
            }
            let timeout = self
                .next_deadline()
                .map(|d| d.saturating_duration_since(tick_end));
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                log::error!("poll error: {e}");
                return Exit::Terminated;
            }
            let now = Instant::now();
            tick_start = Some(now);
            // Connections whose read budget ran out last tick go first; those that run out
            // now wait for the next tick, so one tick stays bounded.
            driver::run_ready(&mut self.ctx, now);
            http::step_renders(&mut self.ctx, now);
            for ev in &events {
                self.dispatch(ev, now);
            }
            driver::fire_timers(&mut self.ctx, now, self.listeners.ws_on_http);
            if self.listeners.take_resumed(now) {
                for token in [
                    CLIENT_LISTENER,
                    WS_LISTENER,
                    HTTP_LISTENER,
                    HTTPS_LISTENER,
                    LEAF_LISTENER,
                    MQTT_LISTENER,
                ] {
                    self.accept_loop(token, now);
                }
            }
            self.lifecycle.tick(&mut self.ctx, &mut self.listeners, now);
            events::drain(&mut self.ctx, &mut self.checks, now);
            driver::flush_dirty(&mut self.ctx, now);
            // A failed write closes the client inside the flush; act on that now rather than
            // on the next wake-up.
            events::drain(&mut self.ctx, &mut self.checks, now);
            driver::reap(&mut self.ctx, now);
            crate::mqtt_store::drain(&mut self.ctx.broker, self.ctx.mqtt_store.as_ref());
            self.links.handle_events(&mut self.ctx, now);
            self.links.tick(&self.ctx, now);
            if let Some(exit) = self.lifecycle.finished(&self.ctx, now) {
                self.listeners.remove_ports_file();
                // Closing the connections kept their sessions: write them (and the kept
                // sessions' records the timer had not written yet) before exiting.
                self.ctx.broker.flush_mqtt_sessions();
                crate::mqtt_store::drain(&mut self.ctx.broker, self.ctx.mqtt_store.as_ref());
                if let Some(store) = self.ctx.mqtt_store.take() {
                    store.finish();
                }
                log::info!("Server Exiting..");
                return exit;
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let ctx = &self.ctx;
        if !ctx.conns.ready.is_empty() || !ctx.conns.dirty.is_empty() || ctx.renders.has_work() {
            return Some(Instant::now());
        }
        [
            ctx.broker.poll_timeout(),
            ctx.conns.next_timer(),
            self.listeners.paused_until(),
            ctx.conns.next_linger_end(),
            self.lifecycle.next_deadline(),
            self.links.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn dispatch(&mut self, ev: &mio::event::Event, now: Instant) {
        match ev.token() {
            token @ (CLIENT_LISTENER | HTTP_LISTENER | HTTPS_LISTENER | WS_LISTENER
            | LEAF_LISTENER | MQTT_LISTENER) => {
                self.accept_loop(token, now);
            }
            SIGNALS => self.handle_signals(now),
            WAKER => {
                events::password_verdicts(&mut self.ctx, &self.checks, now);
                claims::completed(&mut self.ctx, now);
                http::rendered_replies(&mut self.ctx, now);
                self.links.resolved(&mut self.ctx, now);
            }
            Token(t) if t >= CONN_TOKEN_BASE => {
                let key = t - CONN_TOKEN_BASE;
                if !self.ctx.conns.contains(key) {
                    return;
                }
                if ev.is_writable() {
                    self.ctx.conns.mark_dirty(key);
                }
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    driver::read_conn(&mut self.ctx, key, now);
                }
            }
            _ => {}
        }
    }

    fn accept_loop(&mut self, token: Token, now: Instant) {
        while let Some((stream, peer)) = self.listeners.accept(token, now) {
            let ctx = &mut self.ctx;
            let l = &self.listeners;
            match token {
                CLIENT_LISTENER => {
                    driver::accept_nats(ctx, stream, peer, l.client_tls.clone(), now);
                }
                HTTP_LISTENER => driver::accept_http(ctx, stream, peer, None, l.ws_on_http, now),
                HTTPS_LISTENER => {
                    driver::accept_http(ctx, stream, peer, l.https_tls.clone(), false, now);
                }
                WS_LISTENER => driver::accept_ws(ctx, stream, peer, l.ws_tls.clone(), now),
                LEAF_LISTENER => driver::accept_leaf(ctx, stream, peer, l.leaf_tls.clone(), now),
                MQTT_LISTENER => {
                    driver::accept_mqtt(ctx, stream, peer, l.mqtt_tls.clone(), now);
                }
                _ => {}
            }
        }
    }

    fn handle_signals(&mut self, now: Instant) {
        for sig in self.lifecycle.pending() {
            let Some(signal) = self.lifecycle.classify(sig) else {
                continue;
            };
            let (ctx, listeners) = (&mut self.ctx, &mut self.listeners);
            match signal {
                Signal::Stop(exit) => self.lifecycle.begin_shutdown(ctx, listeners, now, exit),
                Signal::ReopenLog => crate::logger::reopen(),
                Signal::LameDuck => self.lifecycle.enter_lame_duck(ctx, listeners, now),
                Signal::Reload => {
                    reload::reload(ctx, listeners, &mut self.checks, &self.cli, now);
                }
            }
        }
    }
}

/// Opens `<store_dir>/mqtt` and restores the MQTT state kept there into `broker`.
fn open_mqtt_store(
    store_dir: &std::path::Path,
    broker: &mut Broker,
    now: Instant,
) -> Result<crate::mqtt_store::MqttStore, String> {
    let store = crate::mqtt_store::MqttStore::open(store_dir)?;
    log::info!("MQTT state is kept in {}", store.root().display());
    let loaded = store.load(broker, now);
    log::info!(
        "MQTT store: restored {} retained message(s) and {} session(s){}",
        loaded.retained,
        loaded.sessions,
        if loaded.skipped > 0 {
            format!(", skipped {} file(s)", loaded.skipped)
        } else {
            String::new()
        }
    );
    Ok(store)
}
