"""Masking a recording's stream (auditkit/capture/masking.py): which values are masked, the forms they are matched
in, and the invariants, checked with hypothesis over random secrets, random splits into frames, UTF-8 and ANSI
colour codes around and inside the output:

- no secret (nor any form the rule names) survives masking, whatever the frame boundaries;
- masking a stream frame by frame gives exactly what masking it whole gives (a naive leftmost-longest model);
- text that holds no secret comes out byte for byte as it went in, and a mask takes the display width of what it
  replaces;
- nothing is held back longer than the longest form.
"""

from __future__ import annotations

import base64
import string

import pytest
import wcwidth
from hypothesis import HealthCheck, given, settings, strategies as st

from auditkit.capture import masking
from auditkit.capture.masking import Masker

ANSI = ["\x1b[0m", "\x1b[01;32m", "\x1b[38;5;208m", "\x1b[1;34m", "\x1b[K", "\r\n", "\t", "\x1b[2J\x1b[H"]
PLAIN = st.sampled_from(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=_-.:@%") +
                        ["é", "ü", "日", "本", "✓", "🚀", "ß", "\u0301"])
SECRET = st.text(PLAIN, min_size=8, max_size=40).filter(lambda s: sum(not c.isspace() for c in s) >= 4)
NOISE = st.lists(st.one_of(st.sampled_from(ANSI), st.text(PLAIN, max_size=12), st.sampled_from(" $#>")),
                 max_size=12).map("".join)


def naive_mask(masker: Masker, text: str) -> str:
    """Leftmost-longest replacement of the masker's forms, one position at a time (the model)."""
    forms = masker._forms
    out, i = [], 0
    while i < len(text):
        found = [f for f in forms if text.startswith(f, i)]
        if found:
            form = max(found, key=len)
            out.append(masker.mask_char * masking.display_width(form))
            i += len(form)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def stream(masker: Masker, frames: list[str]) -> str:
    pieces = []
    for n, frame in enumerate(frames):
        pieces += masker.feed(frame, float(n))
    pieces += masker.flush()
    times = [t for t, _ in pieces]
    assert times == sorted(times)
    return "".join(text for _, text in pieces)


def split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in zip(points, points[1:])]


@st.composite
def sessions(draw):
    secrets = draw(st.lists(SECRET, min_size=1, max_size=6, unique=True))
    parts = []
    for _ in range(draw(st.integers(1, 8))):
        parts.append(draw(NOISE))
        if draw(st.booleans()):
            secret = draw(st.sampled_from(secrets))
            if draw(st.booleans()):  # colour codes inside the output, around the secret
                secret = draw(st.sampled_from(ANSI[:4])) + secret + "\x1b[0m"
            parts.append(secret)
    text = "".join(parts)
    cuts = draw(st.lists(st.integers(0, 10_000), max_size=20))
    return secrets, text, split(text, cuts)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sessions())
def test_no_secret_survives_any_split_and_streaming_equals_masking_whole(case):
    secrets, text, frames = case
    masker = Masker([(f"KEY_{i}", s) for i, s in enumerate(secrets)])
    out = stream(masker, frames)
    assert out == naive_mask(masker, text) == Masker([(f"KEY_{i}", s) for i, s in enumerate(secrets)]).mask(text)
    for secret in secrets:
        for form in masking.forms(secret):
            assert form not in out
    # Width: every mask is as wide as what it replaced, so the whole is as wide as before (printable text only).
    printable = lambda s: "".join(c for c in s if c.isprintable())  # noqa: E731
    assert wcwidth.wcswidth(printable(out)) == wcwidth.wcswidth(printable(text))


@settings(max_examples=200, deadline=None)
@given(st.lists(SECRET, min_size=1, max_size=5, unique=True), st.lists(st.lists(st.sampled_from(
    list(" $#>[]();,!?|~") + ["\x1b[0m", "\x1b[32m", "\r\n", "├", "─", "→"]), max_size=30).map("".join),
    min_size=1, max_size=10))
def test_output_without_a_secret_is_unchanged_byte_for_byte(secrets, frames):
    # The noise alphabet shares no character with the secrets', so it can hold none of them.
    masker = Masker([("K", s) for s in secrets])
    assert stream(masker, frames) == "".join(frames)
    assert masker.counts == {}


@settings(max_examples=200, deadline=None)
@given(sessions())
def test_nothing_is_held_longer_than_the_longest_form(case):
    secrets, _, frames = case
    masker = Masker([("K", s) for s in secrets])
    for frame in frames:
        masker.feed(frame)
        assert len(masker._held) < masker.longest


