"""Regenerate the console's screenshots: ``.venv/bin/python screenshots/make.py [--out DIR] [--no-png]``.

Runs the real app (``App.run_test``) on a dry-run engine (memory IPVS) whose real servers are real TCP
listeners on 127.0.0.1, with traffic figures fed to the memory backend so that counters and sparklines move,
and saves SVGs of: the main screen, the drain confirmation, the drain view, the diff view before a commit, the
config editor with a diagnostic, the help screen, and the health-check flight recorder of a real server whose
listener is stopped and started again (so that it flaps). PNGs are made from them with ``rsvg-convert``
(Debian: librsvg2-bin) when it is installed.

VRRP needs root and raw sockets, so the VRRP panel here shows two instances from a stand-in link (this
script only; the package never fakes an engine).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from ipaddress import IPv4Address
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lvsconsole.engine.daemon import Engine, running_engine  # noqa: E402
from lvsconsole.engine.director_api import DirectorSnapshot, VrrpInstanceView  # noqa: E402
from lvsconsole.ipvs.backend import Counters, DestCounters  # noqa: E402
from lvsconsole.ipvs.memory import MemoryBackend  # noqa: E402
from lvsconsole.ipvs.table import Proto, ServiceKey  # noqa: E402
from lvsconsole.tui.app import LvsConsoleApp  # noqa: E402
from lvsconsole.tui.link import EmbeddedLink  # noqa: E402
from lvsconsole.tui.screens.checks import ChecksScreen  # noqa: E402
from lvsconsole.tui.screens.confirm import ConfirmScreen  # noqa: E402
from lvsconsole.tui.screens.diff import DiffScreen  # noqa: E402
from lvsconsole.tui.screens.drain import DrainScreen  # noqa: E402
from lvsconsole.tui.screens.editor import EditorScreen  # noqa: E402
from lvsconsole.tui.screens.help import HelpScreen  # noqa: E402
from lvsconsole.tui.screens.radar import RadarScreen  # noqa: E402
from lvsconsole.vrrp.packet import MCAST_GROUP4, Advert, Auth, encode_ipv4_datagram  # noqa: E402
from lvsconsole.vrrp.radar import Expected, RadarKey  # noqa: E402
from lvsconsole.vrrp.transport import Received  # noqa: E402

SIZE = (160, 48)
CHECK = """        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 0.2
        }"""


def config(web: int, api: int, dns: int, ports: list[int], dead: int) -> str:
    def rs(port: int, weight: int) -> str:
        return f"    real_server 127.0.0.1 {port} {{\n        weight {weight}\n{CHECK}\n    }}\n"

    return (
        "global_defs {\n    router_id LVS_DEVEL\n}\n\n"
        f"virtual_server 127.0.0.1 {web} {{\n    delay_loop 0.5\n    lb_algo wlc\n    lb_kind NAT\n"
        f"    protocol TCP\n{rs(ports[0], 3)}{rs(ports[1], 3)}{rs(ports[2], 2)}{rs(dead, 1)}}}\n\n"
        f"virtual_server 127.0.0.1 {api} {{\n    delay_loop 0.5\n    lb_algo rr\n    lb_kind NAT\n"
        f"    persistence_timeout 300\n    protocol TCP\n{rs(ports[3], 1)}{rs(ports[4], 1)}}}\n\n"
        f"virtual_server 127.0.0.1 {dns} {{\n    delay_loop 0.5\n    lb_algo sh\n    lb_kind NAT\n"
        f"    protocol TCP\n{rs(ports[5], 1)}{rs(ports[6], 1)}}}\n"
    )


class ScreenshotLink(EmbeddedLink):
    """The real embedded engine, plus two VRRP instances (which would need root to run for real)."""

    def __init__(self, engine: Engine, socket_path: str) -> None:
        super().__init__(engine, socket_path=socket_path, dry_run=True)
        self.t0 = time.time()
        self.listeners: dict[int, asyncio.Server] = {}
        """The real servers' TCP listeners by port (the flight-recorder scene stops and restarts one)."""

    async def poll(self) -> DirectorSnapshot:
        snap = self.engine.director.snapshot()
        now = snap.time
        instances = (
            VrrpInstanceView(name="VI_WEB", state="MASTER", priority=100, base_priority=100, vrid=51, interface="eth0",
                             advert_int=1.0, master="192.168.2.158", since=self.t0 - 5421, sync_group="VG_1",
                             vips=("192.168.2.188/32",),
                             counters={"advert_sent": 5421 + int(now - self.t0), "advert_rcvd": 3, "become_master": 1}),
            VrrpInstanceView(name="VI_API", state="MASTER", priority=90, base_priority=100, vrid=52, interface="eth0",
                             advert_int=1.0, master="192.168.2.158", since=self.t0 - 5421, sync_group="VG_1",
                             vips=("192.168.2.189/32",),
                             counters={"advert_sent": 5419 + int(now - self.t0), "become_master": 1}),
            VrrpInstanceView(name="VI_MGMT", state="BACKUP", priority=50, base_priority=50, vrid=60, interface="eth1",
                             advert_int=2.0, master="10.1.0.3", since=self.t0 - 86_000, vips=("10.1.0.100/24",),
                             counters={"advert_rcvd": 43_000 + int((now - self.t0) / 2)}),
        )
        self._snapshot = dataclasses.replace(snap, instances=instances)
        return self._snapshot


