"""Broken configs: each one must give exactly the diagnostic an operator needs, at the offending word.

Every case is a small keepalived.conf (written to tmp_path with any files it includes or runs) and the
one diagnostic that matters: (file, line, col, severity, message). An error case must produce that error
and no other (a cascade of follow-on errors hides the real one); a warning case must produce no error.

The severity rule: what keepalived would silently replace with a default, clamp or skip is an ERROR
here; what keepalived only warns about is a warning. Each case notes what keepalived 2.2.7 does.
Addresses come from the documentation ranges (198.51.100.0/24 VIPs, 203.0.113.0/24 real servers) so no
host owns them; interfaces are `lo`, which every Linux host has.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from textwrap import dedent

import pytest

from lvsconsole.config.build import load_file, load_text
from lvsconsole.config.diagnostics import Diagnostic

Expected = tuple[str, int, int, str, str]  # file name, line, col, severity, message


@dataclass(frozen=True)
class Case:
    text: str
    expected: Expected
    strict: bool = False
    files: dict[str, str] = field(default_factory=dict)  # more files next to t.conf (includes)
    scripts: dict[str, int] = field(default_factory=dict)  # executable files to create, with their mode


def case(text: str, line: int, col: int, severity: str, message: str, *, file: str = "t.conf",
         strict: bool = False, files: dict[str, str] | None = None,
         scripts: dict[str, int] | None = None) -> Case:
    return Case(dedent(text), (file, line, col, severity, message), strict, files or {}, scripts or {})


def as_tuple(d: Diagnostic, tmp: Path) -> Expected:
    assert d.location is not None, f"diagnostic without a location: {d}"
    return (Path(d.location.file).name, d.location.line, d.location.col, d.severity.value,
            d.message.replace(str(tmp), "@DIR@"))


# A well-formed instance and service to break one word at a time.
VRRP_OK = """\
vrrp_instance VI_1 {
    state BACKUP
    interface lo
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        198.51.100.10
    }
}
"""

CASES: dict[str, Case] = {
    # ---------------------------------------------------------------------------------- braces and blocks
    # keepalived: "There are 1 missing '}'s or extra '{'s", with no line at all.
    "missing-close-brace": case("""\
        vrrp_instance VI_1 {
            interface lo
            virtual_router_id 51
            virtual_ipaddress {
                198.51.100.10
        }
        """, 1, 1, "error", "missing '}' for block 'vrrp_instance' opened here"),
    # keepalived: "Extra '}' found" (and "Unknown keyword '}'").
    "extra-close-brace": case(VRRP_OK + "}\n", 10, 1, "error", "extra '}'"),
    # keepalived: "Block virtual_ipaddress has extra parameters 198.51.100.10 ..." and no VIP at all.
    "value-where-block-expected": case("""\
        vrrp_instance VI_1 {
            interface lo
            virtual_router_id 51
            virtual_ipaddress 198.51.100.10
        }
        """, 4, 5, "error", "'virtual_ipaddress' needs a { } block"),
    # keepalived: "missing a parameter after keyword `priority`" and the default priority.
    "block-where-value-expected": case("""\
        vrrp_instance VI_1 {
            interface lo
            virtual_router_id 51
            priority {
                100
            }
            virtual_ipaddress {
                198.51.100.10
            }
        }
        """, 4, 5, "error", "'priority' does not open a block"),
    # keepalived: "vrrp_instance must have a name", and the block is skipped.
    "instance-without-name": case("""\
        vrrp_instance {
            interface lo
            virtual_router_id 51
        }
        """, 1, 1, "error", "vrrp_instance needs a name"),
    "instance-keyword-at-top-level": case("priority 100\n" + VRRP_OK, 1, 1, "error",
                                          "'priority' must be inside a block, not at the top level"),
    # ---------------------------------------------------------------------------------- addresses
    # keepalived: "VRRP parsed invalid IP 198.51.100.300. skipping IP..."
    "bad-vip": case(VRRP_OK.replace("198.51.100.10", "198.51.100.300\n        198.51.100.11"), 7, 9, "error",
                    "invalid virtual address '198.51.100.300'"),
    # keepalived: "Invalid address prefix len 33 for address 198.51.100.10/33 - using 32"
    "vip-prefix-33": case(VRRP_OK.replace("198.51.100.10", "198.51.100.10/33\n        198.51.100.11"), 7, 9, "error",
                          "prefix length /33 in virtual address '198.51.100.10/33' is outside the range 0-32"),
    # keepalived: the first VIP fixes the family; "address family must match VRRP instance [fd00::10] - ignoring"
    "vip-family-mix": case(VRRP_OK.replace("198.51.100.10", "198.51.100.10\n        fd00::10"), 8, 9, "error",
                           "(VI_1) virtual address fd00::10 is not IPv4 like 198.51.100.10: keepalived ignores it; "
                           "put the other family in virtual_ipaddress_excluded"),
    "bad-virtual-server-address": case("""\
        virtual_server 198.51.100.300 80 {
            protocol TCP
            real_server 203.0.113.1 80 {
            }
        }
        """, 1, 16, "error", "invalid virtual server address '198.51.100.300'"),
    "bad-real-server-address": case("""\
        virtual_server 198.51.100.10 80 {
            protocol TCP
            lb_algo rr
            lb_kind NAT
            real_server 203.0.113.1.5 80 {
            }
            real_server 203.0.113.2 80 {
            }
        }
        """, 5, 17, "error", "invalid real server address '203.0.113.1.5'"),
    # keepalived: "malformed unicast peer address[203.0.113.999]. Skipping..."
    "bad-unicast-peer": case(VRRP_OK.replace("    virtual_ipaddress", """\
    unicast_peer {
        203.0.113.999
        203.0.113.2
    }
    virtual_ipaddress"""), 7, 9, "error", "invalid unicast peer '203.0.113.999'"),
    # keepalived: "unicast peer address[fd00::2] MUST be of the same family !!! Skipping..."
    "unicast-peer-wrong-family": case(VRRP_OK.replace("    virtual_ipaddress", """\
    unicast_peer {
        203.0.113.2
        fd00::2
    }
    virtual_ipaddress"""), 8, 9, "error", "(VI_1) unicast peer fd00::2 is not of the instance's address family"),
    # keepalived: "A unicast keyword has been specified without any unicast peers. Defaulting to multicast."
    "unicast-peer-empty": case(VRRP_OK.replace("    virtual_ipaddress", """\
    unicast_peer {
    }
    virtual_ipaddress"""), 6, 5, "error",
        "(VI_1) unicast_peer is empty: keepalived would silently fall back to multicast"),
    # keepalived: the same "Defaulting to multicast." for a unicast_src_ip with no unicast_peer at all.
    "unicast-src-without-peers": case(VRRP_OK.replace("    virtual_ipaddress", """\
    unicast_src_ip 198.51.100.2
    virtual_ipaddress"""), 6, 5, "error",
        "(VI_1) unicast_src_ip without unicast_peer: keepalived would silently fall back to multicast; list the "
        "peers (or use mcast_src_ip for a multicast source address)"),
    # keepalived skips every peer of the wrong family ("MUST be of the same family"), then falls back to multicast.
    "unicast-peers-all-wrong-family": case(VRRP_OK.replace("    virtual_ipaddress", """\
    unicast_peer {
        fd00::2
        fd00::3
    }
    virtual_ipaddress"""), 6, 5, "error",
        "(VI_1) no unicast peer is IPv4 like the instance: keepalived would skip them all and silently fall back "
        "to multicast"),
    # ---------------------------------------------------------------------------------- numbers out of range
    # keepalived: "number '0' outside range [1, 255]" ... "VRID '0' not valid".
    "vrid-0": case(VRRP_OK.replace("virtual_router_id 51", "virtual_router_id 0"), 4, 23, "error",
                   "virtual_router_id 0 is outside the range 1-255"),
    "vrid-256": case(VRRP_OK.replace("virtual_router_id 51", "virtual_router_id 256"), 4, 23, "error",
                     "virtual_router_id 256 is outside the range 1-255"),
    "vrid-two-values": case(VRRP_OK.replace("virtual_router_id 51", "virtual_router_id 51 52"), 4, 26, "error",
                            "unexpected '52' after 'virtual_router_id'"),
    # keepalived: "Priority not valid! must be between 1 & 255. Using default 100"
    "priority-0": case(VRRP_OK.replace("priority 100", "priority 0"), 5, 14, "error",
                       "priority 0 is outside the range 1-255"),
    "priority-256": case(VRRP_OK.replace("priority 100", "priority 256"), 5, 14, "error",
                         "priority 256 is outside the range 1-255"),
    "priority-not-a-number": case(VRRP_OK.replace("priority 100", "priority high"), 5, 14, "error",
                                  "priority 'high' is not an integer"),
    # keepalived: "Advert interval (0) not valid! Must be > 0 - ignoring"
    "advert-int-0": case(VRRP_OK.replace("priority 100", "priority 100\n    advert_int 0"), 6, 16, "error",
                         "advert_int 0 is outside the range 0.01-255 seconds"),
    # keepalived: "VRRPv3 advertisement interval 41.00s is out of range. ... Setting to 40.95s"
    "v3-advert-int-over-40.95": case(VRRP_OK.replace("priority 100", "priority 100\n    version 3\n    advert_int 41"),
                                     7, 5, "error", "(VI_1) advert_int 41 exceeds VRRPv3's maximum of 40.95 s"),
    "track-script-weight-out-of-range": case(dedent("""\
        vrrp_script chk_web {
            script /bin/true
            weight 300
        }
        """) + VRRP_OK, 3, 12, "error", "weight 300 is outside the range -253 to 253"),
    # keepalived: "Real server weight -1 is outside range 0-2147483647"
    "rs-weight-negative": case("""\
        virtual_server 198.51.100.10 80 {
            protocol TCP
            lb_algo rr
            lb_kind NAT
            real_server 203.0.113.1 80 {
                weight -1
            }
        }
        """, 6, 16, "error", "weight -1 is outside the range 0-2147483647"),
    "vs-port-70000": case("""\
        virtual_server 198.51.100.10 70000 {
            protocol TCP
            real_server 203.0.113.1 80 {
            }
        }
        """, 1, 30, "error", "virtual server port 70000 is outside the range 0-65535"),
    # keepalived: "Invalid checker connect_port '70000'"
    "connect-port-70000": case("""\
        virtual_server 198.51.100.10 80 {
            protocol TCP
            lb_algo rr
            lb_kind NAT
            real_server 203.0.113.1 80 {
                TCP_CHECK {
                    connect_port 70000
                }
            }
        }
        """, 7, 26, "error", "connect_port 70000 is outside the range 0-65535"),
    # keepalived: "virtual server delay loop '0' invalid - ignoring"
    "delay-loop-0": case("""\
        virtual_server 198.51.100.10 80 {
            protocol TCP
            lb_algo rr
            lb_kind NAT
            delay_loop 0
            real_server 203.0.113.1 80 {
            }
        }
        """, 5, 16, "error", "delay_loop 0 is outside the range 0.000001-31536000 seconds"),
    # ---------------------------------------------------------------------------------- unknown references
    # keepalived: "Virtual router VI_2 specified in sync group G doesn't exist - ignoring"
    "sync-group-unknown-member": case(dedent("""\
        vrrp_sync_group G {
            group {
                VI_1
                VI_2
            }
        }
        """) + VRRP_OK, 4, 9, "error", "vrrp_sync_group G: no vrrp_instance named 'VI_2'"),
    # keepalived: "(VI_1) track script chk_web not found, ignoring..."
    "unknown-track-script": case(VRRP_OK.replace("    virtual_ipaddress", """\
    track_script {
        chk_web
    }
    virtual_ipaddress"""), 7, 9, "error", "(VI_1) track_script: no vrrp_script named 'chk_web'"),
    # keepalived: "(VI_1) track file flag not found, ignoring..."
    "unknown-track-file": case(VRRP_OK.replace("    virtual_ipaddress", """\
    track_file {
        flag weight 10
    }
    virtual_ipaddress"""), 7, 9, "error", "(VI_1) track_file: no track_file named 'flag'"),
    "unknown-lvs-sync-daemon-instance": case(dedent("""\
        global_defs {
            lvs_sync_daemon lo VI_9
        }
        """) + VRRP_OK, 2, 24, "error", "lvs_sync_daemon: no vrrp_instance named 'VI_9'"),
    "unknown-virtual-server-group": case("""\
        virtual_server group WEB {
            protocol TCP
            lb_algo rr
            lb_kind DR
            real_server 203.0.113.1 80 {
            }
        }
        """, 1, 22, "error", "virtual_server group WEB: no virtual_server_group named 'WEB'"),
    # ---------------------------------------------------------------------------------- includes
    "include-loop": case("include a.conf\n", 1, 9, "error",
                         "include loop: @DIR@/a.conf includes itself via @DIR@/a.conf -> @DIR@/b.conf -> "
                         "@DIR@/a.conf", file="b.conf",
                         files={"a.conf": "include b.conf\n", "b.conf": "include a.conf\n"}),
    "includem-missing": case("includem conf.d/*.conf\n" + VRRP_OK, 1, 10, "error",
                             "include 'conf.d/*.conf' matched no file"),
    # a plain include may match nothing (keepalived logs "Config files missing"): a warning
    "include-missing": case("include conf.d/*.conf\n" + VRRP_OK, 1, 9, "warning",
                            "include 'conf.d/*.conf' matched no file"),
    # ---------------------------------------------------------------------------------- VRRP semantics
    # keepalived: "VI_1 and VI_2 both use VRID 51 with IPv4 on interface eth0"
    "duplicate-vrid-on-interface": case(VRRP_OK + VRRP_OK.replace("VI_1", "VI_2").replace(".10", ".11"),
                                        13, 5, "error", "(VI_2) virtual_router_id 51 is already used by (VI_1) on lo"),
    # keepalived: "Truncating auth_pass to 8 characters"
    "auth-pass-over-8": case(VRRP_OK.replace("    virtual_ipaddress", """\
    authentication {
        auth_type PASS
        auth_pass secret123
    }
    virtual_ipaddress"""), 8, 19, "warning", "auth_pass is longer than 8 characters; only 'secret12' is used"),
    # keepalived: "(VI_1) unknown authentication type 'MD5'" and no authentication at all
    "unknown-auth-type": case(VRRP_OK.replace("    virtual_ipaddress", """\
    authentication {
        auth_type MD5
        auth_pass 1111
    }
    virtual_ipaddress"""), 7, 19, "error", "invalid auth_type 'MD5' (one of: PASS, AH)"),
    # keepalived compares with strcmp: 'pass' is an unknown type there
    "auth-type-lower-case": case(VRRP_OK.replace("    virtual_ipaddress", """\
    authentication {
        auth_type pass
        auth_pass 1111
    }
    virtual_ipaddress"""), 7, 19, "error",
        "auth_type 'pass' must be written 'PASS': keepalived is case-sensitive here and would ignore 'pass'"),
    # keepalived: "(VI_1) unknown state 'PRIMARY', defaulting to BACKUP"
    "unknown-state": case(VRRP_OK.replace("state BACKUP", "state PRIMARY"), 2, 11, "error",
                          "invalid state 'PRIMARY' (one of: MASTER, BACKUP)"),
    # keepalived: "(VI_1) unknown state 'master', defaulting to BACKUP": a silent demotion
    "state-lower-case": case(VRRP_OK.replace("state BACKUP", "state master"), 2, 11, "error",
                             "state 'master' must be written 'MASTER': keepalived is case-sensitive here and would "
                             "ignore 'master'"),
    # keepalived: "(VI_1) Warning - nopreempt will not work with initial state MASTER - clearing"
    "nopreempt-with-master": case(VRRP_OK.replace("state BACKUP", "state MASTER\n    nopreempt"), 3, 5, "warning",
                                  "(VI_1) nopreempt is incompatible with state MASTER; it is ignored "
                                  "(as keepalived does)"),
    # keepalived 2.2.7 sends (non-standard) VRRPv2 over IPv6 when told `version 2` explicitly
    "v2-with-ipv6-vip": case(VRRP_OK.replace("198.51.100.10", "fd00::10").replace("priority 100",
                                                                                 "priority 100\n    version 2"),
                             6, 5, "warning", "(VI_1) VRRP version 2 is IPv4-only (RFC 3768): only keepalived "
                             "peers understand VRRPv2 over IPv6; use version 3"),
    # ... but under vrrp_strict: "cannot use IPv6 with VRRP version 2; setting version 3"
    "v2-with-ipv6-vip-strict": case("global_defs {\n    vrrp_strict\n}\n" + VRRP_OK.replace(
        "198.51.100.10", "fd00::10").replace("priority 100", "priority 100\n    version 2"),
        9, 5, "error", "(VI_1) VRRP version 2 is IPv4-only (RFC 3768); under strict mode keepalived would "
        "switch to version 3"),
    # keepalived: "(VI_1) No VIP specified; at least one is required" and the instance is rejected
    "v3-without-vip": case("""\
        vrrp_instance VI_1 {
            interface lo
            virtual_router_id 51
            version 3
        }
        """, 1, 15, "error",
        "(VI_1) has no virtual_ipaddress: with VRRPv3 keepalived requires at least one and rejects the instance"),
    # keepalived: "Sync group G has only 1 virtual router(s) - this probably isn't what you want"
    "sync-group-of-one": case(dedent("""\
        vrrp_sync_group G {
            group {
                VI_1
            }
        }
        """) + VRRP_OK, 1, 17, "warning",
        "vrrp_sync_group G has only one instance; a sync group of one does nothing"),
    # ---------------------------------------------------------------------------------- LVS
    # keepalived removes the second one
    "duplicate-real-server": case("""\
        virtual_server 198.51.100.10 80 {
            protocol TCP
            lb_algo rr
            lb_kind NAT
            real_server 203.0.113.1 80 {
            }
            real_server 203.0.113.1 80 {
                weight 2
            }
        }
        """, 7, 5, "error",
        "duplicate real_server 203.0.113.1 80 in virtual_server 198.51.100.10 80 (first at line 5)"),
    # keepalived: "Invalid lvs_scheduler 'rrr' - ignoring" and then wlc
    "unknown-scheduler": case("""\
        virtual_server 198.51.100.10 80 {
            protocol TCP
            lb_algo rrr
            lb_kind NAT
            real_server 203.0.113.1 80 {
            }
        }
        """, 3, 13, "error", "unknown scheduler 'rrr' (one of: rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos)"),
    # keepalived: "unknown [DSR] routing method for virtual server" and then NAT
    "unknown-lb-kind": case("""\
        virtual_server 198.51.100.10 80 {
            protocol TCP
            lb_algo rr
            lb_kind DSR
            real_server 203.0.113.1 80 {
            }
        }
        """, 4, 13, "error", "unknown forwarding method 'DSR' (NAT, DR or TUN; keepalived would use NAT)"),
    # the same for 'dr': keepalived's strcmp does not know it, and a DR farm silently runs as NAT
    "lb-kind-lower-case": case("""\
        virtual_server 198.51.100.10 80 {
            protocol TCP
            lb_algo rr
            lb_kind dr
            real_server 203.0.113.1 80 {
            }
        }
        """, 4, 13, "error", "unknown forwarding method 'dr' (NAT, DR or TUN; write 'DR'; keepalived would use NAT)"),
    # keepalived: "no scheduler set, setting default 'wlc'"
    "missing-scheduler": case("""\
        virtual_server 198.51.100.10 80 {
            protocol TCP
            lb_kind NAT
            real_server 203.0.113.1 80 {
            }
        }
        """, 1, 1, "warning", "virtual_server 198.51.100.10 80 has no lvs_sched (lb_algo): keepalived uses wlc"),
    # keepalived: "no protocol set - defaulting to UDP" (a web service silently becomes UDP)
    "missing-protocol": case("""\
        virtual_server 198.51.100.10 80 {
            lb_algo rr
            lb_kind NAT
            real_server 203.0.113.1 80 {
            }
        }
        """, 1, 1, "error", "virtual_server 198.51.100.10 80 has no protocol (keepalived would silently use UDP)"),
    # keepalived: "zero port only valid for persistent services - setting"
    "port-0-without-persistence": case("""\
        virtual_server 198.51.100.10 0 {
            protocol TCP
            lb_algo rr
            lb_kind DR
            real_server 203.0.113.1 {
            }
        }
        """, 1, 16, "error",
        "virtual_server [198.51.100.10]:tcp:0 has no port: a port-0 service needs persistence_timeout"),
    "lvs-dr-trap-real-server-is-vip": case(VRRP_OK + dedent("""\
        virtual_server 198.51.100.10 80 {
            protocol TCP
            lb_algo rr
            lb_kind DR
            real_server 198.51.100.10 80 {
            }
        }
        """), 14, 17, "warning",
        "real_server 198.51.100.10 is a VIP of (VI_1): the director would forward to itself "
        "(the LVS-DR trap; the VIP belongs on the real servers' lo)"),
    "real-server-loopback": case("""\
        virtual_server 198.51.100.10 80 {
            protocol TCP
            lb_algo rr
            lb_kind NAT
            real_server 127.0.0.1 8080 {
            }
        }
        """, 5, 17, "warning",
        "real_server 127.0.0.1 is a local address of this director: traffic would be forwarded to the "
        "director itself"),
    # ---------------------------------------------------------------------------------- checkers
    # keepalived: "Invalid HTTP_GET status code '299-200'"
    "status-code-range-backwards": case("""\
        virtual_server 198.51.100.10 80 {
            protocol TCP
            lb_algo rr
            lb_kind NAT
            real_server 203.0.113.1 80 {
                HTTP_GET {
                    url {
                        path /health
                        status_code 299-200
                    }
                }
            }
        }
        """, 9, 29, "error", "status code range '299-200' runs backwards"),
    # keepalived: "Unable to interpret hex digit in '...' at offset 30/31"; we point at the bad digit
    "bad-digest": case("""\
        virtual_server 198.51.100.10 80 {
            protocol TCP
            lb_algo rr
            lb_kind NAT
            real_server 203.0.113.1 80 {
                HTTP_GET {
                    url {
                        path /health
                        digest 9b3a0c85a887a256d6939da88aabd8cg
                    }
                }
            }
        }
        """, 9, 55, "error", "digest '9b3a0c85a887a256d6939da88aabd8cg' is not 32 hex digits (an MD5 from genhash)"),
    # keepalived: "No script path has been specified for MISC_CHECKER - skipping"
    "misc-check-without-misc-path": case("""\
        virtual_server 198.51.100.10 80 {
            protocol TCP
            lb_algo rr
            lb_kind NAT
            real_server 203.0.113.1 80 {
                MISC_CHECK {
                    misc_timeout 5
                }
            }
        }
        """, 6, 9, "error", "MISC_CHECK needs a misc_path"),
    # keepalived: "HTTP/SSL_GET checker has no urls specified - ignoring"
    "http-get-without-url": case("""\
        virtual_server 198.51.100.10 80 {
            protocol TCP
            lb_algo rr
            lb_kind NAT
            real_server 203.0.113.1 80 {
                HTTP_GET {
                    connect_timeout 3
                }
            }
        }
        """, 6, 9, "error", "HTTP_GET needs at least one url { } block"),
    # keepalived: "url has no path - ignoring", "has no urls specified - ignoring", then 2.2.7's -t segfaults
    "url-without-path": case("""\
        virtual_server 198.51.100.10 80 {
            protocol TCP
            lb_algo rr
            lb_kind NAT
            real_server 203.0.113.1 80 {
                HTTP_GET {
                    url {
                        status_code 200
                    }
                }
            }
        }
        """, 7, 13, "error", "url needs a path"),
    # keepalived 2.2: "Unknown keyword 'nb_get_retry'" in TCP_CHECK; we take it as retry, with a warning
    "deprecated-nb-get-retry": case("""\
        virtual_server 198.51.100.10 80 {
            protocol TCP
            lb_algo rr
            lb_kind NAT
            real_server 203.0.113.1 80 {
                TCP_CHECK {
                    nb_get_retry 3
                }
            }
        }
        """, 7, 13, "warning", "'nb_get_retry' is deprecated; use 'retry'"),
    # ---------------------------------------------------------------------------------- keywords
    # keepalived: "Unknown keyword 'advert_intt'", skipped
    "unknown-keyword": case(VRRP_OK.replace("priority 100", "priority 100\n    advert_intt 2"), 6, 5, "warning",
                            "unknown keyword 'advert_intt' in vrrp_instance VI_1"),
    "unknown-keyword-strict": case(VRRP_OK.replace("priority 100", "priority 100\n    advert_intt 2"), 6, 5, "error",
                                   "unknown keyword 'advert_intt' in vrrp_instance VI_1", strict=True),
    # keepalived: "Unknown keyword 'lvs_id'" (renamed router_id in 1.1.8)
    "removed-lvs-id": case("""\
        global_defs {
            lvs_id LVS1
        }
        """, 2, 5, "error", "'lvs_id' was removed in keepalived 1.1.8; use 'router_id'"),
    # ---------------------------------------------------------------------------------- scripts
    # keepalived: "Disabling track script chk_web since not found/accessible"
    "script-missing-with-script-security": case("""\
        global_defs {
            enable_script_security
            script_user root
        }
        vrrp_script chk_web {
            script "@DIR@/missing.sh --port 80"
        }
        """, 6, 5, "error",
        "vrrp_script chk_web: script @DIR@/missing.sh does not exist (enable_script_security disables it)"),
    # keepalived: "Disabling track script chk_web due to insecure"
    "script-writable-with-script-security": case("""\
        global_defs {
            enable_script_security
            script_user root
        }
        vrrp_script chk_web {
            script "@DIR@/chk.sh"
        }
        """, 6, 5, "error", "vrrp_script chk_web: script @DIR@/chk.sh is unsafe: @DIR@/chk.sh is writable by "
        "others (owner root:root, mode 0777) (enable_script_security disables it)", scripts={"chk.sh": 0o777}),
    # keepalived: "SECURITY VIOLATION - scripts are being executed but script_security not enabled"
    "script-writable-without-script-security": case("""\
        vrrp_script chk_web {
            script "@DIR@/chk.sh"
        }
        """, 2, 5, "warning", "vrrp_script chk_web: script @DIR@/chk.sh is unsafe: @DIR@/chk.sh is writable by "
        "others (owner root:root, mode 0777); keepalived runs it anyway as enable_script_security is not set",
        scripts={"chk.sh": 0o777}),
    "notify-script-missing-with-script-security": case("global_defs {\n    enable_script_security\n}\n"
                                                       + VRRP_OK.replace("priority 100", """\
priority 100
    notify_master "@DIR@/to-master.sh eth0\""""), 9, 5, "error",
        "(VI_1) notify_master: script @DIR@/to-master.sh does not exist (enable_script_security disables it)"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_broken_config(name: str, tmp_path: Path) -> None:
    c = CASES[name]
    if name.startswith("script-writable") and os.geteuid() != 0:
        pytest.skip("script safety is judged for root-run scripts, in root-owned directories")
    for fname, text in c.files.items():
        (tmp_path / fname).write_text(text)
    for fname, mode in c.scripts.items():
        script = tmp_path / fname
        script.write_text("#!/bin/sh\nexit 0\n")
        os.chmod(script, mode)
    conf = tmp_path / "t.conf"
    conf.write_text(c.text.replace("@DIR@", str(tmp_path)))
    result = load_file(str(conf), strict=c.strict)
    got = [as_tuple(d, tmp_path) for d in result.diagnostics]
    assert c.expected in got, "\n".join(map(str, got))
    errors = [d for d in got if d[3] == "error"]
    if c.expected[3] == "error":
        assert errors == [c.expected], "other errors besides the expected one"
    else:
        assert errors == [], "a warning case must not produce errors"


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 45


