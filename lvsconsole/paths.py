"""Well-known paths, in a module with no imports so that argparse set-up stays cheap."""

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"
DEFAULT_SOCKET = "/run/lvsconsole/lvsconsole.sock"
DEFAULT_HISTORY_DIR = "/var/lib/lvsconsole/history"
