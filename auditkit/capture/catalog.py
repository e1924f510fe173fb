"""The Convox route catalog: which requests to a rack are recorded, as what, and what of them may be kept.

This module owns the one table, ROUTES, that maps a Rack API request (v3, modern v2 and classic v2; the spec is
reference/convox-rack-api.md) to the event the gateway records: category, action verb, a description template, the
target, the app, and the redaction rules. It also owns reading the values inside params (the doubly-encoded map
fields, `KEY=VAL` environment text) and the redaction itself, so no other part of auditkit decides what is a secret;
reading the request itself (path, pairs, bodies) is gateway/canonical.py's, done once. docs/routes.md is generated from ROUTES (scripts/gen_routes_doc.py; a test keeps it current).

What is recorded:
- A request that matches an audited route. Most are writes; the audited reads are build-log, exec, shell, proxy and
  console websockets (GETs on the wire), the resource data export, the build .tgz export and file downloads.
- A write (any method but GET, HEAD and OPTIONS) that matches no route: category Other, action "deleted" for DELETE
  and "updated" for every other method (no verb says "unknown"), description "Unknown write METHOD /path", details
  hold the method, the path and the *names* of the params, never their values. Never dropped.
- A websocket upgrade that matches no route: Other / "accessed", "Unknown websocket /path" (an interactive channel
  is never passed through silently).
Not recorded (classify() returns None): reads that match no route (`GET /apps`, `GET /auth`, the throw-away
`GET /machines` and `GET /racks` the v3 SDK sends before each websocket, …) and routes listed with audited=False
(log streams, docker pulls through `/v2/`).

Templates use `{name}` placeholders, filled from (in this order) path vars, computed values (`{keys}`,
`{settings}`, `{method}`, …), the params and declared headers as they are recorded (so a secret can only ever show
as "[redacted]"), and, once the rack has answered, fields of the response JSON (`{id}`, `{domain}`) or
the `Release-Id` response header. `[ … ]` is an optional part, left out while one of its placeholders has no value;
a placeholder outside one renders as "?" until it has a value.

Recording is by allowlist: a route records in clear only the params its templates name plus its `clear` options
(clear_params), never a secret-looking name; every other param — registry passwords, config values, certificate
keys, names the route does not know, bracket or dotted map forms — is recorded by name with an HMAC of its value.
URL userinfo is masked in every recorded value. Authorization, `Private-Key` and cookies are never recorded. An env
change is
recorded as the keys added, changed and removed against the previous env plus an HMAC (events.value_hmac) of each
new value; map fields (`parameters`, `Environment`, …) are recorded as their keys plus an HMAC of each value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import urllib.parse
from typing import Any, Iterable, Mapping

from auditkit.capture import wire
from auditkit.model.events import ACTIONS, CATEGORIES, value_hmac

__all__ = [
    "Route", "ROUTES", "Classification", "REDACTED",
    "match", "classify", "describe_outcome", "redact", "secret_values", "is_secret_name",
    "clear_params", "mask_userinfo", "clean_text", "env_changes", "render_markdown",
]

REDACTED = "[redacted]"
VERSIONS: tuple[str, ...] = ("v3", "v2", "classic")
METHODS: tuple[str, ...] = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "SOCKET", "ANY")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Path vars that the rack's router declares as `{name:.*}`: they may hold slashes (`tmp/<sha>.tgz`, `org/blobs/…`).
GREEDY_VARS = frozenset({"key", "path", "server"})

# Headers that are never recorded, not even as "[redacted]".
REMOVED_HEADERS = frozenset({"authorization", "proxy-authorization", "private-key", "cookie", "set-cookie"})

# A name is secret-looking when one of its words (split on - _ . space and camelCase) is one of these, or when,
# lower-cased and without separators, it ends with one of SECRET_SUFFIXES (dbpassword, githubtoken, …).
SECRET_WORDS = frozenset({
    "password", "passwd", "pass", "pwd", "passphrase", "secret", "secrets", "token", "tokens", "key", "apikey",
    "privatekey", "private", "credential", "credentials", "auth", "authorization", "cookie", "session",
    "signature", "jwt", "bearer",
})
SECRET_SUFFIXES: tuple[str, ...] = (
    "password", "passwd", "passphrase", "secret", "token", "apikey", "privatekey", "credential", "credentials",
)

# Special handling a route can ask for (Route.special).
SPECIALS: dict[str, str] = {
    "env": "ReleaseCreate: only `env` → Environment/updated with the key-level change; with `build` → "
           "Releases/created (env, if sent, summarised under details.env)",
    "env_body": "classic: the raw body is the whole env (`KEY=VAL` lines); the release id is the Release-Id header",
    "env_unset": "classic: removes the one key named in the path",
    "run": "one-off process: the response `id` (classic `pid`) is the pid; details.pid and link let the gateway "
           "join the exec websocket that carries the real command of an attached `convox run`",
    "app_update": "lock=true → locked \"Locked app {name}\"; lock=false → unlocked \"Unlocked app {name}\"; "
                  "parameters → updated",
    "system_update": "parameters → \"Updated rack parameters {parameters}\"; version → \"Updated rack to version "
                     "{version}\"; count/type → scaled \"Scaled rack to {count}×{type}\"",
    "scale": "{settings} = the count/cpu/memory/gpu/min/max that were sent, as k=v",
    "shell": "{shell} = the Command header, or \"interactive\"",
    "registry_proxy": "DELETE → deleted \"Deleted {path} from rack registry\"",
}
ENV_SPECIALS = frozenset({"env", "env_body", "env_unset"})

# Params that an env route summarises instead of recording.
_ENV_PARAM = "env"
_CLIP = 500  # longest param value kept in details
_CLIP_TEXT = 120  # longest value shown in a description
_KEYS_SHOWN = 10  # keys listed in a description before "+N more"
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-\[\]]{1,80}$")
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z0-9_.\-]+)\}")
_OPTIONAL_RE = re.compile(r"\[([^\[\]]*)\]")


@dataclasses.dataclass(frozen=True)
class Route:
    """One row of the catalog. Templates follow the module docstring; names are as on the wire."""

    method: str  # GET POST PUT DELETE …, SOCKET for a websocket upgrade, ANY for every method
    path: str  # the pattern, `{var}` placeholders as in the reference
    sdk: str  # the handler / SDK method name
    versions: tuple[str, ...]  # subset of VERSIONS
    category: str | None  # None only when audited=False
    action: str | None
    description: str
    target: str | None = None  # template of the event's target
    app: str | None = None  # the placeholder (path var or param) that names the app
    audited: bool = True  # False: matched but not recorded (a read listed for the record)
    session: bool = False  # an interactive terminal session to record as asciicast
    raw_body: bool = False  # the body must be streamed, never parsed or buffered
    json_body: bool = False  # the body is JSON (not a form): recorded by size and sha256, never in clear
    clear: tuple[str, ...] = ()  # params recorded in clear beyond those the templates name (see clear_params)
    secrets: tuple[str, ...] = ()  # params / headers recorded as "[redacted]" (beyond the generic rule)
    maps: tuple[str, ...] = ()  # doubly-encoded map params / headers: keys + HMAC of each value
    digests: tuple[str, ...] = ()  # public but bulky params (certificates): recorded as sha256
    headers: tuple[str, ...] = ()  # option headers worth recording (others never are)
    fields: tuple[str, ...] = ()  # with inline_params: the params that are not parameters
    inline_params: bool = False  # every param outside `fields` is an app/resource parameter: keys + HMAC
    response: tuple[str, ...] = ()  # placeholders filled from the rack's answer only (never from the request)
    special: str | None = None  # a key of SPECIALS
    note: str = ""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"{self.path}: method {self.method!r} is not one of {METHODS}")
        if not self.versions or set(self.versions) - set(VERSIONS):
            raise ValueError(f"{self.method} {self.path}: versions {self.versions!r} not within {VERSIONS}")
        if self.audited:
            if self.category not in CATEGORIES:
                raise ValueError(f"{self.method} {self.path}: category {self.category!r} is not in CATEGORIES")
            if self.action not in ACTIONS:
                raise ValueError(f"{self.method} {self.path}: action {self.action!r} is not in ACTIONS")
        if self.special is not None and self.special not in SPECIALS:
            raise ValueError(f"{self.method} {self.path}: unknown special {self.special!r}")

    @property
    def vars(self) -> tuple[str, ...]:
        """The path vars, in order."""
        return tuple(_PLACEHOLDER_RE.findall(self.path))


def _r(method: str, path: str, sdk: str, versions: str, category: str | None, action: str | None,
       description: str, **options: Any) -> Route:
    return Route(method, path, sdk, tuple(versions.split()), category, action, description, **options)


_RUN_HEADERS = ("Command", "Cpu", "Cpu-Limit", "Memory", "Memory-Limit", "Gpu", "Gpu-Vendor", "Release", "Image",
                "Environment", "Volumes", "Use-Service-Volume", "Privileged", "Node-Labels", "System-Critical",
                "Height", "Width")
_EXEC_HEADERS = ("Command", "Entrypoint", "Tty", "Height", "Width", "Disable-Stdin")

ROUTES: tuple[Route, ...] = (
    # --- Applications ---------------------------------------------------------------------------------------
    _r("POST", "/apps", "AppCreate", "v3 v2 classic", "Applications", "created", "Created app {name}",
       target="{name}", app="name", clear=("generation", "timeout")),
    _r("DELETE", "/apps/{name}", "AppDelete", "v3 v2 classic", "Applications", "deleted", "Deleted app {name}",
       target="{name}", app="name"),
    _r("PUT", "/apps/{name}", "AppUpdate", "v3 v2 classic", "Applications", "updated",
       "Updated parameters {parameters} of app {name}", target="{name}", app="name", maps=("parameters",),
       special="app_update", clear=("lock", "sleep")),
    _r("POST", "/apps/{name}/cancel", "AppCancel", "v3 v2 classic", "Applications", "cancelled",
       "Cancelled deployment of app {name}", target="{name}", app="name"),
    _r("POST", "/apps/{app}/parameters", "AppParametersSet", "classic", "Applications", "updated",
       "Updated parameters {parameters} of app {app}", target="{app}", app="app", inline_params=True,
       note="classic `apps params set`, and `rack params set` with the rack's name as app; every form field is "
            "a parameter"),
    _r("POST", "/apps/{app}/budget", "AppBudgetSet", "v3", "Applications", "updated",
       "Set budget of app {app}[ (cap ${monthly-cap-usd})]", target="{app}", app="app",
       clear=("alert-threshold-percent", "at-cap-action", "pricing-adjustment")),
    _r("DELETE", "/apps/{app}/budget", "AppBudgetClear", "v3", "Applications", "removed",
       "Cleared budget of app {app}", target="{app}", app="app"),
    _r("POST", "/apps/{app}/budget/reset", "AppBudgetReset", "v3", "Applications", "reset",
       "Reset budget breaker of app {app}", target="{app}", app="app"),
    _r("POST", "/apps/{app}/budget/dismiss-recovery", "AppBudgetDismissRecovery", "v3", "Applications",
       "dismissed", "Dismissed budget recovery banner of app {app}", target="{app}", app="app"),
    _r("POST", "/apps/{app}/budget/simulate-shutdown", "AppBudgetSimulate", "v3", "Applications", "simulated",
       "Simulated budget shutdown of app {app}", target="{app}", app="app", note="a dry run: no change"),
    # --- Builds ---------------------------------------------------------------------------------------------
    _r("POST", "/apps/{app}/objects/{key}", "ObjectStore", "v3 v2 classic", "Builds", "uploaded",
       "Uploaded source object {key} for app {app}", target="{key}", app="app", raw_body=True,
       headers=("Public",)),
    _r("DELETE", "/apps/{app}/objects/{key}", "ObjectDelete", "v3 v2", "Builds", "deleted",
       "Deleted object {key} of app {app}", target="{key}", app="app"),
    _r("POST", "/apps/{app}/builds", "BuildCreate", "v3 v2 classic", "Builds", "created",
       "Created build[ {id}] of app {app}[ ({description})]", target="{id}", app="app",
       secrets=("build-args",), response=("id",),
       clear=("url", "development", "external", "no-cache", "wildcard-domain", "manifest", "git-sha"),
       note="classic racks get a multipart body with the source: stream it, only query params are read"),
    _r("POST", "/apps/{app}/builds/import", "BuildImport", "v3 v2 classic", "Builds", "imported",
       "Imported build[ {id}] into app {app}", target="{id}", app="app", raw_body=True, response=("id",)),
    _r("POST", "/apps/{app}/builds/{id}/image", "BuildImportImage", "v3", "Builds", "imported",
       "Imported image {image} into build {id} of app {app}", target="{id}", app="app",
       secrets=("src-creds-pass",), clear=("src-creds-user",)),
    _r("PUT", "/apps/{app}/builds/{id}", "BuildUpdate", "v3 v2 classic", "Builds", "updated",
       "Build {id} of app {app} updated by rack", target="{id}", app="app", secrets=("manifest",),
       clear=("release", "status", "started", "ended", "reason", "entrypoint", "logs", "description"),
       note="sent by the build pod inside the rack; the manifest may carry environment defaults"),
    _r("POST", "/apps/{app}/builds/{id}/cancel", "BuildCancel", "v3", "Builds", "cancelled",
       "Cancelled build {id} of app {app}", target="{id}", app="app",
       note="in the rack's route table after the reference was written"),
    _r("SOCKET", "/apps/{app}/builds/{id}/logs", "BuildLogs", "v3 v2 classic", "Builds", "accessed",
       "Accessed logs of build {id} of app {app}", target="{id}", app="app",
       note="audited read; `build` and `deploy` open it themselves"),
    _r("GET", "/apps/{app}/builds/{id}.tgz", "BuildExport", "v3 v2 classic", "Builds", "exported",
       "Exported build {id} of app {app}", target="{id}", app="app", note="audited read (apps export)"),
    # --- Releases and environment ---------------------------------------------------------------------------
    _r("POST", "/apps/{app}/releases", "ReleaseCreate", "v3 v2 classic", "Releases", "created",
       "Created release[ {id}] of app {app}[ from build {build}]", target="{id}", app="app", special="env",
       response=("id",), clear=("description", "parent-release"),
       note="only `env` → Environment / updated \"Updated environment of app {app} ({keys})[ as release {id}]\""),
    _r("POST", "/apps/{app}/releases/{id}/promote", "ReleasePromote", "v3 v2 classic", "Releases", "promoted",
       "Promoted release {id} of app {app}", target="{id}", app="app",
       clear=("development", "force", "idle", "min", "max", "timeout")),
    _r("POST", "/apps/{app}/environment", "EnvironmentSet", "classic", "Environment", "updated",
       "Updated environment of app {app} ({keys})[ as release {id}]", target="{id}", app="app",
       special="env_body", response=("id",)),
    _r("DELETE", "/apps/{app}/environment/{name}", "EnvironmentUnset", "classic", "Environment", "updated",
       "Updated environment of app {app} ({name})[ as release {id}]", target="{id}", app="app",
       special="env_unset", response=("id",)),
    _r("PUT", "/apps/{app}/configs/{name}", "AppConfigSet", "v3", "Environment", "updated",
       "Updated config {name} of app {app}", target="{name}", app="app", secrets=("value",),
       note="config set; env mask set/unset (name cli-env-mask)"),
    # --- Processes ------------------------------------------------------------------------------------------
    _r("PUT", "/apps/{app}/services/{name}", "ServiceUpdate", "v3 v2", "Processes", "scaled",
       "Scaled service {name} of app {app}[ ({settings})]", target="{name}", app="app", special="scale",
       clear=("count", "cpu", "memory", "gpu", "gpu-vendor", "min", "max")),
    _r("POST", "/apps/{app}/formation/{process}", "FormationUpdate", "classic", "Processes", "scaled",
       "Scaled service {process} of app {app}[ ({settings})]", target="{process}", app="app", special="scale",
       clear=("count", "cpu", "memory")),
    _r("POST", "/apps/{app}/services/{name}/restart", "ServiceRestart", "v3 v2", "Processes", "restarted",
       "Restarted service {name} of app {app}", target="{name}", app="app"),
    _r("POST", "/apps/{app}/services/{service}/scale-override", "ServiceScaleOverrideSet", "v3", "Processes",
       "updated", "Set scale override of service {service} in app {app}", target="{service}", app="app",
       clear=("count",)),
    _r("POST", "/apps/{app}/services/{service}/triggers/enable", "ServiceTriggersEnable", "v3", "Processes",
       "enabled", "Enabled autoscale triggers on service {service} of app {app}", target="{service}", app="app"),
    _r("POST", "/apps/{app}/services/{service}/triggers/disable", "ServiceTriggersDisable", "v3", "Processes",
       "disabled", "Disabled autoscale triggers on service {service} of app {app}", target="{service}",
       app="app"),
    _r("POST", "/apps/{app}/services/{service}/triggers/threshold", "ServiceTriggersThresholdSet", "v3",
       "Processes", "updated", "Set autoscale threshold of service {service} of app {app}", target="{service}",
       app="app"),
    _r("POST", "/apps/{app}/services/{service}/processes", "ProcessRun", "v3 v2", "Processes", "started",
       "Started one-off process of {service} in app {app}[: `{Command}`]", target="{pid}", app="app",
       headers=_RUN_HEADERS, maps=("Environment", "Volumes"), special="run", response=("pid",),
       note="attached `convox run` starts `sleep 3600` here; the real command arrives on the exec websocket"),
    _r("SOCKET", "/apps/{app}/processes/{pid}/exec", "ProcessExec", "v3 v2 classic", "Processes", "executed",
       "Executed `{Command}` in process {pid} of app {app}[ (exit {code})]", target="{pid}", app="app",
       session=True, headers=_EXEC_HEADERS),
    _r("DELETE", "/apps/{app}/processes/{pid}", "ProcessStop", "v3 v2 classic", "Processes", "stopped",
       "Stopped process {pid} of app {app}", target="{pid}", app="app"),
    _r("POST", "/apps/{app}/processes/{pid}/files", "FilesUpload", "v3 v2 classic", "Processes", "uploaded",
       "Copied files into process {pid} of app {app}", target="{pid}", app="app", raw_body=True,
       clear=("tar-extra",)),
    _r("DELETE", "/apps/{app}/processes/{pid}/files", "FilesDelete", "v3 v2 classic", "Processes", "deleted",
       "Deleted files[ {files}] in process {pid} of app {app}", target="{pid}", app="app"),
    _r("GET", "/apps/{app}/processes/{pid}/files", "FilesDownload", "v3", "Processes", "downloaded",
       "Downloaded {file} from process {pid} of app {app}", target="{pid}", app="app",
       note="audited read (`convox cp pid:path local`)"),
    _r("POST", "/apps/{app}/processes/{process}/run", "ProcessRunDetached", "classic", "Processes", "started",
       "Started one-off process of {process} in app {app}[: `{command}`]", target="{pid}", app="app",
       headers=("Command", "Release"), special="run", response=("pid",), clear=("release",)),
    _r("SOCKET", "/apps/{app}/processes/{process}/run", "ProcessRunAttached", "classic", "Processes", "executed",
       "Ran `{Command}` in a one-off {process} process of app {app}[ (exit {code})]", target="{process}",
       app="app", session=True, headers=_RUN_HEADERS + ("Timeout",), maps=("Environment", "Volumes")),
    # --- Security -------------------------------------------------------------------------------------------
    _r("PUT", "/apps/{app}/ssl/{service}/{port}", "CertificateApply", "v3 v2 classic", "Security", "updated",
       "Applied certificate {id} to {service}:{port} of app {app}", target="{id}", app="app"),
    _r("POST", "/certificates", "CertificateCreate", "v3 v2 classic", "Security", "created",
       "Imported SSL certificate[ {id}][ ({domain})]", target="{id}", secrets=("key", "private"),
       digests=("pub", "chain", "public"), response=("id", "domain"), note="classic racks get `public` / `private`"),
    _r("POST", "/certificates/generate", "CertificateGenerate", "v3 v2 classic", "Security", "created",
       "Generated certificate[ {id}] for {domains}", target="{id}", response=("id",),
       clear=("duration", "issuer")),
    _r("DELETE", "/certificates/{id}", "CertificateDelete", "v3 v2 classic", "Security", "deleted",
       "Deleted certificate {id}", target="{id}"),
    _r("POST", "/certificates/{id}/renew", "CertificateRenew", "v3", "Security", "renewed",
       "Renewed certificate(s) of {id}", target="{id}", app="id", note="the CLI puts the app name in {id}"),
    _r("PUT", "/letsencrypt/config", "LetsEncryptConfigApply", "v3", "Security", "updated",
       "Updated Let's Encrypt DNS solver config", json_body=True,
       note="JSON body, recorded by size and sha256"),
    _r("POST", "/instances/keyroll", "InstanceKeyroll", "v3 v2 classic", "Security", "rotated",
       "Rotated instance SSH key", note="v3 answers with the new private key, which is never read"),
    _r("PUT", "/system/jwt/rotate", "SystemJwtSignKeyRotate", "v3 v2", "Security", "rotated",
       "Rotated rack API signing key"),
    _r("POST", "/system/jwt/token", "SystemJwtToken", "v3 v2", "Security", "issued",
       "Issued {role} rack access token[ valid {durationInHour}h]",
       note="`rack access`; the token in the response is never read"),
    # --- Infrastructure -------------------------------------------------------------------------------------
    _r("DELETE", "/instances/{id}", "InstanceTerminate", "v3 v2 classic", "Infrastructure", "terminated",
       "Terminated instance {id}", target="{id}"),
    _r("SOCKET", "/instances/{id}/shell", "InstanceShell", "v3 v2", "Infrastructure", "accessed",
       "Opened SSH session on instance {id} ({shell})", target="{id}", session=True,
       headers=("Command", "Height", "Width", "Private-Key"), secrets=("Private-Key",), special="shell"),
    _r("SOCKET", "/instances/{id}/ssh", "InstanceShellClassic", "classic", "Infrastructure", "accessed",
       "Opened SSH session on instance {id} ({shell})", target="{id}", session=True,
       headers=("Command", "Height", "Width", "Terminal"), special="shell"),
    _r("PUT", "/system", "SystemUpdate", "v3 v2 classic", "Infrastructure", "updated",
       "Updated rack parameters {parameters}", maps=("parameters",), special="system_update",
       clear=("version", "force", "count", "type"),
       note="rack params set (RACK_URL racks), rack update, rack scale"),
    _r("POST", "/system/karpenter/cleanup", "KarpenterCleanup", "v3", "Infrastructure", "cleaned",
       "Cleaned up orphaned Karpenter nodes"),
    _r("SOCKET", "/proxy/{host}/{port}", "Proxy", "v3 v2 classic", "Infrastructure", "accessed",
       "Opened tunnel to {host}:{port}", target="{host}:{port}"),
    _r("ANY", "/custom/http/proxy/{path}", "ProxyHttpService", "v3", "Infrastructure", "accessed",
       "Proxied HTTP {method} to {X-Host}:{X-Port}/{path}", target="{X-Host}:{X-Port}", raw_body=True,
       headers=("X-Host", "X-Port")),
    # --- Registries -----------------------------------------------------------------------------------------
    _r("POST", "/registries", "RegistryAdd", "v3 v2 classic", "Registries", "added",
       "Added registry {server}[ (user {username})]", target="{server}", secrets=("password",)),
    _r("DELETE", "/registries/{server}", "RegistryRemove", "v3 v2", "Registries", "removed",
       "Removed registry {server}", target="{server}"),
    _r("DELETE", "/registries", "RegistryRemoveClassic", "classic", "Registries", "removed",
       "Removed registry {server}", target="{server}", note="the server is in the query string"),
    _r("ANY", "/v2/{path}", "RegistryProxy", "v3", "Registries", "pushed",
       "Pushed image data to rack registry {path}", target="{path}", raw_body=True, special="registry_proxy",
       note="docker push through the rack registry"),
    # --- Resources ------------------------------------------------------------------------------------------
    _r("POST", "/resources", "SystemResourceCreate", "v3 v2 classic", "Resources", "created",
       "Created resource {name}[ ({kind})][ ({type})]", target="{name}", maps=("parameters",),
       fields=("kind", "name", "type", "parameters"), inline_params=True,
       note="classic racks get `type` and the parameters as form fields"),
    _r("PUT", "/resources/{name}", "SystemResourceUpdate", "v3 v2 classic", "Resources", "updated",
       "Updated resource {name}[ (parameters {parameters})]", target="{name}", maps=("parameters",),
       fields=("parameters",), inline_params=True),
    _r("DELETE", "/resources/{name}", "SystemResourceDelete", "v3 v2 classic", "Resources", "deleted",
       "Deleted resource {name}", target="{name}"),
    _r("POST", "/resources/{name}/links", "SystemResourceLink", "v3 v2 classic", "Resources", "linked",
       "Linked resource {name} to app {app}", target="{name}", app="app"),
    _r("DELETE", "/resources/{name}/links/{app}", "SystemResourceUnlink", "v3 v2 classic", "Resources",
       "unlinked", "Unlinked resource {name} from app {app}", target="{name}", app="app"),
    _r("PUT", "/apps/{app}/resources/{name}/data", "ResourceImport", "v3", "Resources", "imported",
       "Imported data into resource {name} of app {app}", target="{name}", app="app", raw_body=True),
    _r("GET", "/apps/{app}/resources/{name}/data", "ResourceExport", "v3", "Resources", "exported",
       "Exported data of resource {name} of app {app}", target="{name}", app="app",
       note="audited read (database dump)"),
    _r("SOCKET", "/apps/{app}/resources/{name}/console", "ResourceConsole", "v3", "Resources", "accessed",
       "Opened console on resource {name} of app {app}", target="{name}", app="app", session=True,
       headers=("Height", "Width")),
    _r("DELETE", "/rds/{resource}", "DeleteDB", "v2", "Resources", "deleted", "Deleted database {resource}",
       target="{resource}"),
    _r("POST", "/apps/{app}/resources/{resource}/deletion-protection-and-snapshot/{snapshot}",
       "DeletionProtectionAndSnapshot", "v2", "Resources", "enabled",
       "Enabled deletion protection and snapshot {snapshot} for {resource}", target="{resource}", app="app"),
    _r("POST", "/services", "ServiceCreate", "classic", "Resources", "created",
       "Created resource {name}[ ({type})]", target="{name}", fields=("name", "type"), inline_params=True,
       note="classic name of resources"),
    _r("PUT", "/services/{resource}", "ServiceUpdate (resource)", "classic", "Resources", "updated",
       "Updated resource {resource}[ (parameters {parameters})]", target="{resource}", inline_params=True),
    _r("DELETE", "/services/{resource}", "ServiceDelete", "classic", "Resources", "deleted",
       "Deleted resource {resource}", target="{resource}"),
    _r("POST", "/services/{resource}/links", "ServiceLinkCreate", "classic", "Resources", "linked",
       "Linked resource {resource} to app {app}", target="{resource}", app="app"),
    _r("DELETE", "/services/{resource}/links/{app}", "ServiceLinkDelete", "classic", "Resources", "unlinked",
       "Unlinked resource {resource} from app {app}", target="{resource}", app="app"),
    # --- Rack internals -------------------------------------------------------------------------------------
    _r("POST", "/events", "EventSend", "v3 v2", "Other", "created", "Recorded rack event {action}",
       maps=("data",), clear=("status",), note="rack and build internals, not a user action"),
    _r("POST", "/events/{action}", "EventSend", "classic", "Other", "created", "Recorded rack event {action}",
       maps=("data",), note="rack internals, not a user action"),
    _r("POST", "/switch", "Switch", "classic", "Other", "updated",
       "Requested a rack switch (Console only: the rack refuses it)"),
    _r("POST", "/sns", "SNSProxy", "classic", "Other", "created",
       "Received SNS notification[ ({X-Amz-Sns-Message-Type})]", raw_body=True,
       headers=("X-Amz-Sns-Message-Type",), note="sent by AWS to the rack, not a user action"),
    # --- Matched but not recorded ---------------------------------------------------------------------------
    _r("GET", "/auth", "Auth", "v3 v2 classic", None, None, "Login check (convox login)", audited=False),
    _r("GET", "/machines", "MachineList", "v3", None, None,
       "Throw-away request before a websocket on an /app path (session trigger)", audited=False),
    _r("GET", "/racks", "RackList", "v3 classic", None, None,
       "Throw-away request before other websockets (session trigger)", audited=False),
    _r("SOCKET", "/apps/{app}/logs", "AppLogs", "v3 v2 classic", None, None, "App log stream", audited=False),
    _r("SOCKET", "/apps/{app}/services/{service}/logs", "ServiceLogs", "v3", None, None, "Service log stream",
       audited=False),
    _r("SOCKET", "/apps/{app}/processes/{pid}/logs", "ProcessLogs", "v3", None, None, "Process log stream",
       audited=False),
    _r("SOCKET", "/system/logs", "SystemLogs", "v3 v2 classic", None, None, "Rack log stream", audited=False),
    _r("GET", "/v2/{path}", "RegistryProxy", "v3", None, None, "docker pull through the rack registry",
       audited=False),
    _r("HEAD", "/v2/{path}", "RegistryProxy", "v3", None, None, "docker pull through the rack registry",
       audited=False),
)


# --- matching ---------------------------------------------------------------------------------------------------

def _compile(route: Route) -> tuple[re.Pattern[str], tuple[int, int, int]]:
    """The route's regex over the decoded path, and its specificity."""
    regex, literal_segments, literal_chars, greedy = "", 0, 0, 0
    for segment in route.path.strip("/").split("/") if route.path != "/" else []:
        regex += "/"
        pieces = re.split(r"(\{[A-Za-z0-9_]+\})", segment)
        if len(pieces) == 1:
            literal_segments += 1
        for piece in pieces:
            if piece.startswith("{") and piece.endswith("}"):
                name = piece[1:-1]
                if name in GREEDY_VARS:
                    greedy += 1
                    regex += f"(?P<{name}>.*)"
                else:
                    regex += f"(?P<{name}>[^/]+)"
            elif piece:
                literal_chars += len(piece)
                regex += re.escape(piece)
    return re.compile(regex), (literal_segments, literal_chars, -greedy)