async def traffic(backend: MemoryBackend, services: dict[int, list[int]], stop: asyncio.Event) -> None:
    """Connection gauges and rates that wander, per dest; a drained dest's connections end one by one."""
    t = 0.0
    drained_at: dict[tuple[int, int], float] = {}
    while not stop.is_set():
        t += 1
        for vs_port, rs_ports in services.items():
            service = ServiceKey.inet(Proto.TCP, "127.0.0.1", vs_port)
            if service not in backend.table:
                continue
            cps = inbps = outbps = 0
            for i, dest in enumerate(backend.table[service].dests.values()):
                if dest.key.port not in rs_ports:
                    continue
                phase = t / 4 + i * 1.3 + vs_port % 7
                level = (1.2 + math.sin(phase)) * (3 - (i % 3)) * (1 if dest.weight else 0.15)
                counters = DestCounters(
                    activeconns=int(40 * level) + 3, inactconns=int(90 * level), persistconns=int(5 * level),
                    cps=int(12 * level), inbps=int(180_000 * level), outbps=int(1_900_000 * level))
                if dest.weight == 0:  # draining: established connections end at random, so the count decays
                    since = t - drained_at.setdefault((vs_port, dest.key.port), t)
                    left = math.exp(-since / (60 + 40 * i))  # t ticks 5 times a second: a 12-20 s time constant
                    counters = DestCounters(activeconns=round(160 * left), inactconns=round(20 * left),
                                            persistconns=4, inbps=int(90_000 * left), outbps=int(900_000 * left))
                backend.set_dest_stats(service, dest.key, counters)
                cps, inbps, outbps = cps + counters.cps, inbps + counters.inbps, outbps + counters.outbps
            backend.set_service_stats(service, Counters(cps=cps, inbps=inbps, outbps=outbps))
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def engine_lab() -> AsyncIterator[tuple[Engine, ScreenshotLink, dict[str, int], dict[int, list[int]]]]:
    servers = [await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0) for _ in range(7)]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    listeners = dict(zip(ports, servers, strict=True))

    def free() -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        return port

    web, api, dns, dead = free(), free(), free(), free()
    directory = tempfile.mkdtemp(prefix="lvsshots-")
    conf = Path(directory) / "keepalived.conf"
    conf.write_text(config(web, api, dns, ports, dead))
    sock = os.path.join(directory, "lvs.sock")
    try:
        async with running_engine(str(conf), dry_run=True, socket_path=sock) as engine:
            link = ScreenshotLink(engine, sock)
            link.listeners = listeners
            names = {"web": web, "api": api, "dns": dns, "dead": dead}
            names.update({f"rs{i}": p for i, p in enumerate(ports)})
            services = {web: ports[:3], api: ports[3:5], dns: ports[5:7]}
            yield engine, link, names, services
    finally:
        for s in listeners.values():
            s.close()
        shutil.rmtree(directory, ignore_errors=True)


