"""Tests for lvsconsole.config.lexer: words, locations, blocks, includes, parameters, generators."""

from __future__ import annotations

import gc
import os
import socket
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lvsconsole.config.diagnostics import Location
from lvsconsole.config.lexer import ConfigReadError, Node, ParseResult, Word, parse_file, parse_text

SAMPLES = Path("/usr/share/doc/keepalived/samples")
SEEDS = Path("/work/shared/seed-configs")


# -- helpers ------------------------------------------------------------------------------------------


def parse(text: str, **kw: object) -> ParseResult:
    kw.setdefault("config_id", "lb1")
    return parse_text(text, **kw)  # type: ignore[arg-type]


def texts(node: Node) -> list[str]:
    """Keyword and arguments of a statement as plain strings."""
    return [node.keyword.text] + [w.text for w in node.args]


def locs(node: Node) -> list[tuple[int, int]]:
    return [(w.line, w.col) for w in [node.keyword, *node.args]]


def tree(nodes: list[Node]) -> list[object]:
    """A compact, comparable shape: statements as word lists, blocks as (words, [children])."""
    out: list[object] = []
    for n in nodes:
        if n.children is None:
            out.append(texts(n))
        else:
            out.append((texts(n), tree(n.children)))
    return out


def diags(result: ParseResult) -> list[str]:
    return [str(d) for d in result.diagnostics]


def errors(result: ParseResult) -> list[str]:
    return [str(d) for d in result.diagnostics if d.is_error]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- words, comments ----------------------------------------------------------------------------------


def test_plain_words_and_columns() -> None:
    r = parse("global_defs\n   router_id   LVS_1\n\tsmtp_server 10.0.0.1 25\n")
    assert [texts(n) for n in r.nodes] == [
        ["global_defs"],
        ["router_id", "LVS_1"],
        ["smtp_server", "10.0.0.1", "25"],
    ]
    assert locs(r.nodes[1]) == [(2, 4), (2, 16)]
    assert locs(r.nodes[2]) == [(3, 2), (3, 14), (3, 23)]
    w = r.nodes[1].args[0]
    assert w == Word("LVS_1", "<string>", 2, 16, False)
    assert w.loc == Location("<string>", 2, 16)
    assert r.diagnostics == []


def test_repeated_word_columns() -> None:
    r = parse("a a aa a\n")
    assert locs(r.nodes[0]) == [(1, 1), (1, 3), (1, 5), (1, 8)]


def test_comments_hash_and_bang() -> None:
    text = (
        "! Configuration File for keepalived\n"
        "# full line\n"
        "   # indented comment\n"
        "priority 100   # trailing\n"
        "auth_pass abc!def\n"
        "weight 3 !(x)\n"
        "router_id LVS#1\n"
    )
    r = parse(text)
    assert [texts(n) for n in r.nodes] == [
        ["priority", "100"],
        ["auth_pass", "abc"],
        ["weight", "3"],
        ["router_id", "LVS"],
    ]
    assert locs(r.nodes[0]) == [(4, 1), (4, 10)]
    assert r.diagnostics == []


def test_comment_chars_escaped_or_quoted_or_from_parameters() -> None:
    r = parse('auth_pass a\\#b\\!c\nauth_pass "x#y!z"\nauth_pass p${_HASH}q${_BANG}r # real comment\n')
    assert [texts(n) for n in r.nodes] == [
        ["auth_pass", "a#b!c"],
        ["auth_pass", "x#y!z"],
        ["auth_pass", "p#q!r"],
    ]
    assert r.nodes[1].args[0].quoted
    assert r.diagnostics == []


def test_crlf_line_endings() -> None:
    r = parse("vrrp_instance VI_1 {\r\n  state MASTER\r\n}\r\n")
    assert tree(r.nodes) == [(["vrrp_instance", "VI_1"], [["state", "MASTER"]])]
    assert r.nodes[0].close == Location("<string>", 3, 1)
    assert r.diagnostics == []


# -- blocks -------------------------------------------------------------------------------------------


def test_brace_on_keyword_line() -> None:
    r = parse("vrrp_instance VI_1 {\n    state MASTER\n    virtual_ipaddress {\n        10.0.0.1/24\n    }\n}\n")
    assert tree(r.nodes) == [
        (["vrrp_instance", "VI_1"], [["state", "MASTER"], (["virtual_ipaddress"], [["10.0.0.1/24"]])]),
    ]
    vi = r.nodes[0]
    assert vi.close == Location("<string>", 6, 1)
    assert vi.children is not None
    assert vi.children[1].close == Location("<string>", 5, 5)
    assert r.diagnostics == []


