"""One module per live panel: header, VRRP, virtual servers (with its filter bar), health log, command prompt."""
