//! The listening sockets: binding (one dual-stack socket for an any-address host, as Go's
//! `net.Listen` does for nats-server), the TLS configuration each listener hands its
//! connections, accepting with a pause when file descriptors run out, and the ports file.
//! Start-up and reload bind through the same functions, so both report a taken port in
//! nats-server's words.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use crate::monitor::Bound;
use crate::settings::{ListenSpec, Settings, WsSettings};

pub(super) const CLIENT_LISTENER: Token = Token(0);
pub(super) const WS_LISTENER: Token = Token(1);
pub(super) const HTTP_LISTENER: Token = Token(2);
pub(super) const HTTPS_LISTENER: Token = Token(3);
pub(super) const LEAF_LISTENER: Token = Token(6);
pub(super) const MQTT_LISTENER: Token = Token(7);

/// How long accepting pauses after EMFILE/ENFILE.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The listeners and what their connections start with.
#[derive(Debug, Default)]
pub(super) struct Listeners {
    client: Option<TcpListener>,
    ws: Option<TcpListener>,
    http: Option<TcpListener>,
    https: Option<TcpListener>,
    leaf: Option<TcpListener>,
    mqtt: Option<TcpListener>,
    pub(super) mqtt_tls: Option<Arc<rustls::ServerConfig>>,
    /// WebSocket upgrades are also accepted on the monitoring port.
    pub(super) ws_on_http: bool,
    pub(super) client_tls: Option<Arc<rustls::ServerConfig>>,
    pub(super) ws_tls: Option<Arc<rustls::ServerConfig>>,
    pub(super) https_tls: Option<Arc<rustls::ServerConfig>>,
    pub(super) leaf_tls: Option<Arc<rustls::ServerConfig>>,
    /// The ports actually bound.
    pub(super) bound: Bound,
    accept_paused_until: Option<Instant>,
    emfile_logged: bool,
    ports_file: Option<String>,
}

/// The websocket listener a configuration asks for, bound but not yet registered.
#[derive(Debug)]
pub(super) struct WsBinding {
    /// `None` when WebSocket shares the http monitoring port.
    pub(super) listener: Option<TcpListener>,
    pub(super) port: u16,
}

impl WsBinding {
    pub(super) fn on_http(&self) -> bool {
        self.listener.is_none()
    }
}

/// True for `0.0.0.0`, `::` and the empty host: every interface.
fn is_any_host(host: &str) -> bool {
    host.is_empty()
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified())
}

/// Binds a listener. An any-address host listens on IPv4 and IPv6 alike through one
/// dual-stack socket, as Go's `net.Listen` does for nats-server; where IPv6 is unavailable
/// it falls back to IPv4 only.
fn bind(host: &str, port: u16) -> io::Result<TcpListener> {
    if is_any_host(host) {
        match bind_dual_stack(port) {
            Ok(l) => return Ok(l),
            // No IPv6 on this machine: listen on IPv4 only.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)
                ) => {}
            Err(e) => return Err(e),
        }
    }
    let addr: SocketAddr = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
    TcpListener::bind(addr)
}

fn bind_dual_stack(port: u16) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    let addr = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port));
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// The addresses an any-address listener is reachable on, for the ports file: every
/// interface's global-unicast, loopback and link-local address (Go's `resolveHostPorts`
/// lists them all), ordered by interface index; `None` for any other host.
fn interface_hosts(host: &str) -> Option<Vec<String>> {
    if !is_any_host(host) {
        return None;
    }
    let mut ifaces = if_addrs::get_if_addrs().ok()?;
    ifaces.sort_by_key(|i| i.index.unwrap_or(u32::MAX));
    let hosts: Vec<String> = ifaces.iter().map(|i| i.ip().to_string()).collect();
    (!hosts.is_empty()).then_some(hosts)
}

/// The first global unicast address of the machine's interfaces, in interface order, as
/// `server/server.go` `getNonLocalIPsIfHostIsIPAny` picks it for the leafnode INFO: no
/// loopback, link-local, multicast, broadcast or unspecified address.
fn first_global_unicast() -> Option<String> {
    let mut ifaces = if_addrs::get_if_addrs().ok()?;
    ifaces.sort_by_key(|i| i.index.unwrap_or(u32::MAX));
    ifaces.iter().map(if_addrs::Interface::ip).find_map(|ip| {
        let global = match ip {
            std::net::IpAddr::V4(v4) => {
                !(v4.is_loopback()
                    || v4.is_link_local()
                    || v4.is_multicast()
                    || v4.is_broadcast()
                    || v4.is_unspecified())
            }
            std::net::IpAddr::V6(v6) => {
                !(v6.is_loopback()
                    || v6.is_unicast_link_local()
                    || v6.is_multicast()
                    || v6.is_unspecified())
            }
        };
        global.then(|| ip.to_string())
    })
}