def radar_scene(engine: Engine) -> None:
    """The wire as the stand-in instances would hear it, given to the engine's real VRRP service (its radar).

    eth1, VRID 60: VI_MGMT's master 10.1.0.3 and a rogue 10.1.0.9 (another password, another VIP) advertising
    at once; eth0: VRID 77 of a neighbouring pair this director does not run.
    """
    vrrp = engine.director.vrrp
    assert vrrp is not None
    mgmt = Auth.pass_("mgmt")
    vrrp.radar.configure({
        RadarKey("eth0", 4, 51): Expected("VI_WEB", 2, 100, Auth(), frozenset({IPv4Address("192.168.2.188")})),
        RadarKey("eth0", 4, 52): Expected("VI_API", 2, 100, Auth(), frozenset({IPv4Address("192.168.2.189")})),
        RadarKey("eth1", 4, 60): Expected("VI_MGMT", 2, 200, mgmt, frozenset({IPv4Address("10.1.0.100")})),
    })

    def advert(vrid: int, priority: int, vip: str, interval_s: int, auth: Auth | None = None) -> Advert:
        auth = auth or Auth()
        return Advert(version=2, vrid=vrid, priority=priority, addresses=(IPv4Address(vip),),
                      interval_cs=interval_s * 100, auth_type=auth.type, auth_data=auth.data)

    senders = [
        ("eth1", IPv4Address("10.1.0.3"), advert(60, 100, "10.1.0.100", 2, mgmt), 2.0, 0.0),
        ("eth1", IPv4Address("10.1.0.9"), advert(60, 120, "10.1.0.200", 2, Auth.pass_("test")), 2.0, 0.9),
        ("eth0", IPv4Address("192.168.2.40"), advert(77, 150, "192.168.2.77", 1), 1.0, 0.3),
    ]
    now = asyncio.get_running_loop().time()
    arrivals = []
    for interface, src, ad, interval, phase in senders:
        data = encode_ipv4_datagram(ad, src, MCAST_GROUP4)
        t = now - 40 + phase
        step = 0
        while t <= now:
            arrivals.append((t, interface, src, data))
            step += 1
            t += interval + 0.012 * math.sin(step * 1.7)  # a little scheduling jitter
    for t, interface, src, data in sorted(arrivals, key=lambda a: a[0]):
        vrrp.observe(interface, Received(data, src, MCAST_GROUP4, None, t))


