"""Value parsers for keyword arguments: numbers, timers, booleans, addresses, ranges, scripts.

Simple values (the hot path of a 100k-line file) are parsed with plain Python; the composite ones
(address ranges, status-code lists, hex strings) use pyparsing grammars, whose error positions point
at the offending character. Every parser raises BadValue naming the word it could not accept.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from functools import cache
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_interface
from typing import TYPE_CHECKING

from lvsconsole.config.lexer import Word
from lvsconsole.config.model import IPAddress, IPInterface, LvsMethod, Script

if TYPE_CHECKING:
    import pyparsing as pp


class BadValue(Exception):
    """A keyword argument keepalived would reject, clamp or default; `word` locates it (None: missing)."""

    def __init__(self, message: str, word: Word | None = None, col_offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.word = word
        self.col_offset = col_offset


TRUE_WORDS = frozenset({"on", "true", "yes"})
FALSE_WORDS = frozenset({"off", "false", "no"})


def one(keyword: Word, args: Sequence[Word], what: str) -> Word:
    if not args:
        raise BadValue(f"'{keyword.text}' needs {what}", keyword)
    return args[0]


def integer(word: Word, lo: int, hi: int, what: str) -> int:
    text = word.text
    try:
        value = int(text, 10)
    except ValueError:
        raise BadValue(f"{what} '{text}' is not an integer", word) from None
    if not lo <= value <= hi:
        raise BadValue(f"{what} {value} is outside the range {_span(lo, hi)}", word)
    return value


def _num(x: float) -> str:
    """A bound as an operator writes it: 0.000001 and 31536000, not 1e-06 and 3.1536e+07."""
    return f"{x:.6f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def _span(lo: float, hi: float) -> str:
    return f"{_num(lo)}-{_num(hi)}" if lo >= 0 else f"{_num(lo)} to {_num(hi)}"


def timer(word: Word, lo: float, hi: float, what: str) -> float:
    """A TIMER: seconds with an optional fraction, kept at keepalived's microsecond resolution."""
    text = word.text
    try:
        value = float(text)
    except ValueError:
        raise BadValue(f"{what} '{text}' is not a number of seconds", word) from None
    if value != value or not lo <= value <= hi:  # NaN fails the range too
        raise BadValue(f"{what} {text} is outside the range {_span(lo, hi)} seconds", word)
    return round(value, 6)


def boolean(keyword: Word, args: Sequence[Word]) -> bool:
    """keepalived's BOOL: no argument means true; otherwise on/off/true/false/yes/no."""
    if not args:
        return True
    text = args[0].text.lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise BadValue(f"'{keyword.text}' takes on/off/true/false/yes/no, not '{args[0].text}'", args[0])


def address(word: Word, what: str = "address") -> IPAddress:
    try:
        return ip_address(word.text)
    except ValueError:
        raise BadValue(f"invalid {what} '{word.text}'", word) from None


def interface_address(word: Word, what: str = "address") -> IPInterface:
    """IP[/prefix]; the host bits may be set (a VIP is an address on a network)."""
    text = word.text
    try:
        if "/" in text:
            addr_text, _, prefix = text.partition("/")
            addr = ip_address(addr_text)
            plen = int(prefix, 10)
            if not 0 <= plen <= addr.max_prefixlen:
                raise BadValue(f"prefix length /{prefix} in {what} '{text}' is outside the range "
                               f"0-{addr.max_prefixlen}", word)
            return ip_interface(text)
        return ip_interface(text)
    except BadValue:
        raise
    except ValueError:
        raise BadValue(f"invalid {what} '{text}'", word) from None


def port(word: Word, what: str = "port") -> int:
    return integer(word, 0, 65535, what)


def script(keyword: Word, args: Sequence[Word]) -> Script:
    """A script keyword: one (usually quoted) command line, split like a shell, then [user [group]]."""
    if not args:
        raise BadValue(f"'{keyword.text}' needs a script", keyword)
    command = args[0]
    try:
        argv = tuple(shlex.split(command.text)) if command.quoted else (command.text,)
    except ValueError as exc:
        raise BadValue(f"cannot split script '{command.text}': {exc}", command) from None
    if not argv:
        raise BadValue(f"'{keyword.text}' has an empty script", command)
    user = args[1].text if len(args) > 1 else None
    group = args[2].text if len(args) > 2 else None
    if len(args) > 3:
        raise BadValue(f"unexpected '{args[3].text}' after the script's user and group", args[3])
    return Script(argv, user, group)


def command(keyword: Word, args: Sequence[Word]) -> Script:
    """vrrp_script's `script` and MISC_CHECK's `misc_path`: every word is part of the command line."""
    if not args:
        raise BadValue(f"'{keyword.text}' needs a command", keyword)
    argv: list[str] = []
    for word in args:
        if word.quoted:
            try:
                argv.extend(shlex.split(word.text))
            except ValueError as exc:
                raise BadValue(f"cannot split command '{word.text}': {exc}", word) from None
        else:
            argv.append(word.text)
    if not argv:
        raise BadValue(f"'{keyword.text}' has an empty command", args[0])
    return Script(tuple(argv))


