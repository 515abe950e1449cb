"""Scripts as keepalived runs them (notify, vrrp_script, MISC_CHECK): who may run them and what they said.

- vet.py  why a script would be refused or would fail before it runs (path, permissions, user, security)
- run.py  run one script (no shell, own process group, timeout), keeping its exit, duration and output
"""