def test_brace_on_following_lines() -> None:
    r = parse("vrrp_instance VI_1\n\n# comment\n  {\n  state BACKUP\n  }\n")
    assert tree(r.nodes) == [(["vrrp_instance", "VI_1"], [["state", "BACKUP"]])]
    assert r.nodes[0].close == Location("<string>", 6, 3)
    assert r.diagnostics == []


def test_one_line_blocks() -> None:
    r = parse("authentication { auth_type PASS auth_pass 1111 }\ntrack_interface { eth0 }\nvirtual_ipaddress { }\n")
    assert tree(r.nodes) == [
        (["authentication"], [["auth_type", "PASS", "auth_pass", "1111"]]),
        (["track_interface"], [["eth0"]]),
        (["virtual_ipaddress"], []),
    ]
    assert locs(r.nodes[0].children[0]) == [(1, 18), (1, 28), (1, 33), (1, 43)]  # type: ignore[index]
    assert r.nodes[0].close == Location("<string>", 1, 48)
    assert r.diagnostics == []


def test_glued_braces() -> None:
    r = parse("foo{\n  bar baz}}\ntrack_interface {eth0}\n")
    # 'bar baz}' closes foo; the second '}' is extra
    assert tree(r.nodes) == [(["foo"], [["bar", "baz"]]), (["track_interface"], [["eth0"]])]
    assert r.nodes[0].close == Location("<string>", 2, 10)
    assert locs(r.nodes[1].children[0]) == [(3, 18)]  # type: ignore[index]
    assert diags(r) == ["<string>:2:11: error: extra '}'"]


def test_blocks_after_close_on_same_line() -> None:
    r = parse("a { x } b { y }\n")
    assert tree(r.nodes) == [(["a"], [["x"]]), (["b"], [["y"]])]


def test_unexpected_open_brace() -> None:
    r = parse("{\n  x\n}\nfoo {\n}\n   {\n}\n")
    assert diags(r) == [
        "<string>:1:1: error: unexpected '{'",
        "<string>:6:4: error: unexpected '{'",
    ]
    # contents of an unattached block are kept at the level where they appear
    assert tree(r.nodes) == [["x"], (["foo"], [])]


def test_extra_close_brace() -> None:
    r = parse("a {\n}\n  }\nb\n")
    assert diags(r) == ["<string>:3:3: error: extra '}'"]
    assert tree(r.nodes) == [(["a"], []), ["b"]]


def test_missing_close_braces() -> None:
    r = parse("virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n    TCP_CHECK {\n    }\n")
    assert diags(r) == [
        "<string>:1:1: error: missing '}' for block 'virtual_server' opened here",
        "<string>:2:3: error: missing '}' for block 'real_server' opened here",
    ]
    assert r.nodes[0].close is None


def test_quoted_brace_is_a_word() -> None:
    r = parse('notify "{" "}"\n')
    assert tree(r.nodes) == [["notify", "{", "}"]]
    assert r.diagnostics == []


# -- quotes and escapes -------------------------------------------------------------------------------


def test_quotes_keep_whitespace() -> None:
    r = parse("script \"/bin/check  --x y\" 'single  quoted' plain\n")
    n = r.nodes[0]
    assert texts(n) == ["script", "/bin/check  --x y", "single  quoted", "plain"]
    assert [w.quoted for w in n.args] == [True, True, False]
    assert locs(n) == [(1, 1), (1, 8), (1, 28), (1, 45)]


def test_escapes_in_quotes() -> None:
    r = parse(r'x "a\nb\tc\\d\"e\'f\x41\x4a" ' + r"'g\"h\'i' " + r'"\101\cA\q"' + "\n")
    assert texts(r.nodes[0]) == ["x", "a\nb\tc\\d\"e'fAJ", "g\"h'i", "A\x01q"]
    assert r.diagnostics == []


def test_quote_concatenation() -> None:
    r = parse('x ab"c d"e\n')
    assert texts(r.nodes[0]) == ["x", "abc de"]
    assert r.nodes[0].args[0].quoted
    assert r.nodes[0].args[0].col == 3


def test_unterminated_quote() -> None:
    r = parse('ok 1\nnotify_master "/bin/x arg\nnext 2\n')
    assert diags(r) == ["<string>:2:15: error: unmatched quote"]
    assert [texts(n) for n in r.nodes] == [["ok", "1"], ["notify_master", "/bin/x arg"], ["next", "2"]]