pub(super) fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn local_port(l: &TcpListener) -> u16 {
    l.local_addr().map(|a| a.port()).unwrap_or(0)
}

/// Binds and registers the websocket listener `ws` asks for, or shares the http monitoring
/// port (bound on `http_port`) when `ws` names the same address without TLS. Nothing running
/// changes: the listener is registered under [`WS_LISTENER`] (the loop does not poll before
/// [`Listeners::swap_websocket`] takes it), and dropping the binding closes and so
/// unregisters it.
pub(super) fn bind_websocket(
    registry: &Registry,
    ws: &WsSettings,
    http: Option<&ListenSpec>,
    http_port: Option<u16>,
    tls: bool,
) -> Result<WsBinding, String> {
    let shared = http
        .is_some_and(|h| h.host == ws.listen.host && h.port == ws.listen.port && h.port > 0)
        && !tls;
    if shared {
        return Ok(WsBinding {
            listener: None,
            port: http_port.unwrap_or(0),
        });
    }
    let bound = if ws.reuse_port {
        bind_reuse_port(&ws.listen.host, ws.listen.bind_port())
    } else {
        bind(&ws.listen.host, ws.listen.bind_port())
    };
    let mut l = bound.map_err(|e| {
        format!(
            "Unable to listen for websocket connections: listen tcp {}: {}",
            host_port(&ws.listen.host, ws.listen.bind_port()),
            go_net_error(&e)
        )
    })?;
    registry
        .register(&mut l, WS_LISTENER, Interest::READABLE)
        .map_err(|e| e.to_string())?;
    Ok(WsBinding {
        port: local_port(&l),
        listener: Some(l),
    })
}

/// `bind` with `SO_REUSEPORT` (`websocket { reuse_port: true }`): every natsws process bound
/// so shares the port, and the kernel spreads new connections over them.
#[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
fn bind_reuse_port(host: &str, port: u16) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr: SocketAddr = if is_any_host(host) {
        SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, port))
    } else {
        (host, port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::AddrNotAvailable, "no address"))?
    };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// This system has no `SO_REUSEPORT`: the setting is refused.
#[cfg(not(all(unix, not(any(target_os = "solaris", target_os = "illumos")))))]
fn bind_reuse_port(_host: &str, _port: u16) -> io::Result<TcpListener> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "websocket reuse_port: SO_REUSEPORT is not available on this system",
    ))
}

/// An error of `bind` as Go's `net` package words it (`bind: address already in use`), which
/// nats-server's messages carry.
fn go_net_error(e: &io::Error) -> String {
    if e.raw_os_error().is_none() {
        return e.to_string();
    }
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    let lowered: String = chars
        .next()
        .map(|c| c.to_ascii_lowercase())
        .into_iter()
        .chain(chars)
        .collect();
    format!("bind: {lowered}")
}

/// Logs what nats-server logs for a websocket listener.
pub(super) fn log_websocket(ws: &WsSettings, port: u16) {
    log::info!(
        "Listening for websocket clients on {}://{}",
        ws.scheme(),
        host_port(&ws.listen.host, port)
    );
}

