"""nats-py in operator mode (scenario operator): users log in with creds files over TCP and ws.

The operator, account and user keys are made here at test time (random seeds through the
`nkeys` package) and the JWTs are signed here, in the v2 format nsc writes; both servers read
the same scenario with the same JWTs. nats-py signs the INFO nonce with the creds file's seed
and sends the signature in padded standard base64 (not the raw URL-safe form of the Go and JS
clients), which the server must accept too.
"""
import base64
import json
import os
import time

import nats
import nkeys
import pytest

from test_nats_py import arun, connect, synced

UNLIMITED = {"subs": -1, "data": -1, "payload": -1}
ACCOUNT_LIMITS = {**UNLIMITED, "imports": -1, "exports": -1, "wildcards": True, "conn": -1, "leaf": -1}


def new_key(prefix):
    return nkeys.from_seed(nkeys.encode_seed(os.urandom(32), prefix))


def public(kp):
    return kp.public_key.decode()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(signer, sub, kind, nats_claims=None, signed_by=None, **extra):
    """A v2 NATS JWT of `kind` about `sub`, issued by the nkey `signer` and signed by it (or,
    to forge one, by `signed_by`)."""
    header = b64url(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    claims = {
        "jti": f"{kind}-{sub}-{os.urandom(4).hex()}",
        "iat": int(time.time()) - 5,
        "iss": public(signer),
        "name": f"{kind}-name",
        "sub": sub,
        **extra,
        "nats": {"type": kind, "version": 2, **(nats_claims or {})},
    }
    body = b64url(json.dumps(claims).encode())
    sig = (signed_by or signer).sign(f"{header}.{body}".encode())
    return f"{header}.{body}.{b64url(sig)}"


def creds_text(user_jwt, user):
    return (
        f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{user.seed.decode()}\n------END USER NKEY SEED------\n"
    )


class Trust:
    """The operator, its account (which revokes `revoked`) and a stranger account."""

    def __init__(self):
        self.operator = new_key(nkeys.PREFIX_BYTE_OPERATOR)
        self.account = new_key(nkeys.PREFIX_BYTE_ACCOUNT)
        self.stranger = new_key(nkeys.PREFIX_BYTE_ACCOUNT)
        self.revoked = new_key(nkeys.PREFIX_BYTE_USER)
        self.vars = {
            "OPERATOR": jwt(self.operator, public(self.operator), "operator"),
            "ACCOUNT": public(self.account),
            "ACCOUNT_JWT": jwt(
                self.operator,
                public(self.account),
                "account",
                {"limits": ACCOUNT_LIMITS, "revocations": {public(self.revoked): int(time.time())}},
            ),
        }

    def user_jwt(self, user, issuer=None, nats_claims=None, signed_by=None, **extra):
        claims = {**UNLIMITED, **(nats_claims or {})}
        return jwt(issuer or self.account, public(user), "user", claims, signed_by=signed_by, **extra)


@pytest.fixture(scope="module")
def trust():
    return Trust()


@pytest.fixture(scope="module")
def operator(start, trust):
    return start("operator", **trust.vars)


def write_creds(server, name, user_jwt, user):
    path = server.dir / f"{name}.creds"
    path.write_text(creds_text(user_jwt, user))
    return str(path)


def test_creds_over_tcp_and_ws_share_the_account(operator, trust):
    """A creds file over TCP and one over ws: both log in and share the account's subjects."""

    async def go():
        tcp_user, ws_user = new_key(nkeys.PREFIX_BYTE_USER), new_key(nkeys.PREFIX_BYTE_USER)
        tcp = await connect(operator, "tcp", user_credentials=write_creds(operator, "tcp", trust.user_jwt(tcp_user), tcp_user))
        ws = await connect(operator, "ws", user_credentials=write_creds(operator, "ws", trust.user_jwt(ws_user), ws_user))
        try:
            assert tcp._server_info["auth_required"] is True
            assert tcp._server_info["nonce"]
            sub = await ws.subscribe("greet.>")
            await synced(ws)
            await tcp.publish("greet.py", b"hi")
            await tcp.flush(timeout=3)
            msg = await sub.next_msg(timeout=3)
            assert (msg.subject, msg.data) == ("greet.py", b"hi")
            # And back: a request from ws answered over TCP.
            async def answer(m):
                await m.respond(b"pong:" + m.data)

            await tcp.subscribe("svc", cb=answer)
            await synced(tcp)
            r = await ws.request("svc", b"x", timeout=3)
            assert r.data == b"pong:x"
        finally:
            await tcp.close()
            await ws.close()

    arun(go())


def test_jwt_and_seed_files(operator, trust):
    """The (jwt file, seed file) form of user_credentials."""

    async def go():
        user = new_key(nkeys.PREFIX_BYTE_USER)
        jwt_path = operator.dir / "user.jwt"
        jwt_path.write_text(trust.user_jwt(user))
        seed_path = operator.dir / "user.nk"
        seed_path.write_text(user.seed.decode())
        nc = await connect(operator, "tcp", user_credentials=(str(jwt_path), str(seed_path)))
        try:
            await nc.flush(timeout=3)
        finally:
            await nc.close()

    arun(go())


@pytest.mark.parametrize("kind", ["tcp", "ws"])
def test_bad_users_are_refused(operator, trust, kind):
    """Expired, revoked, wrong-seed, unknown-account, wrong-signer, bad-signature and
    credential-less clients are refused with the reference's error."""
    user = new_key(nkeys.PREFIX_BYTE_USER)
    other = new_key(nkeys.PREFIX_BYTE_USER)
    cases = {
        "expired": (trust.user_jwt(user, exp=int(time.time()) - 10), user),
        "revoked": (trust.user_jwt(trust.revoked), trust.revoked),
        "wrong seed": (trust.user_jwt(user), other),
        "unknown account": (trust.user_jwt(user, issuer=trust.stranger), user),
        # Issued in the account's name by a key that is not one of its signing keys.
        "wrong signer": (
            trust.user_jwt(user, issuer=trust.stranger, nats_claims={"issuer_account": public(trust.account)}),
            user,
        ),
        # Claims the account as issuer but signed by another key.
        "bad signature": (trust.user_jwt(user, signed_by=trust.stranger), user),
    }

    async def go():
        for what, (user_jwt, seed) in cases.items():
            path = write_creds(operator, f"bad-{kind}-{what.replace(' ', '-')}", user_jwt, seed)
            with pytest.raises(Exception) as e:
                nc = await connect(operator, kind, user_credentials=path)
                await nc.close()
            assert "authorization violation" in str(e.value).lower(), f"{what}: {e.value!r}"
        with pytest.raises(Exception) as e:
            nc = await connect(operator, kind)
            await nc.close()
        assert "authorization violation" in str(e.value).lower(), f"no credentials: {e.value!r}"

    arun(go())


def test_user_permissions_apply(operator, trust):
    """The user JWT's publish allow list applies to a creds user over TCP."""

    async def go():
        limited, watcher = new_key(nkeys.PREFIX_BYTE_USER), new_key(nkeys.PREFIX_BYTE_USER)
        errors = []

        async def on_error(e):
            errors.append(e)

        nc = await connect(
            operator,
            "tcp",
            user_credentials=write_creds(operator, "limited", trust.user_jwt(limited, nats_claims={"pub": {"allow": ["ok.>"]}}), limited),
            error_cb=on_error,
        )
        w = await connect(operator, "ws", user_credentials=write_creds(operator, "watcher", trust.user_jwt(watcher), watcher))
        try:
            sub = await w.subscribe(">")
            await synced(w)
            await nc.publish("no.x", b"denied")
            await nc.publish("ok.x", b"allowed")
            await nc.flush(timeout=3)
            msg = await sub.next_msg(timeout=3)
            assert msg.subject == "ok.x"
            with pytest.raises(nats.errors.TimeoutError):
                await sub.next_msg(timeout=0.3)
            assert any("permissions violation" in str(e).lower() for e in errors), errors
        finally:
            await nc.close()
            await w.close()

    arun(go())