# ---------------------------------------------------------------------------------------------- good ones


def test_one_line_authentication_block_parses() -> None:
    text = VRRP_OK.replace("    virtual_ipaddress", "    authentication { auth_type PASS auth_pass 1111 }\n"
                           "    virtual_ipaddress")
    result = load_text(text, filename="t.conf")
    assert result.diagnostics == []
    auth = result.config.instances[0].authentication
    assert auth is not None and (auth.auth_type, auth.auth_pass) == ("PASS", "1111")


def test_ipv6_instance_defaults_to_vrrp_v3() -> None:
    """keepalived: an IPv6 instance without `version` is VRRPv3, whatever the global vrrp_version."""
    text = "global_defs {\n    vrrp_version 2\n}\n" + VRRP_OK.replace("198.51.100.10", "fd00::10")
    result = load_text(text, filename="t.conf")
    assert result.diagnostics == []
    assert result.config.instances[0].version == 3


def test_auth_pass_truncated_in_one_line_block_points_at_the_password() -> None:
    text = VRRP_OK.replace("    virtual_ipaddress", '    authentication { auth_type PASS auth_pass "abcdefghij" }\n'
                           "    virtual_ipaddress")
    result = load_text(text, filename="t.conf")
    assert [(d.location.line, d.location.col) for d in result.diagnostics if d.location] == [(6, 47)]
    auth = result.config.instances[0].authentication
    assert auth is not None and auth.auth_pass == "abcdefgh"