_INDEX: tuple[tuple[Route, re.Pattern[str], tuple[int, int, int]], ...] = tuple(
    (route, *_compile(route)) for route in ROUTES)


def match(method: str, path: str, websocket: bool = False) -> tuple[Route, dict[str, str]] | None:
    """The route a request reaches, with its path vars, or None.

    `path` is the decoded path the rack routes on (gateway/canonical.py makes it from the path as sent); it is
    matched as it is, so a var holds exactly the characters the rack's router gives its handler.

    A websocket upgrade matches SOCKET and ANY routes; any other request matches routes of its method and ANY
    routes. The most specific pattern wins (more literal segments, then more literal characters, then fewer
    greedy vars), and at equal specificity a route of the exact method beats ANY. A query string is ignored.
    """
    method = method.upper()
    path = path.split("?", 1)[0].split("#", 1)[0]
    best: tuple[tuple[int, int, int], int] | None = None
    found: tuple[Route, dict[str, str]] | None = None
    for route, regex, score in _INDEX:
        if websocket:
            if route.method not in ("SOCKET", "ANY"):
                continue
        elif route.method not in (method, "ANY"):
            continue
        m = regex.fullmatch(path)
        if m is None:
            continue
        rank = (score, 0 if route.method == "ANY" else 1)
        if best is None or rank > best:
            best = rank
            found = (route, dict(m.groupdict()))
    return found


