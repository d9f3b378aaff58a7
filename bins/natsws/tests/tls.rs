//! TLS on the NATS port and on the WebSocket port (wss), with certificates made at test time
//! by the `openssl` command-line tool.
mod common;

use common::pki::{Pki, make_pki};
use common::{Server, run_async};
use futures_util::StreamExt as _;

#[test]
fn wss_and_tls_nats_port() {
    let pki = make_pki();
    let conf = format!(
        "listen: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\ntls {{ cert_file: \"{c}\", key_file: \"{k}\" }}\nwebsocket {{ listen: \"127.0.0.1:-1\", tls {{ cert_file: \"{c}\", key_file: \"{k}\" }} }}\n",
        c = pki.path("server.pem"),
        k = pki.path("server-key.pem")
    );
    let srv = Server::with_config(&conf, &[]);
    assert!(
        srv.ports["websocket"][0]
            .as_str()
            .unwrap()
            .starts_with("wss://")
    );
    assert!(srv.ports["nats"][0].as_str().unwrap().starts_with("tls://"));
    srv.wait_log("Listening for websocket clients on wss://127.0.0.1:");
    let (ws_port, tcp_port) = (srv.ws_port(), srv.nats_port());
    let ca = pki.path("ca.pem");
    run_async(async move {
        let ws = async_nats::ConnectOptions::new()
            .add_root_certificates(ca.clone().into())
            .connect(format!("wss://localhost:{ws_port}"))
            .await
            .unwrap();
        let tcp = async_nats::ConnectOptions::new()
            .add_root_certificates(ca.into())
            .require_tls(true)
            .connect(format!("tls://localhost:{tcp_port}"))
            .await
            .unwrap();
        let mut sub = ws.subscribe("secure").await.unwrap();
        ws.flush().await.unwrap();
        tcp.publish("secure", "over tls".into()).await.unwrap();
        let big = bytes::Bytes::from(
            (0..600_000u32)
                .map(|i| (i % 251) as u8)
                .collect::<Vec<u8>>(),
        );
        tcp.publish("secure", big.clone()).await.unwrap();
        tcp.flush().await.unwrap();
        assert_eq!(&sub.next().await.unwrap().payload[..], b"over tls");
        assert_eq!(sub.next().await.unwrap().payload, big);
    });
    let (_, _, body) = srv.http_get("/connz?state=all");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ws_conn = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "websocket")
        .expect("ws connection")
        .clone();
    assert_eq!(ws_conn["tls_version"], "1.3");
    // The NATS-port client's TLS handshake finishes after its plaintext INFO; /connz still
    // reports it.
    let tcp_conn = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] != "websocket")
        .expect("tls connection")
        .clone();
    assert_eq!(tcp_conn["tls_version"], "1.3");
    assert!(
        tcp_conn["tls_cipher_suite"]
            .as_str()
            .is_some_and(|s| s.starts_with("TLS_")),
        "{tcp_conn}"
    );
    // A plain HTTP request on the wss port gets no upgrade.
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", ws_port)).unwrap();
    raw.set_read_timeout(Some(common::WAIT)).unwrap();
    use std::io::{Read as _, Write as _};
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = raw.read_to_end(&mut buf);
    assert_eq!(
        String::from_utf8_lossy(&buf),
        "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
    );
}

#[test]
fn wss_verify_requires_client_certificate() {
    let pki = make_pki();
    let conf = format!(
        "listen: \"127.0.0.1:-1\"\nwebsocket {{ listen: \"127.0.0.1:-1\", tls {{ cert_file: \"{c}\", key_file: \"{k}\", ca_file: \"{ca}\", verify: true }} }}\n",
        c = pki.path("server.pem"),
        k = pki.path("server-key.pem"),
        ca = pki.path("ca.pem")
    );
    let srv = Server::with_config(&conf, &[]);
    let ws_port = srv.ws_port();
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client-key.pem"),
    );
    run_async(async move {
        let with_cert = async_nats::ConnectOptions::new()
            .add_root_certificates(ca.clone().into())
            .add_client_certificate(cert.into(), key.into())
            .connect(format!("wss://localhost:{ws_port}"))
            .await;
        assert!(with_cert.is_ok(), "{with_cert:?}");
        let without = async_nats::ConnectOptions::new()
            .add_root_certificates(ca.into())
            .retry_on_initial_connect()
            .max_reconnects(Some(1))
            .connect(format!("wss://localhost:{ws_port}"));
        let res = tokio::time::timeout(std::time::Duration::from_secs(3), without).await;
        match res {
            Err(_) => {}
            Ok(Err(_)) => {}
            Ok(Ok(client)) => {
                // The connection may look open until the first flush fails.
                assert!(client.flush().await.is_err());
            }
        }
    });
}

/// A SIGHUP picks up new wss certificate material: after the reload, new connections are
/// served the certificate of the second CA only.
#[test]
fn reload_replaces_the_wss_certificate() {
    let (first, second) = (make_pki(), make_pki());
    let conf = |pki: &Pki| {
        format!(
            "listen: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\nwebsocket {{ listen: \"127.0.0.1:-1\", tls {{ cert_file: \"{c}\", key_file: \"{k}\" }} }}\n",
            c = pki.path("server.pem"),
            k = pki.path("server-key.pem")
        )
    };
    let srv = Server::with_config(&conf(&first), &[]);
    let port = srv.ws_port();
    let trusts = |ca: String| -> bool {
        run_async(async move {
            async_nats::ConnectOptions::new()
                .add_root_certificates(ca.into())
                .connect(format!("wss://localhost:{port}"))
                .await
                .is_ok()
        })
    };
    assert!(trusts(first.path("ca.pem")));
    assert!(!trusts(second.path("ca.pem")));
    srv.reload(&conf(&second), 1);
    assert!(
        srv.log_text().contains("Reloaded server configuration"),
        "{}",
        srv.log_text()
    );
    assert!(trusts(second.path("ca.pem")));
    assert!(!trusts(first.path("ca.pem")));
}

/// One HTTPS GET (Connection: close) trusting `ca`: (status line, body).
fn https_get(ca: &str, port: u16, path: &str) -> (String, String) {
    use rustls::pki_types::pem::PemObject as _;
    use std::io::{Read as _, Write as _};
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(common::WAIT)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

/// The monitoring endpoints over https, with the server's TLS block; the ports file says so.
#[test]
fn https_monitoring() {
    let pki = make_pki();
    let conf = format!(
        "listen: \"127.0.0.1:-1\"\nhttps: \"127.0.0.1:-1\"\ntls {{ cert_file: \"{c}\", key_file: \"{k}\" }}\n",
        c = pki.path("server.pem"),
        k = pki.path("server-key.pem")
    );
    let srv = Server::with_config(&conf, &[]);
    let url = srv.ports["monitoring"][0].as_str().unwrap().to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let port = srv.http_port();
    let (status, body) = https_get(&pki.path("ca.pem"), port, "/varz");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["https_port"], port);
    assert_eq!(v["tls_required"], true);
    let (status, body) = https_get(&pki.path("ca.pem"), port, "/healthz");
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", "{\"status\":\"ok\"}")
    );
    srv.wait_log(&format!("Starting https monitor on 127.0.0.1:{port}"));
}
