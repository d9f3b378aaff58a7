//! The servers under test: a fresh process per run, with its own config, on loopback ports it
//! picks itself (`127.0.0.1:-1`, read back from `--ports_file_dir`), and the throw-away
//! certificate authority of the wss scenarios.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::scenarios::{Edges, Link};

/// How long a server may take to write its ports file.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A certificate for 127.0.0.1 and localhost, its key, and a client config trusting its CA.
pub(crate) struct Pki {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) client: Arc<rustls::ClientConfig>,
}

fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Makes a CA and a server certificate signed by it in `dir` with the `openssl` tool, as the
/// integration tests do (`bins/natsws/tests/tls.rs`); both expire in two days.
pub(crate) fn make_pki(dir: &Path) -> Result<Pki, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| e.to_string())?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=loadgen CA",
    ]);
    openssl(dir, &ca)?;
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server-key.pem",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(dir, &csr)?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    )?;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(dir.join("ca.pem")).map_err(|e| e.to_string())? {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Pki {
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
        client: Arc::new(client),
    })
}

/// The config of one run: client port, monitoring, and a WebSocket port with compression
/// allowed, plain or with the given certificate.
pub(crate) fn config(tls: Option<&Pki>) -> String {
    let ws_security = match tls {
        None => "no_tls: true".to_owned(),
        Some(pki) => format!(
            "tls {{ cert_file: \"{}\", key_file: \"{}\" }}",
            pki.cert.display(),
            pki.key.display()
        ),
    };
    format!(
        "listen: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\n\
         websocket {{\n  listen: \"127.0.0.1:-1\"\n  {ws_security}\n  compression: true\n}}\n"
    )
}

/// Whether `program` is nats-server (by its file name): MQTT there needs JetStream, which
/// natsws refuses as an option it does not serve.
pub(crate) fn is_nats_server(program: &Path) -> bool {
    program
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("nats-server"))
}

/// The MQTT scenarios' config: [`config`] with a server name and an `mqtt` block, so that the
/// WebSocket port also serves MQTT at `/mqtt`. State goes under `store` on both servers:
/// nats-server 2.9.10 needs JetStream for MQTT (its sessions and QoS 1 messages are streams
/// there); natsws keeps its MQTT sessions and retained messages under `store_dir`.
pub(crate) fn mqtt_config(nats_server: bool, store: &Path) -> String {
    let state = if nats_server {
        format!("jetstream {{ store_dir: \"{}\" }}\n", store.display())
    } else {
        format!("store_dir: \"{}\"\n", store.display())
    };
    format!(
        "{}server_name: loadgen\nmqtt {{ listen: \"127.0.0.1:-1\" }}\n{state}",
        config(None)
    )
}

/// The hub of the leaf scenarios: client and WebSocket ports as [`config`], and a leafnode port.
pub(crate) fn hub_config() -> String {
    format!("{}leafnodes {{ listen: \"127.0.0.1:-1\" }}\n", config(None))
}

/// An edge: [`config`] and a remote dialling `url` (the hub's leafnode port over TCP, or its
/// WebSocket port).
pub(crate) fn edge_config(url: &str) -> String {
    format!(
        "{}leafnodes {{ reconnect: 1, remotes: [ {{ url: \"{url}\" }} ] }}\n",
        config(None)
    )
}

/// One of several natsws edges on one WebSocket port (`ws_port`, or `-1` for the first one):
/// client and monitoring ports of its own, the WebSocket port bound with `reuse_port`, and a
/// remote dialling `url`.
pub(crate) fn shared_edge_config(ws_port: Option<u16>, url: &str) -> String {
    let port = ws_port.map_or_else(|| "-1".to_owned(), |p| p.to_string());
    format!(
        "listen: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\n\
         websocket {{\n  listen: \"127.0.0.1:{port}\"\n  no_tls: true\n  compression: true\n  reuse_port: true\n}}\n\
         leafnodes {{ reconnect: 1, remotes: [ {{ url: \"{url}\" }} ] }}\n"
    )
}

/// `GET path` on `addr` (HTTP/1.0, the connection closed by the server); the body.
pub(crate) fn http_get(addr: SocketAddr, path: &str) -> Result<String, String> {
    use std::io::{Read as _, Write as _};
    let mut sock = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("monitoring {addr}: {e}"))?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        sock,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("monitoring {addr}: {e}"))?;
    let mut text = String::new();
    sock.read_to_string(&mut text)
        .map_err(|e| format!("monitoring {addr}: {e}"))?;
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .ok_or_else(|| format!("monitoring {addr}: no HTTP body"))
}