@pytest.mark.parametrize(("args", "instance", "port", "syncid"), [
    ("lo VI_1", "VI_1", 8848, None),
    ("lo port", "port", 8848, None),  # an instance named like an option: the count of words says it is one
    ("lo port port 9000", "port", 9000, None),
    ("lo id id 7", "id", 8848, 7),
    ("lo inst port id 3", "port", 8848, 3),
    ("lo id 3", None, 8848, 3),
])
def test_lvs_sync_daemon_instance_named_like_an_option(args: str, instance: str | None, port: int,
                                                       syncid: int | None) -> None:
    name = instance or "VI_1"
    text = f"global_defs {{\n    lvs_sync_daemon {args}\n}}\n" + VRRP_OK.replace("VI_1", name)
    result = load_text(text, filename="t.conf")
    assert [d for d in result.diagnostics if d.severity == "error"] == []
    daemon = result.config.global_defs.lvs_sync_daemon
    assert daemon is not None
    assert (daemon.instance, daemon.port, daemon.syncid) == (instance, port, syncid)


def test_lvs_sync_daemon_option_without_value_is_named() -> None:
    text = "global_defs {\n    lvs_sync_daemon lo VI_1 id\n}\n" + VRRP_OK
    result = load_text(text, filename="t.conf")
    assert [(d.location.line, d.location.col, d.message) for d in result.diagnostics if d.location] == [
        (2, 29, "'id' needs a value")]
