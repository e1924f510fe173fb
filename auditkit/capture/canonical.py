"""The one parse of a request: the path, the parameters and the body exactly as the rack will read them.

The gateway classifies, records and forwards one value, the canonical request made here, so the journal cannot
describe one request while the rack acts on another. The rack is Go (convox/stdapi on gorilla/mux with
`SkipClean(true)`, net/http's `r.Form`), so "as the rack reads it" means:

- the route is matched on the percent-decoded path (`%2F` is a `/`), case-sensitively, with no dot-segment
  cleaning and no trailing-slash tolerance. The gateway forwards the path byte for byte as it was sent and matches
  the catalog on its decoding, so both sides route the same string;
- `r.Form` holds the query pairs and, for POST, PUT and PATCH only, the pairs of an
  `application/x-www-form-urlencoded` or `multipart/form-data` body; `FormValue` takes the first value of a name.

What a Go rack would read differently from a Python parser, or only by a rule a reader of the journal would have to
know, is refused instead of guessed (`Refused`, answered 400 or 415 and journaled as denied):

- a path that is not ASCII, has a bad percent escape, decodes to invalid UTF-8 or to a control character, or has a
  `.` or `..` segment once decoded (RFC 3986 §5.2.4 would move it; the rack would not: either way the record and
  the effect could part);
- a parameter pair with a `;` or a bad percent escape (Go drops such a pair, Python keeps it), a name or value that
  is not UTF-8, a name with a control character, and — on audited requests — a name given twice (query, body, or
  across both: Go's first value would win, and which is first depends on the body type);
- on a route that reads a form: a non-empty body of any other type (415), and a multipart body outside the plain
  subset every parser reads alike (CRLF lines, no preamble, only Content-Disposition and Content-Type part
  headers, `form-data; name="…"[; filename="…"]` without escapes or RFC 2231 forms, no transfer encoding);
- a body on a GET, HEAD, OPTIONS or DELETE to an audited route that is not a stream: the rack never reads it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import urllib.parse
from typing import Any

__all__ = ["Refused", "FilePart", "canonical_path", "parse_pairs", "parse_media_type", "parse_multipart",
           "combine", "shown", "shown_target", "Parsed", "FORM_TYPE", "MULTIPART_TYPE", "BODY_METHODS",
           "HTTP_HEADERS"]

FORM_TYPE = "application/x-www-form-urlencoded"
MULTIPART_TYPE = "multipart/form-data"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # the methods whose body Go's ParseForm reads
# The most a urlencoded body may hold: Go's ParseForm reads nothing of a larger one ("http: POST too large").
MAX_FORM_BODY = 10 << 20
# Headers forwarded to the rack on a recorded request, besides the route's declared option headers: what every
# client sends (the Convox CLI sends `Version: dev`). Authorization and Convox-Actor are the gateway's own.
FORWARDED_HEADERS = frozenset({"accept", "accept-encoding", "accept-language", "content-type", "user-agent",
                               "version", "convox-tid", "x-convox-tid", "origin", "expect"})
# Request headers every client sends: never mistaken for a param sent as a header.
HTTP_HEADERS = frozenset({"accept", "accept-encoding", "authorization", "connection", "content-length",
                          "content-type", "cookie", "date", "host", "origin", "te", "upgrade", "user-agent",
                          "version"})
MAX_PARTS = 1000

_HEX = re.compile(rb"%[0-9A-Fa-f]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = re.compile(rf"\s*;\s*({_TOKEN})=({_TOKEN}|\"[^\"\\\x00-\x1f\x7f]*\")")
_MEDIA = re.compile(rf"\s*({_TOKEN})(?:/({_TOKEN}))?")


class Refused(Exception):
    """A request the gateway will not forward: the HTTP status to answer and why, in words safe to record."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class FilePart:
    """A multipart file part, as it is recorded: never its content."""

    filename: str
    size: int
    sha256: str

    def record(self) -> dict[str, object]:
        return {"filename": self.filename, "size": self.size, "sha256": self.sha256}


