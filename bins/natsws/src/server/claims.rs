//! The full resolver's claim services (`nsc push` and its kin) over the resolver directory:
//! the broker routes the requests here ([`broker::Event::SystemRequest`]), the checks and
//! answers are `broker::auth::claims`, the file I/O runs on the directory's writer thread
//! (`crate::claims_dir`), and this module hands requests to it and, when their results come
//! back (the loop's waker), applies a stored JWT to the live server and answers
//! (`server/accounts.go` `DirAccResolver.Start`, `server/dirstore.go` for the files). A
//! request made while the directory has `claims_dir::MAX_IN_FLIGHT` jobs pending is refused
//! at once: an update with `jwt update resulted in error - jwt store is busy, try again`, a
//! delete as one whose every file failed, a lookup or list (which the reference leaves
//! unanswered on error) with the error logged and no answer.
//!
//! A stored JWT applies to its account alone ([`broker::Broker::set_operator_account`]): only
//! it is decoded, the router's imports and exports follow, and only that account's clients
//! are checked again, so a revocation closes live connections and changed limits apply at
//! once while other accounts' clients are not touched; a delete removes its accounts alike
//! ([`broker::Broker::remove_operator_accounts`]). As in the
//! reference, a JWT the live server does not take (its issuer is not a trusted operator key,
//! or it has expired) is stored and answered `jwt updated`, but the live server keeps the
//! account it had (and logs the error) until the directory is read again (a reload or
//! restart), which brings the stored JWT in its place. A JWT natsws cannot serve at all (one
//! with `mappings`, which natsws refuses at start-up) is answered `jwt update resulted in
//! error - <why>` and neither stored nor applied, where the reference stores and serves it.
//! A MEMORY resolver serves only the updates that name the account, applies them to an
//! account the server has (its own JWT sent again answers `jwt updated` unverified, as
//! `updateAccountWithClaimJWT` does), and stores nothing. A delete of an account whose file
//! is missing counts as deleted and leaves the live account; a LIST leaves out expired JWTs.
//! As in the reference, the full resolver's handlers take a request's headers as part of its
//! body (so a JWT sent with headers does not decode), and the MEMORY resolver's update skips
//! them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use broker::ServiceId;
use broker::auth::claims::{self, ClaimsRequest, OperatorKeys, Response, ServerInfo};
use broker::auth::jwt;
use natsconf::options::Resolver;

use super::ctx::Ctx;
use crate::claims_dir::{BUSY, ClaimsDir, Done, Job, Outcome};

/// The resolver the claim services work on.
#[derive(Debug)]
pub(super) struct ClaimsStore {
    /// The full resolver's directory; `None` for the MEMORY resolver (updates only, not
    /// stored).
    dir: Option<Dir>,
    keys: OperatorKeys,
    services: Vec<ServiceId>,
    /// The sequence number of the server's answers (`ServerInfo.seq`).
    seq: u64,
}

/// A full resolver's directory: its writer thread, and whether deletes are allowed.
#[derive(Debug)]
struct Dir {
    io: ClaimsDir,
    allow_delete: bool,
}

impl ClaimsStore {
    /// Registers the claim services when the server runs in operator mode with a system
    /// account (natsws refuses a full resolver without one at start-up): all of them for a
    /// full resolver, the account updates for a MEMORY resolver.
    pub(super) fn start(
        settings: &crate::settings::Settings,
        broker: &mut broker::Broker,
        waker: &Arc<mio::Waker>,
    ) -> Result<Option<Self>, String> {
        let Some(op) = settings.broker.auth.operator.as_ref() else {
            return Ok(None);
        };
        if op.system_account.is_none() {
            return Ok(None);
        }
        let (dir, subjects): (_, &[&str]) = match &settings.options.operator.resolver {
            Some(Resolver::Full {
                dir,
                limit,
                allow_delete,
            }) => {
                log::info!("Managing all jwt in exclusive directory {dir}");
                let dir = Dir {
                    io: ClaimsDir::start(
                        PathBuf::from(dir),
                        crate::operator::dir_limit(*limit),
                        Arc::clone(waker),
                    )?,
                    allow_delete: *allow_delete,
                };
                (Some(dir), &claims::SUBJECTS)
            }
            Some(Resolver::Memory) => (None, &claims::MEMORY_SUBJECTS),
            None => return Ok(None),
        };
        let keys = OperatorKeys::new(&op.operators).ok_or("no operator key found")?;
        let mut services = Vec::new();
        for subject in subjects {
            services.push(
                broker
                    .add_system_service(subject)
                    .map_err(|e| format!("error setting up update handling: {e}"))?,
            );
        }
        Ok(Some(Self {
            dir,
            keys,
            services,
            seq: 0,
        }))
    }

