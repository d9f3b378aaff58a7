//! Signals, shutdown and lame duck mode (nats-server's `handleSignals`, `Shutdown` and
//! `lameDuckMode`).

use std::time::{Duration, Instant};

use broker::{ClientId, CloseReason};
use mio::{Interest, Registry, Token};
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook_mio::v1_0::Signals;

use super::ctx::Ctx;
use super::listeners::Listeners;
use super::table::CLOSE_LINGER;

/// Why the loop stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// SIGINT or end of lame duck: exit 0.
    Clean,
    /// SIGTERM: nats-server 2.9.10 exits 1.
    Terminated,
}

/// What a signal asks the loop to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Signal {
    /// SIGINT, SIGTERM.
    Stop(Exit),
    /// SIGUSR1: reopen the log file.
    ReopenLog,
    /// SIGUSR2.
    LameDuck,
    /// SIGHUP.
    Reload,
}

#[derive(Debug)]
struct LameDuck {
    close_from: Instant,
    interval: Duration,
    next_close: Option<Instant>,
}

/// The signals and the server's way out.
pub(super) struct Lifecycle {
    signals: Signals,
    shutting_down: Option<(Exit, Instant)>,
    lame_duck: Option<LameDuck>,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("shutting_down", &self.shutting_down)
            .field("lame_duck", &self.lame_duck)
            .finish_non_exhaustive()
    }
}

impl Lifecycle {
    /// Registers for nats-server's signals under `token`.
    pub(super) fn new(registry: &Registry, token: Token) -> Result<Self, String> {
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2])
            .map_err(|e| format!("signals: {e}"))?;
        registry
            .register(&mut signals, token, Interest::READABLE)
            .map_err(|e| format!("signals: {e}"))?;
        Ok(Self {
            signals,
            shutting_down: None,
            lame_duck: None,
        })
    }

    /// The signals received since the last call.
    pub(super) fn pending(&mut self) -> Vec<i32> {
        self.signals.pending().collect()
    }

    /// What a signal asks for now (logged as nats-server logs it).
    pub(super) fn classify(&self, sig: i32) -> Option<Signal> {
        match sig {
            SIGINT => {
                log::debug!("Trapped \"interrupt\" signal");
                Some(Signal::Stop(Exit::Clean))
            }
            SIGTERM => {
                log::debug!("Trapped \"terminated\" signal");
                // Lame duck ends by itself.
                self.lame_duck
                    .is_none()
                    .then_some(Signal::Stop(Exit::Terminated))
            }
            SIGUSR1 => Some(Signal::ReopenLog),
            SIGUSR2 => Some(Signal::LameDuck),
            SIGHUP => {
                log::debug!("Trapped \"hangup\" signal");
                Some(Signal::Reload)
            }
            _ => None,
        }
    }

    /// Stops accepting, closes every connection and gives them [`CLOSE_LINGER`] to flush.
    pub(super) fn begin_shutdown(
        &mut self,
        ctx: &mut Ctx,
        listeners: &mut Listeners,
        now: Instant,
        exit: Exit,
    ) {
        if self.shutting_down.is_some() {
            return;
        }
        log::info!("Initiating Shutdown...");
        listeners.close_all(&ctx.registry);
        self.shutting_down = Some((exit, now + CLOSE_LINGER));
        ctx.monitor.healthy = false;
        self.lame_duck = None;
        let keys: Vec<usize> = ctx.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            ctx.close_conn(key, now, CloseReason::ServerShutdown);
        }
    }

    /// The exit once shutdown is over: every connection gone, or the linger spent.
    pub(super) fn finished(&self, ctx: &Ctx, now: Instant) -> Option<Exit> {
        let (exit, deadline) = self.shutting_down?;
        (ctx.conns.is_empty() || now >= deadline).then_some(exit)
    }

    /// The next moment shutdown or lame duck needs the loop.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let shutdown = self.shutting_down.map(|(_, d)| d);
        let lame_duck = self
            .lame_duck
            .as_ref()
            .map(|ld| ld.next_close.unwrap_or(ld.close_from));
        match (shutdown, lame_duck) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// SIGUSR2: stop accepting clients, tell them (`ldm`), and close them one by one after the
    /// grace period, spread over `lame_duck_duration`.
    pub(super) fn enter_lame_duck(
        &mut self,
        ctx: &mut Ctx,
        listeners: &mut Listeners,
        now: Instant,
    ) {
        if self.lame_duck.is_some() || self.shutting_down.is_some() {
            return;
        }
        log::info!("Entering lame duck mode, stop accepting new clients");
        listeners.close_client_listeners(&ctx.registry);
        let n_clients = ctx
            .conns
            .iter()
            .filter(|(_, c)| c.kind.client().is_some())
            .count();
        if n_clients == 0 {
            self.begin_shutdown(ctx, listeners, now, Exit::Clean);
            return;
        }
        // Tell protocol-1 clients (async INFO capable) that this server is going away.
        let clients: Vec<(usize, ClientId)> = ctx
            .conns
            .iter()
            .filter_map(|(k, c)| c.kind.client().map(|id| (k, id)))
            .collect();
        for (key, client) in clients {
            if !ctx.broker.connect_received(client) {
                continue;
            }
            let Some(line) = ctx.broker.info_line(client) else {
                continue;
            };
            let Some(json_end) = line.iter().rposition(|b| *b == b'}') else {
                continue;
            };
            let mut ldm = line.get(..json_end).unwrap_or(&[]).to_vec();
            ldm.extend_from_slice(b",\"ldm\":true");
            ldm.extend_from_slice(line.get(json_end..).unwrap_or(&[]));
            if let Some(q) = ctx.broker.outbound(client) {
                q.push_slice(&ldm);
                ctx.conns.mark_dirty(key);
            }
        }
        let grace = ctx.settings.lame_duck_grace_period;
        let span = ctx.settings.lame_duck_duration.saturating_sub(grace);
        let interval =
            (span / u32::try_from(n_clients).unwrap_or(u32::MAX)).min(Duration::from_secs(1));
        self.lame_duck = Some(LameDuck {
            close_from: now + grace,
            interval,
            next_close: None,
        });
    }

    /// Closes the next client when lame duck's interval has passed; shuts down after the last.
    pub(super) fn tick(&mut self, ctx: &mut Ctx, listeners: &mut Listeners, now: Instant) {
        let Some(ld) = self.lame_duck.as_mut() else {
            return;
        };
        if now < ld.close_from {
            return;
        }
        if ld.next_close.is_none() {
            log::info!("Closing existing clients");
        }
        if ld.next_close.is_some_and(|t| now < t) {
            return;
        }
        let interval = ld.interval;
        let mut jitter = [0u8; 2];
        // Without randomness the clients close at the middle of the interval.
        if crate::ids::os_random(&mut jitter).is_err() {
            jitter = [0, 0x80];
        }
        let frac = f64::from(u16::from_le_bytes(jitter)) / 65536.0;
        ld.next_close = Some(now + interval.mul_f64(0.5 + frac / 2.0));
        let next = ctx
            .conns
            .iter()
            .find(|(_, c)| c.kind.client().is_some() && !c.closing)
            .map(|(k, _)| k);
        match next {
            Some(key) => ctx.close_conn(key, now, CloseReason::ServerShutdown),
            None => self.begin_shutdown(ctx, listeners, now, Exit::Clean),
        }
    }
}