# --- reading the wire -------------------------------------------------------------------------------------------

def env_changes(old: Mapping[str, str] | None, new: Mapping[str, str], hmac_key: bytes | None) -> dict[str, Any]:
    """What an env write changes, without a value: {"added", "changed", "removed": sorted keys, "hmac": {key:
    value_hmac(new value)} for added and changed keys}. With `old` None (the previous env could not be read)
    every key is "set": {"set": keys, "hmac": …, "previous": "unknown"}. hmac_key None leaves "hmac" out (the
    gateway always passes its key)."""
    if old is None:
        keys = sorted(new)
        summary: dict[str, Any] = {"set": keys, "previous": "unknown"}
        hashed = keys
    else:
        added = sorted(set(new) - set(old))
        removed = sorted(set(old) - set(new))
        changed = sorted(k for k in set(new) & set(old) if new[k] != old[k])
        summary = {"added": added, "changed": changed, "removed": removed}
        hashed = sorted(added + changed)
    if hmac_key is not None:
        summary["hmac"] = {k: value_hmac(hmac_key, new[k]) for k in hashed}
    return summary


# --- redaction --------------------------------------------------------------------------------------------------

def is_secret_name(name: str) -> bool:
    """True for a param or header name that looks like it carries a secret (password, src-creds-pass, api_key,
    Private-Key, X-Auth-Token, dbPassword, secret, credentials, …)."""
    words = [w.lower() for w in re.split(r"[-_.\s]+|(?<=[a-z0-9])(?=[A-Z])", name) if w]
    if any(w in SECRET_WORDS for w in words):
        return True
    squashed = "".join(words)
    return squashed.endswith(SECRET_SUFFIXES)