@dataclasses.dataclass
class Parsed:
    """A request once parsed: what the gateway classifies, records and forwards."""

    path: str  # decoded: what the rack routes on and the catalog matches
    target: str  # the path and query exactly as sent: what is forwarded
    matched: tuple[Any, dict[str, str]] | None  # catalog.match()
    recorded: bool  # the catalog records it (else it is a read passed through untouched)
    params: dict[str, str] = dataclasses.field(default_factory=dict)
    files: dict[str, FilePart] = dataclasses.field(default_factory=dict)
    body: bytes | None = None  # the body as read, forwarded as it is
    stream: bool = False  # forward the client's body as a stream (raw uploads, reads passed through)
    body_record: FilePart | None = None  # a JSON or unknown body: its size and sha256


def shown_target(raw: bytes) -> str:
    """A refused request's path as it may be recorded: printable ASCII kept, every other byte as \\xNN."""
    text = "".join(chr(b) if 0x21 <= b <= 0x7e else f"\\x{b:02x}" for b in raw[:300])
    return text + ("…" if len(raw) > 300 else "")


def _unescape(raw: bytes, *, plus: bool, what: str) -> str:
    """Percent-decoding as Go's url.PathUnescape (plus=False) or QueryUnescape (plus=True), strict: a `%` not
    followed by two hex digits, or bytes that are not UTF-8, are refused."""
    if raw.count(b"%") != len(_HEX.findall(raw)):
        raise Refused(400, f"bad percent escape in the {what}")
    if plus:
        raw = raw.replace(b"+", b" ")
    try:
        return urllib.parse.unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, f"the {what} is not UTF-8 once decoded") from None


def canonical_path(raw: bytes | str) -> str:
    """The decoded path the rack routes on, from the path exactly as sent; refuses what the docstring lists."""
    data = raw.encode("latin-1") if isinstance(raw, str) else raw
    if not data.startswith(b"/"):
        raise Refused(400, "the path must start with /")
    if any(b < 0x21 or b > 0x7e for b in data):
        raise Refused(400, "the path holds a byte that is not printable ASCII")
    path = _unescape(data, plus=False, what="path")
    if _CONTROL.search(path):
        raise Refused(400, "the path holds a control character")
    if "?" in path or "#" in path:
        raise Refused(400, "the path holds an encoded ? or #, which no Convox route takes")
    if any(segment in (".", "..") for segment in path.split("/")):
        raise Refused(400, "the path has a dot segment (. or ..); send the path it stands for")
    return path


def parse_pairs(raw: bytes | str, what: str) -> list[tuple[str, str]]:
    """`a=1&b=2` as Go's url.ParseQuery reads it, strictly: empty pieces are skipped (as Go does); a piece with `;`
    or a bad escape, a non-UTF-8 name or value and a name with a control character are refused."""
    data = raw.encode("latin-1") if isinstance(raw, str) else raw
    pairs: list[tuple[str, str]] = []
    for piece in data.split(b"&"):
        if not piece:
            continue
        if b";" in piece:
            raise Refused(400, f"a {what} parameter holds ';', which the rack would drop")
        name, _, value = piece.partition(b"=")
        key = _unescape(name, plus=True, what=f"{what} parameter name")
        if _CONTROL.search(key):
            raise Refused(400, f"a {what} parameter name holds a control character")
        pairs.append((key, _unescape(value, plus=True, what=f"{what} parameter {shown(key)}")))
    return pairs


def parse_media_type(value: str) -> tuple[str, dict[str, str]]:
    """A Content-Type or Content-Disposition value, strictly: the lower-cased type and its parameters (names
    lower-cased, each at most once, values plain tokens or quoted strings without escapes)."""
    m = _MEDIA.match(value)
    if m is None:
        raise Refused(415, "the body's type cannot be read")
    kind = m.group(1).lower() + (f"/{m.group(2).lower()}" if m.group(2) else "")
    params: dict[str, str] = {}
    pos = m.end()
    while pos < len(value.rstrip()):
        p = _PARAM.match(value, pos)
        if p is None:
            raise Refused(415, f"the parameters of '{kind}' cannot be read unambiguously")
        name = p.group(1).lower()
        if name in params or name.endswith("*"):
            raise Refused(415, f"'{kind}' has a repeated or extended parameter {shown(name)}")
        params[name] = p.group(2)[1:-1] if p.group(2).startswith('"') else p.group(2)
        pos = p.end()
    return kind, params


