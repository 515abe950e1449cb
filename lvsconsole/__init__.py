"""lvsconsole: an LVS director with a keepalived-compatible engine and a Textual console."""

__version__ = "0.1.0"
