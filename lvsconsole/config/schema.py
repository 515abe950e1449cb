"""Keyword tables for every block of keepalived.conf (keepalived 2.x, keepalived.conf(5)).

Each block maps a keyword to a `Kw`: the model field it fills and how its arguments are read. A `Kw`
whose field is None is a keyword keepalived knows but the engine does not act on: it is accepted,
kept verbatim in the object's `extra` and rendered back. Aliases map old or alternative names to
the current one, with the deprecation note an operator sees as a warning. A `Kw` with ``extension`` set
is an lvsconsole keyword keepalived does not have (``drain_timeout``): known here, so ``--strict`` accepts it,
and marked, so a config meant for keepalived too can be checked for it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Kw:
    field: str | None
    kind: str = "raw"  # int timer bool flag str ip iface port script command words enum method special raw
    lo: float = 0
    hi: float = 0
    choices: tuple[str, ...] = ()
    max_args: int = 1  # how many argument words the keyword takes; used to split one-line blocks
    exact: bool = False  # enum compared case-sensitively, as keepalived does (it ignores 'master')
    extension: bool = False  # an lvsconsole keyword keepalived does not know (it would log "Unknown keyword")


INT32 = 2**31 - 1
UINT32 = 2**32 - 1


def _raw(*names: str) -> dict[str, Kw]:
    return {name: Kw(None, "raw", max_args=99) for name in names}


# ------------------------------------------------------------------------------------------- global_defs

GLOBAL: dict[str, Kw] = {
    "router_id": Kw("router_id", "str"),
    "notification_email": Kw("notification_email", "special"),
    "notification_email_from": Kw("notification_email_from", "str"),
    "smtp_server": Kw("smtp_server", "special", max_args=2),
    "smtp_helo_name": Kw("smtp_helo_name", "str"),
    "smtp_connect_timeout": Kw("smtp_connect_timeout", "timer", 1, 86400),
    "smtp_alert": Kw("smtp_alert", "bool"),
    "script_user": Kw("script_user", "words", max_args=2),
    "enable_script_security": Kw("enable_script_security", "flag", max_args=0),
    "vrrp_version": Kw("vrrp_version", "int", 2, 3),
    "vrrp_strict": Kw("vrrp_strict", "flag", max_args=0),
    "vrrp_mcast_group4": Kw("vrrp_mcast_group4", "ip"),
    "vrrp_mcast_group6": Kw("vrrp_mcast_group6", "ip"),
    "vrrp_garp_master_delay": Kw("vrrp_garp_master_delay", "timer", 0, 86400),
    "vrrp_garp_master_repeat": Kw("vrrp_garp_master_repeat", "int", 0, INT32),
    "vrrp_garp_master_refresh": Kw("vrrp_garp_master_refresh", "timer", 0, 86400),
    "vrrp_garp_master_refresh_repeat": Kw("vrrp_garp_master_refresh_repeat", "int", 0, INT32),
    "vrrp_garp_interval": Kw("vrrp_garp_interval", "timer", 0, 1),
    "vrrp_gna_interval": Kw("vrrp_gna_interval", "timer", 0, 1),
    "vrrp_skip_check_adv_addr": Kw("vrrp_skip_check_adv_addr", "flag", max_args=0),
    "vrrp_check_unicast_src": Kw("vrrp_check_unicast_src", "flag", max_args=0),
    "default_interface": Kw("default_interface", "str"),
    "lvs_sync_daemon": Kw("lvs_sync_daemon", "special", max_args=99),
    "lvs_flush": Kw("lvs_flush", "flag", max_args=0),
    "lvs_flush_on_stop": Kw("lvs_flush_on_stop", "special"),
    "lvs_timeouts": Kw("lvs_timeouts", "special", max_args=6),
    "checker_log_all_failures": Kw("checker_log_all_failures", "bool"),
    "lvs_id": Kw("lvs_id", "special"),
    # lvsconsole: how long a real server removed by a reload keeps its established connections (0: at once)
    "drain_timeout": Kw("drain_timeout", "timer", 0, 86400, extension=True),
    "drain_sample_rate": Kw("drain_sample_rate", "timer", 4, 10, extension=True),
    # lvsconsole: the peer director's metrics endpoint, to measure connection-sync coverage against every 5 s
    "lvs_sync_peer_http": Kw("lvs_sync_peer_http", "str", extension=True),
    # lvsconsole: what the engine does when the kernel's IPVS table drifts from intent (repair it, or hold it
    # for the operator to reconcile or adopt)
    "ipvs_drift": Kw("ipvs_drift", "enum", choices=("repair", "hold"), exact=True, extension=True),
    **_raw(
        "tmp_config_directory", "config_save_dir", "process_names", "process_name", "vrrp_process_name",
        "checker_process_name", "bfd_process_name", "startup_script", "startup_script_timeout",
        "shutdown_script", "shutdown_script_timeout", "smtp_alert_vrrp", "smtp_alert_checker",
        "no_email_faults", "vrrp_garp_lower_prio_delay", "vrrp_down_timer_adverts",
        "vrrp_garp_lower_prio_repeat", "vrrp_min_garp", "vrrp_garp_extra_if", "vrrp_lower_prio_no_advert",
        "vrrp_higher_prio_send_advert", "nftables", "nftables_priority", "nftables_counters",
        "nftables_ifindex", "nftables_ipvs", "nftables_ipvs_priority", "nftables_ipvs_start_fwmark",
        "vrrp_iptables", "vrrp_ipsets", "disable_local_igmp", "vrrp_notify_priority_changes",
        "max_auto_priority", "min_auto_priority_delay", "vrrp_priority", "checker_priority", "bfd_priority",
        "vrrp_no_swap", "checker_no_swap", "bfd_no_swap", "vrrp_cpu_affinity", "checker_cpu_affinity",
        "bfd_cpu_affinity", "vrrp_rt_priority", "checker_rt_priority", "bfd_rt_priority",
        "vrrp_rlimit_rttime", "checker_rlimit_rttime", "bfd_rlimit_rttime", "snmp_socket", "enable_snmp_vrrp",
        "enable_snmp_checker", "enable_snmp_rfc", "enable_snmp_rfcv2", "enable_snmp_rfcv3", "enable_traps",
        "enable_dbus", "dbus_service_name", "dbus_no_interface_name", "notify_fifo", "notify_fifo_script",
        "vrrp_notify_fifo", "vrrp_notify_fifo_script", "lvs_notify_fifo", "lvs_notify_fifo_script",
        "fifo_write_vrrp_states_on_reload", "dynamic_interfaces", "vrrp_netlink_cmd_rcv_bufs",
        "vrrp_netlink_cmd_rcv_bufs_force", "vrrp_netlink_monitor_rcv_bufs",
        "vrrp_netlink_monitor_rcv_bufs_force", "lvs_netlink_cmd_rcv_bufs", "lvs_netlink_cmd_rcv_bufs_force",
        "lvs_netlink_monitor_rcv_bufs", "lvs_netlink_monitor_rcv_bufs_force", "process_monitor_rcv_bufs",
        "process_monitor_rcv_bufs_force", "vrrp_rx_bufs_policy", "vrrp_rx_bufs_multiplier",
        "rs_init_notifies", "no_checker_emails", "umask", "vrrp_startup_delay", "vrrp_delay_after_boot",
        "log_unknown_vrids", "vmac_prefix", "vmac_addr_prefix", "random_seed", "reload_check_config",
        "include_check", "reload_time_file", "reload_repeat", "reload_file", "data_use_instance",
        "set_supplementary_groups", "use_symlink_paths", "v3_checksum_as_v2", "vrrp_owner_ignore_adverts",
        "json_version", "iproute_usr_dir", "iproute_etc_dir", "state_dump_file", "stats_dump_file",
        "json_dump_file", "snmp_vs_stats_update_interval", "snmp_rs_stats_update_interval",
        "linkbeat_use_polling", "linkbeat_interfaces",
    ),
}

GLOBAL_ALIASES: dict[str, tuple[str, str | None]] = {
    "lvs_flush_onstop": ("lvs_flush_on_stop", "'lvs_flush_onstop' is deprecated; use 'lvs_flush_on_stop'"),
    "enable_snmp_keepalived": ("enable_snmp_vrrp", "'enable_snmp_keepalived' is deprecated; use 'enable_snmp_vrrp'"),
    "lvs_process_name": ("checker_process_name", "'lvs_process_name' is deprecated; use 'checker_process_name'"),
    "vrrp_vmac_garp_intvl": ("vrrp_garp_extra_if", "'vrrp_vmac_garp_intvl' is deprecated; use 'vrrp_garp_extra_if'"),
    "vrrp_rlimit_rtime": ("vrrp_rlimit_rttime", "'vrrp_rlimit_rtime' is deprecated; use 'vrrp_rlimit_rttime'"),
    "checker_rlimit_rtime": (
        "checker_rlimit_rttime",
        "'checker_rlimit_rtime' is deprecated; use 'checker_rlimit_rttime'",
    ),
    "bfd_rlimit_rtime": ("bfd_rlimit_rttime", "'bfd_rlimit_rtime' is deprecated; use 'bfd_rlimit_rttime'"),
}

# Keywords keepalived removed: still an error there ("Unknown keyword"), an error with a hint here.
GLOBAL_REMOVED: dict[str, str] = {
    "lvs_id": "'lvs_id' was removed in keepalived 1.1.8; use 'router_id'",
}

# ------------------------------------------------------------------------------------------- vrrp_instance

INSTANCE: dict[str, Kw] = {
    "state": Kw("state", "enum", choices=("MASTER", "BACKUP"), exact=True),
    "interface": Kw("interface", "str"),
    "virtual_router_id": Kw("virtual_router_id", "int", 1, 255),
    "priority": Kw("priority", "int", 1, 255),
    "advert_int": Kw("advert_int", "timer", 0.01, 255),
    "version": Kw("version", "int", 2, 3),
    "authentication": Kw("authentication", "special"),
    "virtual_ipaddress": Kw("virtual_ipaddress", "special"),
    "virtual_ipaddress_excluded": Kw("virtual_ipaddress_excluded", "special"),
    "virtual_routes": Kw("virtual_routes", "special"),
    "virtual_rules": Kw("virtual_rules", "special"),
    "unicast_src_ip": Kw("unicast_src_ip", "ip"),
    "unicast_peer": Kw("unicast_peer", "special"),
    "mcast_src_ip": Kw("mcast_src_ip", "ip"),
    "track_interface": Kw("track_interface", "special"),
    "track_script": Kw("track_script", "special"),
    "track_file": Kw("track_file", "special"),
    "nopreempt": Kw("nopreempt", "flag", max_args=0),
    "preempt_delay": Kw("preempt_delay", "timer", 0, 1000),
    "notify_master": Kw("notify_master", "script", max_args=3),
    "notify_backup": Kw("notify_backup", "script", max_args=3),
    "notify_fault": Kw("notify_fault", "script", max_args=3),
    "notify_stop": Kw("notify_stop", "script", max_args=3),
    "notify": Kw("notify", "script", max_args=3),
    "smtp_alert": Kw("smtp_alert", "bool"),
    "garp_master_delay": Kw("garp_master_delay", "timer", 0, 86400),
    "garp_master_repeat": Kw("garp_master_repeat", "int", 0, INT32),
    "garp_master_refresh": Kw("garp_master_refresh", "timer", 0, 86400),
    "garp_master_refresh_repeat": Kw("garp_master_refresh_repeat", "int", 0, INT32),
    "dont_track_primary": Kw("dont_track_primary", "flag", max_args=0),
    "use_vmac": Kw("use_vmac", "special", max_args=6),
    "accept": Kw("accept", "special", max_args=0),
    "no_accept": Kw("accept", "special", max_args=0),
    "strict_mode": Kw("strict_mode", "bool"),
    **_raw(
        "vrf", "use_vmac_addr", "vmac_xmit_base", "use_ipvlan", "native_ipv6", "track_process", "track_bfd",
        "mcast_dst_ip", "track_src_ip", "check_unicast_src", "unicast_fault_no_peer", "unicast_ttl",
        "old_unicast_checksum", "garp_lower_prio_delay", "garp_lower_prio_repeat", "garp_extra_if",
        "down_timer_adverts", "lower_prio_no_advert", "higher_prio_send_advert", "promote_secondaries",
        "preempt", "skip_check_adv_addr", "debug", "notify_master_rx_lower_pri", "notify_priority_changes",
        "notify_deleted", "kernel_rx_buf_size", "linkbeat_use_polling", "lvs_sync_daemon_interface",
        "v3_checksum_as_v2", "owner_ignore_adverts", "timer_expired_backup", "no_virtual_ipaddress",
        "auth_hmac", "virtual_ipaddress_excluded_ignore",
    ),
}

INSTANCE_ALIASES: dict[str, tuple[str, str | None]] = {
    "vmac_garp_intvl": ("garp_extra_if", "'vmac_garp_intvl' is deprecated; use 'garp_extra_if'"),
}

INSTANCE_DEPRECATED: dict[str, str] = {
    "lvs_sync_daemon_interface": "'lvs_sync_daemon_interface' is deprecated; use the global 'lvs_sync_daemon'",
    "native_ipv6": "'native_ipv6' is deprecated and has no effect",
    "linkbeat_use_polling": "'linkbeat_use_polling' in an instance is deprecated",
    "preempt": "'preempt' has no effect: preemption is the default (use 'nopreempt' to disable it)",
}

AUTHENTICATION: dict[str, Kw] = {
    "auth_type": Kw("auth_type", "enum", choices=("PASS", "AH"), exact=True),
    "auth_pass": Kw("auth_pass", "str"),
}

# ------------------------------------------------------------------------------------------- sync group

SYNC_GROUP: dict[str, Kw] = {
    "group": Kw("group", "special"),
    "notify_master": Kw("notify_master", "script", max_args=3),
    "notify_backup": Kw("notify_backup", "script", max_args=3),
    "notify_fault": Kw("notify_fault", "script", max_args=3),
    "notify_stop": Kw("notify_stop", "script", max_args=3),
    "notify": Kw("notify", "script", max_args=3),
    "smtp_alert": Kw("smtp_alert", "bool"),
    "track_interface": Kw("track_interface", "special"),
    "track_script": Kw("track_script", "special"),
    "track_file": Kw("track_file", "special"),
    **_raw("track_process", "track_bfd", "notify_priority_changes", "sync_group_tracking_weight", "global_tracking"),
}

SYNC_GROUP_DEPRECATED: dict[str, str] = {
    "global_tracking": "'global_tracking' is deprecated; put track_* on the sync group instead",
}

# ------------------------------------------------------------------------------------------- scripts, files

VRRP_SCRIPT: dict[str, Kw] = {
    "script": Kw("script", "command", max_args=99),
    "interval": Kw("interval", "timer", 0.001, 86400),
    "timeout": Kw("timeout", "timer", 0.001, 86400),
    "weight": Kw("weight", "special", max_args=2),
    "rise": Kw("rise", "int", 1, INT32),
    "fall": Kw("fall", "int", 1, INT32),
    "user": Kw("user", "words", max_args=2),
    "init_fail": Kw("init_fail", "flag", max_args=0),
}

TRACK_FILE: dict[str, Kw] = {
    "file": Kw("file", "str"),
    "weight": Kw("weight", "special", max_args=2),
    "init_file": Kw("init_file", "words", max_args=2),
}

# ------------------------------------------------------------------------------------------- raw root blocks

# Blocks kept verbatim (ROOT_RAW) whose keywords are still checked, so that --strict catches a typo in them.
TRACK_PROCESS_KEYWORDS = ("process", "param_match", "weight", "quorum", "quorum_max", "delay", "terminate_delay",
                          "fork_delay", "full_command")
BFD_INSTANCE_KEYWORDS = ("source_ip", "neighbor_ip", "neighbour_ip", "min_rx", "min_tx", "idle_tx", "multiplier",
                         "passive", "ttl", "hoplimit", "max_hops", "weight", "vrrp", "checker")

# ------------------------------------------------------------------------------------------- LVS

VIRTUAL_SERVER: dict[str, Kw] = {
    "lvs_sched": Kw("lvs_sched", "special"),
    "lvs_method": Kw("lvs_method", "method", max_args=7),
    "protocol": Kw("protocol", "special"),
    "persistence_timeout": Kw("persistence_timeout", "special"),
    "persistence_granularity": Kw("persistence_granularity", "special"),
    "persistence_engine": Kw("persistence_engine", "str"),
    "delay_loop": Kw("delay_loop", "timer", 0.000001, 86400 * 365),
    "connect_timeout": Kw("connect_timeout", "timer", 0.000001, 86400),
    "retry": Kw("retry", "int", 0, INT32),
    "delay_before_retry": Kw("delay_before_retry", "timer", 0, 86400),
    "warmup": Kw("warmup", "timer", 0, 86400),
    "alpha": Kw("alpha", "flag", max_args=0),
    "omega": Kw("omega", "flag", max_args=0),
    "quorum": Kw("quorum", "int", 1, UINT32),
    "hysteresis": Kw("hysteresis", "int", 0, UINT32),
    "quorum_up": Kw("quorum_up", "script", max_args=3),
    "quorum_down": Kw("quorum_down", "script", max_args=3),
    "min_healthy": Kw("min_healthy", "special", extension=True),
    "slow_start": Kw("slow_start", "timer", 0, 3600, extension=True),
    "inhibit_on_failure": Kw("inhibit_on_failure", "bool"),
    "sorry_server": Kw("sorry_server", "special", max_args=2),
    "sorry_server_inhibit": Kw("sorry_server_inhibit", "bool"),
    "sorry_server_lvs_method": Kw("sorry_server_lvs_method", "method", max_args=7),
    "ha_suspend": Kw("ha_suspend", "flag", max_args=0),
    "virtualhost": Kw("virtualhost", "str"),
    "smtp_alert": Kw("smtp_alert", "bool"),
    "ip_family": Kw("ip_family", "enum", choices=("inet", "inet6"), exact=True),
    "real_server": Kw("real_servers", "special"),
    **{flag: Kw("sched_flags", "special", max_args=0) for flag in (
        "ops", "hashed", "flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port", "mh-fallback",
    )},
    **_raw("snmp_name", "weight"),
}

SCHED_FLAG_ALIASES = {"flag-1": "sh-fallback", "flag-2": "sh-port", "flag-3": "flag-3"}

LVS_ALIASES: dict[str, tuple[str, str | None]] = {
    # Both names are live in keepalived 2.x; the samples still use the old ones, so no warning.
    "lb_algo": ("lvs_sched", None),
    "lb_kind": ("lvs_method", None),
}

REAL_SERVER: dict[str, Kw] = {
    "weight": Kw("weight", "int", 0, INT32),
    "lvs_method": Kw("lvs_method", "method", max_args=7),
    "inhibit_on_failure": Kw("inhibit_on_failure", "bool"),
    "notify_up": Kw("notify_up", "script", max_args=3),
    "notify_down": Kw("notify_down", "script", max_args=3),
    "uthreshold": Kw("uthreshold", "int", 0, UINT32),
    "lthreshold": Kw("lthreshold", "int", 0, UINT32),
    "smtp_alert": Kw("smtp_alert", "bool"),
    "virtualhost": Kw("virtualhost", "str"),
    "alpha": Kw("alpha", "bool"),
    "connect_timeout": Kw("connect_timeout", "timer", 0.000001, 86400),
    "retry": Kw("retry", "int", 0, INT32),
    "delay_before_retry": Kw("delay_before_retry", "timer", 0, 86400),
    "warmup": Kw("warmup", "timer", 0, 86400),
    "delay_loop": Kw("delay_loop", "timer", 0.000001, 86400 * 365),
    "slow_start": Kw("slow_start", "timer", 0, 3600, extension=True),
    **_raw("snmp_name"),
}

# ------------------------------------------------------------------------------------------- checkers

CHECKER_COMMON: dict[str, Kw] = {
    "connect_ip": Kw("connect_ip", "ip"),
    "connect_port": Kw("connect_port", "port"),
    "bindto": Kw("bindto", "ip"),
    "bind_port": Kw("bind_port", "port"),
    "bind_if": Kw("bind_if", "str"),
    "fwmark": Kw("fwmark", "int", 0, UINT32),
    "connect_timeout": Kw("connect_timeout", "timer", 0.000001, 86400),
}

CHECKER_TIMING: dict[str, Kw] = {
    "retry": Kw("retry", "int", 0, INT32),
    "delay_before_retry": Kw("delay_before_retry", "timer", 0, 86400),
    "warmup": Kw("warmup", "timer", 0, 86400),
    "delay_loop": Kw("delay_loop", "timer", 0.000001, 86400 * 365),
    "alpha": Kw("alpha", "bool"),
    "log_all_failures": Kw("log_all_failures", "bool"),
    # lvsconsole extensions (keepalived has no rise/fall on checkers): see check/policy.py
    "rise": Kw("rise", "int", 1, INT32),
    "fall": Kw("fall", "int", 1, INT32),
}

# keepalived accepts nb_get_retry only in HTTP_GET/SSL_GET (and rejects it since 2.2); we accept it
# everywhere a retry is, with a warning, because real configs (our seeds) put it in TCP_CHECK.
CHECKER_ALIASES: dict[str, tuple[str, str | None]] = {
    "nb_get_retry": ("retry", "'nb_get_retry' is deprecated; use 'retry'"),
    "nb_sock_retry": ("retry", "'nb_sock_retry' is deprecated; use 'retry'"),
    "bind_to": ("bindto", None),
}

HTTP: dict[str, Kw] = {
    "url": Kw("urls", "special"),
    "http_protocol": Kw("http_protocol", "enum", choices=("1.0", "1.0C", "1.1")),
    "virtualhost": Kw("virtualhost", "str"),
    "fast_recovery": Kw("fast_recovery", "bool"),
    "enable_sni": Kw("enable_sni", "bool"),
    "sni_name": Kw("sni_name", "str"),
    "tls_compliant": Kw("tls_compliant", "bool"),
}

URL: dict[str, Kw] = {
    "path": Kw("path", "str"),
    "digest": Kw("digest", "special"),
    "status_code": Kw("status_code", "special", max_args=99),
    "virtualhost": Kw("virtualhost", "str"),
    "regex": Kw("regex", "str"),
    "regex_no_match": Kw("regex_no_match", "flag", max_args=0),
    **_raw("regex_options", "regex_stack", "regex_min_offset", "regex_max_offset", "tls_compliant"),
}

MISC: dict[str, Kw] = {
    "misc_path": Kw("misc_path", "command", max_args=99),
    "misc_timeout": Kw("misc_timeout", "timer", 0.000001, 86400),
    "misc_dynamic": Kw("misc_dynamic", "flag", max_args=0),
    "user": Kw("user", "words", max_args=2),
}

SMTP: dict[str, Kw] = {
    "helo_name": Kw("helo_name", "str"),
    "host": Kw("hosts", "special"),
}

DNS_TYPES = ("A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY")

DNS: dict[str, Kw] = {
    "type": Kw("type", "enum", choices=DNS_TYPES),
    "name": Kw("name", "str"),
}

UDP: dict[str, Kw] = {
    "payload": Kw("payload", "special", max_args=99),
    "require_reply": Kw("require_reply", "special", max_args=99),
    "min_reply_length": Kw("min_reply_length", "int", 0, 65535),
    "max_reply_length": Kw("max_reply_length", "int", 0, 65535),
}

FILE_CHECK: dict[str, Kw] = {
    "track_file": Kw("track_file", "str"),
    "weight": Kw("weight", "special", max_args=2),
}

BFD: dict[str, Kw] = {
    "name": Kw("name", "str"),
    "alpha": Kw("alpha", "bool"),
}

CHECKER_KINDS = (
    "TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK", "SMTP_CHECK", "DNS_CHECK", "UDP_CHECK", "PING_CHECK",
    "FILE_CHECK", "BFD_CHECK",
)

SSL_BLOCK: dict[str, Kw] = _raw("password", "ca", "certificate", "key")

# ------------------------------------------------------------------------------------------- root

ROOT_BLOCKS = (
    "global_defs", "static_ipaddress", "static_routes", "static_rules", "vrrp_script", "track_file",
    "vrrp_track_file", "vrrp_sync_group", "vrrp_instance", "virtual_server_group", "virtual_server", "SSL",
)

ROOT_RAW = (
    "net_namespace", "net_namespace_ipvs", "namespace_with_ipsets", "use_pid_dir", "instance",
    "child_wait_time", "linkbeat_use_polling", "linkbeat_interfaces", "interface_up_down_delays",
    "track_group", "garp_group", "vrrp_track_process", "bfd_instance",
)
