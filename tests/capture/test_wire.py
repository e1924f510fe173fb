"""The Convox wire details (auditkit.capture.wire): map and env codecs as the rack reads them, the exec exit marker,
Basic credentials; the gateway, the simulated rack and its client share them."""

from __future__ import annotations

import base64
import urllib.parse

from auditkit.capture import canonical, wire


def test_map_fields_are_doubly_encoded():
    inner = urllib.parse.urlencode({"NodeType": "t3.large", "Odd": "a&b=c"})
    body = urllib.parse.urlencode({"parameters": inner}).encode()
    form = dict(canonical.parse_pairs(body, "form"))
    assert wire.decode_map(form["parameters"]) == {"NodeType": "t3.large", "Odd": "a&b=c"}
    assert wire.decode_map("") == {} and wire.decode_map(None) == {}


def test_encode_map_sorts_and_round_trips():
    values = {"b": "2", "a": "x&y=z", "c": ""}
    assert wire.encode_map(values) == "a=x%26y%3Dz&b=2&c="
    assert wire.decode_map(wire.encode_map(values)) == values


def test_parse_env_follows_the_rack():
    text = "A=1\nB=x=y==\n\n  C =3\r\nno equals sign\n=orphan\n#K=V\nD=\n"
    assert wire.parse_env(text) == {"A": "1", "B": "x=y==", "C": "3", "#K": "V", "D": ""}
    assert wire.parse_env(text.encode()) == wire.parse_env(text)


def test_format_env_is_sorted_lines_that_parse_back():
    env = {"B": "2", "A": "x=y", "C": ""}
    assert wire.format_env(env) == "A=x=y\nB=2\nC="
    assert wire.parse_env(wire.format_env(env)) == env


def test_exit_marker_ends_a_frame():
    assert wire.exit_frame(3) == "F1E49A85-0AD7-4AEF-A618-C249C6E6568D:3\n"
    assert wire.split_exit(wire.exit_frame(-1)) == ("", -1)
    assert wire.split_exit("done\r\n" + wire.exit_frame(0)) == ("done\r\n", 0)
    assert wire.split_exit(wire.EXIT_MARKER + "7") == ("", 7)
    assert wire.split_exit(wire.exit_frame(0) + "more") is None and wire.split_exit("plain output") is None


def test_basic_credentials():
    header = wire.basic_authorization("acme/production", "pw:with:colons")
    assert wire.parse_basic(header) == ("acme/production", "pw:with:colons")
    for bad in (None, "", "Bearer x", "Basic", "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode()):
        assert wire.parse_basic(bad) is None
    not_utf8 = "Basic " + base64.b64encode(b"\xff:pw").decode()
    assert wire.parse_basic(not_utf8) is None and wire.parse_basic(not_utf8, errors="replace") == ("\ufffd", "pw")