def test_unterminated_single_quote_swallows_comment_char() -> None:
    r = parse("x 'a # b\n")
    assert diags(r) == ["<string>:1:3: error: unmatched quote"]
    assert texts(r.nodes[0]) == ["x", "a # b"]


# -- include ------------------------------------------------------------------------------------------


def test_include_glob_relative_sorted(tmp_path: Path) -> None:
    main = write(tmp_path / "keepalived.conf", "global_defs {\n}\ninclude conf.d/*.conf\nlast 1\n")
    b = write(tmp_path / "conf.d" / "b.conf", "vs_b 2\n")
    a = write(tmp_path / "conf.d" / "a.conf", "\n  vs_a 1\n")
    write(tmp_path / "conf.d" / "ignored.txt", "nope\n")
    r = parse_file(str(main), config_id="lb1")
    assert tree(r.nodes) == [(["global_defs"], []), ["vs_a", "1"], ["vs_b", "2"], ["last", "1"]]
    assert r.nodes[1].keyword == Word("vs_a", str(a), 2, 3)
    assert r.nodes[2].keyword == Word("vs_b", str(b), 1, 1)
    assert r.nodes[3].keyword.file == str(main)
    assert r.files == [str(main), str(a), str(b)]
    assert r.diagnostics == []


def test_include_relative_to_including_file_not_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    main = write(tmp_path / "etc" / "main.conf", "include sub/x.conf\n")
    write(tmp_path / "etc" / "sub" / "x.conf", "include y.conf\n")
    y = write(tmp_path / "etc" / "sub" / "y.conf", "deep yes\n")
    monkeypatch.chdir(tmp_path)
    r = parse_file("etc/main.conf", config_id="lb1")
    assert tree(r.nodes) == [["deep", "yes"]]
    assert r.nodes[0].keyword.file == str(y)
    assert r.files[0] == str(main)
    assert r.diagnostics == []


def test_include_inside_block_and_nested_locations(tmp_path: Path) -> None:
    main = write(
        tmp_path / "main.conf",
        "virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    include rs.conf\n}\n",
    )
    rs = write(tmp_path / "rs.conf", "real_server 10.0.0.2 80 {\n    include check.conf\n}\n")
    chk = write(tmp_path / "check.conf", "# header\nTCP_CHECK {\n  connect_timeout 3\n}\n")
    r = parse_file(str(main), config_id="lb1")
    assert tree(r.nodes) == [
        (
            ["virtual_server", "10.0.0.1", "80"],
            [
                ["lb_algo", "rr"],
                (["real_server", "10.0.0.2", "80"], [(["TCP_CHECK"], [["connect_timeout", "3"]])]),
            ],
        )
    ]
    vs = r.nodes[0]
    assert vs.children is not None
    real = vs.children[1]
    assert real.keyword == Word("real_server", str(rs), 1, 1)
    assert real.close == Location(str(rs), 3, 1)
    assert real.children is not None
    check = real.children[0]
    assert check.keyword == Word("TCP_CHECK", str(chk), 2, 1)
    assert check.children is not None
    assert check.children[0].args[0] == Word("3", str(chk), 3, 19)
    assert vs.close == Location(str(main), 4, 1)
    assert r.files == [str(main), str(rs), str(chk)]
    assert r.diagnostics == []


def test_include_brace_expansion(tmp_path: Path) -> None:
    main = write(tmp_path / "main.conf", "include {b,a}.conf\n")
    write(tmp_path / "a.conf", "from_a\n")
    write(tmp_path / "b.conf", "from_b\n")
    r = parse_file(str(main), config_id="lb1")
    assert tree(r.nodes) == [["from_b"], ["from_a"]]
    assert r.diagnostics == []


def test_include_absolute_path_and_variants(tmp_path: Path) -> None:
    inc = write(tmp_path / "x.conf", "x 1\n")
    for kw in ("include", "includer", "includem", "includew", "includeb", "includea"):
        r = parse(f"{kw} {inc}\n")
        assert tree(r.nodes) == [["x", "1"]], kw
        assert r.diagnostics == [], kw


def test_missing_include(tmp_path: Path) -> None:
    main = write(tmp_path / "main.conf", "a 1\ninclude   nothing/*.conf\nincludem gone.conf\nb 2\n")
    r = parse_file(str(main), config_id="lb1")
    assert tree(r.nodes) == [["a", "1"], ["b", "2"]]
    assert diags(r) == [
        f"{main}:2:11: warning: include 'nothing/*.conf' matched no file",
        f"{main}:3:10: error: include 'gone.conf' matched no file",
    ]


