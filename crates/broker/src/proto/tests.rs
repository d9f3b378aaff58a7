use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;

/// What a parse run produced: the ops, then the error (if any).
type Outcome = (Vec<Op>, Option<ProtoError>);

fn run_chunks(role: Role, limits: ParserLimits, chunks: &[&[u8]]) -> Outcome {
    let mut parser = Parser::new(role, limits);
    let mut buf = BytesMut::new();
    let mut ops = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match parser.parse(&mut buf) {
                Ok(Some(op)) => ops.push(op),
                Ok(None) => break,
                Err(err) => return (ops, Some(err)),
            }
        }
    }
    (ops, None)
}

fn run(input: &[u8]) -> Outcome {
    run_chunks(Role::Server, hdr_limits(), &[input])
}

fn hdr_limits() -> ParserLimits {
    ParserLimits {
        headers: true,
        ..ParserLimits::default()
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn publ(subject: &str, reply: Option<&str>, hdr: Option<usize>, msg: &str) -> Op {
    Op::Pub(Publish {
        subject: b(subject),
        reply: reply.map(b),
        header_len: hdr,
        message: b(msg),
    })
}

fn check(input: &str, expect_ops: &[Op], expect_err: Option<ProtoError>) {
    let (ops, err) = run(input.as_bytes());
    assert_eq!(ops, expect_ops, "input {input:?}");
    assert_eq!(err, expect_err, "input {input:?}");
}

#[test]
fn simple_ops() {
    check("PING\r\n", &[Op::Ping], None);
    check("PONG\r\n", &[Op::Pong], None);
    check("+OK\r\n", &[Op::Ok], None);
    check("pInG\n", &[Op::Ping], None);
    check("PINGXYZ foo\r\n", &[Op::Ping], None);
    check("PING\rPING\r\n", &[Op::Ping], None);
    check("PING\r\nPONG\r\n", &[Op::Ping, Op::Pong], None);
    check("CONNECT {}\r\n", &[Op::Connect(b("{}"))], None);
    check("connect\t{\"a\":1}\n", &[Op::Connect(b("{\"a\":1}"))], None);
    check("CONNECT{}\r\n", &[Op::Connect(b("{}"))], None);
    check("CONNECT\r\n", &[Op::Connect(b(""))], None);
    check("INFO {}\r\n", &[Op::Info(b("{}"))], None);
    check("-ERR 'oops'\r\n", &[Op::Err(b("'oops'"))], None);
}

#[test]
fn pub_ops() {
    check(
        "PUB foo 2\r\nhi\r\n",
        &[publ("foo", None, None, "hi")],
        None,
    );
    check(
        "pub foo bar 0\r\n\r\n",
        &[publ("foo", Some("bar"), None, "")],
        None,
    );
    check(
        "PUB   foo \t rep   3  \r\nabc\r\n",
        &[publ("foo", Some("rep"), None, "abc")],
        None,
    );
    check(
        "PUB foo 003\nabc\r\n",
        &[publ("foo", None, None, "abc")],
        None,
    );
    check(
        "PUB foo 4\r\na\r\nb\r\n",
        &[publ("foo", None, None, "a\r\nb")],
        None,
    );
    check(
        "HPUB foo 18 20\r\nNATS/1.0\r\nA: B\r\n\r\nhi\r\n",
        &[publ("foo", None, Some(18), "NATS/1.0\r\nA: B\r\n\r\nhi")],
        None,
    );
    check(
        "HPUB foo r 0 2\r\nhi\r\n",
        &[publ("foo", Some("r"), Some(0), "hi")],
        None,
    );
}

#[test]
fn sub_unsub_ops() {
    check(
        "SUB foo 1\r\n",
        &[Op::Sub {
            subject: b("foo"),
            queue: None,
            sid: b("1"),
        }],
        None,
    );
    check(
        "sub foo.* q1  22\r\n",
        &[Op::Sub {
            subject: b("foo.*"),
            queue: Some(b("q1")),
            sid: b("22"),
        }],
        None,
    );
    check(
        "UNSUB 1\r\n",
        &[Op::Unsub {
            sid: b("1"),
            max: None,
        }],
        None,
    );
    check(
        "UNSUB 1 5\r\n",
        &[Op::Unsub {
            sid: b("1"),
            max: Some(5),
        }],
        None,
    );
    check(
        "UNSUB 1 -5\r\n",
        &[Op::Unsub {
            sid: b("1"),
            max: None,
        }],
        None,
    );
}

#[test]
fn errors() {
    use ProtoError::*;
    for input in [
        "\r\n",
        "X\r\n",
        "PUBfoo 1\r\n",
        "PUB\r\n",
        "UNSUB\r\n",
        "SUB\r\n",
        "MSG foo 1 1\r\nx\r\n",
        "PUB foo 1\r\nxY",
        "PUB foo 1\r\nx\rY",
        "PUB foo 1\r\nx\n",
        "-E\r\n",
    ] {
        let (_, err) = run(input.as_bytes());
        assert_eq!(err, Some(UnknownOp), "{input:?}");
    }
    for (input, op) in [
        ("PUB foo\r\n", OpName::Pub),
        ("PUB \r\n", OpName::Pub),
        ("PUB a b c 1\r\n", OpName::Pub),
        ("PUB foo 1234567890\r\n", OpName::Pub),
        ("PUB foo +1\r\n", OpName::Pub),
        ("PUB foo 1x\r\n", OpName::Pub),
        ("HPUB foo 1\r\n", OpName::Hpub),
        ("HPUB foo 3 2\r\n", OpName::Hpub),
        ("HPUB a b c d e\r\n", OpName::Hpub),
        ("SUB foo\r\n", OpName::Sub),
        ("SUB a b c d\r\n", OpName::Sub),
        ("UNSUB 1 2 3\r\n", OpName::Unsub),
    ] {
        let (_, err) = run(input.as_bytes());
        assert_eq!(err, Some(BadArgs(op)), "{input:?}");
    }
    let (_, err) = run_chunks(
        Role::Server,
        ParserLimits::default(),
        &[b"HPUB foo 0 0\r\n\r\n"],
    );
    assert_eq!(err, Some(HeadersNotSupported));
    let (_, err) = run(b"PUB foo 1048577\r\n");
    assert_eq!(err, Some(MaxPayload));
    let (_, err) = run(b"HPUB foo 1 1048577\r\n");
    assert_eq!(err, Some(MaxPayload));
    let (ops, err) = run(b"PUB foo 1048576\r\n");
    assert_eq!((ops.len(), err), (0, None));
}

#[test]
fn control_line_limit() {
    let limits = ParserLimits {
        max_control_line: 64,
        ..ParserLimits::default()
    };
    let ok = format!("SUB {} 1\r\n", "x".repeat(62));
    assert_eq!(run_chunks(Role::Server, limits, &[ok.as_bytes()]).1, None);
    let bad = format!("SUB {} 1\r\n", "x".repeat(63));
    assert_eq!(
        run_chunks(Role::Server, limits, &[bad.as_bytes()]).1,
        Some(ProtoError::MaxControlLine)
    );
    // A partial line is checked too, so an endless line cannot grow the buffer.
    let endless = "x".repeat(65);
    let res = run_chunks(Role::Server, limits, &[b"SUB ", endless.as_bytes()]);
    assert_eq!(res.1, Some(ProtoError::MaxControlLine));
    // Leading whitespace does not count; trailing whitespace does.
    let padded = format!("SUB      {} 1\r\n", "x".repeat(62));
    assert_eq!(
        run_chunks(Role::Server, limits, &[padded.as_bytes()]).1,
        None
    );
}

#[test]
fn client_role() {
    let (ops, err) = run_chunks(
        Role::Client,
        ParserLimits::default(),
        &[b"INFO {\"a\":1} \r\nMSG foo 1 2\r\nhi\r\nHMSG foo 9 rep 12 14\r\nNATS/1.0\r\n\r\nhi\r\n+OK\r\n-ERR 'x'\r\nPING\r\n"],
    );
    assert_eq!(err, None);
    assert_eq!(
        ops,
        vec![
            Op::Info(b("{\"a\":1} ")),
            Op::Msg(Delivery {
                subject: b("foo"),
                sid: b("1"),
                reply: None,
                header_len: None,
                message: b("hi"),
            }),
            Op::Msg(Delivery {
                subject: b("foo"),
                sid: b("9"),
                reply: Some(b("rep")),
                header_len: Some(12),
                message: b("NATS/1.0\r\n\r\nhi"),
            }),
            Op::Ok,
            Op::Err(b("'x'")),
            Op::Ping,
        ]
    );
    let (_, err) = run_chunks(
        Role::Client,
        ParserLimits::default(),
        &[b"PUB foo 1\r\nx\r\n"],
    );
    assert_eq!(err, Some(ProtoError::UnknownOp));
    let (_, err) = run_chunks(
        Role::Client,
        ParserLimits::default(),
        &[b"MSG foo 1 1048577\r\n"],
    );
    assert_eq!(err, Some(ProtoError::MaxPayload));
}

#[test]
fn poisoned_after_error() {
    let mut parser = Parser::new(Role::Server, ParserLimits::default());
    let mut buf = BytesMut::from(&b"XX\r\nPING\r\n"[..]);
    assert_eq!(parser.parse(&mut buf), Err(ProtoError::UnknownOp));
    assert_eq!(parser.parse(&mut buf), Err(ProtoError::UnknownOp));
}

#[test]
fn one_byte_at_a_time_is_linear() {
    // A slowloris line: every call must only look at the new byte.
    let limits = ParserLimits {
        max_control_line: 1 << 20,
        ..ParserLimits::default()
    };
    let mut parser = Parser::new(Role::Server, limits);
    let mut buf = BytesMut::new();
    buf.extend_from_slice(b"SUB ");
    for _ in 0..200_000 {
        buf.extend_from_slice(b"x");
        assert_eq!(parser.parse(&mut buf), Ok(None));
    }
    buf.extend_from_slice(b" 1\r\n");
    assert!(matches!(parser.parse(&mut buf), Ok(Some(Op::Sub { .. }))));
}

fn op_strategy() -> impl Strategy<Value = String> {
    let token = "[a-zA-Z0-9_]{1,6}";
    let subject = prop::collection::vec(token, 1..4).prop_map(|t| t.join("."));
    let payload = "[ -~]{0,40}";
    prop_oneof![
        Just("PING\r\n".to_owned()),
        Just("PONG\r\n".to_owned()),
        Just("+OK\r\n".to_owned()),
        Just("CONNECT {\"verbose\":false}\r\n".to_owned()),
        (subject.clone(), payload).prop_map(|(s, p)| format!("PUB {s} {}\r\n{p}\r\n", p.len())),
        (subject.clone(), token, "[ -~]{0,20}").prop_map(|(s, r, p)| format!(
            "HPUB {s} {r} 12 {}\r\nNATS/1.0\r\n\r\n{p}\r\n",
            p.len() + 12
        )),
        (subject.clone(), proptest::option::of(token), 1..100u32).prop_map(|(s, q, sid)| match q {
            Some(q) => format!("SUB {s} {q} {sid}\r\n"),
            None => format!("sub {s} {sid}\n"),
        }),
        (1..100u32, proptest::option::of(0..10u32)).prop_map(|(sid, max)| match max {
            Some(m) => format!("UNSUB {sid} {m}\r\n"),
            None => format!("UNSUB {sid}\r\n"),
        }),
        // Occasional garbage so errors are covered too.
        "[ -~\r\n]{0,12}",
    ]
}

/// PUB/HPUB lines the fast path must treat exactly like the parser, good and bad.
fn odd_pub_strategy() -> impl Strategy<Value = String> {
    let kw = prop_oneof![
        Just("PUB"),
        Just("pub"),
        Just("Pub"),
        Just("HPUB"),
        Just("hpub")
    ];
    let sep = prop_oneof![Just(" "), Just("\t"), Just("  "), Just(" \t ")];
    let end = prop_oneof![Just("\r\n"), Just("\n"), Just("\r\r\n"), Just(" \r\n")];
    let size_fmt = prop_oneof![Just(0usize), Just(1), Just(2)];
    (
        kw,
        sep.clone(),
        sep,
        end,
        "[a-z.*>]{0,8}",
        proptest::option::of("[a-z_.]{1,6}"),
        "[ -~]{0,20}",
        size_fmt,
        any::<bool>(),
    )
        .prop_map(
            |(kw, sep1, sep2, end, subject, reply, payload, size_fmt, good_tail)| {
                let hpub = kw.eq_ignore_ascii_case("HPUB");
                let size = match size_fmt {
                    0 => payload.len().to_string(),
                    1 => format!("00{}", payload.len()),
                    _ => (payload.len() + 1).to_string(),
                };
                let mut line = format!("{kw}{sep1}{subject}");
                if let Some(r) = reply {
                    line.push_str(sep2);
                    line.push_str(&r);
                }
                if hpub {
                    line.push_str(sep2);
                    line.push_str(&payload.len().min(3).to_string());
                }
                line.push_str(sep2);
                line.push_str(&size);
                line.push_str(end);
                line.push_str(&payload);
                line.push_str(if good_tail { "\r\n" } else { "\n" });
                line
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any split of the input gives the same ops and the same error (chunk invariance).
    #[test]
    fn split_invariance(ops in prop::collection::vec(op_strategy(), 1..12), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        let input: Vec<u8> = ops.concat().into_bytes();
        let whole = run_chunks(Role::Server, hdr_limits(), &[&input]);
        let bytewise: Vec<&[u8]> = input.chunks(1).collect();
        prop_assert_eq!(&run_chunks(Role::Server, hdr_limits(), &bytewise), &whole);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut prev = 0;
        for p in points {
            chunks.push(&input[prev..p]);
            prev = p;
        }
        chunks.push(&input[prev..]);
        prop_assert_eq!(&run_chunks(Role::Server, hdr_limits(), &chunks), &whole);
    }

    /// The in-place fast path (`peek_pub`) finds the same `PUB`/`HPUB` as `parse`, including
    /// odd spellings (tabs, lower case, LF only, padded sizes), for every split.
    #[test]
    fn peek_pub_agrees_with_parse(
        ops in prop::collection::vec(prop_oneof![op_strategy(), odd_pub_strategy()], 1..10),
        split in any::<u8>(),
    ) {
        let mut data = vec![split];
        data.extend_from_slice(ops.concat().as_bytes());
        crate::fuzzing::broker_proto(&data);
    }

    /// The word-at-a-time splitter equals the byte loop.
    #[test]
    fn split_ws_equals_split_args(line in prop::collection::vec(prop_oneof![Just(b' '), Just(b'\t'), Just(b'a'), Just(0x80u8), Just(0x21u8), Just(0x09u8 ^ 0x80), Just(0u8), Just(0xa0u8)], 0..40)) {
        prop_assert_eq!(split_ws::<3>(&line), split_args::<3>(&line, pub_sep));
        prop_assert_eq!(split_ws::<5>(&line), split_args::<5>(&line, pub_sep));
        prop_assert_eq!(find_ws(&line), line.iter().position(|b| *b == b' ' || *b == b'\t'));
        let newlines: Vec<u8> = line.iter().map(|b| if *b == b'a' { b'\n' } else { *b ^ 0x03 }).collect();
        prop_assert_eq!(find_newline(&newlines), newlines.iter().position(|b| *b == b'\n'));
    }

    /// Arbitrary bytes end in ops or an error, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = run(&data);
    }

    /// Well-formed ops round-trip: rendering ops a server reads and parsing the text gives back
    /// exactly those ops and no error, whole and byte by byte, and rendering them again gives
    /// the same text.
    #[test]
    fn server_ops_round_trip(ops in prop::collection::vec(server_op_strategy(), 1..10)) {
        check_round_trip(Role::Server, &ops)?;
    }

    /// The same for what a leaf connection reads, and any split of it gives the same ops
    /// (chunk invariance of `LS+`, `LS-`, `LMSG` and the leaf `HMSG`).
    #[test]
    fn leaf_ops_round_trip(ops in prop::collection::vec(leaf_op_strategy(), 1..10), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        check_round_trip(Role::Leaf, &ops)?;
        let input: Vec<u8> = ops.iter().flat_map(render).collect();
        let whole = run_chunks(Role::Leaf, hdr_limits(), &[&input]);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut prev = 0;
        for p in points {
            chunks.push(&input[prev..p]);
            prev = p;
        }
        chunks.push(&input[prev..]);
        prop_assert_eq!(&run_chunks(Role::Leaf, hdr_limits(), &chunks), &whole);
    }

    /// Arbitrary bytes on a leaf connection end in ops or an error, never a panic, and
    /// splitting them changes nothing.
    #[test]
    fn leaf_bytes_are_split_invariant(data in prop::collection::vec(prop_oneof![any::<u8>(), Just(b' '), Just(b'\n'), Just(b'L'), Just(b'S'), Just(b'+')], 0..200), cut in any::<prop::sample::Index>()) {
        let whole = run_chunks(Role::Leaf, hdr_limits(), &[&data]);
        let at = cut.index(data.len() + 1);
        prop_assert_eq!(&run_chunks(Role::Leaf, hdr_limits(), &[&data[..at], &data[at..]]), &whole);
        let bytewise: Vec<&[u8]> = data.chunks(1).collect();
        prop_assert_eq!(&run_chunks(Role::Leaf, hdr_limits(), &bytewise), &whole);
    }

    /// The same for what a client reads, `MSG` and `HMSG` included.
    #[test]
    fn client_ops_round_trip(ops in prop::collection::vec(client_op_strategy(), 1..10)) {
        check_round_trip(Role::Client, &ops)?;
    }
}

/// Renders `op` as its sender writes it: `PUB`/`HPUB` and `MSG`/`HMSG` with their sizes, the
/// optional parts only when present.
fn render(op: &Op) -> Vec<u8> {
    fn line(out: &mut Vec<u8>, parts: &[&[u8]]) {
        out.extend_from_slice(&parts.join(&b' '));
        out.extend_from_slice(b"\r\n");
    }
    let mut out = Vec::new();
    match op {
        Op::Connect(json) => line(&mut out, &[b"CONNECT", json]),
        Op::Info(json) => line(&mut out, &[b"INFO", json]),
        Op::Ping => line(&mut out, &[b"PING"]),
        Op::Pong => line(&mut out, &[b"PONG"]),
        Op::Ok => line(&mut out, &[b"+OK"]),
        Op::Err(text) => line(&mut out, &[b"-ERR", text]),
        Op::Sub {
            subject,
            queue,
            sid,
        } => {
            let mut parts: Vec<&[u8]> = vec![b"SUB", subject];
            parts.extend(queue.as_deref());
            parts.push(sid);
            line(&mut out, &parts);
        }
        Op::Unsub { sid, max } => {
            let max = max.map(|m| m.to_string());
            let mut parts: Vec<&[u8]> = vec![b"UNSUB", sid];
            parts.extend(max.as_deref().map(str::as_bytes));
            line(&mut out, &parts);
        }
        Op::Pub(publish) => {
            let sizes = sizes(publish.header_len, publish.message.len());
            let mut parts: Vec<&[u8]> = vec![
                if publish.header_len.is_some() {
                    b"HPUB"
                } else {
                    b"PUB"
                },
                &publish.subject,
            ];
            parts.extend(publish.reply.as_deref());
            parts.extend(sizes.iter().map(String::as_bytes));
            line(&mut out, &parts);
            out.extend_from_slice(&publish.message);
            out.extend_from_slice(b"\r\n");
        }
        Op::Msg(delivery) => {
            let sizes = sizes(delivery.header_len, delivery.message.len());
            let mut parts: Vec<&[u8]> = vec![
                if delivery.header_len.is_some() {
                    b"HMSG"
                } else {
                    b"MSG"
                },
                &delivery.subject,
                &delivery.sid,
            ];
            parts.extend(delivery.reply.as_deref());
            parts.extend(sizes.iter().map(String::as_bytes));
            line(&mut out, &parts);
            out.extend_from_slice(&delivery.message);
            out.extend_from_slice(b"\r\n");
        }
        Op::LeafSub { subject, queue } => {
            let weight = queue.as_ref().map(|(_, w)| w.to_string());
            let mut parts: Vec<&[u8]> = vec![b"LS+", subject];
            if let (Some((q, _)), Some(w)) = (queue, &weight) {
                parts.push(q);
                parts.push(w.as_bytes());
            }
            line(&mut out, &parts);
        }
        Op::LeafUnsub { subject, queue } => {
            let mut parts: Vec<&[u8]> = vec![b"LS-", subject];
            parts.extend(queue.as_deref());
            line(&mut out, &parts);
        }
        Op::LeafMsg(msg) => {
            let sizes = sizes(msg.header_len, msg.message.len());
            let mut parts: Vec<&[u8]> = vec![
                if msg.header_len.is_some() {
                    b"HMSG"
                } else {
                    b"LMSG"
                },
                &msg.subject,
            ];
            match (&msg.reply, &msg.queues) {
                (Some(r), Some(q)) => parts.extend([&b"+"[..], r, q]),
                (None, Some(q)) => parts.extend([&b"|"[..], q]),
                (Some(r), None) => parts.push(r),
                (None, None) => {}
            }
            parts.extend(sizes.iter().map(String::as_bytes));
            line(&mut out, &parts);
            out.extend_from_slice(&msg.message);
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

fn lmsg(
    subject: &str,
    reply: Option<&str>,
    queues: Option<&str>,
    hdr: Option<usize>,
    msg: &str,
) -> Op {
    Op::LeafMsg(LeafDelivery {
        subject: b(subject),
        reply: reply.map(b),
        queues: queues.map(b),
        header_len: hdr,
        message: b(msg),
    })
}

fn check_leaf(input: &str, expect_ops: &[Op], expect_err: Option<ProtoError>) {
    let (ops, err) = run_chunks(Role::Leaf, hdr_limits(), &[input.as_bytes()]);
    assert_eq!(ops, expect_ops, "input {input:?}");
    assert_eq!(err, expect_err, "input {input:?}");
}

#[test]
fn leaf_ops() {
    check_leaf(
        "LS+ foo\r\nls+ bar q1 3\r\nLS- foo\r\nLS- bar q1\r\n",
        &[
            Op::LeafSub {
                subject: b("foo"),
                queue: None,
            },
            Op::LeafSub {
                subject: b("bar"),
                queue: Some((b("q1"), 3)),
            },
            Op::LeafUnsub {
                subject: b("foo"),
                queue: None,
            },
            Op::LeafUnsub {
                subject: b("bar"),
                queue: Some(b("q1")),
            },
        ],
        None,
    );
    // The forms nats-server 2.9.10 sends (captured on the wire).
    check_leaf(
        "LMSG baz 2\r\nhi\r\nLMSG baz rep 2\r\nhi\r\nLMSG qq | grp 1\r\nq\r\nLMSG qq + rep grp 1\r\nr\r\n",
        &[
            lmsg("baz", None, None, None, "hi"),
            lmsg("baz", Some("rep"), None, None, "hi"),
            lmsg("qq", None, Some("grp"), None, "q"),
            lmsg("qq", Some("rep"), Some("grp"), None, "r"),
        ],
        None,
    );
    check_leaf(
        "HMSG baz rep 18 20\r\nNATS/1.0\r\nA: B\r\n\r\nhi\r\nHMSG q | a  b\tc 12 12\r\nNATS/1.0\r\n\r\n\r\n",
        &[
            lmsg(
                "baz",
                Some("rep"),
                None,
                Some(18),
                "NATS/1.0\r\nA: B\r\n\r\nhi",
            ),
            lmsg("q", None, Some("a  b\tc"), Some(12), "NATS/1.0\r\n\r\n"),
        ],
        None,
    );
    check_leaf(
        "CONNECT {}\r\nINFO {}\r\nPING\r\n-ERR 'x'\r\n",
        &[
            Op::Connect(b("{}")),
            Op::Info(b("{}")),
            Op::Ping,
            Op::Err(b("'x'")),
        ],
        None,
    );
    // Bad argument lines.
    for (line, op) in [
        ("LS+ a q\r\n", OpName::LeafSub),
        ("LS+ a q x\r\n", OpName::LeafSub),
        ("LS+ a q 1 2\r\n", OpName::LeafSub),
        ("LS- a q r\r\n", OpName::LeafUnsub),
        ("LMSG a\r\n", OpName::Lmsg),
        ("LMSG a x y\r\n", OpName::Lmsg),
        ("LMSG a b c 1\r\n", OpName::Lmsg),
        ("LMSG a + r 1\r\n", OpName::Lmsg),
        ("HMSG a 3 2\r\n", OpName::Hmsg),
        ("HMSG a 2\r\n", OpName::Hmsg),
    ] {
        check_leaf(line, &[], Some(ProtoError::BadArgs(op)));
    }
    // Client operations are unknown on a leaf connection, and the payload size is bounded.
    check_leaf("PUB a 1\r\nx\r\n", &[], Some(ProtoError::UnknownOp));
    check_leaf("MSG a 1 1\r\n", &[], Some(ProtoError::UnknownOp));
    check_leaf("LMSG a 1048577\r\n", &[], Some(ProtoError::MaxPayload));
}

fn leaf_op_strategy() -> impl Strategy<Value = Op> {
    let token = "[a-zA-Z0-9_]{1,6}".prop_map(|t| b(&t));
    let subject = prop::collection::vec("[a-zA-Z0-9_]{1,6}", 1..4).prop_map(|t| b(&t.join(".")));
    let queues = prop::collection::vec("[a-z]{1,4}", 1..4).prop_map(|q| b(&q.join(" ")));
    prop_oneof![
        Just(Op::Ping),
        Just(Op::Pong),
        (
            subject.clone(),
            proptest::option::of((token.clone(), 0..1000u32))
        )
            .prop_map(|(subject, queue)| Op::LeafSub { subject, queue }),
        (subject.clone(), proptest::option::of(token.clone()))
            .prop_map(|(subject, queue)| Op::LeafUnsub { subject, queue }),
        (
            subject,
            proptest::option::of(token),
            proptest::option::of(queues),
            proptest::option::of(0..4usize),
            "[ -~]{0,20}",
        )
            .prop_map(|(subject, reply, queues, hdr, payload)| {
                let message = match hdr {
                    Some(h) => format!("{}{payload}", "h".repeat(h)),
                    None => payload,
                };
                Op::LeafMsg(LeafDelivery {
                    subject,
                    reply,
                    queues,
                    header_len: hdr,
                    message: b(&message),
                })
            }),
    ]
}

/// The size arguments: `<size>`, or `<header size> <total size>` with headers.
fn sizes(header_len: Option<usize>, total: usize) -> Vec<String> {
    header_len
        .iter()
        .map(usize::to_string)
        .chain([total.to_string()])
        .collect()
}

fn check_round_trip(role: Role, ops: &[Op]) -> Result<(), TestCaseError> {
    let text: Vec<u8> = ops.iter().flat_map(render).collect();
    let whole = run_chunks(role, hdr_limits(), &[&text]);
    prop_assert_eq!(
        &whole,
        &(ops.to_vec(), None),
        "text {:?}",
        String::from_utf8_lossy(&text)
    );
    let bytewise: Vec<&[u8]> = text.chunks(1).collect();
    prop_assert_eq!(&run_chunks(role, hdr_limits(), &bytewise), &whole);
    let again: Vec<u8> = whole.0.iter().flat_map(render).collect();
    prop_assert_eq!(again, text);
    Ok(())
}

/// A token as the argument splitter sees one: no spaces, tabs, CR or LF.
fn token_strategy() -> impl Strategy<Value = Bytes> {
    "[!-~]{1,8}".prop_map(|t| Bytes::from(t.into_bytes()))
}

/// A control-line argument kept whole (CONNECT, INFO, -ERR): printable, not starting or
/// ending with white space.
fn line_arg_strategy() -> impl Strategy<Value = Bytes> {
    prop_oneof!["[!-~]", "[!-~][ -~\t]{0,30}[!-~]"].prop_map(|t| Bytes::from(t.into_bytes()))
}

/// A message with an optional header block: `(header_len, message)`.
fn message_strategy() -> impl Strategy<Value = (Option<usize>, Bytes)> {
    (
        prop::collection::vec(any::<u8>(), 0..48),
        proptest::option::of(any::<prop::sample::Index>()),
    )
        .prop_map(|(message, split)| {
            let header_len = split.map(|i| i.index(message.len() + 1));
            (header_len, Bytes::from(message))
        })
}

fn shared_op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Ping),
        Just(Op::Pong),
        Just(Op::Ok),
        line_arg_strategy().prop_map(Op::Info),
        line_arg_strategy().prop_map(Op::Err),
    ]
}

fn server_op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        shared_op_strategy(),
        line_arg_strategy().prop_map(Op::Connect),
        (
            token_strategy(),
            proptest::option::of(token_strategy()),
            message_strategy()
        )
            .prop_map(|(subject, reply, (header_len, message))| {
                Op::Pub(Publish {
                    subject,
                    reply,
                    header_len,
                    message,
                })
            }),
        (
            token_strategy(),
            proptest::option::of(token_strategy()),
            token_strategy()
        )
            .prop_map(|(subject, queue, sid)| Op::Sub {
                subject,
                queue,
                sid
            }),
        // nats-server reads at most nine digits (`parseSize`); more is "no limit".
        (token_strategy(), proptest::option::of(0..1_000_000_000u64))
            .prop_map(|(sid, max)| Op::Unsub { sid, max }),
    ]
}

fn client_op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        shared_op_strategy(),
        (
            token_strategy(),
            token_strategy(),
            proptest::option::of(token_strategy()),
            message_strategy()
        )
            .prop_map(|(subject, sid, reply, (header_len, message))| {
                Op::Msg(Delivery {
                    subject,
                    sid,
                    reply,
                    header_len,
                    message,
                })
            }),
    ]
}

