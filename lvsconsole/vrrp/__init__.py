"""VRRP: sans-IO packet codec (packet.py) and state machine (machine.py), plus the asyncio adapters.

The codec and the machine never touch a socket, a clock or an address: they take bytes, adverts and
the current time, and return adverts and actions. Adapters (transport.py, addresses.py) do the I/O.
"""
