"""nats-py with accounts (scenario accounts): service and stream imports over ws and TCP.

SHOP exports svc.echo and orders.>; BANK imports both (orders.> under the prefix "shop");
GUEST imports svc.echo as "echo" and is the account of clients without credentials
(no_auth_user anon); OTHER imports nothing.
"""
import asyncio
import json

import nats
import pytest
from nats.errors import NoRespondersError

from test_nats_py import arun, connect, synced

KINDS = ["ws", "tcp"]


def other(kind):
    return "tcp" if kind == "ws" else "ws"


@pytest.fixture(scope="module")
def accounts(start):
    return start("accounts")


async def login(server, kind, user=None):
    creds = {"user": user, "password": "pw"} if user else {}
    return await connect(server, kind, **creds)


async def echo_service(nc, seen):
    async def handler(msg):
        seen.append(msg)
        await msg.respond(b"echo:" + msg.data)

    await nc.subscribe("svc.echo", cb=handler)
    await synced(nc)


@pytest.mark.parametrize("kind", KINDS)
def test_service_import_request(accounts, kind):
    """BANK (and anonymous GUEST, through `to: echo`) request SHOP's svc.echo; OTHER cannot."""

    async def go():
        shop = await login(accounts, other(kind), "shop")
        bank = await login(accounts, kind, "bank")
        anon = await login(accounts, kind)
        lonely = await login(accounts, kind, "other")
        try:
            seen = []
            await echo_service(shop, seen)
            r = await bank.request("svc.echo", b"from bank", timeout=3)
            assert r.data == b"echo:from bank"
            assert seen[0].subject == "svc.echo"
            assert seen[0].reply.startswith("_R_.")
            info = json.loads(seen[0].headers["Nats-Request-Info"])
            assert info["acc"] == "BANK"
            r = await anon.request("echo", b"from anon", timeout=3)
            assert r.data == b"echo:from anon"
            assert json.loads(seen[1].headers["Nats-Request-Info"])["acc"] == "GUEST"
            with pytest.raises(NoRespondersError):
                await lonely.request("svc.echo", b"x", timeout=3)
            with pytest.raises(NoRespondersError):
                await anon.request("svc.echo", b"x", timeout=3)
            assert len(seen) == 2
        finally:
            for nc in (shop, bank, anon, lonely):
                await nc.close()

    arun(go())


@pytest.mark.parametrize("kind", KINDS)
def test_stream_import_with_prefix(accounts, kind):
    """SHOP's orders.> reaches BANK as shop.orders.>, GUEST unchanged, OTHER never."""

    async def go():
        shop = await login(accounts, other(kind), "shop")
        bank = await login(accounts, kind, "bank")
        guest = await login(accounts, kind, "guest")
        lonely = await login(accounts, kind, "other")
        try:
            b = await bank.subscribe("shop.orders.>")
            plain = await bank.subscribe("orders.>")
            g = await guest.subscribe("orders.>")
            o = await lonely.subscribe(">")
            for nc in (bank, guest, lonely):
                await synced(nc)
            await shop.publish("orders.py", b"order")
            await shop.flush(timeout=3)
            m = await b.next_msg(timeout=3)
            assert (m.subject, m.data) == ("shop.orders.py", b"order")
            assert (await g.next_msg(timeout=3)).subject == "orders.py"
            for sub in (plain, o):
                with pytest.raises(nats.errors.TimeoutError):
                    await sub.next_msg(timeout=0.3)
        finally:
            for nc in (shop, bank, guest, lonely):
                await nc.close()

    arun(go())


def test_singleton_response_over_ws(accounts):
    """A Singleton import delivers the first of several responses only."""

    async def go():
        shop = await login(accounts, "tcp", "shop")
        bank = await login(accounts, "ws", "bank")
        try:
            async def handler(msg):
                for i in range(3):
                    await shop.publish(msg.reply, f"r{i}".encode())

            await shop.subscribe("svc.echo", cb=handler)
            await synced(shop)
            inbox = bank.new_inbox()
            sub = await bank.subscribe(inbox)
            await synced(bank)
            await bank.publish("svc.echo", b"q", reply=inbox)
            assert (await sub.next_msg(timeout=3)).data == b"r0"
            with pytest.raises(nats.errors.TimeoutError):
                await sub.next_msg(timeout=0.5)
        finally:
            await shop.close()
            await bank.close()

    arun(go())