fn check_peek(input: &[u8], expect: Option<(&str, Option<&str>, &str)>) {
    let parser = Parser::new(Role::Server, hdr_limits());
    let found = parser.peek_pub(input).map(|f| {
        let part = |(s, e): (usize, usize)| std::str::from_utf8(&input[s..e]).unwrap();
        (
            part(f.subject),
            f.reply.map(part),
            part((f.payload_start, f.payload_start + f.size)),
        )
    });
    assert_eq!(found, expect, "{:?}", String::from_utf8_lossy(input));
}

#[test]
fn peek_pub_finds_complete_messages_only() {
    check_peek(b"PUB foo 2\r\nhi\r\n", Some(("foo", None, "hi")));
    check_peek(
        b"pub\tfoo  bar 2\nhi\r\nPING\r\n",
        Some(("foo", Some("bar"), "hi")),
    );
    check_peek(
        b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
        Some(("foo", None, "NATS/1.0\r\n\r\nhi")),
    );
    check_peek(b"PUB foo 2\r\nhi\r", None);
    check_peek(b"PUB foo 2\r\nhi!\r\n", None);
    check_peek(b"PUB foo 2", None);
    check_peek(b"PUB foo\r\n", None);
    check_peek(b"SUB foo 1\r\n", None);
    check_peek(b"PUBX foo 2\r\nhi\r\n", None);
}