async def wait(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("screenshot scene did not settle")
        await asyncio.sleep(0.05)


async def shoot(out: Path) -> list[Path]:
    saved: list[Path] = []
    async with engine_lab() as (engine, link, ports, services):
        backend = engine.director.backend
        assert isinstance(backend, MemoryBackend)
        stop = asyncio.Event()
        feeder = asyncio.create_task(traffic(backend, services, stop))
        app = LvsConsoleApp(link, tick=0.25)
        try:
            async with app.run_test(size=SIZE) as pilot:
                table = app.vs_table

                def settled() -> bool:
                    snap = link.snapshot
                    health = [rs.health for vs in snap.virtual_servers for rs in vs.real_servers]
                    return health.count("down") == 1 and health.count("up") == 7

                await wait(settled)
                web_key = f"[127.0.0.1]:tcp:{ports['web']}"
                # a drained server, to show the state and the falling ActiveConn
                await app.execute(f"drain 127.0.0.1:{ports['rs2']} in 127.0.0.1:{ports['web']}/tcp --until-empty "
                                  "--timeout 300 then remove")
                await app.execute(f"set rs 127.0.0.1:{ports['rs3']} in 127.0.0.1:{ports['api']} state drain")
                await pilot.pause(14)  # a minute of sparkline at 4 samples a second
                table.select(web_key, f"[127.0.0.1]:tcp:{ports['rs1']}")
                await pilot.pause(0.5)
                saved.append(Path(app.save_screenshot("main.svg", str(out))))

                await pilot.press("d")
                await wait(lambda: isinstance(app.screen, ConfirmScreen))
                await pilot.pause(0.3)
                saved.append(Path(app.save_screenshot("drain-confirm.svg", str(out))))
                await pilot.press("n")

                table.focus()
                await pilot.press("W")  # the drain view: both drains, their counts falling, the ETA
                await wait(lambda: isinstance(app.screen, DrainScreen) and len(app.screen.rows) == 2)
                await pilot.pause(1.0)
                saved.append(Path(app.save_screenshot("drain.svg", str(out))))
                await pilot.press("escape")

                rs0 = f"127.0.0.1:{ports['rs0']} in 127.0.0.1:{ports['web']}"
                for command in (f"set rs {rs0} weight 5", f"delete rs 127.0.0.1:{ports['rs4']} from "
                                f"127.0.0.1:{ports['api']}", f"set vs 127.0.0.1:{ports['dns']} lvs_sched mh"):
                    result = await app.link.run(command)
                    assert result.ok, result.message
                await pilot.pause(0.5)
                await pilot.press("c")
                await wait(lambda: isinstance(app.screen, DiffScreen))
                await pilot.pause(0.3)
                saved.append(Path(app.save_screenshot("diff.svg", str(out))))
                await pilot.press("escape")

                await pilot.press("e")
                await wait(lambda: isinstance(app.screen, EditorScreen))
                editor = app.screen
                assert isinstance(editor, EditorScreen)
                area = editor.area
                area.load_text(re.sub(r"\b(lb_algo|lvs_sched) rr\b", r"\1 rrr", area.text, count=1))
                area.post_message(area.Changed(area))
                await wait(lambda: any(d.is_error for d in editor.diagnostics))
                line = next(d for d in editor.diagnostics if d.is_error).location
                if line is not None:
                    area.move_cursor((line.line - 1, line.col - 1), center=True)
                await pilot.pause(0.5)
                saved.append(Path(app.save_screenshot("editor.svg", str(out))))
                editor.saved_text = area.text  # leave without the discard question
                await pilot.press("escape")

                await pilot.press("question_mark")
                await wait(lambda: isinstance(app.screen, HelpScreen))
                await pilot.pause(0.3)
                saved.append(Path(app.save_screenshot("help.svg", str(out))))
                await pilot.press("escape")

                flappy = ports["rs6"]
                for _ in range(3):  # stop and start the listener: refusals between runs of successes
                    link.listeners[flappy].close()
                    await link.listeners[flappy].wait_closed()
                    await pilot.pause(1.6)
                    link.listeners[flappy] = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", flappy)
                    await pilot.pause(2.4)
                table.select(f"[127.0.0.1]:tcp:{ports['dns']}", f"[127.0.0.1]:tcp:{flappy}")
                table.focus()
                await pilot.press("h")
                await wait(lambda: isinstance(app.screen, ChecksScreen) and app.screen.result is not None)
                await pilot.press("n")
                await wait(lambda: isinstance(app.screen, ChecksScreen) and app.screen.last_check is not None)
                await pilot.pause(0.5)
                saved.append(Path(app.save_screenshot("checks.svg", str(out))))
                await pilot.press("escape")

                radar_scene(engine)
                await pilot.press("1")  # the VRRP panel, whose 'r' opens the wire radar
                await pilot.press("r")
                await wait(lambda: isinstance(app.screen, RadarScreen) and bool(app.screen.data.get("alarms")))
                await pilot.pause(0.3)
                saved.append(Path(app.save_screenshot("radar.svg", str(out))))
                await pilot.press("escape")
        finally:
            stop.set()
            await feeder
    return saved


def to_png(svgs: list[Path]) -> list[Path]:
    tool = shutil.which("rsvg-convert")
    if tool is None:
        print("rsvg-convert not found (Debian: librsvg2-bin): SVGs only", file=sys.stderr)
        return []
    pngs = []
    for svg in svgs:
        png = svg.with_suffix(".png")
        # librsvg drops the leading no-break spaces of a text element (a browser keeps them): a run of cells in
        # one style, numbers padded on the left, would shift left. xml:space="preserve" keeps them.
        text = svg.read_text(encoding="utf-8").replace("<svg ", '<svg xml:space="preserve" ', 1)
        subprocess.run([tool, "-w", "1600", "-o", str(png)], input=text.encode(), check=True)
        pngs.append(png)
    return pngs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent), help="output directory")
    parser.add_argument("--no-png", action="store_true", help="SVG only")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="keep only these screenshots (e.g. radar), leave the others in --out untouched")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.only:
        # every scene still runs (each builds on the previous one); only the wanted files reach --out
        with tempfile.TemporaryDirectory(prefix="lvsshots-") as scratch:
            shot = asyncio.run(shoot(Path(scratch)))
            svgs = [Path(shutil.copy(svg, out / svg.name)) for svg in shot if svg.stem in args.only]
    else:
        svgs = asyncio.run(shoot(out))
    pngs = [] if args.no_png else to_png(svgs)
    for path in [*svgs, *pngs]:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
