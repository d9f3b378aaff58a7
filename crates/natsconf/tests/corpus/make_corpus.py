#!/usr/bin/env python3
"""Regenerates the differential corpus: writes every case below as NAME.conf (plus NAME.env.json
for environment cases) and records conforacle's output as NAME.expected.

Usage: make_corpus.py /path/to/conforacle   (run from anywhere; it runs the oracle with the
corpus directory as working directory and a bare file name). Cases named pos-* are recorded with
-positions, the others with -pedantic. Every case runs with -env (an empty environment unless
NAME.env.json exists), so the process environment never leaks in.
"""
import json, os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ORACLE = sys.argv[1]

INCLUDES = {
    "include/users.conf": b"users = [\n  { user: alice, password: $2a$11$abc }\n  { user: bob, password: 'b0b' }\n]\n",
    "include/vars.conf": b"CLIENT_PORT = 4333\nLIMIT: 1MB\n",
    "include/nested.conf": b"level1 = 1\ninclude sub/inner.conf\n",
    "include/sub/inner.conf": b"inner_value = \"from inner\"\ninclude ../vars.conf\n",
    "include/missing-inner.conf": b"include no-such-file.conf\n",
    "include/bad-syntax.conf": b"a = 1\nb = [1, 2]\n",
    "include/empty.conf": b"",
    "include/comments.conf": b"# only a comment\n// another\n",
    "include/override.conf": b"port = 5222\nname = included\n",
    "include/badvar.conf": b"x = $NOT_DEFINED_ANYWHERE\n",
    "include/map-frag.conf": b"timeout = 2.5\nusers = [ {user: u, password: p} ]\n",
    "include/cluster.conf": b"cluster {\n  name: c1\n  listen: 0.0.0.0:6222\n  routes = [\n    nats://a:6222\n    nats://b:6222\n  ]\n}\n",
}

CASES = {}
ENVS = {}

def case(name, text, env=None, pos=False):
    if isinstance(text, str):
        text = text.encode()
    full = ("pos-" if pos else "") + name
    assert full not in CASES, full
    CASES[full] = text
    if env is not None:
        ENVS[full] = env

