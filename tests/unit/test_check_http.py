"""HTTP_GET and SSL_GET against real asyncio HTTP(S) servers on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import ssl
from pathlib import Path

import pytest
from _checkutil import HttpServer, Reply, free_port, has_ipv6_loopback, make_cert, run

from lvsconsole.check import _net
from lvsconsole.check.http import HttpChecker, HttpUrlSpec, build_request, make_ssl_context
from lvsconsole.check.policy import CheckOutcome

BODY = b"<html><body>lvsconsole health page</body></html>\n" * 40


def url(path: str = "/", **kw: object) -> HttpUrlSpec:
    return HttpUrlSpec(path, **kw)  # type: ignore[arg-type]


async def check(server: HttpServer, *urls: HttpUrlSpec, **kw: object) -> CheckOutcome:
    checker = HttpChecker(server.host, server.port, urls, **kw)  # type: ignore[arg-type]
    return await checker.check()


# ---- digest ----------------------------------------------------------------------------------------


def test_digest_is_md5_of_the_body_and_passes() -> None:
    digest = hashlib.md5(BODY).hexdigest()

    async def main() -> tuple[CheckOutcome, CheckOutcome]:
        async with HttpServer({"/": Reply(body=BODY)}) as srv:
            good = await check(srv, url(digest=digest), connect_timeout=2.0)
            bad = await check(srv, url(digest="0" * 32), connect_timeout=2.0)
        return good, bad

    good, bad = run(main())
    assert good.ok and good.detail == "Remote Web server {rs} succeed on service."
    assert not bad.ok and bad.detail == "MD5 digest error to server {rs}."
    assert digest in bad.reason


def test_digest_stops_at_content_length() -> None:
    # The server sends more bytes than it announced: keepalived hashes only Content-Length bytes.
    body, extra = b"announced part", b" + trailing junk"
    reply = Reply(body=body + extra, content_length=False, headers=(("Content-Length", str(len(body))),))

    async def main() -> CheckOutcome:
        async with HttpServer({"/": reply}) as srv:
            return await check(srv, url(digest=hashlib.md5(body).hexdigest()), connect_timeout=2.0)

    assert run(main()).ok


def test_chunked_body_is_hashed_with_its_framing_like_genhash() -> None:
    raw = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    reply = Reply(body=raw, content_length=False, headers=(("Transfer-Encoding", "chunked"),))

    async def main() -> CheckOutcome:
        async with HttpServer({"/c": reply}) as srv:
            return await check(srv, url("/c", digest=hashlib.md5(raw).hexdigest()), protocol="1.1")

    assert run(main()).ok


@pytest.mark.skipif(shutil.which("genhash") is None, reason="keepalived's genhash is not installed")
@pytest.mark.parametrize(
    "reply",
    [
        Reply(body=BODY),
        Reply(body=b"short" + b"junk", content_length=False, headers=(("Content-Length", "5"),)),
        Reply(body=b"5\r\nhello\r\n0\r\n\r\n", content_length=False, headers=(("Transfer-Encoding", "chunked"),)),
        Reply(body=b"", content_length=False),
    ],
    ids=["content-length", "longer-than-announced", "chunked", "empty"],
)
def test_digest_equals_keepalived_genhash(reply: Reply) -> None:
    async def main() -> tuple[str, CheckOutcome]:
        async with HttpServer({"/p": reply}) as srv:
            proc = await asyncio.create_subprocess_exec(
                "genhash", "-s", "127.0.0.1", "-p", str(srv.port), "-u", "/p", "-t", "5",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, _ = await proc.communicate()
            m = re.search(rb"\b([0-9a-f]{32})\b", out)
            assert m is not None, out
            digest = m.group(1).decode()
            return digest, await check(srv, url("/p", digest=digest), connect_timeout=2.0)

    digest, outcome = run(main())
    assert outcome.ok, outcome
    # and both are the MD5 of what keepalived considers the body, computed independently here
    cl = dict(reply.headers).get("Content-Length")
    expected = reply.body[: int(cl)] if cl else reply.body
    assert digest == hashlib.md5(expected).hexdigest()


# ---- status codes, regex ---------------------------------------------------------------------------


def test_status_code_default_range_and_explicit_ranges() -> None:
    async def main() -> list[bool]:
        routes = {"/204": Reply(204, b""), "/301": Reply(301), "/503": Reply(503)}
        async with HttpServer(routes) as srv:
            return [
                (await check(srv, url("/204"))).ok,
                (await check(srv, url("/301"))).ok,
                (await check(srv, url("/301", status_codes=((200, 200), (300, 302))))).ok,
                (await check(srv, url("/503", status_codes=((200, 200), (300, 302))))).ok,
            ]

    assert run(main()) == [True, False, True, False]


def test_status_error_wording() -> None:
    async def main() -> CheckOutcome:
        async with HttpServer({"/": Reply(500)}) as srv:
            return await check(srv, url())

    out = run(main())
    assert out.detail == "HTTP status code error to server {rs}."
    assert out.reason == "status 500 for /"


def test_regex_and_regex_no_match() -> None:
    async def main() -> list[bool]:
        async with HttpServer({"/": Reply(body=b"status: healthy\n")}) as srv:
            return [
                (await check(srv, url(regex=re.compile(rb"health[y]")))).ok,
                (await check(srv, url(regex=re.compile(rb"broken")))).ok,
                (await check(srv, url(regex=re.compile(rb"broken"), regex_no_match=True))).ok,
                (await check(srv, url(regex=re.compile(rb"healthy"), regex_no_match=True))).ok,
            ]

    assert run(main()) == [True, False, True, False]


def test_every_url_must_pass() -> None:
    async def main() -> tuple[CheckOutcome, CheckOutcome, list[bytes]]:
        async with HttpServer({"/a": Reply(), "/b": Reply(500), "/c": Reply()}) as srv:
            good = await check(srv, url("/a"), url("/c"))
            bad = await check(srv, url("/a"), url("/b"), url("/c"))
            return good, bad, [r.split(b" ")[1] for r in srv.requests]

    good, bad, paths = run(main())
    assert good.ok and not bad.ok
    assert paths == [b"/a", b"/c", b"/a", b"/b"]  # stops at the first failing url


# ---- the request -----------------------------------------------------------------------------------


def test_request_line_and_headers_per_http_protocol() -> None:
    assert build_request("/x", "10.0.0.1", 80, None, "1.0") == (
        b"GET /x HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 10.0.0.1:80\r\n\r\n"
    )
    assert build_request("/x", "10.0.0.1", 80, "www.example", "1.0C") == (
        b"GET /x HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example\r\n\r\n"
    )
    assert build_request("/", "2001:db8::1", 8080, None, "1.1") == (
        b"GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: [2001:db8::1]:8080\r\n\r\n"
    )


def test_server_sees_virtualhost_as_host_header() -> None:
    async def main() -> list[bytes]:
        async with HttpServer({"/": Reply()}) as srv:
            await check(srv, url(virtualhost="www.example.test"), protocol="1.1")
            await check(srv, url())
            return srv.requests

    with_vhost, without = run(main())
    assert b"\r\nHost: www.example.test\r\n" in with_vhost
    assert with_vhost.startswith(b"GET / HTTP/1.1\r\n")
    assert re.search(rb"\r\nHost: 127\.0\.0\.1:\d+\r\n", without)


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_target_and_bracketed_host_header() -> None:
    async def main() -> tuple[CheckOutcome, list[bytes]]:
        async with HttpServer({"/": Reply()}, host="::1") as srv:
            return await check(srv, url()), srv.requests

    out, requests = run(main())
    assert out.ok
    assert re.search(rb"\r\nHost: \[::1\]:\d+\r\n", requests[0])


def test_bind_to_and_bind_port_choose_the_source() -> None:
    src_port = free_port()

    async def main() -> tuple[CheckOutcome, list[tuple[str, int]]]:
        async with HttpServer({"/": Reply()}) as srv:
            out = await check(srv, url(), binding=_net.Binding(bind_to="127.0.0.1", bind_port=src_port))
            return out, srv.peers

    out, peers = run(main())
    assert out.ok and peers == [("127.0.0.1", src_port)]


# ---- failures --------------------------------------------------------------------------------------


def test_refused_connection() -> None:
    out = run(HttpChecker("127.0.0.1", free_port(), (url(),), 2.0).check())
    assert not out.ok
    assert out.detail in ("Connection failed server {rs}.", "HTTP_CHECK - network unreachable server {rs}.")
    assert out.reason == "connection refused"


def test_silent_server_times_out_within_connect_timeout() -> None:
    async def main() -> tuple[CheckOutcome, float]:
        async with HttpServer({"/": Reply(hang=True)}) as srv:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            out = await check(srv, url(), connect_timeout=0.3)
            return out, loop.time() - t0

    out, took = run(main())
    assert out.detail == "Timeout WEB read server {rs}."
    assert 0.25 <= took < 2.0


def test_server_closing_without_a_response() -> None:
    async def main() -> CheckOutcome:
        async def close_at_once(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await r.readuntil(b"\r\n\r\n")
            w.close()

        server = await asyncio.start_server(close_at_once, "127.0.0.1", 0)
        async with server:
            return await HttpChecker("127.0.0.1", server.sockets[0].getsockname()[1], (url(),)).check()

    out = run(main())
    assert out.detail == "Read, no data received from server {rs}."


# ---- SSL_GET ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    d = tmp_path_factory.mktemp("certs")
    scert, skey = make_cert(d, "server")
    ccert, ckey = make_cert(d, "client")
    return {"server_cert": scert, "server_key": skey, "client_cert": ccert, "client_key": ckey}


def server_tls(certs: dict[str, Path], *, want_client_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs["server_cert"], certs["server_key"])
    if want_client_cert:
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(certs["client_cert"])
    return ctx


def test_ssl_get_with_a_self_signed_certificate(certs: dict[str, Path]) -> None:
    async def main() -> tuple[CheckOutcome, list[str | None]]:
        async with HttpServer({"/": Reply(body=BODY)}, tls=server_tls(certs)) as srv:
            out = await check(srv, url(digest=hashlib.md5(BODY).hexdigest()), ssl_context=make_ssl_context())
            return out, srv.sni

    out, sni = run(main())
    assert out.ok, out
    assert sni == [None]  # no enable_sni: no server name sent


def test_ssl_get_sends_sni_when_enabled(certs: dict[str, Path]) -> None:
    async def main() -> tuple[CheckOutcome, list[str | None], list[bytes]]:
        async with HttpServer({"/": Reply()}, tls=server_tls(certs)) as srv:
            spec = url(virtualhost="www.example.test", sni="www.example.test")
            out = await check(srv, spec, ssl_context=make_ssl_context())
            return out, srv.sni, srv.requests

    out, sni, requests = run(main())
    assert out.ok and sni == ["www.example.test"]
    assert b"Host: www.example.test\r\n" in requests[0]


def test_ssl_block_client_certificate_is_presented(certs: dict[str, Path]) -> None:
    ctx = make_ssl_context(None, str(certs["client_cert"]), str(certs["client_key"]))

    async def main() -> tuple[CheckOutcome, list[bool]]:
        async with HttpServer({"/": Reply()}, tls=server_tls(certs, want_client_cert=True)) as srv:
            return await check(srv, url(), ssl_context=ctx), srv.client_certs

    out, presented = run(main())
    assert out.ok and presented == [True]


def test_ssl_get_against_a_plain_http_server_fails_the_handshake(certs: dict[str, Path]) -> None:
    async def main() -> CheckOutcome:
        async with HttpServer({"/": Reply()}) as srv:
            return await check(srv, url(), ssl_context=make_ssl_context(), connect_timeout=0.5)

    out = run(main())
    assert not out.ok
    assert out.detail in (
        "SSL handshake/communication error connecting to server {rs}.",
        "Timeout connecting server {rs}.",
    )
