"""The director engine's operator side: events and their bus, the config store, the command language,
the executor that runs commands against the director, and the control socket.

- ``events``        typed, timestamped events and their JSON form
- ``bus``           ``EventBus``: non-blocking publish, bounded per-subscriber queues, bounded history
- ``store``         ``ConfigStore``: running / candidate / the last 20 committed configs; atomic write
- ``edits``         candidate edits on the config model (``set``/``unset``/``add``/``delete``)
- ``refs``          ``IP:port`` / ``[IPv6]:port`` / ``fwmark N`` / ``group NAME`` references
- ``commands``      the operator language: one pyparsing grammar, ``parse``, ``completions``, ``Result``
- ``walk``          word-by-word exploration of that grammar (completion and error positions)
- ``director_api``  ``DirectorCore``: what commands need from the running director, and its views
- ``executor``      ``CommandExecutor``: a parsed command → ``Result``, with audit events
- ``showtext``      plain-text renderings of ``show`` for the shell and ``ctl``
- ``control``       the Unix control socket (JSON lines): server and client
- ``errors``        ``CommandError`` (message, offending word, column)

Nothing here imports a UI.
"""
