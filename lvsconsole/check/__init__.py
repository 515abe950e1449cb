"""Real-server health checking, keepalived style.

``policy``  the sans-IO core: retry / delay_before_retry / delay_loop / warmup / alpha per checker, a real
            server alive iff all its checkers are up, and per virtual server quorum with hysteresis,
            inhibit_on_failure, sorry_server, misc_dynamic and FILE_CHECK weights. Results and the current
            time go in; actions (``DestUp``, ``DestDown``, ``SorryServerOn`` …, ``RunNotify``, ``LogEvent``)
            come out.
``runner``  one asyncio scheduler for every check: a heap of due times, bounded concurrency, a watchdog
            for overrunning checks, lateness measured per check; results are fed to the policy and its
            actions handed to a callback.
``tcp`` ``http`` ``smtp`` ``dns`` ``udp`` ``ping`` ``misc`` ``file``
            one module per checker type; each checker is an object with ``timeout`` and
            ``async def check() -> CheckOutcome``. (BFD_CHECK is parsed but not supported.)
``from_config``  Config model → virtual-server parameters + checker objects (keepalived's inheritance and
            defaults that the checkers need).
``service`` ``CheckService``: a config's checks running, with an action callback, a LogEvent stream in
            keepalived's wording and a snapshot; ``run_checks`` for the headless engine.
"""
