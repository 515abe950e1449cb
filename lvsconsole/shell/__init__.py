"""``lvsconsole shell``: the prompt-toolkit REPL over the engine's command language (repl.py).

``add_parser`` (from cli.py) is cheap to import: prompt-toolkit loads when the shell runs.
"""

from __future__ import annotations

from lvsconsole.shell.cli import add_parser, main

__all__ = ["add_parser", "main"]