def test_include_directory_and_brace_alternatives(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path / "a.conf", "a 1\n")
    main = write(tmp_path / "main.conf", "include sub\ninclude {a,zz}.conf\nincludeb {a,zz}.conf\n")
    r = parse_file(str(main), config_id="lb1")
    assert tree(r.nodes) == [["a", "1"], ["a", "1"]]
    assert diags(r) == [
        f"{main}:1:9: warning: include '{tmp_path / 'sub'}' is a directory - skipping",
        f"{main}:3:10: error: include '{{a,zz}}.conf': some alternatives matched no file",
    ]


def test_include_without_file_name() -> None:
    r = parse("include\n")
    assert diags(r) == ["<string>:1:1: error: 'include' needs a file name"]
    assert r.nodes == []


def test_include_loop(tmp_path: Path) -> None:
    a = write(tmp_path / "a.conf", "in_a 1\ninclude b.conf\n")
    b = write(tmp_path / "b.conf", "in_b 1\n  include a.conf\nafter_b 1\n")
    r = parse_file(str(a), config_id="lb1")
    assert tree(r.nodes) == [["in_a", "1"], ["in_b", "1"], ["after_b", "1"]]
    assert diags(r) == [f"{b}:2:11: error: include loop: {a} includes itself via {a} -> {b} -> {a}"]


def test_self_include(tmp_path: Path) -> None:
    a = write(tmp_path / "a.conf", "include *.conf\nx 1\n")
    r = parse_file(str(a), config_id="lb1")
    assert tree(r.nodes) == [["x", "1"]]
    assert errors(r) == [f"{a}:1:9: error: include loop: {a} includes itself via {a} -> {a}"]


def test_block_must_close_in_its_own_file(tmp_path: Path) -> None:
    main = write(tmp_path / "main.conf", "outer {\n  include part.conf\n}\n")
    part = write(tmp_path / "part.conf", "inner {\n  x 1\n")
    r = parse_file(str(main), config_id="lb1")
    assert diags(r) == [f"{part}:1:1: error: missing '}}' for block 'inner' opened here"]
    assert tree(r.nodes) == [(["outer"], [(["inner"], [["x", "1"]])])]
    assert r.nodes[0].close == Location(str(main), 3, 1)

    closer = write(tmp_path / "closer.conf", "x 1\n}\n")
    main2 = write(tmp_path / "main2.conf", "outer {\n  include closer.conf\n}\n")
    r = parse_file(str(main2), config_id="lb1")
    assert diags(r) == [f"{closer}:2:1: error: extra '}}'"]
    assert tree(r.nodes) == [(["outer"], [["x", "1"]])]


def test_unreadable_top_level_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigReadError):
        parse_file(str(tmp_path / "missing.conf"))
    with pytest.raises(ConfigReadError):
        parse_file(str(tmp_path))  # a directory
    assert issubclass(ConfigReadError, OSError)


def test_parse_text_base_dir_for_includes(tmp_path: Path) -> None:
    inc = write(tmp_path / "x.conf", "x 1\n")
    r = parse("include x.conf\npwd ${_PWD}\n", base_dir=str(tmp_path))
    assert tree(r.nodes) == [["x", "1"], ["pwd", str(tmp_path)]]
    assert r.files == [str(inc)]  # "<string>" is not a file


def test_parse_text_with_file_name(tmp_path: Path) -> None:
    name = str(tmp_path / "edited.conf")
    write(tmp_path / "part.conf", "p 1\n")
    r = parse("include part.conf\nq 2\n", filename=name)
    assert r.files == [name, str(tmp_path / "part.conf")]
    assert r.nodes[1].keyword.file == name


def test_multiline_definition_ends_with_its_file(tmp_path: Path) -> None:
    write(tmp_path / "defs.conf", "$M=one \\\n")
    main = write(tmp_path / "main.conf", "include defs.conf\nx $M y\n")
    r = parse_file(str(main), config_id="lb1")
    assert texts(r.nodes[0]) == ["x", "one", "y"]


# -- parameters ---------------------------------------------------------------------------------------


def test_parameters_simple_braced_and_columns() -> None:
    r = parse("$IP=10.0.0.1\n$PORT=80\nvirtual_server $IP ${PORT} {\n}\nx ${IP}:${PORT}\n")
    assert tree(r.nodes) == [(["virtual_server", "10.0.0.1", "80"], []), ["x", "10.0.0.1:80"]]
    assert locs(r.nodes[0]) == [(3, 1), (3, 16), (3, 20)]
    assert r.nodes[0].close == Location("<string>", 4, 1)
    assert r.diagnostics == []


