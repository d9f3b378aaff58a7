//! Configuration reload (SIGHUP), in two steps so that a reload is all or nothing:
//! [`Plan::build`] does everything that can fail (parse and validate the file, nats-server's
//! reload checks, compile the new authorization, load TLS material, open a new log file, bind
//! and register a new websocket listener) without touching the running server, and
//! [`Plan::apply`] swaps the pieces in and cannot fail. A reload that fails at any point
//! leaves the listeners, TLS, upgrade policy, logger and broker exactly as they were; what a
//! dropped plan holds (a bound socket, an open log file) is closed with it.

use std::sync::Arc;
use std::time::Instant;

use broker::{Broker, ClientId};

use super::ctx::Ctx;
use super::events::PasswordChecks;
use super::listeners::{self, Listeners, WsBinding};
use crate::cli::Cli;
use crate::settings::Settings;

/// SIGHUP: reloads the configuration file, logging what changed or why nothing did.
pub(super) fn reload(
    ctx: &mut Ctx,
    listeners: &mut Listeners,
    checks: &mut PasswordChecks,
    cli: &Cli,
    now: Instant,
) {
    if ctx.settings.config_file.is_none() {
        log::error!(
            "Failed to reload server configuration: can only reload config when a file is provided using -c or --config"
        );
        return;
    }
    match Plan::build(ctx, listeners, cli, now) {
        Ok(plan) => {
            let changes = plan.apply(ctx, listeners, checks, now);
            for c in changes {
                log::info!("Reloaded: {c}");
            }
            log::info!("Reloaded server configuration");
        }
        Err(e) => log::error!("Failed to reload server configuration: {e}"),
    }
}

/// Everything a reload needs, built and checked; applying it cannot fail.
#[derive(Debug)]
pub(super) struct Plan {
    settings: Settings,
    changes: Vec<String>,
    client_tls: Option<Arc<rustls::ServerConfig>>,
    ws_policy: Option<ws_handshake::Policy>,
    ws_tls: Option<Arc<rustls::ServerConfig>>,
    /// `Some` when the websocket listener changes: the new one (already registered, under
    /// the websocket token), or `None` to stop listening.
    ws_binding: Option<Option<WsBinding>>,
    logger: Option<crate::logger::Prepared>,
}

impl Plan {
    /// Loads the file again and builds every new piece (TLS, upgrade policy, the websocket
    /// listener when its address changed, the log file) without changing anything running.
    pub(super) fn build(
        ctx: &Ctx,
        listeners: &Listeners,
        cli: &Cli,
        now: Instant,
    ) -> Result<Self, String> {
        let mut new = crate::settings::load(cli)?;
        let old = &ctx.settings;
        // natsws reloads every websocket property (nats-server refuses all but TLS), so the
        // reference's check runs with the websocket block taken as unchanged.
        let mut checked = new.options.clone();
        checked.websocket.clone_from(&old.options.websocket);
        old.options
            .check_reload(&checked)
            .map_err(|e| e.to_string())?;
        let mut changes = Vec::new();
        let client_tls = match &new.client_tls {
            Some(spec) if listeners.client_tls.is_some() => Some(spec.load()?),
            Some(_) => {
                return Err(
                    "config reload not supported for TLS: enabling TLS needs a restart".to_owned(),
                );
            }
            None if listeners.client_tls.is_some() => {
                return Err(
                    "config reload not supported for TLS: disabling TLS needs a restart".to_owned(),
                );
            }
            None => None,
        };
        if new.client_tls != old.client_tls {
            changes.push("tls".to_owned());
        }
        let (ws_policy, ws_tls) = match &new.websocket {
            Some(ws) => (
                Some(
                    ws_handshake::Policy::new(&ws.handshake)
                        .map_err(|e| format!("websocket: {e}"))?,
                ),
                match &ws.tls {
                    Some(spec) => Some(spec.load()?),
                    None => None,
                },
            ),
            None => (None, None),
        };
        // The new authorization must compile.
        Broker::try_new(new.broker.clone(), now).map_err(|e| e.to_string())?;
        // A changed websocket address (or turning it on) binds a new listener.
        let mut ws_binding = None;
        match (&old.websocket, &new.websocket) {
            (Some(o), Some(n))
                if o.listen == n.listen
                    || (n.listen.port < 0 && o.listen.host == n.listen.host) =>
            {
                if n.listen.port < 0
                    && let Some(w) = new.websocket.as_mut()
                {
                    w.listen.clone_from(&o.listen);
                }
            }
            (_, Some(n)) => {
                let binding = listeners::bind_websocket(
                    &ctx.registry,
                    n,
                    new.http.as_ref(),
                    listeners.bound.http_port,
                    ws_tls.is_some(),
                )?;
                ws_binding = Some(Some(binding));
                changes.push("websocket listen address".to_owned());
            }
            (Some(_), None) => {
                ws_binding = Some(None);
                changes.push("websocket disabled".to_owned());
            }
            (None, None) => {}
        }
        if let (Some(o), Some(n)) = (&old.websocket, &new.websocket) {
            for (what, changed) in [
                (
                    "websocket allowed_origins/same_origin",
                    o.handshake.allowed_origins != n.handshake.allowed_origins
                        || o.same_origin != n.same_origin,
                ),
                ("websocket compression", o.compression != n.compression),
                (
                    "websocket cookies",
                    o.handshake.jwt_cookie != n.handshake.jwt_cookie
                        || o.handshake.user_cookie != n.handshake.user_cookie
                        || o.handshake.pass_cookie != n.handshake.pass_cookie
                        || o.handshake.token_cookie != n.handshake.token_cookie,
                ),
                (
                    "websocket headers",
                    o.handshake.headers != n.handshake.headers,
                ),
                (
                    "websocket handshake_timeout",
                    o.handshake_timeout != n.handshake_timeout,
                ),
                ("websocket tls", o.tls != n.tls),
                (
                    "websocket authorization",
                    old.auth.websocket != new.auth.websocket,
                ),
            ] {
                if changed {
                    changes.push(what.to_owned());
                }
            }
        }
        let mut logger = None;
        if new.log != old.log {
            logger = Some(crate::logger::prepare(&new.log).map_err(|e| format!("log file: {e}"))?);
            changes.push("logging".to_owned());
        }
        if new.auth != old.auth {
            changes.push("authorization".to_owned());
        }
        if new.broker.limits != old.broker.limits {
            changes.push("limits".to_owned());
        }
        Ok(Self {
            settings: new,
            changes,
            client_tls,
            ws_policy,
            ws_tls,
            ws_binding,
            logger,
        })
    }