def _lower_map(headers: Mapping[str, str] | None) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, value in (headers or {}).items():
        result.setdefault(name.lower(), value)
    return result


def _clean(value: Any, limit: int = _CLIP) -> str:
    text = mask_userinfo(str(value)).replace("\x00", "\\0")
    return text if len(text) <= limit else text[:limit] + "…"


def _hashes(hmac_key: bytes | None, mapping: Mapping[str, str]) -> dict[str, str] | None:
    if hmac_key is None:
        return None
    return {k: value_hmac(hmac_key, mapping[k]) for k in sorted(mapping)}


def _record_map(safe: dict[str, Any], name: str, mapping: Mapping[str, str], hmac_key: bytes | None) -> None:
    """A map option (rack parameters, a run's Environment …) recorded as its sorted keys plus an HMAC per value."""
    safe[name] = sorted(mapping)
    hashes = _hashes(hmac_key, mapping)
    if hashes is not None:
        safe[f"{name}_hmac"] = hashes


# Placeholders a template may name that are computed, not params (they never make a param clear).
_COMPUTED = frozenset({"keys", "settings", "method", "shell", "code", "parameters"})


def clear_params(route: Route) -> frozenset[str]:
    """The params of `route` recorded in clear: those its templates name (beyond path vars, the rack's answer and
    computed values) plus `route.clear`, never a route secret or a secret-looking name. Every other param is
    recorded by name with an HMAC of its value (redact)."""
    named = set(_PLACEHOLDER_RE.findall(route.description + " " + (route.target or "")))
    named -= set(route.vars) | set(route.response) | _COMPUTED | {h for h in route.headers}
    named |= set(route.clear)
    secrets = {s.lower() for s in route.secrets}
    return frozenset(n for n in named if n.lower() not in secrets and not is_secret_name(n) and n != _ENV_PARAM)


