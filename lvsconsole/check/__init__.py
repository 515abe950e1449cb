"""Real-server health checking, keepalived style.

``policy``  the sans-IO core: retry / delay_before_retry / delay_loop / warmup / alpha per checker, a real
            server alive iff all its checkers are up, and per virtual server quorum with hysteresis,
            inhibit_on_failure, sorry_server and misc_dynamic weights. Results and the current time go in;
            actions (``DestUp``, ``DestDown``, ``SorryServerOn`` …, ``RunNotify``, ``LogEvent``) come out.
``runner``  one asyncio scheduler for every check: a heap of due times, bounded concurrency, lateness
            measured per check; results are fed to the policy and its actions handed to a callback.
``tcp`` …   one module per checker type; each checker is an object with ``timeout`` and
            ``async def check() -> CheckOutcome``.
"""