    /// Swaps the new configuration in; returns what changed, for the log.
    pub(super) fn apply(
        self,
        ctx: &mut Ctx,
        listeners: &mut Listeners,
        checks: &mut PasswordChecks,
        now: Instant,
    ) -> Vec<String> {
        let Self {
            settings: mut new,
            mut changes,
            client_tls,
            ws_policy,
            ws_tls,
            ws_binding,
            logger,
        } = self;
        if let Some(logger) = logger {
            logger.install();
        }
        if let Some(binding) = ws_binding {
            listeners.swap_websocket(&ctx.registry, binding);
            if let (Some(ws), Some(port)) = (&new.websocket, listeners.bound.ws_port) {
                listeners::log_websocket(ws, port);
            }
        }
        ctx.ws_policy = ws_policy;
        listeners.ws_tls = ws_tls;
        listeners.client_tls = client_tls;
        let mut cfg = new.broker.clone();
        let current = ctx.broker.config();
        cfg.server_id.clone_from(&current.server_id);
        cfg.seed = current.seed;
        cfg.client_listener = current.client_listener.clone();
        cfg.websocket_listener = listeners.websocket_info(&new);
        // The leafnode listener is not reloadable (natsconf refuses a changed `leafnodes`).
        cfg.leaf_listener = current.leaf_listener.clone();
        cfg.leaf_urls = current.leaf_urls.clone();
        checks.cancel_rechecks();
        if new.broker.auth.operator.is_some()
            && matches!(
                new.options.operator.resolver,
                Some(natsconf::options::Resolver::Memory)
            )
        {
            for line in crate::operator::preload_issues(&new.options) {
                log::warn!("{line}");
            }
        }
        ctx.broker.reload(cfg, now);
        new.broker
            .server_id
            .clone_from(&ctx.broker.config().server_id);
        // A lowered max_connections closes clients over the new limit, newest first.
        let max = ctx.broker.config().limits.max_connections;
        let open = ctx.broker.stats().connections;
        if open > max {
            let mut ids: Vec<ClientId> = ctx
                .broker
                .clients()
                .into_iter()
                .filter(|id| ctx.broker.is_open(*id) && !ctx.broker.is_leaf(*id))
                .collect();
            ids.reverse();
            for id in ids.into_iter().take(open - max) {
                ctx.broker.close_for_max_connections(id, now);
            }
            changes.push(format!("max_connections: closed {} clients", open - max));
        }
        ctx.settings = new;
        ctx.monitor.bound = listeners.bound.clone();
        ctx.monitor.config_load_time = now;
        listeners.refresh_ports_file(&ctx.settings);
        changes
    }
}