# ---- realistic configs ----
case("real-basic", """
# Client port of 4222 on all interfaces
port: 4222
host: 0.0.0.0
server_name: n1

# HTTP monitoring port
monitor_port: 8222

debug:   false
trace:   false
logtime: true
max_connections: 64K
max_payload: 1MB
max_pending: 64MB
ping_interval: "2m"
ping_max: 2
write_deadline: "10s"
""", pos=True)
case("real-websocket", """
websocket {
  listen: "0.0.0.0:8080"
  no_tls: true
  compression: true
  same_origin: false
  allowed_origins: ["http://localhost:3000", "https://example.com"]
  handshake_timeout: "4s"
  jwt_cookie: "my_jwt"
  no_auth_user: guest
  authorization {
    token: "s3cr3t"
    timeout: 2
  }
}
""", pos=True)
case("real-websocket-alias", """
ws: {
  port: 443
  tls {
    cert_file: "/etc/nats/certs/server.pem"
    key_file: "/etc/nats/certs/key.pem"
    timeout: 2.5
  }
}
""")
case("real-auth", """
authorization {
  users = [
    {user: alice, password: foo, permissions: {publish: ">", subscribe: ">"}}
    {user: bob,   password: $2a$11$3kIDaCxw.Glsl1.u5nKa6eUnNDLV5HV9tIuUp7EHhMt6Nm9myW1aS}
    {
      user: "carol"
      password: 'c4r0l'
      permissions: {
        publish: { allow: ["req.>", "_INBOX.>"], deny: "admin.>" }
        subscribe: { allow: "pub.>" }
        allow_responses: { max: 1, expires: "1m" }
      }
    }
  ]
  timeout: 0.5
}
""", pos=True)
case("real-accounts", """
accounts: {
  SYS: { users: [ {user: admin, password: changeme} ] }
  APP: {
    jetstream: enabled
    users: [ {user: app, password: app} ]
    exports: [
      {stream: "events.>"}
      {service: "help"}
    ]
    imports: [
      {stream: {account: OTHER, subject: "x.>"}, prefix: "from_other"}
    ]
  }
}
system_account: SYS
""", pos=True)
case("real-cluster", """
cluster {
  name: "my-cluster"
  listen: 127.0.0.1:6222
  authorization { user: ruser, password: T0pS3cr3t, timeout: 2 }
  routes = [
    nats-route://ruser:T0pS3cr3t@127.0.0.1:6222
    nats-route://ruser:T0pS3cr3t@127.0.0.1:6223
  ]
  no_advertise: true
  connect_retries: 30
}
""")
case("real-jetstream", """
jetstream {
  store_dir: "/data/jetstream"
  max_memory_store: 1GB
  max_file_store: 10GiB
  max_mem: 512M
  max_file: "10G"
  domain: hub
}
""", pos=True)
case("real-leafnodes", """
leafnodes {
  listen: "0.0.0.0:7422"
  remotes = [
    { url: "nats-leaf://hub.example.com:7422", credentials: "/etc/leaf.creds" }
    { urls: ["nats://a:7422", "nats://b:7422"], account: APP }
  ]
  reconnect: 5
}
""")
case("real-gateway", """
gateway {
  name: "A"
  port: 7222
  gateways: [
    {name: "A", url: "nats://localhost:7222"}
    {name: "B", urls: ["nats://localhost:7333", "nats://localhost:7334"]}
  ]
}
""")
case("real-mqtt-tls", """
mqtt {
  port: 1883
  ack_wait: "1m"
  max_ack_pending: 100
  tls {
    cert_file: "./configs/certs/server.pem"
    key_file:  "./configs/certs/key.pem"
    ca_file:   "./configs/certs/ca.pem"
    verify:    true
    timeout:   2
    cipher_suites: [
      "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
      "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    ]
    curve_preferences: [ "CurveP256", "X25519" ]
  }
}
""")
case("real-json", """{
  "port": 4222,
  "debug": true,
  "max_payload": 1048576,
  "authorization": {"user": "a", "password": "b"},
  "allowed": ["x", "y"],
  "ratio": 0.75
}
""", pos=True)
case("real-json-ports-fail", '{"ports": [4222,4223]}\n')
case("real-variables", """
TOKEN: "secret"
PORT = 4222
authorization {
  token: $TOKEN
}
port: $PORT
nested {
  inner = 1
  deeper { x = $inner, y = $PORT }
}
""", pos=True)
case("real-env", "port: $NCT_PORT\nname = $NCT_NAME\nlist = $NCT_LIST\nm = $NCT_MAP\n",
     env={"NCT_PORT": "4333", "NCT_NAME": "hello world'", "NCT_LIST": "[a, b, 3 ]", "NCT_MAP": "{ user: u, n: 1k }"}, pos=True)
case("real-include", "port = 1\ninclude include/override.conf\nname = after\n", pos=True)
case("real-include-vars", "include include/vars.conf\nport = $CLIENT_PORT\nlimit = $LIMIT\n", pos=True)
case("real-include-nested", "include include/nested.conf\n", pos=True)
case("real-include-in-map", "authorization {\n  include include/users.conf\n  timeout: 1\n}\n", pos=True)
case("real-include-cluster", "include 'include/cluster.conf'\n", pos=True)
case("real-lame-duck", "lame_duck_duration: \"30s\"\nlame_duck_grace_period: \"10s\"\nlog_file: /var/log/nats.log\nlogfile_size_limit: 1GB\npid_file: '/var/run/nats.pid'\n")
case("real-block", "description = (\n  A multi-line\n  description here.\n)\nport = 1\n", pos=True)
case("real-semicolons", "a = 1; b = 2, c = 3 } d = 4;\n", pos=True)

# ---- separators and keys ----
for i, sep in enumerate(["=", ":", " ", "\t", " = ", " : ", "\t=\t", "  :  "]):
    case(f"sep-{i}", f"key{sep}value\n", pos=True)
