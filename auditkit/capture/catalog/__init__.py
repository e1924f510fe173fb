"""The Convox route catalog: which requests to a rack are recorded, as what, and what of them may be kept.

This package is the catalog's public face (`from auditkit.capture import catalog; catalog.classify(...)`); it owns,
one module each:
- routes: the one table, ROUTES, of Route rows (v3, modern v2 and classic v2 routes: category, action, description
  template, target, app, redaction rules), and the vocabularies a row is checked against;
- match: which route a request's method and decoded path reach;
- redact: what of a request may be recorded (by allowlist, secret-looking names, env and map values as keys plus
  HMACs, URL userinfo masked), and the values kept out of the record;
- classify: the event a request becomes (classify) and, once the rack has answered, its finished form
  (describe_outcome), rendered from the templates;
- docs: docs/routes.md rendered from the table.

Reading the request itself (path, pairs, bodies) is capture/canonical.py's, done once; the wire's encodings (map
fields, env text) are capture/wire.py's.
"""

from auditkit.capture.catalog.classify import Classification, classify, clean_text, describe_outcome
from auditkit.capture.catalog.docs import render_markdown
from auditkit.capture.catalog.match import match
from auditkit.capture.catalog.redact import (
    REDACTED, REMOVED_HEADERS, SECRET_SUFFIXES, SECRET_WORDS, clear_params, env_changes, is_secret_name,
    mask_userinfo, plain_name, redact, secret_values)
from auditkit.capture.catalog.routes import ENV_SPECIALS, GREEDY_VARS, READ_METHODS, ROUTES, SPECIALS, Route

__all__ = [
    "Route", "ROUTES", "SPECIALS", "ENV_SPECIALS", "READ_METHODS", "GREEDY_VARS", "Classification", "REDACTED",
    "REMOVED_HEADERS", "SECRET_WORDS", "SECRET_SUFFIXES", "match", "classify", "describe_outcome", "redact",
    "secret_values", "is_secret_name", "clear_params", "mask_userinfo", "plain_name", "clean_text", "env_changes",
    "render_markdown",
]
