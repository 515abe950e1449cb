"""VRRP: sans-IO packet codec (packet.py) and state machine (machine.py), plus the asyncio adapters.

The codec and the machine never touch a socket, a clock or an address: they take bytes, adverts and
the current time, and return adverts and actions. The adapters do the I/O:

- params.py      config model -> machine Params and run-time settings of one instance
- transport.py   raw IP sockets (protocol 112), one per (interface, family), shared by VRID
- timer.py       a timerfd-based one-shot timer on the event loop (microsecond wake-ups)
- rtnl.py        the synchronous rtnetlink request channel addresses, routes and rules change over
- rtnl_watch.py  one rtnetlink multicast subscription (links for tracking, deletions for netwatch.py)
- addresses.py   VIPs over rtnetlink (requests encoded by pyroute2), gratuitous ARP / unsolicited NA
- vmac.py        use_vmac / use_vmac_addr: the macvlans with the virtual MAC and keepalived's sysctls
- routes.py      virtual_routes / virtual_rules: parsing (sans-IO) and rtnetlink requests while MASTER
- statics.py     static_ipaddress / static_routes / static_rules: kept in place whatever the states
- owned.py       what a VIP, route or rule deleted from outside means (sans-IO; no_track)
- netwatch.py    the kernel's address/route/rule deletions, decoded for owned.py
- frames.py      the ARP / NA frames (sans-IO)
- tracking.py    track_interface, vrrp_script, track_file and keepalived's weight arithmetic
- trackprocess.py vrrp_track_process: matching, quorum with delays (sans-IO), proc connector or /proc scans
- syncgroup.py   vrrp_sync_group rules over machines (sans-IO)
- instance.py    one machine wired to its socket, timer and addresses
- service.py     every instance of a config: VrrpService and run_vrrp()
- events.py      typed events with keepalived's log wording
- __main__.py    ``python -m lvsconsole.vrrp -f FILE`` (tests and bench)
"""