def test_parameter_expanding_to_several_words_keeps_dollar_column() -> None:
    r = parse("$RS=real_server 10.0.0.2 80\n  $RS {\n  }\n")
    assert tree(r.nodes) == [(["real_server", "10.0.0.2", "80"], [])]
    assert locs(r.nodes[0]) == [(2, 3), (2, 3), (2, 3)]
    assert r.nodes[0].close == Location("<string>", 3, 3)


def test_parameters_recursive_and_lazy() -> None:
    r = parse("$A=${B} and $C\n$B=bee\nuse $A\n$C=sea\nuse $A\n")
    assert [texts(n) for n in r.nodes] == [["use", "bee", "and", "$C"], ["use", "bee", "and", "sea"]]
    assert diags(r) == ["<string>:3:5: warning: undefined parameter '$C'"]


def test_parameter_reference_needs_separator() -> None:
    # $NAME must be followed by whitespace, ',', ')' or the end of the line; otherwise it is text
    r = parse("$X=1\na $X, ($X) $X.y $X\n")
    assert texts(r.nodes[0]) == ["a", "1,", "(1)", "$X.y", "1"]
    assert r.diagnostics == []


def test_undefined_parameter_left_untouched() -> None:
    r = parse("notify $NOPE ${ALSO_NOPE} $1 $$\n")
    assert texts(r.nodes[0]) == ["notify", "$NOPE", "${ALSO_NOPE}", "$1", "$$"]
    assert diags(r) == [
        "<string>:1:8: warning: undefined parameter '$NOPE'",
        "<string>:1:14: warning: undefined parameter '$ALSO_NOPE'",
    ]


def test_parameter_redefinition_and_no_space_before_equals() -> None:
    r = parse("$X=1\n$X=2\nv $X\n$Y =3\n")
    assert [texts(n) for n in r.nodes] == [["v", "2"], ["$Y", "=3"]]


def test_multiline_definition() -> None:
    text = (
        "$VIPS=10.0.0.1/24 \\\n"
        "    10.0.0.2/24 dev eth1 \\\n"
        "    # a comment inside\n"
        "    10.0.0.3/24\n"
        "virtual_ipaddress {\n"
        "    $VIPS\n"
        "}\n"
    )
    r = parse(text)
    assert tree(r.nodes) == [
        (["virtual_ipaddress"], [["10.0.0.1/24"], ["10.0.0.2/24", "dev", "eth1"], ["10.0.0.3/24"]])
    ]
    vip = r.nodes[0]
    assert vip.children is not None
    assert [locs(c)[0] for c in vip.children] == [(6, 5), (6, 5), (6, 5)]
    assert r.diagnostics == []


def test_multiline_definition_with_blocks_and_nested_parameters() -> None:
    text = (
        "$PORT=80\n"
        "$RS=real_server ${IP} $PORT { \\\n"
        "  weight 1 \\\n"
        "}\n"
        "virtual_server 10.0.0.1 80 {\n"
        "  $IP=10.0.0.2\n"
        "  $RS\n"
        "  $IP=10.0.0.3\n"
        "  $RS\n"
        "}\n"
    )
    r = parse(text)
    assert tree(r.nodes) == [
        (
            ["virtual_server", "10.0.0.1", "80"],
            [
                (["real_server", "10.0.0.2", "80"], [["weight", "1"]]),
                (["real_server", "10.0.0.3", "80"], [["weight", "1"]]),
            ],
        )
    ]
    assert r.diagnostics == []


def test_multiline_parameter_not_at_end_of_line() -> None:
    r = parse("$M=a \\\nb\nx $M y\n")
    assert texts(r.nodes[0]) == ["x", "$M", "y"]
    assert diags(r) == ["<string>:3:3: warning: multi-line parameter '$M' can only be used at the end of a line"]


def test_self_referencing_parameter_terminates() -> None:
    r = parse("$A=x ${A}\ny $A\nz 1\n")
    assert [n.keyword.text for n in r.nodes] == ["y", "z"]
    assert diags(r) == ["<string>:2:3: error: expansion of parameter '$A' does not terminate"]


def test_predefined_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LVS_TEST_VAR", "from-env")
    monkeypatch.delenv("LVS_TEST_UNSET", raising=False)
    r = parse(
        "i ${_INSTANCE}\nr ${_RANDOM 7 7}\nr2 ${_RANDOM}\ne ${_ENV LVS_TEST_VAR}\nu ${_ENV LVS_TEST_UNSET}\n",
        config_id="director-a",
    )
    assert [texts(n) for n in r.nodes[:2]] == [["i", "director-a"], ["r", "7"]]
    assert 0 <= int(r.nodes[2].args[0].text) <= 32767
    assert texts(r.nodes[3]) == ["e", "from-env"]
    assert texts(r.nodes[4]) == ["u"]
    assert diags(r) == ["<string>:5:3: warning: environment variable 'LVS_TEST_UNSET' is not set"]


