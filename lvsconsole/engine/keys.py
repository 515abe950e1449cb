"""keepalived's names of virtual and real servers (FMT_VS, FMT_RS): the identities every face uses."""

from __future__ import annotations

from lvsconsole.check.policy import format_trio
from lvsconsole.config import model as m
from lvsconsole.engine.director_api import RsId


def vs_key(vs: m.VirtualServer) -> str:
    """keepalived's name of a virtual server (FMT_VS), the identity every face uses."""
    if vs.group is not None:
        return f"[{vs.group}]:{vs.port or 0}"
    if vs.fwmark is not None:
        return f"FWM {vs.fwmark}"
    return format_trio(str(vs.address), vs.protocol.lower(), vs.port or 0)


def rs_key(vs: m.VirtualServer, address: m.IPAddress, port: int | None) -> str:
    protocol = "none" if vs.fwmark is not None else vs.protocol.lower()
    return format_trio(str(address), protocol, port or 0)


def rs_id(vs: m.VirtualServer, rs: m.RealServer) -> RsId:
    return RsId(vs_key(vs), rs_key(vs, rs.address, rs.port if vs.fwmark is None else None))


def configured_servers(config: m.Config) -> set[RsId]:
    """Every real server of every virtual server of ``config``, by the views' keys."""
    return {rs_id(vs, rs) for vs in config.virtual_servers for rs in vs.real_servers}