    fn server_info(&mut self, cfg: &broker::Config) -> ServerInfo {
        self.seq += 1;
        ServerInfo {
            name: if cfg.server_name.is_empty() {
                cfg.server_id.clone()
            } else {
                cfg.server_name.clone()
            },
            host: cfg.client_listener.host.clone(),
            id: cfg.server_id.clone(),
            ver: cfg.version.clone(),
            seq: self.seq,
            jetstream: false,
            time: jiff::Timestamp::now().to_string(),
        }
    }
}

/// One request to a system service, as the broker handed it out.
pub(super) struct Request<'a> {
    pub(super) service: ServiceId,
    pub(super) subject: &'a str,
    pub(super) reply: Option<&'a str>,
    /// The whole message, headers included.
    pub(super) message: &'a [u8],
    /// How many bytes of `message` are headers.
    pub(super) header_len: usize,
}

/// Answers one request to a system service, when it is one of the claim services.
pub(super) fn serve(ctx: &mut Ctx, req: &Request<'_>, now: Instant) {
    let Some(store) = ctx.claims.as_mut() else {
        return;
    };
    if !store.services.contains(&req.service) {
        return;
    }
    let (subject, reply) = (req.subject, req.reply);
    let Some(request) = ClaimsRequest::parse(subject) else {
        log::debug!("jwt update skipped due to bad subject {subject:?}");
        return;
    };
    let Some(dir) = store.dir.as_mut() else {
        if let ClaimsRequest::Update(Some(account)) = request {
            // `accountClaimUpdate` takes the body alone (`msgParts`).
            let body = req.message.get(req.header_len..).unwrap_or_default();
            let response = memory_update(ctx, account, &String::from_utf8_lossy(body), now);
            respond(ctx, reply, &response, now);
        }
        return;
    };
    // `DirAccResolver.Start`'s handlers take the whole message, headers included: a JWT sent
    // with headers does not decode.
    let body = String::from_utf8_lossy(req.message);
    let reply = reply.map(str::to_owned);
    match request {
        ClaimsRequest::Update(account) => {
            let refused = match claims::check_update_claims(account, &body, &store.keys) {
                Err(refused) => refused,
                Ok(decoded) => match servable(&decoded) {
                    Err(e) => Response::not_saved(&decoded.data.sub, &e),
                    Ok(()) => {
                        let account = decoded.data.sub;
                        let job = Job::Save {
                            account: account.clone(),
                            token: body.into_owned(),
                        };
                        match dir.io.submit(job, reply.clone()) {
                            Ok(()) => return,
                            Err(_) => Response::not_saved(&account, BUSY),
                        }
                    }
                },
            };
            respond(ctx, reply.as_deref(), &refused, now);
        }
        ClaimsRequest::Lookup(account) => {
            if reply.is_none() {
                return;
            }
            let job = Job::Lookup {
                account: account.to_owned(),
            };
            if dir.io.submit(job, reply).is_err() {
                log::error!("Merging resulted in error: {BUSY}");
            }
        }
        ClaimsRequest::List => {
            if reply.is_none() {
                return;
            }
            let job = Job::List {
                now_unix: crate::operator::now_unix(),
            };
            if dir.io.submit(job, reply).is_err() {
                log::error!("list request error: {BUSY}");
            }
        }
        ClaimsRequest::Delete => {
            let cfg = ctx.broker.config();
            let system = cfg
                .auth
                .operator
                .as_ref()
                .and_then(|op| op.system_account.clone())
                .or_else(|| cfg.system_account.clone());
            let refused =
                match claims::check_delete(&body, &store.keys, dir.allow_delete, system.as_deref())
                {
                    Err(refused) => refused,
                    Ok(accounts) => {
                        let n = accounts.len();
                        match dir.io.submit(Job::Delete { accounts }, reply.clone()) {
                            Ok(()) => return,
                            Err(_) => claims::delete_response(0, &vec![BUSY.to_owned(); n]),
                        }
                    }
                };
            respond(ctx, reply.as_deref(), &refused, now);
        }
    }
}

/// Acts on the directory work that finished (the waker fired): a stored JWT applies to the
/// live server and is answered, deleted accounts leave it, lookups and lists are answered.
pub(super) fn completed(ctx: &mut Ctx, now: Instant) {
    loop {
        let Some(Done { reply, outcome }) = ctx
            .claims
            .as_mut()
            .and_then(|s| s.dir.as_mut())
            .and_then(|d| d.io.poll())
        else {
            return;
        };
        let reply = reply.as_deref();
        match outcome {
            Outcome::Saved {
                account,
                token,
                result,
            } => {
                let response = match result {
                    Err(e) => Response::not_saved(&account, &e),
                    Ok(()) => {
                        apply_update(ctx, &account, token.trim(), now);
                        Response::updated(&account)
                    }
                };
                respond(ctx, reply, &response, now);
            }
            Outcome::Deleted {
                deleted,
                missing,
                errors,
            } => {
                apply_deletes(ctx, &deleted, now);
                let response = claims::delete_response(deleted.len() + missing, &errors);
                respond(ctx, reply, &response, now);
            }
            Outcome::Lookup(found) => match (found, reply) {
                (Ok(token), Some(reply)) => ctx.broker.publish_system(now, reply, token.as_bytes()),
                (Ok(_), None) => {}
                (Err(e), _) => log::error!("Merging resulted in error: {e}"),
            },
            Outcome::List(listed) => match (listed, reply) {
                (Ok(keys), Some(reply)) => {
                    log::debug!("list request responded with {} account ids", keys.len());
                    let Some(store) = ctx.claims.as_mut() else {
                        return;
                    };
                    let server = store.server_info(ctx.broker.config());
                    let json = claims::list_json(&keys, &server);
                    ctx.broker.publish_system(now, reply, json.as_bytes());
                }
                (Ok(_), None) => {}
                (Err(e), _) => log::error!("list request error: {e}"),
            },
        }
    }
}