case("key-next-line", "flag\nvalue_on_next_line\n", pos=True)
case("key-next-line-sep", "server_name\n  = \"x\"\n", pos=True)
case("key-alone-end", "a = 1\nb\n")
case("key-alone-end2", "a = 1\nb  \n")
case("key-then-eq-line", "debug\nport = 4222\n")
case("key-quoted-dq", '"a b" = 1\n"c:\\\\path" = 2\n', pos=True)
case("key-quoted-sq", "'x y' : 2\n'' = 3\n\"\" = 4\n", pos=True)
case("key-quoted-noseparator", '"a"1\n\'b\'two\n"c"{ d = 3 }\n', pos=True)
case("key-quoted-newline", '"multi\nline" = 5\n', pos=True)
case("key-dq-unterminated", 'a = 1\n"abc')
case("key-dq-alone", '"')
case("key-sq-alone", "'")
case("key-sq-unterminated", "'abc = 1")
case("key-weird-chars", "a.b.c = 1\nx-y_z = 2\n9lives = 3\npath/to = 4\n@at = 5\nk$ = 6\n名前 = 7\n", pos=True)
case("key-brace", "cluster{ port = 1 }\n")
case("key-bracket", "a[0] = 1\nc} = 2\n", pos=True)
case("key-case", "Port = 1\nport = 2\nPORT = 3\n")
case("key-sep-top", "= 5\n")
case("key-colon-top", ": 5\n")
case("key-dup", "a = 1\na = \"two\"\nm { x = 1 }\nm { y = 2 }\n", pos=True)
case("key-nbsp", "a\u00a0=\u00a0b\n", pos=True)
case("key-vt", "a\v=\v1\n", pos=True)
case("key-bom", "\ufeffport = 4222\n", pos=True)
case("key-nul-after", "b\0 = 2\nc = 3\n")
case("key-nul-start", "\0a = 1\n")
case("key-only-include", "a = 1\ninclude")
case("key-include-forms", "include=5\ninclude: x\n\"include\" y\n'include' z\nm { include: x }\n", pos=True)
case("key-include-newline", "include\nfoo.conf\n")
case("key-include-upper", "INCLUDE include/override.conf\n", pos=True)
case("key-include-mixed", "Include include/override.conf\n")
case("key-include-dotted-i", "\u0130NCLUDE include/override.conf\n")
case("key-include-vt", "include\vinclude/vars.conf\n")
case("key-semicolon", "a = 1;; b = 2\n")
case("key-comma-end", "a = 1,,")
case("top-braces", "{{{ a = 1 }}}\n")
case("top-braces-unclosed", "{{{ a = 1 }}}\n{ b = 2\n")
case("top-brace-key", "{\n first = 1\n}\n{\n second = 2\n}\n", pos=True)
case("top-brace-key-fail", '{\n "a": 1\n}\nb = 2\n')
case("top-brace-end", '{\n "a": 1\n}\n')

# ---- top-level value ends ----
case("end-slash", "a = 1 /\nb = 2 / // comment\n", pos=True)
case("end-garbage", "a = \"x\"y\n")
case("end-garbage-paren", "a = 1 )\n")
case("end-hash", "a = 1 # c\nb = 2// c\n", pos=True)
case("end-lone-slash-start", "/\n")
case("end-lone-slash-start2", "a = 1\n/ b = 2\n")
case("end-cr-only", "a = 1\rb = 2\rc = [1,\r2 ]\r", pos=True)
case("end-crlf", "a = 1\r\nb = \"x\"\r\nc {\r\n d = 2\r\n}\r\n", pos=True)
case("end-crlf-error", "a = 1\r\nb = [1]\r\n")
case("end-cr-error", "a = 1\rb = [1]\r")
case("end-nul-value", "a = x\0b = 2\n", pos=True)
case("end-nul-middle", "a = 1\n\0b = 2\n")

# ---- comments ----
case("comment-forms", "# hash\n// slashes\na = 1 # trailing\nb = 2 // trailing\nc = [ # in array\n 1, // more\n 2 # x\n ]\nm { # in map\n k = v // c\n}\n", pos=True)
case("comment-as-value", "a = # comment\n")
case("comment-in-value", "a = 1#x\nb = x//y\nurl = nats://h:1\n", pos=True)
case("comment-after-quoted", 'c = "x"# note\n', pos=True)
case("comment-after-key", "a # c\n")
case("comment-only", "# nothing\n")
case("empty", "")
case("whitespace-only", " \n\t\n  \n")