_CLEAR: dict[int, frozenset[str]] = {}


def _clear_of(route: Route) -> frozenset[str]:
    found = _CLEAR.get(id(route))
    if found is None:
        found = _CLEAR[id(route)] = clear_params(route)
    return found


_USERINFO_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^/?#@\s]*)@")


def mask_userinfo(text: str) -> str:
    """Every URL's userinfo masked: `https://user:pw@host` → `https://user:***@host`, `https://token@host` →
    `https://***@host` (a lone user part is often the token itself)."""
    def mask(m: re.Match[str]) -> str:
        user, colon, _ = m.group(2).partition(":")
        return f"{m.group(1)}{user}:***@" if colon else f"{m.group(1)}***@"
    return _USERINFO_RE.sub(mask, text) if "@" in text else text


def _hmac_of(hmac_key: bytes | None, value: str) -> str:
    return value_hmac(hmac_key, value) if hmac_key is not None else REDACTED


def redact(route: Route, params: Mapping[str, str], headers: Mapping[str, str] | None = None, *,
           hmac_key: bytes | None = None, previous_env: Mapping[str, str] | None = None,
           body: bytes | str | None = None, files: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The params, file parts and declared headers of a request to `route`, safe to record. By allowlist:

    - the params clear_params(route) names → their value (URL userinfo masked, clipped to 500 characters);
    - the ReleaseCreate `env` → env_changes() against `previous_env` (classic env routes read `body`);
    - map fields and inline parameters → their sorted keys, plus "<name>_hmac" with an HMAC of each value;
    - certificate bodies → "sha256:<hex>";
    - every other param → its name in "params_hmac" with an HMAC of its value (events.value_hmac), never the
      value; a name that is not a plain identifier is not recorded: "unnamed_params" counts them;
    - multipart file parts → "files": {name: {filename, size, sha256}};
    - headers not declared by the route are never recorded (user agent and source IP are event fields);
      Authorization, Private-Key and Cookie never; declared secret-looking headers as "[redacted]".
    Header names are recorded lower-cased (`command`, `entrypoint`).
    """
    safe: dict[str, Any] = {}
    inline: dict[str, str] = {}
    hashed: dict[str, str] = {}
    unnamed = 0
    clear = _clear_of(route)
    map_names = {m.lower() for m in route.maps}
    for name, value in params.items():
        lowered = name.lower()
        if not _NAME_RE.match(name):
            unnamed += 1
        elif route.special == "env" and name == _ENV_PARAM:
            safe["env"] = env_changes(previous_env, wire.parse_env(value), hmac_key)
        elif lowered in map_names:
            _record_map(safe, name, wire.decode_map(value), hmac_key)
        elif route.inline_params and name not in route.fields:
            inline[name] = value
        elif name in route.digests:
            safe[name] = "sha256:" + hashlib.sha256(str(value).encode("utf-8")).hexdigest()
        elif name in clear:
            safe[name] = _clean(value)
        else:
            hashed[name] = value
    if inline:
        _record_map(safe, "parameters", inline, hmac_key)
    if hashed:
        safe["params_hmac"] = {name: _hmac_of(hmac_key, hashed[name]) for name in sorted(hashed)}
    if unnamed:
        safe["unnamed_params"] = unnamed
    if files:
        safe["files"] = {name: _file_record(part) for name, part in sorted(files.items()) if _NAME_RE.match(name)}
    if route.special == "env_body":
        safe["env"] = (env_changes(previous_env, wire.parse_env(body), hmac_key) if body is not None
                       else {"previous": "unknown", "set": [], "note": "body not read"})
    lowered_headers = _lower_map(headers)
    secret_names = {s.lower() for s in route.secrets}
    for header in route.headers:
        key = header.lower()
        if key not in lowered_headers or key in REMOVED_HEADERS:
            continue
        value = lowered_headers[key]
        if key in safe:
            continue  # a param of the same name was recorded already
        if key in secret_names or is_secret_name(header):
            safe[key] = REDACTED
        elif key in map_names:
            _record_map(safe, key, wire.decode_map(value), hmac_key)
        else:
            safe[key] = _clean(value)
    return safe


def _file_record(part: Any) -> dict[str, Any]:
    record = dict(part.record()) if hasattr(part, "record") else dict(part)
    record["filename"] = _clean(record.get("filename", ""), 200)
    return record


def secret_values(route: Route | None, params: Mapping[str, str],
                  headers: Mapping[str, str] | None = None, body: bytes | str | None = None) -> list[str]:
    """Every value of a request that redact() keeps out of the record (longest first), so that text echoed back
    by the rack (an error message) can be scrubbed of them: every param not recorded in clear, env and map
    values, and secret headers."""
    found: set[str] = set()
    clear = _clear_of(route) if route else frozenset()
    map_names = {m.lower() for m in route.maps} if route else set()
    for name, value in params.items():
        if route is not None and name == _ENV_PARAM and route.special == "env":
            found.update(wire.parse_env(value).values())
        elif name.lower() in map_names:
            found.update(wire.decode_map(value).values())
        elif name not in clear or not _NAME_RE.match(name):
            found.add(value)
    if route is not None and route.special == "env_body" and body is not None:
        found.update(wire.parse_env(body).values())
    secret_names = {s.lower() for s in route.secrets} if route else set()
    for key, value in _lower_map(headers).items():
        if key in REMOVED_HEADERS or key in secret_names or is_secret_name(key):
            found.add(value)
            if key in ("authorization", "proxy-authorization") and " " in value:
                found.add(value.split(" ", 1)[1])
        elif key in map_names:
            found.update(wire.decode_map(value).values())
    return sorted((v for v in found if v and len(v) >= 4), key=len, reverse=True)


def _carries_secrets(route: Route, safe: Mapping[str, Any]) -> bool:
    if route.special in ENV_SPECIALS or route.inline_params or route.secrets or route.maps:
        return True
    for name, value in safe.items():
        if value == REDACTED or name.endswith("_hmac") or name in ("unnamed_params", "files"):
            return True
    return False


# --- templates --------------------------------------------------------------------------------------------------

def clean_text(value: str) -> str:
    """Any text as it may be recorded in a description or a field: userinfo masked, one line, NUL escaped,
    clipped."""
    return _text(value)


def _text(value: str) -> str:
    """A value as shown in a description: one line, clipped."""
    text = re.sub(r"[\r\n\t]+", " ", mask_userinfo(value)).replace("\x00", "\\0")
    return text if len(text) <= _CLIP_TEXT else text[:_CLIP_TEXT] + "…"


def _render(template: str, values: Mapping[str, str]) -> str:
    def fill(m: re.Match[str]) -> str:
        value = values.get(m.group(1))
        return _text(value) if value else "?"

    def optional(m: re.Match[str]) -> str:
        inner = m.group(1)
        if all(values.get(name) for name in _PLACEHOLDER_RE.findall(inner)):
            return _PLACEHOLDER_RE.sub(fill, inner)
        return ""

    return _PLACEHOLDER_RE.sub(fill, _OPTIONAL_RE.sub(optional, template))


def _render_target(template: str | None, values: Mapping[str, str]) -> str | None:
    if not template:
        return None
    names = _PLACEHOLDER_RE.findall(template)
    if not all(values.get(name) for name in names):
        return None
    return _clean(_PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], template), _CLIP)


def _key_list(keys: Iterable[str]) -> str:
    keys = list(keys)
    if not keys:
        return "no changes"
    shown = ", ".join(keys[:_KEYS_SHOWN])
    return shown if len(keys) <= _KEYS_SHOWN else f"{shown} +{len(keys) - _KEYS_SHOWN} more"


# --- classification ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Classification:
    """What the gateway records for one request. `details` and `values` hold only what redact() let through."""

    category: str
    action: str
    description: str
    app: str | None
    target: str | None
    details: dict[str, Any]
    session: bool
    route: Route | None  # None for an unknown write or websocket
    method: str
    path: str  # without the query string
    template: str = ""  # the description template chosen (describe_outcome re-renders it)
    values: dict[str, str] = dataclasses.field(default_factory=dict)  # the safe values behind the template
    link: str | None = None  # "process:<app>/<pid>": equal links join a run, its exec websocket and its stop
    carries_secrets: bool = False  # the request held values that were redacted

    @property
    def raw_body(self) -> bool:
        """Stream the body: never parse or buffer it (uploads, imports, registry and HTTP proxies)."""
        return self.route.raw_body if self.route else False


def _unknown(method: str, path: str, params: Mapping[str, str], websocket: bool, hmac_key: bytes | None = None,
             files: Mapping[str, Any] | None = None) -> Classification:
    names = sorted(n for n in params if _NAME_RE.match(n))
    details: dict[str, Any] = {"method": method, "path": _clean(path)}
    if names:
        details["params"] = names
        details["params_hmac"] = {n: _hmac_of(hmac_key, params[n]) for n in names}
    if len(names) != len(params):
        details["unnamed_params"] = len(params) - len(names)
    if files:
        details["files"] = {n: _file_record(p) for n, p in sorted(files.items()) if _NAME_RE.match(n)}
    segments = path.split("/")
    app = segments[2] if len(segments) > 2 and segments[1] == "apps" and segments[2] else None
    if websocket:
        category, action, description = "Other", "accessed", f"Unknown websocket {_text(path)}"
        details["websocket"] = True
    else:
        action = "deleted" if method == "DELETE" else "updated"
        category, description = "Other", f"Unknown write {method} {_text(path)}"
    return Classification(category, action, description, app, None, details, websocket, None, method, path,
                          template=description, carries_secrets=bool(params) or bool(files))


def classify(method: str, path: str, *, params: Mapping[str, str] | None = None,
             headers: Mapping[str, str] | None = None, websocket: bool = False, body: bytes | str | None = None,
             hmac_key: bytes | None = None, previous_env: Mapping[str, str] | None = None,
             files: Mapping[str, Any] | None = None) -> Classification | None:
    """What to record for a request, or None when it is not recorded.

    `params` are the request's params (gateway/canonical.py reads them; query-string values in `path` are merged
    in, the given ones win),
    `headers` the request headers (any case), `files` a multipart body's file parts (gateway/canonical.py).
    `body` is read only by the classic env route. `previous_env` is the
    app's env before an env write (None: unknown, every key is then "set"); `hmac_key` keys the value hashes.
    Response-derived parts (build, release and certificate ids, a run's pid, an exit code) are filled in by
    describe_outcome().
    """
    method = method.upper()
    bare, _, query = path.partition("?")
    merged = dict(params or {})
    if query:
        for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
            merged.setdefault(name, value)
    found = match(method, bare, websocket)
    if found is None:
        if websocket or method not in READ_METHODS:
            return _unknown(method, bare, merged, websocket, hmac_key, files)
        return None
    route, path_vars = found
    if not route.audited:
        return None
    assert route.category is not None and route.action is not None

    safe = redact(route, merged, headers, hmac_key=hmac_key, previous_env=previous_env, body=body, files=files)
    values: dict[str, str] = {}
    for name, value in safe.items():
        if isinstance(value, str):
            values[name] = value
        elif isinstance(value, list):
            values[name] = _key_list(value)
    for header in route.headers:
        value = safe.get(header.lower())
        if isinstance(value, str):
            values[header] = value
    for name in route.response:  # only the rack's answer may fill these
        values.pop(name, None)
    values.update(path_vars)
    values["method"] = method

    category, action, template = route.category, route.action, route.description
    details = {k: v for k, v in safe.items()}
    special = route.special
    if special == "env":
        env = details.pop("env", None)
        if "build" in merged and merged["build"]:
            if env is not None:
                details["env"] = env
        elif env is not None:
            category, action = "Environment", "updated"
            template = "Updated environment of app {app} ({keys})[ as release {id}]"
            details = {**env, **details}
            values["keys"] = _env_keys(env)
    elif special == "env_body":
        env = details.pop("env")
        details = {**env, **details}
        values["keys"] = _env_keys(env) if env.get("note") is None else "?"
    elif special == "env_unset":
        details = {"added": [], "changed": [], "removed": [path_vars["name"]], **details}
    elif special == "app_update":
        category, action, template = _app_update(merged)
    elif special == "system_update":
        action, template = _system_update(merged)
    elif special == "scale":
        settings = [f"{k}={_text(merged[k])}" for k in ("count", "cpu", "memory", "gpu", "gpu-vendor", "min", "max")
                    if merged.get(k)]
        if settings:
            values["settings"] = " ".join(settings)
    elif special == "shell":
        values["shell"] = values.get("Command") or "interactive"
    elif special == "registry_proxy" and method == "DELETE":
        action, template = "deleted", "Deleted {path} from rack registry"

    app = values.get(route.app) if route.app else None
    link = None
    if app and "pid" in path_vars:
        link = f"process:{app}/{path_vars['pid']}"
    return Classification(
        category=category, action=action, description=_render(template, values), app=app,
        target=_render_target(route.target, values), details=details, session=route.session, route=route,
        method=method, path=bare, template=template, values=values, link=link,
        carries_secrets=_carries_secrets(route, safe))


def _env_keys(env: Mapping[str, Any]) -> str:
    if "set" in env:
        return _key_list(env["set"])
    return _key_list(sorted(env.get("added", []) + env.get("changed", []) + env.get("removed", [])))


def _app_update(params: Mapping[str, str]) -> tuple[str, str, str]:
    lock = params.get("lock", "").lower()
    parts: list[str] = []
    if "parameters" in params:
        parts.append("Updated parameters {parameters} of app {name}")
    if lock in ("true", "1"):
        if not parts:
            return "Applications", "locked", "Locked app {name}"
        parts.append("locked it")
    elif lock in ("false", "0"):
        if not parts:
            return "Applications", "unlocked", "Unlocked app {name}"
        parts.append("unlocked it")
    return "Applications", "updated", "; ".join(parts) if parts else "Updated app {name}"


def _system_update(params: Mapping[str, str]) -> tuple[str, str]:
    parts: list[str] = []
    if "parameters" in params:
        parts.append("Updated rack parameters {parameters}")
    if params.get("version"):
        parts.append("Updated rack to version {version}")
    count, kind = params.get("count"), params.get("type")
    scale = None
    if count and kind:
        scale = "Scaled rack to {count}×{type}"
    elif count:
        scale = "Scaled rack to {count} instances"
    elif kind:
        scale = "Scaled rack to instance type {type}"
    if scale:
        parts.append(scale)
    if not parts:
        return "updated", "Updated rack"
    action = "scaled" if scale and len(parts) == 1 else "updated"
    return action, "; ".join(parts)


def _response_value(response: Mapping[str, Any], name: str) -> str | None:
    value = response.get(name)
    if value is None:
        lowered = name.lower()
        for key, item in response.items():
            if isinstance(key, str) and key.lower() == lowered:
                value = item
                break
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        return _clean(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return _clean(",".join(value))
    return None


def describe_outcome(classification: Classification, status: int, response_json: Mapping[str, Any] | None = None,
                     *, response_headers: Mapping[str, str] | None = None, exit_code: int | None = None,
                     params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
                     body: bytes | str | None = None) -> Classification:
    """The classification once the rack has answered: response-derived placeholders filled (`{id}` of a build,
    release or certificate, `{domain}`, the classic `Release-Id` header, a run's pid, `{code}` from a session's
    exit code), the target set, and on an error status the rack's `error` text in details["error"].

    Only fields the templates name are read from the response, so a secret in it (keyroll's private key, an
    access token) is never copied. The error text is scrubbed of the request's secret values: pass the request's
    `params` / `headers` (/ `body`) for that; without them, the error of a request that carried secrets is
    withheld. A plain-text error can be passed as response_json={"error": text}.
    """
    c = classification
    response = response_json if isinstance(response_json, Mapping) else {}
    values = dict(c.values)
    details = dict(c.details)
    link = c.link
    route = c.route
    if route is not None and status < 400:
        for name in route.response:
            found = _response_value(response, name)
            if name == "pid" and not found:
                found = _response_value(response, "id")  # v3 / v2 answer with the Process, whose id is the pid
            if name == "id" and not found:
                release_id = _lower_map(response_headers).get("release-id")  # classic env routes
                found = _clean(release_id) if release_id else None
            if found:
                values[name] = found
        if route.special == "run" and values.get("pid"):
            details["pid"] = values["pid"]
            if c.app:
                link = f"process:{c.app}/{values['pid']}"
        if route.special in ENV_SPECIALS and c.category == "Environment" and values.get("id"):
            details["release"] = values["id"]
    if exit_code is not None:
        values["code"] = str(exit_code)
        details["exit_code"] = exit_code
    if status >= 400:
        error = response.get("error") if response else None
        if isinstance(error, str) and error:
            if params is None and headers is None and c.carries_secrets:
                details["error"] = "[withheld: the request carried secret values]"
            else:
                scrubbed = error
                for secret in secret_values(route, params or {}, headers, body):
                    scrubbed = scrubbed.replace(secret, REDACTED)
                details["error"] = _clean(scrubbed)
    return dataclasses.replace(
        c, description=_render(c.template, values),
        target=_render_target(route.target, values) if route else c.target,
        values=values, details=details, link=link)


# --- docs -------------------------------------------------------------------------------------------------------

def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"``{text}``"


def _redacted_cell(route: Route) -> str:
    parts = [f"{name} (removed)" if name.lower() in REMOVED_HEADERS else f"{name} 🔒" for name in route.secrets]
    parts += [f"{name} (keys + HMAC)" for name in route.maps]
    parts += [f"{name} (sha256)" for name in route.digests]
    if route.special in ENV_SPECIALS:
        parts.append("env (keys + HMAC)")
    if route.inline_params:
        parts.append("parameters (keys + HMAC)")
    return ", ".join(dict.fromkeys(parts))


def _flags_cell(route: Route) -> str:
    flags = []
    if route.session:
        flags.append("session")
    if route.raw_body:
        flags.append("raw body")
    if route.json_body:
        flags.append("JSON body")
    if route.special:
        flags.append(f"special: {route.special}")
    return ", ".join(flags)


def render_markdown() -> str:
    """docs/routes.md: the catalog as tables (generated; edit auditkit/catalog.py, then run
    scripts/gen_routes_doc.py)."""
    lines = [
        "# Rack API routes: what the gateway records",
        "",
        "<!-- Generated from auditkit/catalog.py by scripts/gen_routes_doc.py. Do not edit by hand. -->",
        "",
        "Every request that reaches a rack through the gateway is looked up in `auditkit/catalog.py`'s `ROUTES`.",
        "Specs: reference/convox-rack-api.md. Versions: `v3` (convox/convox), `v2` (modern convox/rack),",
        "`classic` (convox/rack before mid-2018). SOCKET is a websocket upgrade (a GET on the wire); ANY matches",
        "every method. `{var}` is a path var (`{key}`, `{path}` and `{server}` may hold slashes).",
        "",
        "## Rules",
        "",
        "- A request matching a recorded route below becomes an event with that category, action, description and",
        "  target. The most specific pattern wins; at equal specificity an exact method beats ANY.",
        "- A write (any method but GET, HEAD, OPTIONS) matching no route is recorded as **Other**: action `deleted`",
        "  for DELETE, `updated` otherwise; description `Unknown write METHOD /path`; details hold the method, the",
        "  path and the param *names* (never values). A websocket matching no route is recorded as Other /",
        "  `accessed` (`Unknown websocket /path`).",
        "- A read matching no route (`GET /apps`, `GET /apps/{app}/releases`, …) and the routes in the last table",
        "  are passed through and not recorded.",
        "- Descriptions: `{name}` comes from path vars, params and declared headers as recorded (a secret only",
        "  ever shows as `[redacted]`), computed values and, after the answer, the response JSON (`{id}`,",
        "  `{domain}`) or the `Release-Id` header; `[…]` is left out while a placeholder in it has no value;",
        "  any other missing value shows as `?`.",
        "",
        "## Secrets",
        "",
        f"- Never recorded: the headers {', '.join(_code(h.title()) for h in sorted(REMOVED_HEADERS))}; headers"
        " a route does not declare; response bodies (only the fields a template names are read).",
        "- Params are recorded by allowlist: a route records in clear only the params in its **In clear** column",
        "  (those its templates name, plus a few public options). Every other param — the ones marked 🔒, any",
        "  name the route does not know, bracket or dotted map forms (`parameters[DbPassword]`) — is recorded by",
        "  name under `params_hmac` with `hmac-sha256` of its value, never the value. A name that is not a plain",
        "  identifier is only counted (`unnamed_params`). Multipart file parts: `files` {name: filename, size, sha256}.",
        "- No name is ever clear if it looks secret: one of the words"
        f" {', '.join(_code(w) for w in sorted(SECRET_WORDS))}, or ending in",
        f"  {', '.join(_code(s) for s in SECRET_SUFFIXES)} (`src-creds-pass`, `api_key`, `Private-Key`,"
        " `dbPassword`); a declared header with such a name is recorded as `[redacted]`.",
        "- URL userinfo in any recorded value or description is masked: `https://user:***@host`, `https://***@host`.",
        "- Environment: the keys added, changed and removed against the previous env (or, when it cannot be read,",
        "  the keys set, with `previous: unknown`), and `hmac-sha256` of each new value keyed with the gateway's",
        "  secret (`events.value_hmac`). Map fields and inline parameters: their keys, and an HMAC of each value.",
        "- An error text echoed by the rack is scrubbed of the request's secret values before it is recorded.",
        "",
        "## Special handling",
        "",
    ]
    for name, text in SPECIALS.items():
        lines.append(f"- `{name}`: {text}")
    lines += [
        "",
        "## Recorded",
        "",
        "| Method | Path | Handler | Versions | Category | Action | Description | Target | In clear | Redacted | Flags |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for route in ROUTES:
        if not route.audited:
            continue
        description = _code(route.description)
        if route.response:
            description += f" (from the answer: {', '.join(_code(n) for n in route.response)})"
        if route.note:
            description += f" — {route.note}"
        lines.append("| " + " | ".join(_cell(cell) for cell in (
            route.method, _code(route.path), route.sdk, " ".join(route.versions), route.category or "",
            route.action or "", description, _code(route.target) if route.target else "",
            ", ".join(sorted(clear_params(route))), _redacted_cell(route), _flags_cell(route))) + " |")
    lines += [
        "",
        "## Matched and not recorded",
        "",
        "| Method | Path | Handler | Versions | What it is |",
        "|---|---|---|---|---|",
    ]
    for route in ROUTES:
        if route.audited:
            continue
        lines.append("| " + " | ".join(_cell(cell) for cell in (
            route.method, _code(route.path), route.sdk, " ".join(route.versions), route.description)) + " |")
    counts = sum(1 for r in ROUTES if r.audited), sum(1 for r in ROUTES if not r.audited)
    lines += ["", f"{counts[0]} recorded routes, {counts[1]} matched and passed through.", ""]
    return "\n".join(lines)