def parse_multipart(body: bytes, boundary: str) -> tuple[list[tuple[str, str]], dict[str, FilePart]]:
    """The value pairs and file parts of a multipart/form-data body, in the plain form the module docstring names;
    anything else is refused with 415."""
    if not boundary or len(boundary) > 70:
        raise Refused(415, "multipart/form-data needs a boundary of 1 to 70 characters")
    delimiter = b"--" + boundary.encode("latin-1")
    if not body.startswith(delimiter + b"\r\n"):
        raise Refused(415, "the multipart body must start with its boundary (no preamble)")
    rest = body[len(delimiter) + 2:]
    separator = b"\r\n" + delimiter
    values: list[tuple[str, str]] = []
    files: dict[str, FilePart] = {}
    while True:
        end = rest.find(separator)
        if end < 0:
            raise Refused(415, "the multipart body has no closing boundary")
        _part(rest[:end], values, files)
        if len(values) + len(files) > MAX_PARTS:
            raise Refused(413, f"more than {MAX_PARTS} multipart parts")
        after = rest[end + len(separator):]
        if after.startswith(b"--"):
            if after[2:] not in (b"", b"\r\n"):
                raise Refused(415, "the multipart body goes on after its closing boundary")
            return values, files
        if not after.startswith(b"\r\n"):
            raise Refused(415, "a multipart boundary line carries something after the boundary")
        rest = after[2:]


def _part(part: bytes, values: list[tuple[str, str]], files: dict[str, FilePart]) -> None:
    head, sep, content = part.partition(b"\r\n\r\n")
    if not sep:
        raise Refused(415, "a multipart part has no header block")
    headers: dict[str, str] = {}
    for line in head.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if not colon or not re.fullmatch(rb"[A-Za-z0-9-]+", name) or any(b < 0x20 or b > 0x7e for b in value):
            raise Refused(415, "a multipart part header cannot be read unambiguously")
        key = name.decode().lower()
        if key not in ("content-disposition", "content-type") or key in headers:
            raise Refused(415, f"a multipart part has a repeated or unexpected header {shown(key)}")
        headers[key] = value.decode().strip()
    kind, params = parse_media_type(headers.get("content-disposition", ""))
    if kind != "form-data" or set(params) - {"name", "filename"} or not params.get("name"):
        raise Refused(415, "a multipart part is not `form-data; name=\"…\"[; filename=\"…\"]`")
    field = params["name"]
    if _CONTROL.search(field):
        raise Refused(400, "a multipart part name holds a control character")
    if "filename" in params:
        filename = params["filename"]
        if not filename or "/" in filename or "\\" in filename:
            raise Refused(415, "a multipart file part needs a plain, non-empty filename")
        if field in files:
            raise Refused(400, f"the file part {shown(field)} is repeated")
        files[field] = FilePart(filename, len(content), hashlib.sha256(content).hexdigest())
        return
    try:
        values.append((field, content.decode("utf-8")))
    except UnicodeDecodeError:
        raise Refused(400, f"the multipart value {shown(field)} is not UTF-8") from None


def combine(*sources: list[tuple[str, str]], files: dict[str, FilePart] | None = None,
            unique: bool = True) -> dict[str, str]:
    """The parameters of a request as one mapping. With `unique` (audited requests) a name given twice, in one
    source or across them (or both as a value and a file), is refused; otherwise the first value wins, as Go's
    FormValue takes it (pass the sources in r.Form's order)."""
    params: dict[str, str] = {}
    for pairs in sources:
        for name, value in pairs:
            if name in params or (files and name in files):
                if unique:
                    raise Refused(400, f"the parameter {shown(name)} is given more than once")
                continue
            params[name] = value
    return params


def shown(name: str) -> str:
    """A name as it may appear in a refusal (which is recorded): quoted, clipped, control characters escaped."""
    clipped = name if len(name) <= 60 else name[:60] + "…"
    return "'" + _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", clipped) + "'"