def test_pwd_is_directory_of_current_file(tmp_path: Path) -> None:
    main = write(tmp_path / "main.conf", "here ${_PWD}\ninclude sub/inc.conf\n")
    write(tmp_path / "sub" / "inc.conf", "there ${_PWD}\n")
    r = parse_file(str(main), config_id="lb1")
    assert [texts(n) for n in r.nodes] == [["here", str(tmp_path)], ["there", str(tmp_path / "sub")]]


# -- conditional lines --------------------------------------------------------------------------------


def test_conditional_lines() -> None:
    text = (
        "@lb1 net_namespace one\n"
        "@lb2 net_namespace two\n"
        "@^lb1 not_lb1 x\n"
        "@^lb2 not_lb2 x\n"
        "vrrp_instance VI_0 {\n"
        "@lb1\tpriority 170\n"
        "@lb2\tpriority 85\n"
        "   @lb1 state MASTER\n"
        "}\n"
        "@lb1\n"
    )
    r = parse(text, config_id="lb1")
    assert tree(r.nodes) == [
        ["net_namespace", "one"],
        ["not_lb2", "x"],
        (["vrrp_instance", "VI_0"], [["priority", "170"], ["state", "MASTER"]]),
    ]
    assert locs(r.nodes[0]) == [(1, 6), (1, 20)]
    assert locs(r.nodes[2].children[0]) == [(6, 6), (6, 15)]  # type: ignore[index]
    r2 = parse(text, config_id="lb2")
    assert tree(r2.nodes) == [
        ["net_namespace", "two"],
        ["not_lb1", "x"],
        (["vrrp_instance", "VI_0"], [["priority", "85"]]),
    ]


def test_conditional_with_block_and_definition() -> None:
    r = parse("@lb1 $P=150\n@lb2 $P=50\n@lb1 blk {\n  p $P\n@lb1 }\n", config_id="lb1")
    assert tree(r.nodes) == [(["blk"], [["p", "150"]])]
    assert r.diagnostics == []


def test_default_config_id_is_short_hostname() -> None:
    host = socket.gethostname().split(".")[0]
    r = parse_text(f"@{host} yes 1\n@^{host} no 1\n")
    assert tree(r.nodes) == [["yes", "1"]]


def test_at_sign_inside_words_is_not_a_conditional() -> None:
    r = parse("notification_email_from root@localhost\n")
    assert texts(r.nodes[0]) == ["notification_email_from", "root@localhost"]


# -- ~SEQ / ~LST --------------------------------------------------------------------------------------


def test_seq_forms() -> None:
    r = parse("~SEQ(i, 3) a $i\n~SEQ(i, 5, 3) b ${i}\n~SEQ(i, 0, 5, 10) c $i\n~SEQ(i, -2) d $i\n")
    assert [texts(n) for n in r.nodes] == [
        ["a", "1"], ["a", "2"], ["a", "3"],
        ["b", "5"], ["b", "4"], ["b", "3"],
        ["c", "0"], ["c", "5"], ["c", "10"],
        ["d", "-1"], ["d", "-2"],
    ]  # fmt: skip
    assert locs(r.nodes[0]) == [(1, 12), (1, 14)]
    assert r.diagnostics == []


def test_seq_generates_blocks() -> None:
    r = parse("~SEQ(n, 1, 2) vrrp_instance VI_$n { virtual_router_id $n }\n")
    assert tree(r.nodes) == [
        (["vrrp_instance", "VI_1"], [["virtual_router_id", "1"]]),
        (["vrrp_instance", "VI_2"], [["virtual_router_id", "2"]]),
    ]
    assert r.nodes[1].close == Location("<string>", 1, 58)


def test_seq_nested_and_hex() -> None:
    r = parse("~SEQ(a, 1, 2) ~SEQx(b, 9, 11) addr fe80::${a}:${b}\n")
    assert [texts(n) for n in r.nodes] == [["addr", f"fe80::{a}:{b}"] for a in (1, 2) for b in ("9", "a", "b")]
    assert r.diagnostics == []


def test_seq_arguments_from_parameters() -> None:
    r = parse("$N=3\n~SEQ(i, 2, $N) x $i\n")
    assert [texts(n) for n in r.nodes] == [["x", "2"], ["x", "3"]]


