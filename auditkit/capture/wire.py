"""The Convox wire details, one copy for the gateway, the simulated rack and client, and the tests.

It owns: the Convox version the simulated CLI and rack report, the exec exit-code marker (how a rack ends a
command's output on a websocket), the map codec (map params such as `parameters` or `Environment` are `k1=v1&k2=v2`
in one form field, URL-encoded once more by the form), release environment text (`KEY=VAL` lines) and Basic
credentials. Standard library only: convox_sim imports this module and nothing else of auditkit.
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from typing import Mapping

__all__ = ["CONVOX_VERSION", "USER_AGENT", "EXIT_MARKER", "exit_frame", "split_exit", "encode_map", "decode_map",
           "parse_env", "format_env", "parse_basic", "basic_authorization"]

CONVOX_VERSION = "3.24.9"  # the CLI and rack version the simulated client and rack report
USER_AGENT = f"convox.go/{CONVOX_VERSION}"  # the SDK's User-Agent

# --- exec exit code ------------------------------------------------------------------------------------------------

EXIT_MARKER = "F1E49A85-0AD7-4AEF-A618-C249C6E6568D:"  # statusCodePrefix of the rack and the SDK
_EXIT_RE = re.compile(re.escape(EXIT_MARKER) + r"(-?\d+)\n?$")


def exit_frame(code: int) -> str:
    """The TEXT frame a rack sends when a command ends: the marker, the exit code and a newline."""
    return f"{EXIT_MARKER}{code}\n"


def split_exit(text: str) -> tuple[str, int] | None:
    """(the output before the marker, the exit code) of a TEXT frame that ends with the exit marker, else None."""
    found = _EXIT_RE.search(text)
    if found is None:
        return None
    return text[: found.start()], int(found.group(1))


# --- map params ----------------------------------------------------------------------------------------------------

def encode_map(values: Mapping[str, str]) -> str:
    """A map param as the SDK (stdsdk) sends it: `k1=v1&k2=v2`, sorted by key, URL-encoded (the form layer encodes
    the field once more)."""
    return urllib.parse.urlencode(sorted(values.items()))


def decode_map(text: str | None) -> dict[str, str]:
    """A map param after the form's own decoding (`k1=v1&k2=v2`, URL-encoded once more) as the rack decodes it; the
    first value of a key wins, blank values are kept; None and "" are the empty map."""
    result: dict[str, str] = {}
    if text:
        for key, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
            result.setdefault(key, value)
    return result


# --- release environment -------------------------------------------------------------------------------------------

def parse_env(text: str | bytes | None) -> dict[str, str]:
    """`KEY=VAL` lines as the rack reads them (structs.Environment.Load): lines end at `\\n` (a `\\r` before it is
    dropped), each is split at its first `=`, the key is trimmed, the value kept as is (it may hold `=`); lines
    without `=` or with an empty key are skipped. There is no comment syntax (`#K=V` sets the key `#K`); a later
    line of a key wins."""
    if text is None:
        return {}
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    env: dict[str, str] = {}
    for line in text.split("\n"):
        if line.endswith("\r"):
            line = line[:-1]
        key, sep, value = line.partition("=")
        key = key.strip()
        if sep and key:
            env[key] = value
    return env


def format_env(values: Mapping[str, str]) -> str:
    """An environment as `KEY=VAL` lines sorted by key, joined by `\\n` without a final newline (as the CLI sends
    it and the rack keeps it)."""
    return "\n".join(f"{key}={values[key]}" for key in sorted(values))


# --- credentials ---------------------------------------------------------------------------------------------------

def parse_basic(header: str | None, *, errors: str = "strict") -> tuple[str, str] | None:
    """(username, password) of a `Basic` Authorization header as sent, split at the first colon, or None: no header,
    another scheme, bad base64 (or non-ASCII text in it), no colon, or — with errors="strict" — bytes that are not
    UTF-8 (errors="replace" reads them as U+FFFD, as a Go server comparing bytes would not refuse them)."""
    scheme, _, blob = (header or "").partition(" ")
    if scheme.lower() != "basic" or not blob.strip():
        return None
    try:
        # ValueError too: b64decode refuses a str holding non-ASCII characters with a plain ValueError.
        decoded = base64.b64decode(blob.strip(), validate=True).decode("utf-8", errors)
    except (binascii.Error, ValueError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep:
        return None
    return username, password


def basic_authorization(username: str, password: str) -> str:
    """The Authorization header value for Basic credentials, as given (UTF-8)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
