"""The IPVS side of the director, sans-IO at the core.

- ``table``     frozen model of an IPVS table (services, real servers), runtime overrides (drain, weight,
                disable) kept apart from config, and a kernel-faithful mutable builder.
- ``reconcile`` desired vs actual table -> minimal ordered operations; ``apply_ops`` replays them purely.
- ``backend``   the async ``Backend`` protocol every IPVS backend implements, plus stats/sync-daemon types.
- ``memory``    an in-process backend with the kernel's behaviour and errors (dry-run, demo, tests).
- ``listing``   ``ipvsadm -L -n`` / ``--stats`` / ``--rate`` text, byte for byte (ipvsadm 1.31).

The kernel backend (pyroute2) lives in ``kernel``. Nothing here imports the config model: the mapping from
keepalived's ``virtual_server`` blocks to a ``Table`` is the engine's job.
"""