def test_lst() -> None:
    r = parse("~LST(v, eth0, eth1) track $v\n~LST({ip, w}, {10.0.0.1, 5}, {10.0.0.2}) rs $ip w$w\n")
    assert [texts(n) for n in r.nodes] == [
        ["track", "eth0"],
        ["track", "eth1"],
        ["rs", "10.0.0.1", "w5"],
        ["rs", "10.0.0.2", "w"],
    ]
    assert r.diagnostics == []


def test_seq_and_lst_errors_at_tilde() -> None:
    r = parse(
        "  ~SEQ(i, 1, 0, 5) x\n"
        "~SEQ(i, 5, 1, 1) x\n"
        "~SEQ i, 1\n"
        "~SEQ(i 1) x\n"
        "~SEQ(i, one) x\n"
        "~SEQx(i, -1, 1) x\n"
        "\t~LST(v) x\n"
        "~LST({a}, {1, 2}) x\n"
        "ok 1\n"
    )
    assert [texts(n) for n in r.nodes] == [["ok", "1"]]
    assert diags(r) == [
        "<string>:1:3: error: invalid ~SEQ values '~SEQ(i, 1, 0, 5) x'",
        "<string>:2:1: error: invalid ~SEQ values '~SEQ(i, 5, 1, 1) x'",
        "<string>:3:1: error: invalid ~SEQ definition '~SEQ i, 1'",
        "<string>:4:1: error: invalid ~SEQ definition '~SEQ(i 1) x'",
        "<string>:5:1: error: invalid ~SEQ definition '~SEQ(i, one) x'",
        "<string>:6:1: error: ~SEQx is only valid for non-negative numbers '~SEQx(i, -1, 1) x'",
        "<string>:7:2: error: invalid ~LST definition '~LST(v) x'",
        "<string>:8:1: error: invalid ~LST specification: too many values '~LST({a}, {1, 2}) x'",
    ]


def test_seq_too_large_is_an_error_not_a_hang() -> None:
    r = parse("~SEQ(i, 1, 100000000) x $i\n")
    assert r.nodes == []
    assert diags(r) == ["<string>:1:1: error: ~SEQ generates too many lines"]


# -- real configurations ------------------------------------------------------------------------------


def _sample_files() -> list[Path]:
    return sorted(SAMPLES.glob("keepalived.conf.*")) if SAMPLES.is_dir() else []


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="keepalived samples not installed (Debian package keepalived)")
def test_all_keepalived_samples_parse_without_errors() -> None:
    files = _sample_files()
    assert len(files) == 25
    for path in files:
        for config_id in ("high", "low", "lb1"):
            r = parse_file(str(path), config_id=config_id)
            assert r.diagnostics == [], (path, diags(r))
            assert r.nodes, path
            assert r.files == [str(path)]


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="keepalived samples not installed (Debian package keepalived)")
def test_conditional_sample() -> None:
    r = parse_file(str(SAMPLES / "keepalived.conf.conditional_conf"), config_id="high")
    assert texts(r.nodes[0]) == ["net_namespace", "high"]
    script = r.nodes[1]
    assert script.children is not None
    assert texts(script.children[0]) == ["script", "/etc/keepalived/scripts/check_high_VI_0.sh"]


@pytest.mark.skipif(not SEEDS.is_dir(), reason="seed configs not available")
@pytest.mark.parametrize("name", ["master.conf", "backup.conf"])
def test_seed_configs_parse_without_errors(name: str) -> None:
    r = parse_file(str(SEEDS / name), config_id="lb1")
    assert r.diagnostics == []
    top = [n.keyword.text for n in r.nodes]
    assert top == ["global_defs", "vrrp_sync_group", "vrrp_instance", "virtual_server"]
    vs = r.nodes[3]
    assert vs.children is not None
    rs = [c for c in vs.children if c.keyword.text == "real_server"]
    assert len(rs) == 2
    assert all(c.children is not None and c.close is not None for c in rs)


def test_generated_large_config_shape(tmp_path: Path) -> None:
    lines = []
    for v in range(20):
        lines.append(f"virtual_server 10.0.{v}.1 80 {{\n    lb_algo wlc # comment\n")
        for n in range(5):
            lines.append(
                f"    real_server 10.1.{v}.{n} 80 {{\n        weight 1\n"
                "        TCP_CHECK {\n            connect_timeout 3\n        }\n    }\n"
            )
        lines.append("}\n")
    path = write(tmp_path / "big.conf", "".join(lines))
    r = parse_file(str(path), config_id="lb1")
    assert r.diagnostics == []
    assert len(r.nodes) == 20
    last_vs = r.nodes[-1]
    assert last_vs.children is not None
    assert len(last_vs.children) == 6
    rs = last_vs.children[-1]
    assert texts(rs) == ["real_server", "10.1.19.4", "80"]
    assert rs.children is not None and rs.children[1].children is not None
    assert locs(rs.children[1].children[0]) == [(rs.keyword.line + 3, 13), (rs.keyword.line + 3, 29)]


