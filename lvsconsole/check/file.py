"""FILE_CHECK: a real server follows a number written in a file (keepalived's track_file on a checker).

keepalived's arithmetic (``check_file.c``, ``track_file.c``):

* The file's first 127 bytes are read as C's ``strtol(buf, NULL, 0)`` (decimal, ``0x`` hex or ``0``
  octal, leading blanks and a sign allowed, trailing text ignored). A missing or empty file reads 0; a
  number outside 32 bits is logged and ignored (the previous value stays).
* The checker's ``weight W [reverse]`` defaults to the track_file's own (``weight`` 1 unless set there).
* ``W == 0``: the file is a switch. 0 means up, anything else down (``reverse``: the other way round).
* ``W != 0``: the server stays up and ``value * W`` (negated with ``reverse``) is added to its configured
  weight; IPVS gets the sum clamped at 0. Only a product at or below INT_MIN counts as a fault (down).

keepalived watches the file with inotify; here the checker is polled (a ``stat`` each
:data:`POLL_INTERVAL`, a read only when the file changed), which costs nothing noticeable and reacts
within a second.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from lvsconsole.check.policy import CheckOutcome

__all__ = ["INT_MAX", "INT_MIN", "POLL_INTERVAL", "FileChecker", "file_status", "read_track_value", "strtol"]

POLL_INTERVAL = 1.0
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
_LONG_MAX = 2**63 - 1
_STRTOL = re.compile(rb"[ \t\n\v\f\r]*([+-]?)(0[xX](?=[0-9a-fA-F])|0|)([0-9a-fA-F]*)")


def strtol(data: bytes) -> int | None:
    """C's ``strtol(data, NULL, 0)``; None where C would set ERANGE."""
    m = _STRTOL.match(data)
    if m is None:
        return 0
    sign, prefix, rest = m.groups()
    if prefix.lower() == b"0x":
        base, digits = 16, rest
    elif prefix == b"0":
        base = 8
        digits = re.match(rb"[0-7]*", rest).group(0)  # type: ignore[union-attr]
    else:
        base = 10
        digits = re.match(rb"[0-9]*", rest).group(0)  # type: ignore[union-attr]
    if not digits:
        return 0
    value = int(digits, base)
    if sign == b"-":
        value = -value
    if value > _LONG_MAX or value < -_LONG_MAX - 1:
        return None
    return value


def read_track_value(path: str) -> int | None:
    """The number in a track file: 0 when the file is missing or empty, None when it is out of range."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        data = os.read(fd, 127)
    except OSError:
        return 0
    finally:
        os.close(fd)
    if not data:
        return 0
    value = strtol(data)
    if value is None or value < INT_MIN or value > INT_MAX + 1:
        return None
    return value


def file_status(value: int, weight: int, reverse: bool) -> tuple[bool, int]:
    """(up, weight contribution) for a file value, keepalived's update_track_file_status()."""
    if weight == 0:
        return (value == 0) != reverse, 0
    contribution = value * weight * (-1 if reverse else 1)
    contribution = max(INT_MIN, min(INT_MAX, contribution))
    if contribution <= INT_MIN:
        return False, 0
    return True, contribution


@dataclass(slots=True)
class FileChecker:
    path: str
    weight: int = 1
    reverse: bool = False
    name: str = ""
    """The track_file's name, for messages."""
    value: int = 0
    """The last number accepted from the file."""
    _stamp: tuple[int, int, int] | None = field(default=None, repr=False)

    @property
    def timeout(self) -> float:
        return 1.0

    def read(self) -> CheckOutcome:
        """Read the file now (also used before the policy starts, as keepalived reads track files first)."""
        try:
            st = os.stat(self.path)
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = None
        if stamp is None or stamp != self._stamp:
            value = read_track_value(self.path)
            if value is not None:
                self.value = value
            self._stamp = stamp
        up, contribution = file_status(self.value, self.weight, self.reverse)
        return CheckOutcome(up, reason=f"{self.name or self.path} = {self.value}", weight=contribution)

    async def check(self) -> CheckOutcome:
        return self.read()