fn respond(ctx: &mut Ctx, reply: Option<&str>, response: &Response, now: Instant) {
    if response.error.is_some() {
        log::error!("{}", response.log_line());
    } else {
        log::debug!("{}", response.log_line());
    }
    let (Some(reply), Some(store)) = (reply, ctx.claims.as_mut()) else {
        return;
    };
    let server = store.server_info(ctx.broker.config());
    let json = response.to_json(&server);
    ctx.broker.publish_system(now, reply, json.as_bytes());
}

/// Whether the live server can serve an account JWT with these claims in place of its
/// account's: the broker must take it (`Trust::set_account`), so that a JWT natsws refuses at
/// start-up (such as one with `mappings`) is neither stored nor applied.
fn servable(claims: &jwt::Claims<jwt::Account>) -> Result<(), String> {
    broker::auth::operator::check_servable(claims).map_err(|e| e.to_string())
}

/// Whether the live server takes `token` (`verifyAccountClaims`).
fn check_live(ctx: &Ctx, token: &str) -> Result<(), String> {
    let keys = ctx
        .claims
        .as_ref()
        .ok_or_else(|| "no operator key found".to_owned())?;
    claims::check_live(token, &keys.keys, crate::operator::now_unix())
}

/// A MEMORY resolver's update (`accountClaimUpdate`): applied to the account when the server
/// has it and takes the JWT, never stored.
fn memory_update(ctx: &mut Ctx, account: &str, token: &str, now: Instant) -> Response {
    if let Err(refused) = claims::check_memory_update(account, token) {
        return refused;
    }
    let live = ctx.broker.operator_account_jwt(account);
    let Some(live) = live else {
        return Response::skipped(account);
    };
    // `updateAccountWithClaimJWT`: the account's own JWT again is an update that changes
    // nothing, answered before the JWT is verified (so even when it has expired since).
    if live == token.trim() {
        log::debug!("Requested account update for [{account}], same claims detected");
        return Response::updated(account);
    }
    if let Err(e) = check_live(ctx, token) {
        return Response::not_applied(account, &e);
    }
    if let Err(e) = broker::auth::operator::servable_claims(token) {
        return Response::not_saved(account, &e.to_string());
    }
    apply_update(ctx, account, token.trim(), now);
    Response::updated(account)
}

/// Applies a stored JWT to the live server, when the server takes it (otherwise the account
/// stays as it was, as in the reference's `updateAccountWithClaimJWT`): only this account
/// changes ([`broker::Broker::set_operator_account`]).
fn apply_update(ctx: &mut Ctx, account: &str, token: &str, now: Instant) {
    if let Err(e) = check_live(ctx, token) {
        log::error!("update resulted in error {e}");
        return;
    }
    if ctx.broker.operator_account_jwt(account) == Some(token.trim()) {
        return;
    }
    match ctx.broker.set_operator_account(token, now) {
        Ok(update) => {
            log::debug!(
                "account {account} updated, {} of its clients checked again",
                update.rechecked
            );
            follow_in_settings(ctx, &update.replaced, Some(token.trim()));
        }
        Err(e) => log::error!("update resulted in error {e}"),
    }
}

/// Removes deleted accounts from the live server.
fn apply_deletes(ctx: &mut Ctx, deleted: &[String], now: Instant) {
    if deleted.is_empty() {
        return;
    }
    let update = ctx.broker.remove_operator_accounts(deleted, now);
    follow_in_settings(ctx, &update.replaced, None);
}

/// Changes the settings' operator accounts as the broker's changed (`replaced` by `new`, or
/// removed), so that a later reload compares against what runs.
fn follow_in_settings(ctx: &mut Ctx, replaced: &[String], new: Option<&str>) {
    for auth in [&mut ctx.settings.broker.auth, &mut ctx.settings.auth] {
        let Some(op) = auth.operator.as_mut() else {
            continue;
        };
        match new {
            Some(_) => broker::auth::operator::replace_account(
                &mut op.accounts,
                replaced.first().map(String::as_str),
                new,
            ),
            None => {
                for old in replaced {
                    broker::auth::operator::replace_account(&mut op.accounts, Some(old), None);
                }
            }
        }
    }
}