# -- robustness ---------------------------------------------------------------------------------------

_ALPHABET = st.sampled_from([*" \t\n\r{}\"'\\#!$@^~(),=_:.-/*?[]xyzSEQLSTx019", "~SEQ(", "~LST(", "${", "include "])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ALPHABET, max_size=80).map("".join))
def test_random_config_like_text_never_raises(text: str) -> None:
    r = parse_text(text, config_id="x", base_dir="/nonexistent-dir")
    assert isinstance(r.nodes, list)
    for d in r.diagnostics:
        assert d.location is not None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_unicode_text_never_raises(text: str) -> None:
    r = parse_text(text, config_id="x", base_dir="/nonexistent-dir")
    assert all(d.location is not None for d in r.diagnostics)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_random_bytes_file_never_raises(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "random.conf"
    path.write_bytes(data)
    r = parse_file(str(path), config_id="x")
    assert r.files == [str(path)]


_PLAIN_WORD = st.text(alphabet="abcxyz019._-/:", min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.text(alphabet=" \t", max_size=3), _PLAIN_WORD), min_size=1, max_size=6),
    st.sampled_from(["", " # c", " ${_HASH}", ' "q"']),
)
def test_columns_agree_between_fast_and_slow_paths(parts: list[tuple[str, str]], suffix: str) -> None:
    line = "".join(sep + " " + word for sep, word in parts)
    r = parse(line + suffix + "\n")
    n = r.nodes[0]
    words = [n.keyword, *n.args][: len(parts)]
    expected: list[tuple[str, int]] = []
    pos = 0
    for sep, word in parts:
        pos += len(sep) + 1
        expected.append((word, pos + 1))
        pos += len(word)
    assert [(w.text, w.col) for w in words] == expected


def test_pathological_inputs_do_not_hang() -> None:
    r = parse("$A=${A}${A}\nx $A\n~SEQ(i,1,1000000) ~SEQ(j,1,1000000) y\n")
    assert diags(r) == [
        "<string>:2:3: error: expansion of parameter '$A' does not terminate",
        "<string>:3:19: error: ~SEQ generates too many lines",
    ]
    r = parse("{" * 5000 + "\n" + "}" * 5001 + "\n")
    assert sum(d.message == "unexpected '{'" for d in r.diagnostics) == 5000
    assert sum(d.message == "extra '}'" for d in r.diagnostics) == 1


def _small_parses_seconds(count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        parse("virtual_server 10.0.0.1 80 {\n    real_server 10.0.0.2 80 { weight 2 }\n}\n")
    return time.perf_counter() - started


def test_small_parses_do_not_pay_for_a_frozen_heap() -> None:
    """A daemon or console freezes its heap (millions of objects); an incremental edit's parse must not walk it.

    gc.get_freeze_count() is a walk of the permanent generation: asked on every parse, it made each small parse
    cost ~5 ms per 400,000 frozen objects (and the unit tier minutes after the TUI tests had frozen their apps)."""
    assert gc.get_freeze_count() == 0
    unfrozen = _small_parses_seconds(50)
    heap = [[] for _ in range(400_000)]
    gc.freeze()
    try:
        frozen = _small_parses_seconds(50)
        assert gc.get_freeze_count() >= len(heap)  # the caller's frozen objects stay frozen
    finally:
        gc.unfreeze()
    assert frozen < 5 * unfrozen + 0.05, (frozen, unfrozen)


def test_a_large_parse_promotes_its_tree_past_the_young_generations() -> None:
    text = "".join(f"virtual_server 10.0.{v // 250}.{v % 250} 80 {{\n    real_server 10.1.0.1 80 {{ weight 1 }}\n}}\n"
                   for v in range(20_000))
    r = parse(text)
    assert len(r.nodes) == 20_000
    assert gc.get_count()[0] < 1_000  # promoted to the oldest generation, not left for young-generation passes
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_files_lists_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "k.conf", "x 1\n")
    monkeypatch.chdir(tmp_path)
    r = parse_file("k.conf", config_id="lb1")
    assert r.files == [os.path.join(str(tmp_path), "k.conf")]
    assert r.nodes[0].keyword.file == r.files[0]