# ---- strings ----
case("str-unquoted", "a = hello\nb = b=c\nc = x:y\nd = {x\ne = (x\nf = $\n", pos=True)
case("str-unquoted-blank-eq", "a = x = y\n")
case("str-unquoted-escapes", "a = tab\\there\nb = \\x41BC\nc = a\\\\b\nd = q\\\"q\n", pos=True)
case("str-unquoted-bad-escape", "path = C:\\nats\\data\n")
case("str-unquoted-quote-end", "a = abc'\nb = true'\nc = $x'\n", pos=True)
case("str-unquoted-quote-garbage", "a = abc'def\n")
case("str-dq", 'a = "hello world"\nb = "tab\\there"\nc = "q\\"q"\nd = "back\\\\slash"\ne = "nl\\nx\\rz"\nf = "\\x41\\x62"\n', pos=True)
case("str-dq-multiline", 'a = "line1\nline2"\nb = 2\n', pos=True)
case("str-dq-nonutf8", 'a = "caf\\xe9"\nb = "a\\x00b"\nc = "\\xff\\xfe"\n', pos=True)
case("str-dq-raw-nonutf8", b'a = "caf\xe9"\nb = x\xff\n', pos=True)
for i, esc in enumerate(["\\u0041", "\\'", "\\/", "\\b", "\\f", "\\0", "\\a", "\\ "]):
    case(f"str-dq-bad-escape-{i}", f'a = "x{esc}"\n')
case("str-dq-hex-bad", 'a = "\\xg1"\n')
case("str-dq-hex-short", 'a = "\\x4"\n')
case("str-dq-hex-eof", 'a = "ab\\x')
case("str-dq-hex-eof2", 'a = "\\xe')
case("str-dq-hex-nl", 'a = "\\x\n1"\n')
case("str-dq-hex-nl2", 'a = "\\x4\n"\n')
case("str-dq-hex-multibyte", 'a = "\\x\u00e9"\n')
case("str-dq-unterminated", 'a = "abc\n')
case("str-dq-open-eof", 'a = "')
case("str-dq-escape-eof", 'a = "x\\n')
case("str-dq-nul", 'a = "ab\0c"\n')
case("str-sq", "a = 'raw \\n \"x\" text'\nb = 'multi\nline'\n", pos=True)
case("str-sq-unterminated", "a = 'abc\n")
case("str-sq-open-eof", "a = '")
case("str-dq-garbage", 'a = "x"y\n')
case("str-empty-values", "a = ;\nb = ,\nc = }\nd =", pos=True)
case("str-sep-eof", "a:")
case("str-sep-eof2", "a =")
case("str-dollar-forms", "a = \"$a\"\nb = '$a'\nc = pre$a\nd = $a\\t\n", pos=True)
case("str-at", "d = @w\n", pos=True)

# ---- blocks ----
case("block-basic", "text (\n  line one\n  line two\n)\n", pos=True)
case("block-inline", "b = (inline\nmore\n)\n", pos=True)
case("block-eof-paren", "b = (\nlast line\n)", pos=True)
case("block-indented", "b = (\nx\n  )\n")
case("block-same-line", "b = ()\n")
case("block-crlf", "b = (\r\nx\r\n)\r\n")
case("block-paren-followed", "b = (\nx\n) y\n)\n", pos=True)
case("block-in-array", "a = [ (\nz\n)\n 5 ]\n", pos=True)
case("block-in-map", "m {\n b = (\nq\n)\n c = 1\n}\n", pos=True)
case("block-nul-after", "b = (\nx\n)\0c = 1\n", pos=True)
case("block-nul-inside", "b = (\nx\0\n)\n")
case("block-unicode", "b = (\nü ) é\n)\n", pos=True)

