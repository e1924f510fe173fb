"""The one parse (auditkit/capture/canonical.py): paths, parameter pairs and bodies read as the Go rack reads them,
and everything a Go rack and a Python parser could read differently refused with a reason.

The gateway-level consequences (nothing forwarded, a denied event) are in tests/capture/test_gateway.py; the differential
property against the simulated rack is in tests/capture/test_gateway_properties.py.
"""

from __future__ import annotations

import hashlib
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditkit.capture import canonical
from auditkit.capture.canonical import Refused


@pytest.mark.parametrize("raw,path", [
    (b"/apps/web/cancel", "/apps/web/cancel"),
    (b"/apps/my%20app/objects/tmp/a%2Bb.tgz", "/apps/my app/objects/tmp/a+b.tgz"),
    (b"/apps/web%2Fx/cancel", "/apps/web/x/cancel"),  # Go's r.URL.Path decodes %2F: the rack routes this
    (b"/apps//web", "/apps//web"),  # kept as sent: gorilla/mux with SkipClean routes it as it is
    (b"/apps/web/", "/apps/web/"),
    (b"/Apps/Web", "/Apps/Web"),
    (b"/registries/registry.example.com%3A5000", "/registries/registry.example.com:5000"),
    (b"/apps/w%C3%A9b", "/apps/wéb"),
    (b"/apps/web/objects/tmp/..x.tgz", "/apps/web/objects/tmp/..x.tgz"),  # not a dot segment
])
def test_paths_decode_once_and_keep_their_shape(raw, path):
    assert canonical.canonical_path(raw) == path


@pytest.mark.parametrize("raw,reason", [
    (b"/apps/web/objects/x/../../../../apps/billing", "dot segment"),
    (b"/v2/../apps/web/resources/database/data", "dot segment"),
    (b"/apps/web/resources/database/x/%2e%2e/data", "dot segment"),
    (b"/apps/web/resources/database/x/%2E./data", "dot segment"),
    (b"/apps/web/./cancel", "dot segment"),
    (b"/apps/web/cancel/.", "dot segment"),
    (b"/apps/web/x%2F..%2Fcancel", "dot segment"),  # decoded, the %2F make segments of their own
    (b"/apps/web/cancel%00", "control character"),
    (b"/apps/web/cancel%0d%0a", "control character"),
    (b"/apps/web/cancel%7f", "control character"),
    (b"/apps/web/%zz", "percent escape"),
    (b"/apps/web/%4", "percent escape"),
    (b"/apps/%ff", "not UTF-8"),
    (b"/apps/\xc3\xa9", "printable ASCII"),
    (b"/apps/web cancel", "printable ASCII"),
    (b"apps/web", "start with /"),
])
def test_paths_the_rack_and_the_record_could_read_apart_are_refused(raw, reason):
    with pytest.raises(Refused) as e:
        canonical.canonical_path(raw)
    assert e.value.status == 400 and reason in e.value.reason


def test_pairs_read_as_go_url_parse_query():
    assert canonical.parse_pairs(b"a=1&&b=x+y&c&d=%3D%26", "query") == [("a", "1"), ("b", "x y"), ("c", ""),
                                                                          ("d", "=&")]
    assert canonical.parse_pairs(b"env=A%3D1%0AB%3D2", "form") == [("env", "A=1\nB=2")]  # newlines in values
    for bad, reason in ((b"a=1;b=2", "';'"), (b"a=%zz", "escape"), (b"a%00=1", "control"), (b"a=%ff", "UTF-8")):
        with pytest.raises(Refused, match=reason):
            canonical.parse_pairs(bad, "form")


def test_a_repeated_name_is_refused_in_one_source_or_across_two_unless_not_recorded():
    with pytest.raises(Refused, match="'name' is given more than once"):
        canonical.combine([("name", "evilapp"), ("name", "benignapp")])
    with pytest.raises(Refused, match="'server'"):
        canonical.combine([("server", "a")], [("server", "b")])
    with pytest.raises(Refused, match="'source'"):
        canonical.combine([("source", "a")], files={"source": canonical.FilePart("s.tgz", 1, "x")})
    assert canonical.combine([("a", "1"), ("a", "2")], [("a", "3"), ("b", "4")], unique=False) == {"a": "1",
                                                                                                   "b": "4"}