def test_the_rule_masks_long_values_and_short_secret_ones_only():
    env = {"RAILS_ENV": "production", "PORT": "3000", "LOG_LEVEL": "debug", "API_TOKEN": "t0k3",
           "DB_PASSWORD": "abc", "BLANKS": "        ", "COLOUR": "red"}
    assert masking.masked_values(env) == {"RAILS_ENV": "production", "API_TOKEN": "t0k3", "BLANKS": "        "}
    # A value that is mostly blank masks nothing (it would mask every run of spaces).
    assert Masker([("BLANKS", "        ")]).mask("a        b") == "a        b"


def test_url_passwords_are_masked_as_written_decoded_encoded_and_in_base64():
    url = "postgres://app:p%40ss%2Fw0rd@db.internal:5432/app"
    masker = Masker([("DATABASE_URL", url)])
    shown = [url, "p@ss/w0rd", "p%40ss%2Fw0rd", base64.b64encode(b"p@ss/w0rd").decode(),
             base64.b64encode(b"app:p@ss/w0rd").decode(), "Authorization: Basic " + base64.b64encode(
                 b"app:p@ss/w0rd").decode()]
    for text in shown:
        out = masker.mask(f"[{text}]")
        assert "p@ss" not in out and "p%40ss" not in out and "cEBzc" not in out and "YXBwOnBAc3" not in out, out
    # Inside a longer base64 text, aligned on a 3-byte group: the whole groups are masked.
    blob = base64.b64encode(b"xyz" + b"p@ss/w0rd" + b"tail").decode()
    assert base64.b64encode(b"p@ss/w0rd").decode()[:12] not in masker.mask(blob)


def test_masks_keep_the_display_width_and_use_a_character_no_secret_has():
    masker = Masker([("WIDE", "日本語のパスワード"), ("STARS", "pa**word-xyz")])
    assert masker.mask_char not in "日本語のパスワードpa**word-xyz"
    out = masker.mask("» 日本語のパスワード «")
    assert wcwidth.wcswidth(out) == wcwidth.wcswidth("» 日本語のパスワード «")
    assert out == "» " + masker.mask_char * 18 + " «"


def test_multi_line_values_are_masked_line_by_line_whatever_the_line_ending():
    key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEF\nAASCBKcwggSjAgEAAoIBAQC7\n-----END KEY-----"
    masker = Masker([("PRIVATE_KEY", key)])
    for shown in (key, key.replace("\n", "\r\n")):
        out = masker.mask(shown)
        assert "MIIEvQ" not in out and "AASCBK" not in out and out.count("\n") == shown.count("\n")


def test_held_text_keeps_the_time_it_arrived():
    masker = Masker([("K", "supersecret")])
    assert masker.feed("ok sup", 1.0) == [(1.0, "ok ")]
    assert masker.feed("ers", 2.0) == []  # "supers" may yet be the secret
    assert masker.feed("owl", 3.0) == [(1.0, "supers"), (3.0, "owl")]
    assert masker.feed("supersecret!", 4.0) == [(4.0, "*" * 11 + "!")]
    assert masker.counts == {"K": 1}


@pytest.mark.parametrize("alphabet", [string.digits, "*#•x░"])
def test_a_secret_made_of_mask_characters_is_still_masked(alphabet):
    secret = (alphabet * 4)[:12]
    masker = Masker([("K", secret)])
    out = masker.mask("<" + secret + ">")
    assert secret not in out and len(out) == 14


def test_the_event_names_plain_keys_only_and_counts_the_others_unnamed():
    from auditkit.capture import sessions
    from auditkit.model.asciicast import Recorder

    recorder = Recorder(width=80, height=24)
    pairs = [("DATABASE_URL", "postgres://u:pw-123456@h/db"), ("\x1b[31mEVIL<b>", "evil-value-123")]
    stream = sessions.MaskedStream(recorder, recorder.output, pairs, [0.0])
    stream("postgres://u:pw-123456@h/db and evil-value-123 and evil-value-123\r\n")
    recording = sessions.Recording(None, "gw", lambda: "", None, None, "", "r", {}, {}, recorder,
                                   masking.Patterns(pairs), (stream,))
    details = sessions.masking_details(recording)
    assert details == {"recording_masked": True, "masking_rule": masking.RULE_VERSION,
                       "masked_keys": {"(unnamed)": 2, "DATABASE_URL": 1}}
