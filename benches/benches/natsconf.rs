//! Criterion benchmarks for `natsconf`: parsing a large realistic config (throughput in bytes).

use std::fmt::Write as _;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use natsconf::{MemLoader, NoEnv, parse_source};

/// A realistic server config grown to about `target` bytes: server settings, a websocket
/// block, TLS, cluster routes, and many accounts with users, permissions, exports and imports.
fn large_config(target: usize) -> String {
    let mut text = String::from(
        "# natsws benchmark config\nport: 4222\nhost: 0.0.0.0\nserver_name: bench-1\n\
         max_payload: 1MB\nmax_pending: 64MB\nmax_connections: 64K\nping_interval: \"2m\"\n\
         write_deadline: \"10s\"\nlisten: 0.0.0.0:4222\n\
         websocket {\n  listen: \"0.0.0.0:8080\"\n  no_tls: true\n  compression: true\n  \
         allowed_origins: [\"http://localhost:3000\", \"https://example.com\"]\n}\n\
         tls {\n  cert_file: \"/etc/nats/certs/server.pem\"\n  key_file: \"/etc/nats/certs/key.pem\"\n  \
         timeout: 2.5\n}\n\
         cluster {\n  name: bench\n  listen: 0.0.0.0:6222\n  routes = [\n    nats-route://a:6222\n    \
         nats-route://b:6222\n  ]\n}\nSHARED_PASS: \"s3cr3t-shared\"\naccounts {\n",
    );
    let mut account = 0;
    while text.len() < target {
        let _ = write!(
            text,
            "  ACC{account}: {{\n    jetstream: {{ max_mem: 512M, max_file: 10GiB, max_streams: 100 }}\n    users: [\n"
        );
        for user in 0..8 {
            let _ = write!(
                text,
                "      {{ user: \"user{account}_{user}\", password: $SHARED_PASS, permissions: {{\n        \
                 publish: {{ allow: [\"orders.{account}.>\", \"_INBOX.>\"], deny: \"admin.>\" }}\n        \
                 subscribe: {{ allow: [\"events.{account}.*\", \"q.{user}\"] }}\n      }} }}\n"
            );
        }
        let _ = write!(
            text,
            "    ]\n    exports: [ {{ stream: \"events.{account}.>\" }}, {{ service: \"help.{account}\" }} ]\n    \
             # imports from the previous account\n    imports: [ {{ stream: {{ account: ACC{}, subject: \"x.>\" }}, prefix: p{account} }} ]\n  }}\n",
            account.max(1) - 1
        );
        account += 1;
    }
    text.push_str("}\nsystem_account: ACC0\n");
    text
}

fn parse_large_config(c: &mut Criterion) {
    let text = large_config(1 << 20);
    let mut group = c.benchmark_group("natsconf");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("parse_1MiB_realistic", |b| {
        b.iter(|| {
            let map = parse_source(text.as_bytes(), b"bench.conf", &NoEnv, &MemLoader::new())
                .expect("bench config parses");
            std::hint::black_box(map);
        });
    });
    group.finish();
}

criterion_group!(benches, parse_large_config);
criterion_main!(benches);