impl Listeners {
    /// Binds and registers every listener `settings` asks for and logs them; fills in the
    /// listener details the broker's INFO carries. `ws_tls` is the websocket TLS, loaded.
    pub(super) fn bind(
        registry: &Registry,
        settings: &mut Settings,
        ws_tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<Self, String> {
        let mut this = Self::default();
        this.client_tls = match &settings.client_tls {
            Some(spec) => Some(spec.load()?),
            None => None,
        };
        this.https_tls = if settings.https.is_some() {
            match &this.client_tls {
                Some(t) => Some(t.clone()),
                None => return Err("TLS config required for https monitoring".to_owned()),
            }
        } else {
            None
        };
        // The http and https monitor listeners differ only in their token and log word.
        let bind_monitor =
            |h: &ListenSpec, token: Token, scheme: &str| -> Result<(TcpListener, u16), String> {
                let mut l = bind(&h.host, h.bind_port()).map_err(|e| {
                    format!(
                        "Can't listen to the monitor port: listen tcp {}: {}",
                        host_port(&h.host, h.bind_port()),
                        go_net_error(&e)
                    )
                })?;
                let port = local_port(&l);
                registry
                    .register(&mut l, token, Interest::READABLE)
                    .map_err(|e| e.to_string())?;
                log::info!("Starting {scheme} monitor on {}", host_port(&h.host, port));
                Ok((l, port))
            };
        if let Some(h) = &settings.http {
            let (l, port) = bind_monitor(h, HTTP_LISTENER, "http")?;
            this.bound.http_port = Some(port);
            this.http = Some(l);
        }
        if let Some(h) = &settings.https {
            let (l, port) = bind_monitor(h, HTTPS_LISTENER, "https")?;
            this.bound.https_port = Some(port);
            this.https = Some(l);
        }
        if let Some(ws) = settings.websocket.clone() {
            this.ws_tls = ws_tls;
            let binding = bind_websocket(
                registry,
                &ws,
                settings.http.as_ref(),
                this.bound.http_port,
                this.ws_tls.is_some(),
            )?;
            let shared = binding.on_http();
            let port = binding.port;
            this.swap_websocket(registry, Some(binding));
            log_websocket(&ws, port);
            if shared {
                log::info!("Websocket clients share the http monitoring port");
            }
            if this.ws_tls.is_none() {
                log::warn!("Websocket not configured with TLS. DO NOT USE IN PRODUCTION!");
            }
            settings.broker.websocket_listener = this.websocket_info(settings);
        }
        if let Some(mqtt) = settings.mqtt.clone() {
            this.mqtt_tls = match &mqtt.tls {
                Some(spec) => Some(spec.load()?),
                None => None,
            };
            let (host, port) = (&mqtt.listen.host, mqtt.listen.bind_port());
            let mut l = bind(host, port).map_err(|e| {
                format!(
                    "Unable to listen for MQTT connections: listen tcp {}: {}",
                    host_port(host, port),
                    go_net_error(&e)
                )
            })?;
            let port = local_port(&l);
            registry
                .register(&mut l, MQTT_LISTENER, Interest::READABLE)
                .map_err(|e| e.to_string())?;
            let scheme = if this.mqtt_tls.is_some() {
                "tls"
            } else {
                "mqtt"
            };
            log::info!(
                "Listening for MQTT clients on {scheme}://{}",
                host_port(host, port)
            );
            this.mqtt = Some(l);
        }
        let mut client_listener = bind(&settings.client.host, settings.client.bind_port())
            .map_err(|e| {
                let addr = host_port(&settings.client.host, settings.client.bind_port());
                format!(
                    "Error listening on port: {addr}, \"listen tcp {addr}: {}\"",
                    go_net_error(&e)
                )
            })?;
        let client_port = local_port(&client_listener);
        registry
            .register(&mut client_listener, CLIENT_LISTENER, Interest::READABLE)
            .map_err(|e| e.to_string())?;
        this.client = Some(client_listener);
        this.bound.client_port = client_port;
        log::info!(
            "Listening for client connections on {}",
            host_port(&settings.client.host, client_port)
        );
        if settings.client_tls.is_some() {
            log::info!("TLS required for client connections");
        }
        settings.broker.client_listener = broker::ListenerInfo {
            host: settings.client.host.clone(),
            port: client_port,
            tls_required: this.client_tls.is_some(),
            tls_verify: settings.client_tls.as_ref().is_some_and(|t| t.verify),
            tls_available: false,
        };
        if let Some(leaf) = settings.leaf.listen.clone() {
            this.leaf_tls = match &settings.leaf.tls {
                Some(spec) => Some(spec.load()?),
                None => None,
            };
            let mut l = bind(&leaf.host, leaf.bind_port()).map_err(|e| {
                let addr = host_port(&leaf.host, leaf.bind_port());
                format!(
                    "Error listening on leafnode port: {addr}, \"listen tcp {addr}: {}\"",
                    go_net_error(&e)
                )
            })?;
            let port = local_port(&l);
            registry
                .register(&mut l, LEAF_LISTENER, Interest::READABLE)
                .map_err(|e| e.to_string())?;
            this.leaf = Some(l);
            this.bound.leaf_port = Some(port);
            log::info!(
                "Listening for leafnode connections on {}",
                host_port(&leaf.host, port)
            );
            // `server/leafnode.go` `startLeafNodeAcceptLoop` warns here, so only with a
            // leafnode port, when a remote skips the hub's certificate checks.
            if settings
                .leaf
                .remotes
                .iter()
                .any(|r| r.tls_client.as_ref().is_some_and(|t| t.insecure))
            {
                log::warn!(
                    "TLS certificate chain and hostname of solicited leafnodes will not be verified. DO NOT USE IN PRODUCTION!"
                );
            }
            // `server/leafnode.go` `setLeafNodeInfoHostPortAndIP`: the INFO's address and
            // `leafnode_urls` are `advertise`, else the listener's. (`no_advertise` only
            // keeps the URL from cluster peers, which natsws has none of.)
            let (info_host, info_port, url_host) = match &settings.leaf.advertise {
                Some(text) => {
                    let (host, port) = crate::settings::parse_leaf_advertise(text, port)?;
                    (host.clone(), port, host)
                }
                // An any-address host is given as the first non-local address, in INFO's
                // `host` as in `leafnode_urls`; without one it stays as configured.
                None if is_any_host(&leaf.host) => {
                    let host = first_global_unicast().unwrap_or_else(|| {
                        log::error!(
                            "Could not find any non-local IP for leafnode's listen specification {}",
                            gotext::quote(&leaf.host)
                        );
                        leaf.host.clone()
                    });
                    (host.clone(), port, host)
                }
                None => (leaf.host.clone(), port, leaf.host.clone()),
            };
            let url = host_port(&url_host, info_port);
            if settings.leaf.advertise.is_some() {
                log::info!("Advertise address for leafnode is set to {url}");
            }
            settings.broker.leaf_urls = vec![url];
            settings.broker.leaf_listener = Some(broker::ListenerInfo {
                host: info_host,
                port: info_port,
                tls_required: this.leaf_tls.is_some(),
                tls_verify: settings.leaf.tls.as_ref().is_some_and(|t| t.verify),
                tls_available: false,
            });
        }
        Ok(this)
    }

    /// Swaps in the websocket listener from [`bind_websocket`] (`None`: no websocket),
    /// deregistering the old one.
    pub(super) fn swap_websocket(&mut self, registry: &Registry, binding: Option<WsBinding>) {
        if let Some(mut l) = self.ws.take() {
            let _ = registry.deregister(&mut l);
        }
        self.ws_on_http = binding.as_ref().is_some_and(WsBinding::on_http);
        self.bound.ws_port = binding.as_ref().map(|b| b.port);
        self.ws = binding.and_then(|b| b.listener);
    }

    /// The websocket listener as the broker's INFO describes it.
    pub(super) fn websocket_info(&self, settings: &Settings) -> Option<broker::ListenerInfo> {
        match (&settings.websocket, self.bound.ws_port) {
            (Some(ws), Some(port)) => Some(broker::ListenerInfo {
                host: ws.listen.host.clone(),
                port,
                tls_required: self.ws_tls.is_some(),
                tls_verify: ws.tls.as_ref().is_some_and(|t| t.verify),
                tls_available: false,
            }),
            _ => None,
        }
    }

    /// Accepts one connection from `token`'s listener: `None` once it would block, or after
    /// an error (on EMFILE/ENFILE accepting then pauses for [`ACCEPT_BACKOFF`]).
    pub(super) fn accept(&mut self, token: Token, now: Instant) -> Option<(TcpStream, SocketAddr)> {
        if self.accept_paused_until.is_some_and(|t| now < t) {
            return None;
        }
        self.accept_paused_until = None;
        loop {
            let listener = match token {
                CLIENT_LISTENER => self.client.as_ref(),
                HTTP_LISTENER => self.http.as_ref(),
                HTTPS_LISTENER => self.https.as_ref(),
                WS_LISTENER => self.ws.as_ref(),
                LEAF_LISTENER => self.leaf.as_ref(),
                MQTT_LISTENER => self.mqtt.as_ref(),
                _ => None,
            }?;
            match listener.accept() {
                Ok((stream, addr)) => {
                    self.emfile_logged = false;
                    // IPv4 peers of a dual-stack listener arrive as `::ffff:a.b.c.d`; Go
                    // reports them as plain IPv4.
                    let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
                    return Some((stream, addr));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let fd_exhausted =
                        matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                    if !self.emfile_logged {
                        if fd_exhausted {
                            log::error!(
                                "Temporary accept error: {e} (file descriptors exhausted), retrying in {}ms",
                                ACCEPT_BACKOFF.as_millis()
                            );
                        } else {
                            log::error!("Temporary accept error: {e}");
                        }
                        self.emfile_logged = true;
                    }
                    self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                    return None;
                }
            }
        }
    }

    /// When accepting resumes after a pause.
    pub(super) fn paused_until(&self) -> Option<Instant> {
        self.accept_paused_until
    }

    /// True once a pause for file descriptors has ended: the listeners are to be drained.
    pub(super) fn take_resumed(&mut self, now: Instant) -> bool {
        if self.accept_paused_until.is_some_and(|t| now >= t) {
            self.accept_paused_until = None;
            return true;
        }
        false
    }

    /// Stops accepting clients (lame duck, shutdown); monitoring stays up.
    pub(super) fn close_client_listeners(&mut self, registry: &Registry) {
        for mut l in [
            self.client.take(),
            self.ws.take(),
            self.leaf.take(),
            self.mqtt.take(),
        ]
        .into_iter()
        .flatten()
        {
            let _ = registry.deregister(&mut l);
        }
    }

    /// Closes every listener.
    pub(super) fn close_all(&mut self, registry: &Registry) {
        self.close_client_listeners(registry);
        for mut l in [self.http.take(), self.https.take()].into_iter().flatten() {
            let _ = registry.deregister(&mut l);
        }
    }

    /// The ports file JSON (nats-server's `Ports`).
    pub(super) fn ports_json(&self, s: &Settings) -> String {
        #[derive(serde::Serialize)]
        struct Ports {
            #[serde(skip_serializing_if = "Vec::is_empty")]
            nats: Vec<String>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            monitoring: Vec<String>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            websocket: Vec<String>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            leafnodes: Vec<String>,
        }
        let hosts = |h: &str| -> Vec<String> {
            interface_hosts(h).unwrap_or_else(|| {
                if is_any_host(h) {
                    vec!["127.0.0.1".to_owned()]
                } else {
                    vec![h.to_owned()]
                }
            })
        };
        let nats_scheme = if self.client_tls.is_some() {
            "tls"
        } else {
            "nats"
        };
        let mut ports = Ports {
            nats: hosts(&s.client.host)
                .iter()
                .map(|h| format!("{nats_scheme}://{}", host_port(h, self.bound.client_port)))
                .collect(),
            monitoring: Vec::new(),
            websocket: Vec::new(),
            leafnodes: Vec::new(),
        };
        if let (Some(leaf), Some(p)) = (&s.leaf.listen, self.bound.leaf_port) {
            let scheme = if self.leaf_tls.is_some() {
                "tls"
            } else {
                "nats"
            };
            ports.leafnodes.extend(
                hosts(&leaf.host)
                    .iter()
                    .map(|h| format!("{scheme}://{}", host_port(h, p))),
            );
        }
        if let (Some(h), Some(p)) = (&s.http, self.bound.http_port) {
            ports.monitoring.extend(
                hosts(&h.host)
                    .iter()
                    .map(|h| format!("http://{}", host_port(h, p))),
            );
        }
        if let (Some(h), Some(p)) = (&s.https, self.bound.https_port) {
            ports.monitoring.extend(
                hosts(&h.host)
                    .iter()
                    .map(|h| format!("https://{}", host_port(h, p))),
            );
        }
        if let (Some(ws), Some(p)) = (&s.websocket, self.bound.ws_port) {
            ports.websocket.extend(
                hosts(&ws.listen.host)
                    .iter()
                    .map(|h| format!("{}://{}", ws.scheme(), host_port(h, p))),
            );
        }
        serde_json::to_string(&ports).unwrap_or_default()
    }

    /// Writes the ports file into `dir`, named after the program and the pid.
    pub(super) fn write_ports_file(
        &mut self,
        settings: &Settings,
        dir: &str,
        argv0: &str,
    ) -> Result<(), String> {
        let base = std::path::Path::new(argv0)
            .file_name()
            .map_or_else(|| "natsws".into(), |n| n.to_string_lossy().into_owned());
        let path = std::path::Path::new(dir).join(format!("{base}_{}.ports", std::process::id()));
        std::fs::write(&path, self.ports_json(settings))
            .map_err(|e| format!("Error writing ports file ({}): {e}", path.display()))?;
        self.ports_file = Some(path.to_string_lossy().into_owned());
        Ok(())
    }

    /// Rewrites the ports file after a reload changed a port.
    pub(super) fn refresh_ports_file(&self, settings: &Settings) {
        if let Some(path) = &self.ports_file {
            let _ = std::fs::write(path, self.ports_json(settings));
        }
    }

    /// Removes the ports file at exit.
    pub(super) fn remove_ports_file(&self) {
        if let Some(p) = &self.ports_file {
            let _ = std::fs::remove_file(p);
        }
    }
}