# ---- numbers ----
case("num-basic", "a = 0\nb = 007\nc = -0\nd = -42\ne = 9223372036854775807\nf = -9223372036854775808\n", pos=True)
case("num-overflow", "a = 9223372036854775808\n")
case("num-neg-overflow", "a = -9223372036854775809\n")
case("num-overflow-suffix", "a = 99999999999999999999k\n")
sfx = ["k","K","kb","KB","ki","KiB","kib","m","M","mb","MB","mi","mib","g","G","gb","gi","gib","t","tb","ti","tib","p","pb","pi","pib","e","eb","ei","eib","Eib","MiB","GB"]
case("num-suffixes", "".join(f"s{i} = 3{s}\n" for i, s in enumerate(sfx)), pos=True)
case("num-neg-suffixes", "".join(f"s{i} = -3{s}\n" for i, s in enumerate(sfx)), pos=True)
case("num-wrap", "a = 8EiB\nb = 16EB\nc = 10e\nd = 9223372036854775807k\ne = -8EiB\nf = 9ei\n", pos=True)
case("num-unknown-suffix", "a = 1kbb\nb = 2kii\nc = 3kbi\nd = 4mii\n")
case("num-unknown-suffix-map", "outer {\n first = 1kbi\n second = 2\n}\n", pos=True)
case("num-unknown-suffix-array", "a = [ 1kib, 2kii, 3 ]\n", pos=True)
case("num-suffix-digit", "a = 1e5\n")
case("num-suffix-digit2", "a = 1k5\n")
case("num-suffix-digit3", "a = 2m30s\n")
case("num-suffix-strings", "a = 1Ghz\nb = 2Pie\nc = 3Mbs\nd = 4kbps\ne = 500ms\nf = 4k.example.com\ng = 1k'\nh = 1k\\x41\ni = 2s\nj = 1h\n", pos=True)
case("num-digit-strings", "a = 1x\nb = 3xyz\nc = 0x1F\nd = 1_000\ne = 9to5\nf = 4222:tcp\ng = 2001:db8::1\nh = 1password.com:443\ni = 1#x\nj = 12'\nk = 1\\x41\nl = 1\\t\\x41\n", pos=True)
case("num-dash", "a = 10-20\n")
case("num-dash2", "a = 123456-1\n")
case("num-date-bad", "a = 1234-abc.example.com\n")
case("num-array-quirk", "a = [1, 2, 3]\n")
case("num-array-quirk2", "a = [42]\n")
case("num-array-quirk3", "a = [1,2]\n")
case("num-array-ok", "a = [1, 2, 3 ]\nb = [1, 2, 3,]\nc = [\n 1\n 2\n]\nd = [-1]\ne = [1.5]\nf = [1k]\ng = [true]\n", pos=True)
case("num-neg-garbage", "a = -5x\n")
case("num-neg-dash", "a = -10-5\n")
case("num-neg-alpha", "a = -abc\n")
case("num-neg-dot", "a = -.5\n")
case("num-neg-eol", "a = -\n")
case("num-leading-dot", "a = .5\n")
case("num-unicode-digits", "a = \u0664\u0662\n")
case("num-unicode-digit-mixed", "a = 4\u0662\n")
case("num-fullwidth", "a = \uff14\uff12\n")
case("num-unicode-float", "a = 1.\u0662\n")
case("num-unicode-date", "a = \u0661\u0661-\n")
case("num-plus", "a = +5\nb = 0b101\nc = 0o7\n", pos=True)

# ---- floats and IP-like ----
case("float-basic", "a = 1.5\nb = 00.5\nc = -0.0\nd = 0.1\ne = 100.0\nf = 3.14159265358979323846\ng = -2.5\n", pos=True)
case("float-big", "a = " + "9" * 400 + ".0\n")
case("float-tiny", "a = 0." + "0" * 400 + "1\n", pos=True)
case("float-max", "a = 179769313486231570000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000.0\n", pos=True)
case("float-no-digit", "a = 5.\n")
case("float-no-digit-x", "a = 5.x\n")
case("float-eof", "a = 1.")
case("float-suffix", "a = 1.5k\n")
case("float-s", "a = 1.5s\n")
case("float-exp", "a = 1.5e3\n")
case("ip-forms", "a = 127.0.0.1\nb = 10.0.0.1:4222\nc = 0.0.0.0:-1\nd = 192.168.1.1:1000-2000\ne = 1.2.3\nf = 1.2.3.\ng = -1.2.3\nh = localhost:4222\ni = :4222\nj = nats.example.com:-1\nk = [127.0.0.1]\n", pos=True)
case("ip-cidr", "a = 10.0.0.0/8\n")
case("ip-alpha", "a = 1.2.3.4:ab\n")
case("ipv6-array", "a = [::1]:4222\n")

# ---- booleans ----
case("bool-forms", "a = true\nb = FALSE\nc = Yes\nd = no\ne = ON\nf = off\ng = t\nh = y\ni = enabled\nj = truthy\nk = \"true\"\nl = 'yes'\nm = tru\\x65\n", pos=True)