def test_media_types_are_read_strictly():
    assert canonical.parse_media_type("Multipart/Form-Data; Boundary=\"ab c\"") == ("multipart/form-data",
                                                                                   {"boundary": "ab c"})
    assert canonical.parse_media_type("application/x-www-form-urlencoded; charset=utf-8")[0] == canonical.FORM_TYPE
    for bad in ("", "multipart/form-data; boundary=a; boundary=b", 'form-data; name="a\\"b"', "a/b; name*=x",
                "text/plain;;", "a/b; c"):
        with pytest.raises(Refused):
            canonical.parse_media_type(bad)


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "BoUnDaRy") -> bytes:
    out = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename:
            out += b"Content-Type: application/gzip\r\n"
        out += b"\r\n" + content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def test_multipart_values_and_files():
    source = b"\x1f\x8b" + bytes(range(256)) * 4
    body = multipart([("server", None, b"evil.example.com"), ("source", "src.tgz", source),
                      ("note", None, "héllo\r\nworld".encode())])
    values, files = canonical.parse_multipart(body, "BoUnDaRy")
    assert values == [("server", "evil.example.com"), ("note", "héllo\r\nworld")]
    assert files == {"source": canonical.FilePart("src.tgz", len(source), hashlib.sha256(source).hexdigest())}


@pytest.mark.parametrize("mutate", [
    lambda b: b"preamble\r\n" + b,
    lambda b: b.replace(b"\r\n", b"\n"),
    lambda b: b.replace(b"--BoUnDaRy--\r\n", b"--BoUnDaRy--\r\nepilogue"),
    lambda b: b.replace(b"--BoUnDaRy--\r\n", b""),
    lambda b: b.replace(b'Content-Disposition: form-data; name="a"',
                        b'Content-Disposition: form-data; name="a"\r\nContent-Transfer-Encoding: quoted-printable'),
    lambda b: b.replace(b'name="a"', b'name*=utf-8\'\'a'),
    lambda b: b.replace(b'form-data; name="a"', b'attachment; name="a"'),
    lambda b: b.replace(b'Content-Disposition: form-data; name="a"', b' Content-Disposition: form-data; name="a"'),
    lambda b: b.replace(b'\r\nContent-Disposition: form-data; name="a"',
                        b'\r\nContent-Disposition: form-data; name="a"\r\nContent-Disposition: form-data; name="b"'),
    lambda b: b.replace(b"--BoUnDaRy\r\n", b"--BoUnDaRy  \r\n", 1),
    lambda b: b.replace(b'name="a"', b'name="a"; filename=""'),
    lambda b: b.replace(b'name="a"', b'name="a"; filename="../x"'),
])
def test_multipart_outside_the_plain_subset_is_refused(mutate):
    body = multipart([("a", None, b"1"), ("b", None, b"2")])
    canonical.parse_multipart(body, "BoUnDaRy")  # the plain form is read
    with pytest.raises(Refused):
        canonical.parse_multipart(mutate(body), "BoUnDaRy")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=12), st.text(max_size=20)), max_size=6))
def test_pairs_round_trip_through_form_encoding(pairs):
    """Whatever a well-behaved client encodes (Python's urlencode, as Go's url.Values.Encode), parse_pairs reads
    back exactly, or refuses with a reason (control characters in a name); it never guesses."""
    encoded = urllib.parse.urlencode(pairs).encode()
    try:
        assert canonical.parse_pairs(encoded, "form") == [(k, v) for k, v in pairs]
    except Refused as e:
        assert "control character" in e.reason
        assert any(ord(c) < 0x20 or ord(c) == 0x7f for k, _ in pairs for c in k)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_any_path_bytes_are_decoded_or_refused_never_an_error(raw):
    try:
        path = canonical.canonical_path(b"/" + raw)
    except Refused as e:
        assert e.status == 400
    else:
        assert "/../" not in path + "/" and "/./" not in path + "/"
