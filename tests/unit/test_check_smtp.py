"""SMTP_CHECK against aiosmtpd (a real SMTP server) and a few misbehaving asyncio servers."""

from __future__ import annotations

import asyncio
from typing import Any

from _checkutil import free_port, run
from aiosmtpd.smtp import SMTP

from lvsconsole.check.policy import CheckOutcome
from lvsconsole.check.smtp import DEFAULT_HELO, SmtpChecker


class Recorder:
    def __init__(self) -> None:
        self.helos: list[str] = []
        self.quits = 0

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:
        self.helos.append(hostname)
        session.host_name = hostname
        return "250 lvsconsole.test"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        self.quits += 1
        return "221 Bye"


async def with_aiosmtpd(helo: str | None = None) -> tuple[CheckOutcome, Recorder]:
    handler = Recorder()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="lvsconsole.test"), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        checker = SmtpChecker("127.0.0.1", port, connect_timeout=3.0)
        if helo is not None:
            checker.helo_name = helo
        return await checker.check(), handler


def test_smtp_conversation_with_aiosmtpd() -> None:
    out, handler = run(with_aiosmtpd())
    assert out.ok and out.detail == "Remote SMTP server {rs} succeed on service."
    assert handler.helos == [DEFAULT_HELO] and handler.quits == 1


def test_helo_name_is_sent() -> None:
    out, handler = run(with_aiosmtpd("director.example.test"))
    assert out.ok and handler.helos == ["director.example.test"]


async def scripted(lines: list[bytes], *, close_after: bool = True) -> tuple[CheckOutcome, int]:
    """A server that sends the given lines in turn, one per line the client sends (first one at once)."""

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            for i, line in enumerate(lines):
                if i:
                    await r.readline()
                w.write(line)
                await w.drain()
            if not close_after:
                await r.read()
        finally:
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        return await SmtpChecker("127.0.0.1", port, connect_timeout=0.5).check(), port


def test_bad_greeting_banner() -> None:
    out, port = run(scripted([b"554 no service here\r\n"]))
    assert not out.ok
    assert out.detail == f"SMTP_CHECK Bad greeting banner from server [127.0.0.1]:{port}"


def test_multiline_greeting_is_a_bad_banner_as_in_keepalived() -> None:
    out, _ = run(scripted([b"220-first line\r\n220 second line\r\n"]))
    assert not out.ok and "Bad greeting banner" in out.detail


def test_bad_helo_response() -> None:
    out, port = run(scripted([b"220 hi\r\n", b"500 what\r\n"]))
    assert out.detail == f"SMTP_CHECK Bad HELO response from server [127.0.0.1]:{port}"


def test_server_closing_before_quit_reply_is_a_read_failure() -> None:
    out, port = run(scripted([b"220 hi\r\n", b"250 ok\r\n"]))
    assert out.detail == f"SMTP_CHECK Read failure from server [127.0.0.1]:{port}"


def test_reply_to_quit_is_not_judged() -> None:
    out, _ = run(scripted([b"220 hi\r\n", b"250 ok\r\n", b"999 whatever\r\n"]))
    assert out.ok


def test_silent_server_is_a_read_timeout() -> None:
    out, port = run(scripted([b""], close_after=False))
    assert out.detail == f"SMTP_CHECK Read timeout from server [127.0.0.1]:{port}"


def test_closed_port() -> None:
    port = free_port()
    out = run(SmtpChecker("127.0.0.1", port, connect_timeout=1.0).check())
    assert out.detail == f"SMTP_CHECK Could not connect to server [127.0.0.1]:{port}"