# ---- dates ----
case("date-ok", "a = 2024-02-29T12:00:00Z\nb = 0000-01-01T00:00:00Z\nc = 9999-12-31T23:59:59Z\nd = [2020-01-01T00:00:00Z]\n", pos=True)
for i, d in enumerate(["2024-01-01", "2024-01-01T00:00:00", "2024-01-01 00:00:00Z", "2024-01-01T00:00:00+01:00", "2024-01-01T00:00:00.5Z", "2024-1-01T00:00:00Z", "2024-01-01t00:00:00Z", "2024-01-01T00:00:00z", "2024-01-01T00-00:00Z"]):
    case(f"date-lex-bad-{i}", f"a = {d}\n")
for i, d in enumerate(["2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-00-10T00:00:00Z", "2024-01-00T00:00:00Z", "2024-04-31T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z", "2024-01-01T00:00:60Z", "1900-02-29T00:00:00Z", "2000-02-29T00:00:00Z"]):
    case(f"date-cal-{i}", f"a = {d}\n")
case("date-trailing", "a = 2024-01-01T00:00:00Zx\n")
case("date-quoted", "a = \"2024-01-01T00:00:00Z\"\n", pos=True)

# ---- arrays ----
case("array-forms", "a = []\nb = [ ]\nc = [a, b, c]\nd = [\n  x\n  y,\n  z\n]\ne = [ x / y ]\nf = [ [1 ], [ [] ], {k: v} ]\ng = [ \"s\", 's', 1.5, true, -1, 2020-01-01T00:00:00Z ]\n", pos=True)
case("array-leading-comma", "a = [ , 1 ]\n")
case("array-double-comma", "a = [ x,, y ]\n")
case("array-lone-slash", "a = [ / x ]\n")
case("array-semicolon", "a = [ x; y ]\n")
case("array-unclosed", "a = [ x, y\n")
case("array-unclosed2", "a = [")
case("array-include", "a = [ include, x ]\n", pos=True)
case("array-map-keys", "a = [ { k = 1, j = $k } ]\n", pos=True)
case("array-map-sibling", "a = [ { k = 1 }, { j = $k } ]\n")
case("array-key-leak", "k = [ { a } ]\n", pos=True)
case("array-nested-deep", "a = " + "[" * 30 + "x" + "]" * 30 + "\n")

# ---- maps ----
case("map-forms", "m {}\nn { }\no { a = 1, b = 2 }\np {\n  a = 1\n  b: 2\n  c 3\n}\nq: { x: { y: { z: 1 } } }\nr = { s = t; u = v }\n", pos=True)
case("map-sep-newline", "m {\n key =\n   \"value\"\n}\n", pos=True)
case("map-top-sep-newline", "key =\n  \"value\"\n")
case("map-slash-key", "m { /abc = 1 }\nn { / def = 2 }\n", pos=True)
case("map-slash-value-end", "m {\n a = 1 /x\n}\n", pos=True)
case("map-slash-value-end2", "m { a = 1 / b = 2 }\n", pos=True)
case("map-key-no-value", "outer {\n inner\n}\n", pos=True)
case("map-key-no-value2", "m { a: }\nn = 1\n", pos=True)
case("map-key-eof", "m { abc")
case("map-key-brace", "m {a}\n")
case("map-eof", "m {\n a = 1\n")
case("map-sep-start", "m { = 1 }\n")
case("map-colon-start", "m { : 1 }\n")
case("map-bracket", "m { ] }\n")
case("map-comma-value", "m { a = , }\n")
case("map-double-comma", "m { a = 1,, b = 2 }\n", pos=True)
case("map-trailing-comma", "m { a = 1, }\n", pos=True)
case("map-garbage", "m { a = \"x\" y }\n")
case("map-garbage-eof", "m { a = 1")
case("map-dq-key-eof", "m { \"abc")
case("map-sq-key-eof", "m { 'abc")
case("map-include", "m { include include/vars.conf }\nn { include include/vars.conf}\n", pos=True)
case("map-include-colon", "m { include: x }\n", pos=True)
case("map-quoted-keys", "m { \"a b\" = 1, 'c d': 2, \"\"=3 }\n", pos=True)
case("map-semicolon-key", "m { ; = 1 }\n")
case("map-comment-slash", "m { a = 1 // c\n b = 2 }\n", pos=True)
case("map-key-newline-sep", "m {\n a\n =\n 1\n}\n", pos=True)
case("map-value-brace-end", "m { a = x}\n", pos=True)
case("map-int-brace", "m { a = 1}\n", pos=True)
case("map-empty-key-val", "m { a }\n")