/// Waits until the one leaf connection of `server` (its `/leafz?subs=1`) carries interest
/// in every one of `subjects`.
pub(crate) fn wait_leaf_interest(server: &Server, subjects: &[&str]) -> Result<(), String> {
    wait_leafs(server, 1, 1, subjects)
}

/// Waits until `server` has `leafs` leaf connections (its `/leafz?subs=1`) and at least
/// `carrying` of them carry interest in every one of `subjects`.
pub(crate) fn wait_leafs(
    server: &Server,
    leafs: usize,
    carrying: usize,
    subjects: &[&str],
) -> Result<(), String> {
    let http = server.http.ok_or("no monitoring port")?;
    let deadline = Instant::now() + START_TIMEOUT;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(body) = http_get(http, "/leafz?subs=1") {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let full = v["leafs"].as_array().map_or(0, |all| {
                all.iter()
                    .filter(|leaf| {
                        let subs: Vec<&str> = leaf["subscriptions_list"]
                            .as_array()
                            .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
                            .unwrap_or_default();
                        subjects.iter().all(|s| subs.contains(s))
                    })
                    .count()
            });
            if v["leafnodes"] == leafs && full >= carrying {
                return Ok(());
            }
            last = body;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!(
        "not {carrying} of {leafs} leafs with interest in {subjects:?} after {START_TIMEOUT:?}: {last}"
    ))
}

/// How many client connections `server` holds (its `/varz`).
pub(crate) fn client_count(server: &Server) -> Result<u64, String> {
    let http = server.http.ok_or("no monitoring port")?;
    let v: serde_json::Value =
        serde_json::from_str(&http_get(http, "/varz")?).map_err(|e| format!("/varz: {e}"))?;
    v["connections"]
        .as_u64()
        .ok_or_else(|| "/varz has no connections".to_owned())
}

/// The hub of the leaf scenarios unless `--hub` names another: Debian's nats-server.
pub(crate) const HUB: &str = "/usr/sbin/nats-server";

/// The servers of one run.
pub(crate) struct Run {
    /// The server under test; in leaf scenarios the (first) edge.
    pub(crate) server: Server,
    /// The hub of a leaf scenario.
    pub(crate) hub: Option<Server>,
    /// The other edges, on the first one's WebSocket port.
    pub(crate) more_edges: Vec<Server>,
}

/// The servers of one run: `program` alone, or (`leaf`) a fresh hub (`hub`, nats-server or
/// natsws) and `program` as its leaf over that link (TCP to the hub's leafnode port, or `ws://` to its WebSocket
/// port), linked before this returns; several edges share one WebSocket port with
/// `reuse_port`. With `mqtt`, the server's config is [`mqtt_config`].
pub(crate) fn start_run(
    program: &Path,
    hub: &Path,
    dir: &Path,
    tls: Option<&Pki>,
    leaf: Option<Edges>,
    mqtt: bool,
) -> Result<Run, String> {
    let alone = |server| Run {
        server,
        hub: None,
        more_edges: Vec::new(),
    };
    if mqtt {
        let conf = mqtt_config(is_nats_server(program), &dir.join("store"));
        return Ok(alone(Server::start(program, dir, &conf)?));
    }
    let Some(Edges {
        link,
        count,
        reuse_port,
    }) = leaf
    else {
        return Ok(alone(Server::start(program, dir, &config(tls))?));
    };
    let hub = Server::start(hub, &dir.join("hub"), &hub_config())?;
    let url = match link {
        Link::Tcp => format!(
            "nats://{}",
            hub.leaf.ok_or("the hub's /varz has no leafnode port")?
        ),
        Link::Ws => format!("ws://{}", hub.ws),
    };
    if !reuse_port {
        let edge = Server::start(program, &dir.join("edge"), &edge_config(&url))?;
        wait_leaf_interest(&hub, &[])?;
        return Ok(Run {
            server: edge,
            hub: Some(hub),
            more_edges: Vec::new(),
        });
    }
    let first = Server::start(
        program,
        &dir.join("edge-1"),
        &shared_edge_config(None, &url),
    )?;
    let mut more_edges = Vec::new();
    for i in 2..=count {
        more_edges.push(Server::start(
            program,
            &dir.join(format!("edge-{i}")),
            &shared_edge_config(Some(first.ws.port()), &url),
        )?);
    }
    wait_leafs(&hub, count, 0, &[])?;
    Ok(Run {
        server: first,
        hub: Some(hub),
        more_edges,
    })
}