def lvs_method(keyword: Word, args: Sequence[Word]) -> LvsMethod:
    """NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]."""
    kind_word = one(keyword, args, "a forwarding method (NAT, DR or TUN)")
    kind = kind_word.text
    if kind not in ("NAT", "DR", "TUN"):
        # keepalived compares case-sensitively: 'dr' is unknown there and the service silently runs as NAT
        hint = f"; write '{kind.upper()}'" if kind.upper() in ("NAT", "DR", "TUN") else ""
        raise BadValue(f"unknown forwarding method '{kind}' (NAT, DR or TUN{hint}; keepalived would use NAT)",
                       kind_word)
    rest = list(args[1:])
    if kind != "TUN":
        if rest:
            raise BadValue(f"unexpected '{rest[0].text}' after {kind}", rest[0])
        return LvsMethod(kind)  # type: ignore[arg-type]
    tunnel_type = None
    tunnel_port = None
    csum = None
    i = 0
    while i < len(rest):
        word = rest[i]
        text = word.text  # case-sensitive, as in keepalived
        if text == "type" and i + 1 < len(rest):
            tt = rest[i + 1].text
            if tt not in ("ipip", "gue", "gre"):
                raise BadValue(f"unknown tunnel type '{rest[i + 1].text}' (ipip, gue or gre)", rest[i + 1])
            tunnel_type = tt
            i += 2
        elif text == "port" and i + 1 < len(rest):
            tunnel_port = port(rest[i + 1], "tunnel port")
            i += 2
        elif text in ("nocsum", "csum", "remcsum"):
            csum = text
            i += 1
        else:
            raise BadValue(f"unexpected '{word.text}' in the tunnel options", word)
    if tunnel_type == "gue" and tunnel_port is None:
        raise BadValue("a gue tunnel needs 'port N'", kind_word)
    if tunnel_type != "gue" and tunnel_port is not None:
        raise BadValue("only a gue tunnel takes a port", kind_word)
    if tunnel_type == "gre" and csum == "remcsum":
        raise BadValue("a gre tunnel does not support remcsum", kind_word)
    return LvsMethod("TUN", tunnel_type, tunnel_port, csum)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- pyparsing grammars


@cache
def _status_code_grammar() -> pp.ParserElement:
    import pyparsing as pp

    code = pp.Word(pp.nums, max=3).set_parse_action(lambda t: int(t[0]))
    return (code + pp.Opt(pp.Suppress("-") + code)).set_name("status code or range") + pp.StringEnd()


def status_codes(args: Sequence[Word]) -> tuple[tuple[int, int], ...]:
    """status_code 200 or 200-299 400-499 503 …"""
    import pyparsing as pp

    grammar = _status_code_grammar()
    result: list[tuple[int, int]] = []
    for word in args:
        try:
            parsed = grammar.parse_string(word.text, parse_all=True)
        except pp.ParseException as exc:
            raise BadValue(f"invalid status code '{word.text}'", word, exc.col - 1) from None
        lo = int(parsed[0])
        hi = int(parsed[1]) if len(parsed) > 1 else lo
        if not (100 <= lo <= 599 and 100 <= hi <= 599):
            raise BadValue(f"status code '{word.text}' is outside 100-599", word)
        if hi < lo:
            raise BadValue(f"status code range '{word.text}' runs backwards", word)
        result.append((lo, hi))
    return tuple(result)


@cache
def _range_grammar() -> pp.ParserElement:
    """a.b.c.d-e | a.b.c.d-e.f.g.h | a.b.c.d/nn, and IPv6 equivalents (last group after '-')."""
    import pyparsing as pp

    addr = pp.Word(pp.hexnums + ".:")
    return (
        addr("first")
        + pp.Opt((pp.Suppress("-") + addr("last")) | (pp.Suppress("/") + pp.Word(pp.nums)("prefix")))
        + pp.StringEnd()
    )


def address_range(word: Word) -> tuple[IPAddress, IPAddress]:
    import ipaddress

    import pyparsing as pp

    try:
        parsed = _range_grammar().parse_string(word.text, parse_all=True)
    except pp.ParseException as exc:
        raise BadValue(f"invalid address range '{word.text}'", word, exc.col - 1) from None
    try:
        first = ip_address(parsed["first"])
    except ValueError:
        raise BadValue(f"invalid address '{parsed['first']}' in range '{word.text}'", word) from None
    if "prefix" in parsed:
        try:
            net = ipaddress.ip_network(f"{first}/{parsed['prefix']}", strict=False)
        except ValueError:
            raise BadValue(f"invalid prefix in range '{word.text}'", word) from None
        return net.network_address, net.broadcast_address
    if "last" not in parsed:
        return first, first
    last_text = str(parsed["last"])
    last: IPAddress
    try:
        if isinstance(first, IPv4Address):
            if "." in last_text:
                last = IPv4Address(last_text)
            else:
                octet = int(last_text, 10)
                if not 0 <= octet <= 255:
                    raise ValueError
                last = IPv4Address((int(first) & ~0xFF) | octet)
        else:
            if ":" in last_text:
                last = IPv6Address(last_text)
            else:
                group = int(last_text, 16)
                if not 0 <= group <= 0xFFFF:
                    raise ValueError
                last = IPv6Address((int(first) & ~0xFFFF) | group)
    except ValueError:
        raise BadValue(f"invalid end '{last_text}' of range '{word.text}'", word) from None
    if type(last) is not type(first):
        raise BadValue(f"range '{word.text}' mixes address families", word)
    if last < first:  # type: ignore[operator]
        raise BadValue(f"range '{word.text}' runs backwards", word)
    return first, last


def hex_bytes(args: Sequence[Word], *, wildcards: bool = False) -> str:
    """keepalived's free-format HEX_STR: groups of hex digits; an odd group gets a leading 0."""
    digits = []
    for word in args:
        text = word.text
        allowed = "0123456789abcdefABCDEF" + ("xX" if wildcards else "")
        bad = next((i for i, ch in enumerate(text) if ch not in allowed), None)
        if bad is not None:
            raise BadValue(f"invalid hex string '{text}'", word, bad)
        if len(text) % 2:
            text = "0" + text
        digits.append(text.upper())
    return "".join(digits)