# ---- variables ----
case("var-basic", "a = 1; b = $a; c = $b\n", pos=True)
case("var-scope", "x = 1\nm { y = $x; z { w = $y, v = $x } }\n", pos=True)
case("var-self-map", "m { y = $m }\n")
case("var-forward", "a = $b\nb = 1\n")
case("var-redefine", "a = 1\nb = $a\na = 2\nc = $a\n", pos=True)
case("var-map-copy", "m { k = 1, n { j = [1, 2 ] } }\nc = $m\nd = [$m, $c]\n", pos=True)
case("var-array", "a = [1, 2 ]\nb = $a\nc = [$a]\n", pos=True)
case("var-in-array", "a = 1\nb = [$a, $a ]\nc = [$a]\n", pos=True)
case("var-bcrypt", "password: $2a$11$3kIDaCxw.Glsl1.u5nKa6eUnNDLV5HV9tIuUp7EHhMt6Nm9myW1aS\nb = [$2a$x]\n", pos=True)
case("var-bcrypt-2b", "password: $2b$11$abc\n")
case("var-empty", "a = $\n")
case("var-names", "my.var = 1\nmy-var = 2\n\"a:b\" = 3\nx = [$my.var, $my-var, $a:b ]\n", pos=True)
case("var-missing", "a = 1\n\nb = $nope\n")
case("var-missing-in-array", "a = [\n  1,\n  $nope\n]\n")
case("var-env-int", "a = $E\n", env={"E": "22"}, pos=True)
case("var-env-forms", "".join(f"v{i} = $E{i}\n" for i in range(20)), env={
    "E0": "1k", "E1": "8MB", "E2": "1m", "E3": "0.25", "E4": "off", "E5": "2024-02-29T12:00:00Z",
    "E6": "[a, b, 3 ]", "E7": "{ user: u }", "E8": "'3xyz'", "E9": "3xyz", "E10": "\"hello world\"",
    "E11": "", "E12": "42 # c", "E13": "first;second", "E14": "a\\tb", "E15": "first\npk = second",
    "E16": "(\nblock\n)", "E17": "$2a$abc", "E18": "  spaced", "E19": "true'"}, pos=True)
case("var-env-bad", "a = 1\nb = $E\n", env={"E": "hello world"})
case("var-env-range", "b = $E\n", env={"E": "99999999999999999999"})
case("var-env-nopk", "b = $E\n", env={"E": "5kbb"})
case("var-env-chain", "b = $A\n", env={"A": "[$B, 1 ]", "B": "{ x = $C }", "C": "deep"}, pos=True)
case("var-env-local", "local = 1\nb = $E\n", env={"E": "$local"})
case("var-env-shadow", "E = file\nb = $E\n", env={"E": "env"}, pos=True)
case("var-env-bad-syntax", "b = $E\n", env={"E": "[1, 2]"})
case("var-env-include-rel", "m = $E\n", env={"E": "{ include include/vars.conf }"}, pos=True)
case("var-env-include-missing", "m = $E\n", env={"E": "{ include nope.conf }"})
case("var-env-map-var", "b = $E\n", env={"E": "{ a = 1, b = $a }"}, pos=True)
case("var-env-newline", "b = $E\n", env={"E": "\n5"})
case("var-env-unicode", "b = $E\n", env={"E": "héllo"}, pos=True)
case("var-quote-end", "a = 1\nb = $a'\n", pos=True)
case("var-used-include", "include include/vars.conf\nm { p = $CLIENT_PORT }\n", pos=True)
case("var-include-isolated", "NOT_DEFINED_ANYWHERE = 1\ninclude include/badvar.conf\n")
case("var-nonutf8", b"a = $x\xff\n")