/// A running server, stopped when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) pid: u32,
    pub(crate) nats: SocketAddr,
    pub(crate) ws: SocketAddr,
    /// The leafnode port, when the config has one.
    pub(crate) leaf: Option<SocketAddr>,
    /// The monitoring port.
    pub(crate) http: Option<SocketAddr>,
    dir: PathBuf,
}

impl Server {
    /// Starts `program -c <dir>/server.conf` in the fresh directory `dir`, with its soft
    /// open-files limit raised to the hard limit, and waits for its ports.
    pub(crate) fn start(program: &Path, dir: &Path, conf: &str) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let conf_path = dir.join("server.conf");
        std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
        let stderr = std::fs::File::create(dir.join("stderr.log")).map_err(|e| e.to_string())?;
        // `exec` keeps the shell's pid, so the pid we hold is the server's.
        let child = Command::new("sh")
            .arg("-c")
            .arg("ulimit -n \"$(ulimit -Hn)\" 2>/dev/null; exec \"$0\" \"$@\"")
            .arg(program)
            .arg("-c")
            .arg(&conf_path)
            .arg("--ports_file_dir")
            .arg(dir)
            .arg("-l")
            .arg(dir.join("server.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("{}: {e}", program.display()))?;
        let pid = child.id();
        let name = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ports_file = dir.join(format!("{name}_{pid}.ports"));
        let mut server = Self {
            child,
            pid,
            nats: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            ws: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            leaf: None,
            http: None,
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(text) = std::fs::read_to_string(&ports_file)
                && let Ok(ports) = serde_json::from_str::<serde_json::Value>(&text)
                && let (Some(nats), Some(ws)) =
                    (port_of(&ports, "nats"), port_of(&ports, "websocket"))
            {
                server.nats.set_port(nats);
                server.ws.set_port(ws);
                let local = |p| SocketAddr::from((Ipv4Addr::LOCALHOST, p));
                server.http = port_of(&ports, "monitoring").map(local);
                // nats-server's ports file has no leafnode port: /varz has it.
                if let Some(http) = server.http
                    && conf.contains("leafnodes { listen")
                {
                    let varz = http_get(http, "/varz")?;
                    let v: serde_json::Value = serde_json::from_str(&varz).unwrap_or_default();
                    server.leaf = v["leaf"]["port"]
                        .as_u64()
                        .and_then(|p| u16::try_from(p).ok())
                        .map(local);
                }
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "{} exited at start ({status}): {}{}",
                    program.display(),
                    std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default(),
                    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("{} wrote no ports file", program.display()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The end of the server's log, for error reports.
    pub(crate) fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }

    /// Stops the server: SIGTERM, then SIGKILL after 5 s.
    pub(crate) fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The port of the first URL under `key` in a ports file (`{"nats":["nats://127.0.0.1:4222"]}`).
fn port_of(ports: &serde_json::Value, key: &str) -> Option<u16> {
    let url = ports.get(key)?.get(0)?.as_str()?;
    url.trim_end_matches('/').rsplit(':').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ports_files() {
        let ports: serde_json::Value = serde_json::from_str(
            r#"{"nats":["nats://127.0.0.1:4222"],"websocket":["wss://127.0.0.1:8443/"]}"#,
        )
        .unwrap();
        assert_eq!(port_of(&ports, "nats"), Some(4222));
        assert_eq!(port_of(&ports, "websocket"), Some(8443));
        assert_eq!(port_of(&ports, "monitoring"), None);
    }

    #[test]
    fn mqtt_config_names_the_store_each_server_needs() {
        let store = Path::new("/tmp/x");
        let theirs = mqtt_config(true, store);
        assert!(theirs.contains("jetstream { store_dir: \"/tmp/x\" }"));
        assert!(theirs.contains("server_name: loadgen"));
        assert!(theirs.contains("mqtt { listen"));
        let ours = mqtt_config(false, store);
        assert!(ours.contains("\nstore_dir: \"/tmp/x\""));
        assert!(!ours.contains("jetstream"));
        assert!(is_nats_server(Path::new("/usr/sbin/nats-server")));
        assert!(!is_nats_server(Path::new("target/release/natsws")));
    }

    #[test]
    fn config_has_the_three_listeners() {
        let conf = config(None);
        assert!(conf.contains("listen: \"127.0.0.1:-1\""));
        assert!(conf.contains("no_tls: true"));
        assert!(conf.contains("compression: true"));
    }
}
