"""The catalog's one table, ROUTES: every Rack API route the gateway knows (v3: convox/convox pkg/api/routes.go;
modern v2: convox/rack pkg/api/routes.go; classic v2: convox/rack api/controllers/routes.go), with what a request
to it is recorded as — category, action verb, description template, target, the app — and its redaction rules;
plus the vocabularies a row is checked against (methods, versions, specials). docs/routes.md is rendered from it
(catalog/docs.py).

Templates use `{name}` placeholders (path vars, params and declared headers as recorded, computed values, fields of
the rack's answer) and `[ … ]` optional parts; catalog/classify.py fills them.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from auditkit.model.events import ACTIONS, CATEGORIES

VERSIONS: tuple[str, ...] = ("v3", "v2", "classic")
METHODS: tuple[str, ...] = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "SOCKET", "ANY")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Path vars that the rack's router declares as `{name:.*}`: they may hold slashes (`tmp/<sha>.tgz`, `org/blobs/…`).
GREEDY_VARS = frozenset({"key", "path", "server"})

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

# A `{name}` placeholder of a path pattern or a template.
PLACEHOLDER_RE = re.compile(r"\{([A-Za-z0-9_.\-]+)\}")


@dataclasses.dataclass(frozen=True)
class Route:
    """One row of the catalog. Templates follow the module docstring; names are as on the wire."""

    method: str  # GET POST PUT DELETE …, SOCKET for a websocket upgrade, ANY for every method
    path: str  # the pattern, `{var}` placeholders as in the rack's route table
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
    passes_headers: bool = False  # a proxy to something else: the client's headers are forwarded as they come
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
        return tuple(PLACEHOLDER_RE.findall(self.path))


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
       clear=("release", "status", "started", "ended", "entrypoint", "logs", "description"),
       note="sent by the build pod inside the rack; the manifest may carry environment defaults"),
    _r("POST", "/apps/{app}/builds/{id}/cancel", "BuildCancel", "v3", "Builds", "cancelled",
       "Cancelled build {id} of app {app}", target="{id}", app="app",
       note="in convox/convox's v3 route table (pkg/api/routes.go)"),
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
       headers=("X-Host", "X-Port"), passes_headers=True),
    # --- Registries -----------------------------------------------------------------------------------------
    _r("POST", "/registries", "RegistryAdd", "v3 v2 classic", "Registries", "added",
       "Added registry {server}[ (user {username})]", target="{server}", secrets=("password",)),
    _r("DELETE", "/registries/{server}", "RegistryRemove", "v3 v2", "Registries", "removed",
       "Removed registry {server}", target="{server}"),
    _r("DELETE", "/registries", "RegistryRemoveClassic", "classic", "Registries", "removed",
       "Removed registry {server}", target="{server}", note="the server is in the query string"),
    _r("ANY", "/v2/{path}", "RegistryProxy", "v3", "Registries", "pushed",
       "Pushed image data to rack registry {path}", target="{path}", raw_body=True, special="registry_proxy",
       note="docker push through the rack registry", passes_headers=True),
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