# ---- includes ----
case("inc-missing", "include nope.conf\n")
case("inc-missing-nested", "include include/missing-inner.conf\n")
case("inc-bad-syntax", "a = 0\ninclude include/bad-syntax.conf\n")
case("inc-empty", "a = 1\ninclude include/empty.conf\ninclude include/comments.conf\n", pos=True)
case("inc-twice", "include include/vars.conf\ninclude include/vars.conf\n", pos=True)
case("inc-quoted", "include \"include/vars.conf\"\ninclude 'include/override.conf'\n", pos=True)
case("inc-dq-unterminated", "include \"include/vars.conf\n")
case("inc-sq-unterminated", "include 'include/vars.conf\n")
case("inc-unquoted-quote", "include include/vars.conf'\n", pos=True)
case("inc-semicolon", "include include/vars.conf; b = 1\n", pos=True)
case("inc-comment", "include include/vars.conf # comment\n")
case("inc-comma", "include include/vars.conf, x = 1\n")
case("inc-absolute", "include /include/vars.conf\n", pos=True)
case("inc-dotdot", "include include/sub/../vars.conf\n", pos=True)
case("inc-dir", "include include\n")
case("inc-empty-path", "include ")
case("inc-empty-path2", "include  \n")
for i, start in enumerate(["[", "{", "(", "1", "-", "\\"]):
    case(f"inc-bad-start-{i}", f"include {start}x\n")
case("inc-tab", "include\tinclude/vars.conf\n", pos=True)
case("inc-before-error", "include nope.conf\na = [1]\n")
case("inc-var-before-error", "a = $nope\nb = [1]\n")
case("inc-overrides", "port = 1\nname = x\ninclude include/override.conf\n", pos=True)
case("inc-map-frag", "authorization { include include/map-frag.conf }\n", pos=True)

# ---- misc quirks ----
case("quirk-key-stack-top", "outer {\n inner\n}\nx = 1\n", pos=True)
case("quirk-many-keys", "a {\n b {\n  c\n }\n}\n", pos=True)
case("quirk-unicode-space-key", "a\u2003b = 1\nc\u3000= 2\n", pos=True)
case("quirk-unicode-value", "a = héllo wörld\n")
case("quirk-unicode-value2", "a = héllo\nb = \"ünïcödé\"\nc = 名前\n", pos=True)
case("quirk-invalid-utf8-key", b"\xff\xfe = 1\nk\xc3 = x\xc3\n", pos=True)
case("quirk-control-chars", "a = \"\x01\x1b\x7f\"\nb = \x02x\n", pos=True)
case("quirk-long-line", "a = " + "x" * 5000 + "\n", pos=True)
case("quirk-positions-line1", "  a = 1\n  b = 2\n\tc = 3\n", pos=True)
case("quirk-escape-positions", "n = [ \"ab\\tc\", x\\x41y, 7 ]\nm = \"\\x41\\x42\\x43\"\n", pos=True)
case("quirk-multiline-pos", "a = \"x\ny\nz\"\nb = 'p\nq'\nc = (\nr\n)\nd = 1\n", pos=True)
case("quirk-comment-pos", "# c\na = 1 # x\nb = [ # y\n 2 ]\n", pos=True)
case("quirk-cr-positions", "a = 1\r\n  b = 2\r\n", pos=True)
case("quirk-all-seps", "a=1\nb:2\nc 3\nd\t4\ne = 5;\nf = 6,\n", pos=True)
case("quirk-empty-array-in-map", "m { a = [], b = {} }\n", pos=True)
case("quirk-tab-before-value", "a =\t\t1\n", pos=True)
case("quirk-ff-before-value", "a = \f1\n")
case("quirk-value-then-brace", "a = 1 } b = 2\n", pos=True)

def write(path, data):
    with open(path, "wb") as f:
        f.write(data)

for rel, data in INCLUDES.items():
    os.makedirs(os.path.dirname(os.path.join(HERE, rel)), exist_ok=True)
    write(os.path.join(HERE, rel), data)

for name in os.listdir(HERE):
    if name.endswith((".conf", ".expected", ".env.json")):
        os.remove(os.path.join(HERE, name))

empty_env = os.path.join(HERE, "include", "empty-env.json")
write(empty_env, b"{}")
for name, text in sorted(CASES.items()):
    write(os.path.join(HERE, name + ".conf"), text)
    env_path = empty_env
    if name in ENVS:
        env_path = os.path.join(HERE, name + ".env.json")
        write(env_path, json.dumps(ENVS[name], sort_keys=True).encode())
    flag = "-positions" if name.startswith("pos-") else "-pedantic"
    res = subprocess.run([ORACLE, flag, "-env", env_path, name + ".conf"], cwd=HERE,
                         capture_output=True, timeout=60)
    if res.returncode not in (0, 1):
        sys.exit(f"oracle failed on {name}: {res.returncode} {res.stderr!r}")
    write(os.path.join(HERE, name + ".expected"), res.stdout)
print(f"{len(CASES)} cases")
