"""The scripted shell of the simulated rack: what a person sees in `convox exec`, `convox run`, `convox instances ssh`
and `convox resources console` against the demo rack.

It owns no I/O. A `Session` is a small state machine: `start()` returns the banner and first prompt, `feed(text)` takes
raw stdin (what the CLI sends in websocket TEXT frames, keystroke by keystroke on a TTY) and returns what the terminal
shows, `eof()` is stdin's end (the empty BINARY frame), and `exit_code` becomes an int when the session is over.
`run(argv)` runs one command non-interactively (`convox exec <pid> echo hi`). convox_sim/rack.py does the framing.

On a TTY it behaves like bash behind a pty: it echoes what is typed, handles Enter (\\r), backspace, Ctrl-C, Ctrl-D,
Ctrl-U, Ctrl-L and the arrow keys for history, prints a coloured prompt and ends lines with \\r\\n. Without a TTY it
reads lines and prints plain \\n output. A few commands exist (ls [-la] [--color], cd, pwd, echo, env, export, cat,
head, tail, grep, wc, sort, which, whoami, id, hostname, uname, date, uptime, ps, df, free, history, clear, true,
false, sleep, exit [n], ruby/node/python -v), with `;`, `&&`, `||` and `|`; `bin/rails console`, `psql` and
`redis-cli` open small REPLs. As in a real container, `env`, `printenv`, `echo $VAR`, the Rails console's `ENV`,
psql's `\\! env` and redis-cli's `CONFIG GET requirepass` print the app's real values, secrets included (the
gateway masks them in recordings, not the rack). Anything else answers `bash: foo: command not found` (127). Output is a pure function of
the profile, the seed and the input, so recordings of the demo are reproducible.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import shlex
import urllib.parse
from typing import Callable

__all__ = ["Profile", "Session", "process_profile", "instance_profile", "resource_profile", "REPL_COMMANDS"]

RESET = "\x1b[0m"
DIR_COLOUR = "\x1b[01;34m"
EXEC_COLOUR = "\x1b[01;32m"
LINK_COLOUR = "\x1b[01;36m"

# --- the fake filesystem -----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Node:
    kind: str  # dir | file | exec | link
    content: str = ""
    size: int = 4096


def _file(content: str) -> Node:
    return Node("file", content, len(content.encode()))


def _exec(content: str = "#!/usr/bin/env ruby\n") -> Node:
    return Node("exec", content, max(len(content.encode()), 120))


def _dir() -> Node:
    return Node("dir")


@dataclasses.dataclass
class Profile:
    """Where a session runs: who, on which host, in which directory, with which files and variables."""

    user: str
    host: str
    home: str
    cwd: str
    env: dict[str, str]  # every variable, secrets included (a real process's environment holds them), in `env` order
    files: dict[str, Node]
    prompt_style: str = "debian"  # debian (coloured user@host:dir$) | amazon ([user@host dir]$)
    seed: int = 1
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)
    label: str = ""  # app or instance name, used by REPL banners
    repl_target: str = ""  # what psql / redis-cli connect to
    uname: str = "Linux {host} 5.10.225-213.878.amzn2.x86_64 #1 SMP Tue Oct 8 16:47:33 UTC 2024 x86_64 GNU/Linux"


def _rails_tree(app: str) -> dict[str, Node]:
    manifest = ("environment:\n  - RAILS_ENV=production\nresources:\n  database:\n    type: postgres\n"
                "services:\n  web:\n    build: .\n    command: bin/rails server -b 0.0.0.0 -p 3000\n    port: 3000\n"
                "    health: /healthz\n  worker:\n    build: .\n    command: bundle exec sidekiq\n")
    return {
        "/app": _dir(),
        "/app/Gemfile": _file('source "https://rubygems.org"\n\nruby "3.2.2"\n\ngem "rails", "~> 7.1.3"\n'
                              'gem "pg", "~> 1.5"\ngem "puma", "~> 6.4"\ngem "sidekiq", "~> 7.2"\n'),
        "/app/Gemfile.lock": Node("file", "", 9187),
        "/app/README.md": _file(f"# {app}\n\nDeployed with Convox. See convox.yml.\n"),
        "/app/Rakefile": _file('require_relative "config/application"\n\nRails.application.load_tasks\n'),
        "/app/app": _dir(),
        "/app/app/controllers": _dir(),
        "/app/app/controllers/application_controller.rb":
            _file("class ApplicationController < ActionController::Base\nend\n"),
        "/app/app/controllers/health_controller.rb": _file("class HealthController < ApplicationController\n"
                                                           "  def show = head(:ok)\nend\n"),
        "/app/app/models": _dir(),
        "/app/app/models/account.rb": _file("class Account < ApplicationRecord\n  has_many :users\nend\n"),
        "/app/app/models/order.rb": _file("class Order < ApplicationRecord\n  belongs_to :account\nend\n"),
        "/app/app/models/user.rb": _file("class User < ApplicationRecord\n  belongs_to :account\nend\n"),
        "/app/app/views": _dir(),
        "/app/bin": _dir(),
        "/app/bin/rails": _exec('#!/usr/bin/env ruby\nAPP_PATH = File.expand_path("../config/application", __dir__)\n'
                                'require_relative "../config/boot"\nrequire "rails/commands"\n'),
        "/app/bin/rake": _exec('#!/usr/bin/env ruby\nrequire_relative "../config/boot"\nrequire "rake"\n'
                               'Rake.application.run\n'),
        "/app/bin/setup": _exec(),
        "/app/config": _dir(),
        "/app/config/application.rb": _file('require_relative "boot"\nrequire "rails/all"\n\n'
                                            f'module {app.title().replace("-", "")}\n  class Application < '
                                            'Rails::Application\n    config.load_defaults 7.1\n  end\nend\n'),
        "/app/config/database.yml": _file("production:\n  adapter: postgresql\n  url: <%= ENV[\"DATABASE_URL\"] %>\n"
                                          "  pool: <%= ENV.fetch(\"RAILS_MAX_THREADS\", 5) %>\n"),
        "/app/config/puma.rb": _file('port ENV.fetch("PORT", 3000)\nworkers ENV.fetch("WEB_CONCURRENCY", 2)\n'),
        "/app/config/routes.rb": _file('Rails.application.routes.draw do\n  get "healthz", to: "health#show"\nend\n'),
        "/app/config.ru": _file('require_relative "config/environment"\n\nrun Rails.application\n'),
        "/app/convox.yml": _file(manifest),
        "/app/db": _dir(),
        "/app/db/migrate": _dir(),
        "/app/db/schema.rb": _file("ActiveRecord::Schema[7.1].define(version: 2024_10_30_091500) do\n"
                                   "  create_table \"accounts\"\n  create_table \"orders\"\n  create_table \"users\"\n"
                                   "end\n"),
        "/app/lib": _dir(),
        "/app/log": _dir(),
        "/app/log/production.log": Node("file", "", 0),
        "/app/package.json": _file('{\n  "name": "%s",\n  "private": true,\n  "dependencies": {\n'
                                   '    "@hotwired/turbo-rails": "^8.0.4"\n  }\n}\n' % app),
        "/app/public": _dir(),
        "/app/public/robots.txt": _file("User-agent: *\nDisallow:\n"),
        "/app/tmp": _dir(),
        "/app/.dockerignore": _file(".git\nlog/*\ntmp/*\n"),
        "/app/.ruby-version": _file("3.2.2\n"),
        "/home": _dir(),
        "/home/app": _dir(),
        "/home/app/.bashrc": _file("# ~/.bashrc\n"),
        "/etc": _dir(),
        "/etc/os-release": _file('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
                                 'VERSION_ID="12"\nVERSION="12 (bookworm)"\nID=debian\n'),
        "/tmp": _dir(),
        "/usr": _dir(),
        "/usr/local": _dir(),
        "/usr/local/bin": _dir(),
        "/usr/local/bin/ruby": _exec(),
        "/usr/local/bin/bundle": _exec(),
        "/bin": _dir(),
        "/bin/bash": Node("exec", "", 1265648),
        "/bin/sh": Node("link", "", 4),
    }


def process_profile(*, app: str, service: str, pid: str, release: str, rack: str, env: dict[str, str],
                    seed: int = 1, now: Callable[[], dt.datetime] | None = None) -> Profile:
    """A shell inside one of an app's processes (a container of the rails-style demo image)."""
    variables = {
        "HOSTNAME": pid,
        "HOME": "/home/app",
        "PWD": "/app",
        "LANG": "C.UTF-8",
        "PATH": "/usr/local/bundle/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "RUBY_VERSION": "3.2.2",
        "APP": app,
        "RACK": rack,
        "RELEASE": release,
        "SERVICE": service,
        "PORT": "3000",
    }
    for key in sorted(env):
        variables[key] = env[key]
    files = _rails_tree(app)
    files["/etc/hostname"] = _file(pid + "\n")
    return Profile(user="app", host=pid, home="/home/app", cwd="/app", env=variables, files=files,
                   seed=seed, now=now or (lambda: dt.datetime.now(dt.timezone.utc)), label=app,
                   repl_target=f"{app}_production")


def instance_profile(*, instance: str, private_ip: str, seed: int = 1,
                     now: Callable[[], dt.datetime] | None = None) -> Profile:
    """A shell on one of the rack's instances (Amazon Linux 2, as ec2-user)."""
    host = "ip-" + private_ip.replace(".", "-")
    files = {
        "/home": _dir(),
        "/home/ec2-user": _dir(),
        "/home/ec2-user/.bash_logout": _file("# ~/.bash_logout\n"),
        "/home/ec2-user/.bash_profile": _file("# .bash_profile\n\nif [ -f ~/.bashrc ]; then\n\t. ~/.bashrc\nfi\n"),
        "/home/ec2-user/.bashrc": _file("# .bashrc\n\nif [ -f /etc/bashrc ]; then\n\t. /etc/bashrc\nfi\n"),
        "/home/ec2-user/.ssh": _dir(),
        "/home/ec2-user/.ssh/authorized_keys": _file("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC convox\n"),
        "/etc": _dir(),
        "/etc/hostname": _file(host + ".ec2.internal\n"),
        "/etc/os-release": _file('NAME="Amazon Linux"\nVERSION="2"\nID="amzn"\nPRETTY_NAME="Amazon Linux 2"\n'),
        "/var": _dir(),
        "/var/log": _dir(),
        "/var/log/messages": Node("file", "", 2318842),
        "/tmp": _dir(),
        "/bin": _dir(),
        "/bin/bash": Node("exec", "", 1150584),
    }
    variables = {
        "HOSTNAME": host + ".ec2.internal",
        "HOME": "/home/ec2-user",
        "USER": "ec2-user",
        "LANG": "en_US.UTF-8",
        "SHELL": "/bin/bash",
        "PATH": "/usr/local/bin:/usr/bin:/usr/local/sbin:/usr/sbin:/home/ec2-user/.local/bin:/home/ec2-user/bin",
        "INSTANCE_ID": instance,
    }
    return Profile(user="ec2-user", host=host, home="/home/ec2-user", cwd="/home/ec2-user", env=variables,
                   files=files, prompt_style="amazon", seed=seed,
                   now=now or (lambda: dt.datetime.now(dt.timezone.utc)), label=instance,
                   uname="Linux {host}.ec2.internal 5.10.225-213.878.amzn2.x86_64 #1 SMP Tue Oct 8 16:47:33 UTC "
                         "2024 x86_64 x86_64 x86_64 GNU/Linux")


def resource_profile(*, app: str, resource: str, kind: str, url: str = "", seed: int = 1,
                     now: Callable[[], dt.datetime] | None = None) -> Profile:
    """What `convox resources console` talks to: a database client attached to an app's resource, started with the
    resource's URL (and so its password) in its environment, as the rack starts it."""
    env = {"DATABASE_URL": url} if url else {}
    password = urllib.parse.urlsplit(url).password if url else None
    if password:
        env["REDISCLI_AUTH" if kind == "redis" else "PGPASSWORD"] = urllib.parse.unquote(password)
    return Profile(user="app", host=f"{resource}.{app}", home="/", cwd="/", env=env, files={"/": _dir()},
                   seed=seed, now=now or (lambda: dt.datetime.now(dt.timezone.utc)), label=app,
                   repl_target=resource if kind != "postgres" else f"{app}_{resource}")


# --- command-line parsing -----------------------------------------------------------------------------------------

_OPERATORS = ("&&", "||", ";", "|")


def _tokenize(line: str, variables: dict[str, str], status: int) -> list[str | tuple[str]]:
    """Words (str) and operators (1-tuples) of a command line, with quotes removed and $VARS expanded."""
    out: list[str | tuple[str]] = []
    word: list[str] = []
    in_word = False
    i = 0
    n = len(line)

    def expand(start: int) -> tuple[str, int]:
        # line[start] == "$"
        if start + 1 < n and line[start + 1] == "?":
            return str(status), start + 2
        if start + 1 < n and line[start + 1] == "{":
            end = line.find("}", start + 2)
            if end != -1:
                return variables.get(line[start + 2:end], ""), end + 1
        m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", line[start + 1:])
        if m:
            return variables.get(m.group(0), ""), start + 1 + m.end()
        return "$", start + 1

    while i < n:
        c = line[i]
        if c in " \t":
            if in_word:
                out.append("".join(word))
                word, in_word = [], False
            i += 1
        elif line.startswith(("&&", "||"), i):
            if in_word:
                out.append("".join(word))
                word, in_word = [], False
            out.append((line[i:i + 2],))
            i += 2
        elif c in ";|":
            if in_word:
                out.append("".join(word))
                word, in_word = [], False
            out.append((c,))
            i += 1
        elif c == "#" and not in_word:
            break
        elif c == "'":
            end = line.find("'", i + 1)
            end = n if end == -1 else end
            word.append(line[i + 1:end])
            in_word = True
            i = end + 1
        elif c == '"':
            i += 1
            in_word = True
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n and line[i + 1] in '"\\$`':
                    word.append(line[i + 1])
                    i += 2
                elif line[i] == "$":
                    text, i = expand(i)
                    word.append(text)
                else:
                    word.append(line[i])
                    i += 1
            i += 1
        elif c == "\\" and i + 1 < n:
            word.append(line[i + 1])
            in_word = True
            i += 2
        elif c == "$":
            text, i = expand(i)
            word.append(text)
            in_word = True
        else:
            word.append(c)
            in_word = True
            i += 1
    if in_word:
        out.append("".join(word))
    return out


def _pipelines(tokens: list[str | tuple[str]]) -> list[tuple[str, list[list[str]]]]:
    """[(connector, [argv, argv, ...]), ...]: each pipeline with the operator that precedes it (";" for the first)."""
    result: list[tuple[str, list[list[str]]]] = []
    connector = ";"
    pipeline: list[list[str]] = [[]]
    for token in tokens:
        if isinstance(token, tuple):
            op = token[0]
            if op == "|":
                pipeline.append([])
                continue
            result.append((connector, pipeline))
            connector, pipeline = op, [[]]
        else:
            pipeline[-1].append(token)
    result.append((connector, pipeline))
    return [(conn, [argv for argv in pipe if argv]) for conn, pipe in result if any(pipe)]


# --- REPLs --------------------------------------------------------------------------------------------------------

REPL_COMMANDS = ("rails console", "rails c", "psql", "redis-cli", "irb", "python", "python3", "node")


def _stable_int(*parts: object, low: int = 1, high: int = 99_999) -> int:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return low + int.from_bytes(digest[:8], "big") % (high - low + 1)


_ARITH = re.compile(r"^[\d\s+\-*/().]+$")


def _arith(expr: str) -> str | None:
    if not _ARITH.match(expr) or not re.search(r"\d", expr):
        return None
    import ast
    import operator as op

    ops = {ast.Add: op.add, ast.Sub: op.sub, ast.Mult: op.mul, ast.Div: op.truediv, ast.USub: op.neg,
           ast.UAdd: op.pos}

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in ops:
            return ops[type(node.op)](ev(node.operand))
        raise ValueError(expr)

    try:
        value = ev(ast.parse(expr.strip(), mode="eval"))
    except (ValueError, SyntaxError, ZeroDivisionError, TypeError):
        return None
    if isinstance(value, float) and value.is_integer() and "/" not in expr:
        value = int(value)
    return str(value)


class _Repl:
    """A sub-interpreter with its own prompt; handle() returns output text (\\n newlines) and whether it ended."""

    name = ""

    def __init__(self, profile: Profile):
        self.profile = profile

    def banner(self) -> str:
        return ""

    def prompt(self) -> str:
        return ""

    def handle(self, line: str) -> tuple[str, bool]:
        raise NotImplementedError

    def on_eof(self) -> str:
        return "\n"


class _RailsConsole(_Repl):
    name = "rails"

    def __init__(self, profile: Profile):
        super().__init__(profile)
        self.n = 1

    def banner(self) -> str:
        return "Loading production environment (Rails 7.1.3)\n"

    def prompt(self) -> str:
        return f"irb(main):{self.n:03d}:0> "

    def handle(self, line: str) -> tuple[str, bool]:
        expr = line.strip()
        if not expr:
            return "", False
        self.n += 1
        if expr in ("exit", "quit", "exit!"):
            return "", True
        p = self.profile
        m = re.fullmatch(r"([A-Z][A-Za-z0-9_:]*)\.(count|size|length)", expr)
        if m:
            return f"=> {_stable_int(p.seed, p.label, m.group(1), high=250_000)}\n", False
        m = re.fullmatch(r"([A-Z][A-Za-z0-9_:]*)\.(first|last)", expr)
        if m:
            row = 1 if m.group(2) == "first" else _stable_int(p.seed, p.label, m.group(1), high=250_000)
            return (f"=> #<{m.group(1)} id: {row}, created_at: \"2024-0{1 + row % 9}-1{row % 10} "
                    f"0{row % 10}:1{row % 6}:3{row % 10}.{row % 1000:03d}000000 +0000\">\n"), False
        if expr in ("ENV", "ENV.to_h"):
            pairs = ", ".join(f'"{k}"=>"{v}"' for k, v in sorted(p.env.items()))
            return f"=> {{{pairs}}}\n", False
        if expr == "Rails.env":
            return '=> "production"\n', False
        if expr in ("Rails.version", "Rails::VERSION::STRING"):
            return '=> "7.1.3"\n', False
        m = re.fullmatch(r"ENV\[[\"']([A-Za-z_][A-Za-z0-9_]*)[\"']\]", expr)
        if m:
            value = p.env.get(m.group(1))
            return (f'=> "{value}"\n' if value is not None else "=> nil\n"), False
        m = re.fullmatch(r"puts\s+(.*)", expr)
        if m:
            return f"{m.group(1).strip(chr(34) + chr(39))}\n=> nil\n", False
        m = re.fullmatch(r"([\"'])(.*)\1", expr)
        if m:
            return f'=> "{m.group(2)}"\n', False
        value = _arith(expr)
        if value is not None:
            return f"=> {value}\n", False
        m = re.match(r"([A-Z][A-Za-z0-9_]*)", expr)
        if m and m.group(1) not in ("User", "Account", "Order", "ApplicationRecord", "Rails", "ENV"):
            return (f"(irb):{self.n - 1}:in `<main>': uninitialized constant {m.group(1)} (NameError)\n"), False
        return "=> nil\n", False

    def on_eof(self) -> str:
        return "\n"


class _Psql(_Repl):
    name = "psql"

    def __init__(self, profile: Profile):
        super().__init__(profile)
        self.db = profile.repl_target or "app"
        self.buffer = ""

    def banner(self) -> str:
        return 'psql (15.4 (Debian 15.4-1.pgdg120+1), server 15.4)\nSSL connection (protocol: TLSv1.3)\n' \
               'Type "help" for help.\n\n'

    def prompt(self) -> str:
        return f"{self.db}{'->' if self.buffer else '=>'} "

    def _table(self, headers: list[str], rows: list[list[str]]) -> str:
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
        line = " " + " | ".join(h.center(w) for h, w in zip(headers, widths)) + "\n"
        sep = "-" + "-+-".join("-" * w for w in widths) + "-\n"
        body = "".join(" " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + "\n" for r in rows)
        count = f"({len(rows)} row{'s' if len(rows) != 1 else ''})\n\n"
        return line + sep + body + count

    def handle(self, line: str) -> tuple[str, bool]:
        text = line.strip()
        if not self.buffer:
            if text in ("\\q", "quit", "exit", "\\quit"):
                return "", True
            if text == "help":
                return ('You are using psql, the command-line interface to PostgreSQL.\nType:  \\copyright for '
                        'distribution terms\n       \\h for help with SQL commands\n       \\? for help with psql '
                        'commands\n       \\g or terminate with semicolon to execute query\n'
                        '       \\q to quit\n'), False
            if text in ("\\dt", "\\d"):
                rows = [["public", t, "table", "app"] for t in ("accounts", "ar_internal_metadata", "orders",
                                                                  "schema_migrations", "users")]
                return "          List of relations\n" + self._table(["Schema", "Name", "Type", "Owner"], rows), \
                    False
            if text == "\\conninfo":
                return (f'You are connected to database "{self.db}" as user "app" on host '
                        f'"{self.profile.host}" at port "5432".\n'), False
            if text.startswith("\\!"):
                return _shell_escape(text[2:], self.profile.env), False
            if text.startswith("\\"):
                return f"invalid command {text.split()[0]}\nTry \\? for help.\n", False
        if not text:
            return "", False
        self.buffer = (self.buffer + " " + text).strip()
        if not self.buffer.endswith(";"):
            return "", False
        sql, self.buffer = self.buffer.rstrip(";").strip(), ""
        lower = sql.lower()
        m = re.fullmatch(r"select\s+count\(\*\)\s+from\s+([a-z_][a-z0-9_]*)", lower)
        if m:
            n = _stable_int(self.profile.seed, self.profile.label, m.group(1).rstrip("s").title(), high=250_000)
            return self._table(["count"], [[str(n).rjust(6)]]), False
        if lower in ("select 1", "select version()"):
            if lower == "select 1":
                return self._table(["?column?"], [["       1"]]), False
            return self._table(["version"], [["PostgreSQL 15.4 on x86_64-pc-linux-gnu, compiled by gcc"]]), False
        if lower.startswith("select"):
            return self._table(["id"], []), False
        if lower.startswith(("update", "delete", "insert")):
            verb = lower.split()[0].upper()
            return (f"{verb} 0 0\n" if verb == "INSERT" else f"{verb} 0\n"), False
        word = sql.split()[0]
        return (f'ERROR:  syntax error at or near "{word}"\nLINE 1: {sql};\n        ^\n'), False

    def on_eof(self) -> str:
        return "\\q\n"


def _shell_escape(command: str, env: dict[str, str]) -> str:
    """psql's `\\! command`: the few commands a person runs there to look around (echo, env, printenv)."""
    words = [w for w in _tokenize(command, env, 0) if isinstance(w, str)]
    if not words:
        return ""
    if words[0] == "echo":
        return " ".join(words[1:]) + "\n"
    if words[0] in ("env", "printenv"):
        if len(words) > 1:
            return "".join(env[w] + "\n" for w in words[1:] if w in env)
        return "".join(f"{k}={v}\n" for k, v in env.items())
    return f"sh: 1: {words[0]}: not found\n"


class _Redis(_Repl):
    name = "redis"

    def __init__(self, profile: Profile):
        super().__init__(profile)
        self.data: dict[str, str] = {"sidekiq:stats:processed": str(_stable_int(profile.seed, "processed")),
                                     "sidekiq:stats:failed": str(_stable_int(profile.seed, "failed", high=999))}

    def prompt(self) -> str:
        return f"{self.profile.repl_target or 'redis'}:6379> "

    def handle(self, line: str) -> tuple[str, bool]:
        parts = line.split()
        if not parts:
            return "", False
        cmd, args = parts[0].upper(), parts[1:]
        if cmd in ("QUIT", "EXIT"):
            return "", True
        if cmd == "PING":
            return "PONG\n", False
        if cmd == "GET" and len(args) == 1:
            value = self.data.get(args[0])
            return (f'"{value}"\n' if value is not None else "(nil)\n"), False
        if cmd == "SET" and len(args) >= 2:
            self.data[args[0]] = " ".join(args[1:])
            return "OK\n", False
        if cmd == "DEL" and args:
            n = sum(1 for a in args if self.data.pop(a, None) is not None)
            return f"(integer) {n}\n", False
        if cmd == "KEYS":
            keys = sorted(self.data)
            return "".join(f'{i}) "{k}"\n' for i, k in enumerate(keys, 1)) or "(empty array)\n", False
        if cmd == "DBSIZE":
            return f"(integer) {len(self.data)}\n", False
        if cmd == "CONFIG" and [a.upper() for a in args[:1]] == ["GET"] and len(args) == 2:
            if args[1].lower() == "requirepass":
                return f'1) "requirepass"\n2) "{self.profile.env.get("REDISCLI_AUTH", "")}"\n', False
            return "(empty array)\n", False
        if cmd == "INFO":
            return "# Server\nredis_version:7.1.0\nredis_mode:standalone\nuptime_in_days:41\n", False
        return f"(error) ERR unknown command '{parts[0]}', with args beginning with: {' '.join(args)}\n", False


# --- the shell ----------------------------------------------------------------------------------------------------

class Session:
    """One interactive or one-shot session over a Profile. See the module docstring."""

    def __init__(self, profile: Profile, *, tty: bool = True, width: int = 80, height: int = 24,
                 start: list[str] | None = None):
        """`start` is the command the session runs (None or a shell: an interactive shell; a REPL command: that
        REPL, and the session ends when it does)."""
        self.p = profile
        self.tty = tty
        self.width = width if width and width > 10 else 80
        self.height = height if height and height > 2 else 24
        self.cwd = profile.cwd
        self.env = dict(profile.env)
        self.status = 0
        self.exit_code: int | None = None
        self.history: list[str] = []
        self._hist_pos = 0
        self._line: list[str] = []
        self._esc = ""  # a partial escape sequence
        self._last_cr = False
        self._repls: list[_Repl] = []
        self._shell = True  # False: the session is only the REPL it started with
        self._pending_repl: _Repl | None = None
        self._interactive = False  # start() was called: an interactive session (bash prints "exit" on exit)
        argv = list(start or [])
        if argv and _is_shell(argv) is False:
            repl = self._repl_for(argv)
            if repl is None:
                raise ValueError(f"not an interactive command: {argv!r}")
            self._repls.append(repl)
            self._shell = False

    # -- public API

    @staticmethod
    def is_interactive(argv: list[str]) -> bool:
        """Whether `argv` (an exec Command) opens an interactive session rather than running once."""
        if not argv:
            return True
        shell = _is_shell(argv)
        if shell is True:
            return True
        if shell is None:
            return False  # sh -c '…' runs once
        return _repl_name(argv) is not None

    def start(self) -> str:
        self._interactive = True
        out = ""
        if self._repls:
            out += self._repls[-1].banner()
        return self._nl(out) + self._prompt()

    def feed(self, data: str) -> str:
        if self.exit_code is not None:
            return ""
        if not self.tty:
            return self._feed_lines(data)
        out: list[str] = []
        for ch in data:
            if self.exit_code is not None:
                break
            if self._esc:
                self._esc += ch
                if len(self._esc) == 2 and ch not in "[O":
                    self._esc = ""  # Alt+key: ignored
                elif len(self._esc) >= 3 and (ch.isalpha() or ch == "~") or len(self._esc) > 8:
                    out.append(self._escape(self._esc))
                    self._esc = ""
                continue
            if ch == "\n" and self._last_cr:
                self._last_cr = False
                continue
            self._last_cr = ch == "\r"
            if ch in "\r\n":
                line = "".join(self._line)
                self._line = []
                out.append("\r\n")
                out.append(self._run_line(line))
                if self.exit_code is None:
                    out.append(self._prompt())
            elif ch in "\x7f\x08":
                if self._line:
                    self._line.pop()
                    out.append("\b \b")
            elif ch == "\x03":
                self._line = []
                self.status = 130
                out.append("^C\r\n" + self._prompt())
            elif ch == "\x04":
                if not self._line:
                    out.append(self._ctrl_d())
            elif ch == "\x15":
                out.append("\b \b" * len(self._line))
                self._line = []
            elif ch == "\x0c":
                out.append("\x1b[H\x1b[2J" + self._prompt() + "".join(self._line))
            elif ch == "\x1b":
                self._esc = ch
            elif ch == "\t":
                out.append("\x07")
            elif ch >= " ":
                self._line.append(ch)
                out.append(ch)
        return "".join(out)

    def eof(self) -> str:
        """stdin ended: what a shell (or REPL) prints as it exits; sets exit_code."""
        if self.exit_code is not None:
            return ""
        if not self.tty:
            out = ""
            if self._line:
                line, self._line = "".join(self._line), []
                out = self._run_line(line)
            while self.exit_code is None:
                out += self._ctrl_d(quiet=True)
            return out
        out = ""
        while self.exit_code is None:
            out += self._ctrl_d()
        return out

    def run(self, argv: list[str]) -> tuple[str, int]:
        """Run one non-interactive command; (output with the session's newlines, exit code)."""
        if not argv:
            return "", 0
        if _is_shell(argv) is None:  # sh -c '…'
            script = argv[argv.index("-c") + 1] if "-c" in argv and argv.index("-c") + 1 < len(argv) else ""
            return self.run_line(script)
        self._shell = False  # no REPL can open here: there is nobody to type into it
        out, code = self._exec_pipeline([argv], stdin="")
        return self._nl(out), code

    def run_line(self, line: str) -> tuple[str, int]:
        """Run one command line (`sh -c '…'`); (output, exit code)."""
        text = self._run_line(line)
        return text, (self.exit_code if self.exit_code is not None else self.status)

    # -- internals

    def _nl(self, text: str) -> str:
        return text.replace("\r\n", "\n").replace("\n", "\r\n") if self.tty else text

    def _prompt(self) -> str:
        if not self.tty or self.exit_code is not None:
            return ""
        if self._repls:
            return self._repls[-1].prompt()
        p = self.p
        shown = self.cwd
        if shown == p.home:
            shown = "~"
        elif shown.startswith(p.home + "/"):
            shown = "~" + shown[len(p.home):]
        if p.prompt_style == "amazon":
            base = "~" if shown == "~" else shown.rsplit("/", 1)[-1] or "/"
            return f"[{p.user}@{p.host} {base}]$ "
        return f"\x1b[32m{p.user}@{p.host}\x1b[0m:\x1b[34m{shown}\x1b[0m$ "

    def _escape(self, seq: str) -> str:
        if seq in ("\x1b[A", "\x1bOA", "\x1b[B", "\x1bOB") and self.history:
            if seq[-1] == "A":
                self._hist_pos = max(0, self._hist_pos - 1)
            else:
                self._hist_pos = min(len(self.history), self._hist_pos + 1)
            entry = self.history[self._hist_pos] if self._hist_pos < len(self.history) else ""
            erase = "\b \b" * len(self._line)
            self._line = list(entry)
            return erase + entry
        return ""

    def _ctrl_d(self, quiet: bool = False) -> str:
        if self._repls:
            repl = self._repls.pop()
            text = "" if quiet else repl.on_eof()
            if not self._repls and not self._shell:
                self.exit_code = 0
                return self._nl(text)
            if not self._repls:
                self.status = 0
            return self._nl(text) + self._prompt()
        self.exit_code = self.status
        return "" if quiet or not self.tty else "exit\r\n"

    def _feed_lines(self, data: str) -> str:
        out = []
        for ch in data:
            if self.exit_code is not None:
                break
            if ch == "\n":
                line, self._line = "".join(self._line), []
                out.append(self._run_line(line))
            elif ch != "\r":
                self._line.append(ch)
        return "".join(out)

    def _run_line(self, line: str) -> str:
        """Run one line in the current mode; output uses the session's newlines."""
        if self._repls:
            repl = self._repls[-1]
            text, ended = repl.handle(line)
            if ended:
                self._repls.pop()
                if not self._repls and not self._shell:
                    self.exit_code = 0
                self.status = 0
            return self._nl(text)
        if line.strip():
            self.history.append(line)
        self._hist_pos = len(self.history)
        tokens = _tokenize(line, self.env, self.status)
        out: list[str] = []
        for connector, pipeline in _pipelines(tokens):
            if connector == "&&" and self.status != 0:
                continue
            if connector == "||" and self.status == 0:
                continue
            text, code = self._exec_pipeline(pipeline, stdin="")
            out.append(text)
            self.status = code
            if self.exit_code is not None or self._pending_repl is not None:
                break
        if self._pending_repl is not None:
            repl, self._pending_repl = self._pending_repl, None
            self._repls.append(repl)
            out.append(repl.banner())
        return self._nl("".join(out))

    def _exec_pipeline(self, pipeline: list[list[str]], stdin: str) -> tuple[str, int]:
        data, code = stdin, 0
        for i, argv in enumerate(pipeline):
            data, code = self._command(argv, data, piped=i < len(pipeline) - 1)
            if self.exit_code is not None:
                break
        return data, code

    def _repl_for(self, argv: list[str]) -> _Repl | None:
        name = _repl_name(argv)
        if name == "rails":
            return _RailsConsole(self.p)
        if name == "psql":
            return _Psql(self.p)
        if name == "redis":
            return _Redis(self.p)
        return None

    # -- commands: each returns (output with \n newlines, exit code)

    def _command(self, argv: list[str], stdin: str, piped: bool = False) -> tuple[str, int]:
        name, args = argv[0], argv[1:]
        if "=" in name and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", name) and not args:
            key, value = name.split("=", 1)
            self.env[key] = value
            return "", 0
        base = name.rsplit("/", 1)[-1] if name.startswith(("/usr/", "/bin/", "/usr/local/")) else name
        base = base[2:] if base.startswith("./") else base
        if base in ("bash", "sh") and args[:1] == ["-c"] and len(args) >= 2:
            return self._run_line(args[1]).replace("\r\n", "\n"), self.status
        if base in ("bash", "sh") and not args:
            return "", 0  # a nested shell: this one carries on
        if _repl_name(argv) is not None:
            if self.tty and self._shell and self._interactive and not piped:
                self._pending_repl = self._repl_for(argv)
                return "", 0
            return (f"{name}: stdin is not a terminal\n" if name != "psql" else
                    "psql: error: connection to server failed: stdin is not a terminal\n"), 1
        if base in ("bin/rails", "rails", "bundle", "rake", "bin/rake") and args:
            return self._rails_task(base, args)
        handler = getattr(self, "_c_" + base.replace("-", "_"), None) if re.fullmatch(r"[a-z][a-z0-9_-]*", base) \
            else None
        if handler is None:
            if name.startswith(("./", "/", "bin/")):
                path = self._abs(name)
                node = self.p.files.get(path)
                if node is None:
                    return f"bash: {name}: No such file or directory\n", 127
                if node.kind == "dir":
                    return f"bash: {name}: Is a directory\n", 126
                if node.kind != "exec":
                    return f"bash: {name}: Permission denied\n", 126
                return "", 0
            return f"bash: {name}: command not found\n", 127
        return handler(args, stdin)

    def _abs(self, path: str) -> str:
        if path == "~" or path.startswith("~/"):
            path = self.p.home + path[1:]
        if not path.startswith("/"):
            path = (self.cwd.rstrip("/") + "/" + path) if path else self.cwd
        parts: list[str] = []
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if parts:
                    parts.pop()
            else:
                parts.append(part)
        return "/" + "/".join(parts)

    def _node(self, path: str) -> Node | None:
        if path == "/":
            return Node("dir")
        node = self.p.files.get(path)
        if node is None and any(k.startswith(path + "/") for k in self.p.files):
            return Node("dir")
        return node

    def _children(self, path: str, hidden: bool) -> list[tuple[str, Node]]:
        prefix = path.rstrip("/") + "/"
        names: dict[str, Node] = {}
        for key, node in self.p.files.items():
            if key.startswith(prefix) and key != path:
                rest = key[len(prefix):]
                first = rest.split("/", 1)[0]
                if "/" in rest:
                    names.setdefault(first, Node("dir"))
                else:
                    names[first] = node
        items = sorted(names.items())  # LANG=C.UTF-8: byte order
        if hidden:
            items = [(".", Node("dir")), ("..", Node("dir"))] + items
        else:
            items = [kv for kv in items if not kv[0].startswith(".")]
        return items

    def _paint(self, name: str, node: Node, colour: bool) -> str:
        if not colour:
            return name
        code = {"dir": DIR_COLOUR, "exec": EXEC_COLOUR, "link": LINK_COLOUR}.get(node.kind)
        return f"{code}{name}{RESET}" if code else name

    def _columns(self, entries: list[tuple[str, Node]], colour: bool) -> str:
        if not entries:
            return ""
        if not self.tty:
            return "".join(self._paint(n, node, colour) + "\n" for n, node in entries)
        names = [n for n, _ in entries]
        for cols in range(len(names), 0, -1):
            rows = -(-len(names) // cols)
            cols = -(-len(names) // rows)
            widths = [max(len(n) for n in names[c * rows:(c + 1) * rows]) for c in range(cols)]
            if sum(widths) + 2 * (cols - 1) <= self.width or cols == 1:
                break
        lines = []
        for r in range(rows):
            cells = []
            for c in range(cols):
                i = c * rows + r
                if i >= len(names):
                    continue
                name, node = entries[i]
                cell = self._paint(name, node, colour)
                last = c == cols - 1 or (c + 1) * rows + r >= len(names)
                cells.append(cell if last else cell + " " * (widths[c] - len(name) + 2))
            lines.append("".join(cells))
        return "\n".join(lines) + "\n"

    def _long(self, entries: list[tuple[str, Node]], colour: bool, show_total: bool) -> str:
        out = []
        if show_total:
            out.append(f"total {sum(max(4, node.size // 1024 + 4) for _, node in entries)}")
        now = self.p.now()
        stamp = f"{now:%b} {now.day:>2} {now:%H:%M}"
        for name, node in entries:
            mode = {"dir": "drwxr-xr-x", "exec": "-rwxr-xr-x", "link": "lrwxrwxrwx"}.get(node.kind, "-rw-r--r--")
            owner = self.p.user if not name.startswith(("/bin", "/usr")) else "root"
            size = node.size if node.kind != "link" else 4
            target = " -> bash" if node.kind == "link" else ""
            out.append(f"{mode} 1 {owner:<4} {owner:<4} {size:>7} {stamp} {self._paint(name, node, colour)}{target}")
        return "\n".join(out) + "\n"

    def _c_ls(self, args: list[str], stdin: str) -> tuple[str, int]:
        flags, paths, colour = set(), [], False
        for a in args:
            if a in ("--color", "--colour", "--color=always", "--color=auto", "--colour=always"):
                colour = self.tty or a.endswith("always")
            elif a.startswith("--color=") or a.startswith("--colour="):
                colour = False
            elif a.startswith("-") and len(a) > 1:
                flags.update(a[1:])
            else:
                paths.append(a)
        long, hidden = "l" in flags, "a" in flags or "A" in flags
        out, code = [], 0
        targets = paths or ["."]
        for i, target in enumerate(targets):
            path = self._abs(target)
            node = self._node(path)
            if node is None:
                out.append(f"ls: cannot access '{target}': No such file or directory\n")
                code = 2
                continue
            if node.kind != "dir":
                entry = [(target, node)]
                out.append(self._long(entry, colour, False) if long else self._columns(entry, colour))
                continue
            if len(targets) > 1:
                out.append(("\n" if i else "") + f"{target}:\n")
            entries = self._children(path, hidden)
            out.append(self._long(entries, colour, True) if long else self._columns(entries, colour))
        return "".join(out), code

    def _c_dir(self, args, stdin):
        return self._c_ls(args, stdin)

    def _c_cd(self, args, stdin):
        target = args[0] if args else self.p.home
        if target == "-":
            target = self.env.get("OLDPWD", self.cwd)
        path = self._abs(target)
        node = self._node(path)
        if node is None:
            return f"bash: cd: {target}: No such file or directory\n", 1
        if node.kind != "dir":
            return f"bash: cd: {target}: Not a directory\n", 1
        self.env["OLDPWD"], self.cwd = self.cwd, path
        self.env["PWD"] = path
        return "", 0

    def _c_pwd(self, args, stdin):
        return self.cwd + "\n", 0

    def _c_echo(self, args, stdin):
        newline = True
        if args[:1] == ["-n"]:
            newline, args = False, args[1:]
        return " ".join(args) + ("\n" if newline else ""), 0

    def _c_printf(self, args, stdin):
        if not args:
            return "printf: usage: printf [-v var] format [arguments]\n", 2
        fmt = args[0].replace("\\n", "\n").replace("\\t", "\t")
        try:
            return fmt.replace("%s", "{}").format(*args[1:]) if "%s" in fmt else fmt, 0
        except IndexError:
            return fmt.replace("%s", ""), 0

    def _c_env(self, args, stdin):
        return "".join(f"{k}={v}\n" for k, v in self.env.items()), 0

    def _c_printenv(self, args, stdin):
        if not args:
            return self._c_env(args, stdin)
        values = [self.env[a] for a in args if a in self.env]
        return "".join(v + "\n" for v in values), 0 if len(values) == len(args) else 1

    def _c_export(self, args, stdin):
        for a in args:
            if "=" in a:
                k, v = a.split("=", 1)
                self.env[k] = v
        if not args:
            return "".join(f'declare -x {k}="{v}"\n' for k, v in sorted(self.env.items())), 0
        return "", 0

    def _c_unset(self, args, stdin):
        for a in args:
            self.env.pop(a, None)
        return "", 0

    def _read(self, target: str, command: str) -> tuple[str | None, str]:
        path = self._abs(target)
        node = self._node(path)
        if node is None:
            return None, f"{command}: {target}: No such file or directory\n"
        if node.kind == "dir":
            return None, f"{command}: {target}: Is a directory\n"
        if not node.content and node.size:
            filler = "".join(f"{i:>6}  {'#' * (i % 40)}\n" for i in range(1, 21))
            return filler, ""
        return node.content, ""

    def _c_cat(self, args, stdin):
        if not args:
            return stdin, 0
        out, code = [], 0
        for a in args:
            text, err = self._read(a, "cat")
            if text is None:
                out.append(err)
                code = 1
            else:
                out.append(text)
        return "".join(out), code

    def _count_arg(self, args: list[str], default: int = 10) -> tuple[int, list[str]]:
        n, rest, i = default, [], 0
        while i < len(args):
            a = args[i]
            if a == "-n" and i + 1 < len(args):
                n = int(args[i + 1]) if args[i + 1].lstrip("-").isdigit() else default
                i += 2
                continue
            if re.fullmatch(r"-\d+", a):
                n = int(a[1:])
            else:
                rest.append(a)
            i += 1
        return abs(n), rest

    def _c_head(self, args, stdin):
        n, files = self._count_arg(args)
        text = stdin
        if files:
            text, err = self._read(files[0], "head")
            if text is None:
                return err, 1
        return "".join(text.splitlines(keepends=True)[:n]), 0

    def _c_tail(self, args, stdin):
        n, files = self._count_arg(args)
        text = stdin
        if files:
            text, err = self._read(files[0], "tail")
            if text is None:
                return err, 1
        lines = text.splitlines(keepends=True)
        return "".join(lines[-n:] if n else []), 0

    def _c_grep(self, args, stdin):
        flags = {a for a in args if a.startswith("-")}
        rest = [a for a in args if not a.startswith("-")]
        if not rest:
            return "Usage: grep [OPTION]... PATTERNS [FILE]...\n", 2
        pattern, files = rest[0], rest[1:]
        text = stdin
        if files:
            text, err = self._read(files[0], "grep")
            if text is None:
                return "grep: " + err.split(": ", 1)[1], 2
        try:
            rx = re.compile(pattern, re.IGNORECASE if "-i" in flags else 0)
        except re.error:
            rx = re.compile(re.escape(pattern))
        lines = [ln for ln in text.splitlines(keepends=True) if bool(rx.search(ln)) != ("-v" in flags)]
        if "-c" in flags:
            return f"{len(lines)}\n", 0 if lines else 1
        return "".join(ln if ln.endswith("\n") else ln + "\n" for ln in lines), 0 if lines else 1

    def _c_wc(self, args, stdin):
        files = [a for a in args if not a.startswith("-")]
        text = stdin
        if files:
            text, err = self._read(files[0], "wc")
            if text is None:
                return err, 1
        counts = {"-l": text.count("\n"), "-w": len(text.split()), "-c": len(text.encode())}
        chosen = [f for f in args if f in counts] or ["-l", "-w", "-c"]
        suffix = f" {files[0]}" if files else ""
        if len(chosen) == 1:
            return f"{counts[chosen[0]]}{suffix}\n", 0
        return " ".join(f"{counts[c]:>7}" for c in chosen) + suffix + "\n", 0

    def _c_sort(self, args, stdin):
        lines = stdin.splitlines()
        lines.sort(reverse="-r" in args)
        return "".join(ln + "\n" for ln in lines), 0

    def _c_which(self, args, stdin):
        known = {"bash": "/usr/bin/bash", "sh": "/usr/bin/sh", "ls": "/usr/bin/ls", "cat": "/usr/bin/cat",
                 "ruby": "/usr/local/bin/ruby", "bundle": "/usr/local/bin/bundle", "psql": "/usr/bin/psql",
                 "rails": "/usr/local/bundle/bin/rails", "grep": "/usr/bin/grep"}
        out = [known[a] + "\n" for a in args if a in known]
        return "".join(out), 0 if len(out) == len(args) and args else 1

    def _c_whoami(self, args, stdin):
        return self.p.user + "\n", 0

    def _c_id(self, args, stdin):
        uid = 1000
        return f"uid={uid}({self.p.user}) gid={uid}({self.p.user}) groups={uid}({self.p.user})\n", 0

    def _c_hostname(self, args, stdin):
        return self.env.get("HOSTNAME", self.p.host) + "\n", 0

    def _c_uname(self, args, stdin):
        if "-a" in args:
            return self.p.uname.format(host=self.p.host) + "\n", 0
        if "-r" in args:
            return "5.10.225-213.878.amzn2.x86_64\n", 0
        return "Linux\n", 0

    def _c_date(self, args, stdin):
        now = self.p.now().astimezone(dt.timezone.utc)
        return f"{now:%a %b} {now.day:>2} {now:%H:%M:%S} UTC {now.year}\n", 0

    def _c_uptime(self, args, stdin):
        now = self.p.now().astimezone(dt.timezone.utc)
        days = _stable_int(self.p.seed, self.p.host, "uptime", low=1, high=60)
        load = _stable_int(self.p.seed, self.p.host, "load", low=3, high=90) / 100
        return (f" {now:%H:%M:%S} up {days} days,  3:1{days % 10},  0 users,  load average: {load:.2f}, "
                f"{load * 0.9:.2f}, {load * 0.8:.2f}\n"), 0

    def _c_ps(self, args, stdin):
        if self.p.prompt_style == "amazon":
            rows = [("root", 1, "/usr/lib/systemd/systemd"), ("root", 2215, "/usr/bin/containerd"),
                    ("root", 2390, "/usr/bin/kubelet"), (self.p.user, 31077, "-bash")]
        else:
            rows = [(self.p.user, 1, "puma 6.4.2 (tcp://0.0.0.0:3000) [app]"),
                    (self.p.user, 18, "puma: cluster worker 0: 1 [app]"),
                    (self.p.user, 22, "puma: cluster worker 1: 1 [app]"), (self.p.user, 41, "bash")]
        out = ["USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND\n" if "aux" in args or
               "-ef" in args else "    PID TTY          TIME CMD\n"]
        for user, pid, cmd in rows:
            if "aux" in args or "-ef" in args:
                out.append(f"{user:<10} {pid:>5}  0.{pid % 10}  1.{pid % 7} 812345 {80000 + pid:>5} ?        "
                           f"Ssl  09:14   0:0{pid % 10} {cmd}\n")
            else:
                out.append(f"{pid:>7} pts/0    00:00:00 {cmd.split()[0].rsplit('/', 1)[-1]}\n")
        out.append(("" if "aux" in args or "-ef" in args else f"{4242:>7} pts/0    00:00:00 ps\n"))
        return "".join(out), 0

    def _c_df(self, args, stdin):
        return ("Filesystem      Size  Used Avail Use% Mounted on\noverlay          80G   23G   58G  29% /\n"
                "tmpfs            64M     0   64M   0% /dev\n/dev/nvme0n1p1   80G   23G   58G  29% /etc/hosts\n"), 0

    def _c_free(self, args, stdin):
        return ("               total        used        free      shared  buff/cache   available\n"
                "Mem:            7843        3121         862           2        3860        4437\n"
                "Swap:              0           0           0\n"), 0

    def _c_history(self, args, stdin):
        return "".join(f"{i:>5}  {line}\n" for i, line in enumerate(self.history, 1)), 0

    def _c_clear(self, args, stdin):
        return "\x1b[H\x1b[2J", 0

    def _c_true(self, args, stdin):
        return "", 0

    def _c_false(self, args, stdin):
        return "", 1

    def _c_sleep(self, args, stdin):
        if not args:
            return "sleep: missing operand\n", 1
        return "", 0

    def _c_exit(self, args, stdin):
        code = self.status
        if args:
            try:
                code = int(args[0]) & 0xFF
            except ValueError:
                self.exit_code = 2
                return f"{'exit' + chr(10) if self.tty else ''}bash: exit: {args[0]}: numeric argument required\n", 2
        self.exit_code = code
        return ("exit\n" if self.tty and self._interactive else ""), code

    def _c_logout(self, args, stdin):
        return self._c_exit(args, stdin)

    def _c_ruby(self, args, stdin):
        if args[:1] in (["-v"], ["--version"]):
            return "ruby 3.2.2 (2023-03-30 revision e51014f9c0) [x86_64-linux]\n", 0
        return "", 0

    def _c_node(self, args, stdin):
        return ("v20.11.1\n", 0) if args[:1] in (["-v"], ["--version"]) else ("", 0)

    def _c_python3(self, args, stdin):
        return ("Python 3.11.7\n", 0) if args[:1] in (["-V"], ["--version"]) else ("", 0)

    def _c_help(self, args, stdin):
        return ("GNU bash, version 5.2.15(1)-release (x86_64-pc-linux-gnu)\nThese shell commands are defined "
                "internally.  Type `help' to see this list.\n"), 0

    def _rails_task(self, name: str, args: list[str]) -> tuple[str, int]:
        words = [a for a in args if a != "exec"]
        if name == "bundle" and words[:1] in (["rails"], ["bin/rails"], ["rake"]):
            return self._rails_task(words[0], words[1:])
        if name == "bundle":
            return ("Bundle complete! 42 Gemfile dependencies, 118 gems now installed.\n", 0) if words[:1] == \
                ["check"] or words[:1] == ["install"] else ("Could not find command \"%s\".\n" % " ".join(words), 15)
        task = words[0] if words else ""
        if task in ("-v", "--version", "version"):
            return "Rails 7.1.3\n", 0
        if task in ("db:migrate", "db:migrate:status"):
            stamp = self.p.now().strftime("%Y%m%d%H%M%S")
            if task == "db:migrate":
                return (f"== {stamp} AddIndexToOrdersAccountId: migrating ===================\n"
                        f"-- add_index(:orders, :account_id)\n   -> 0.0214s\n"
                        f"== {stamp} AddIndexToOrdersAccountId: migrated (0.0215s) ==========\n\n"), 0
            return ("\ndatabase: " + self.p.repl_target + "\n\n Status   Migration ID    Migration Name\n"
                    "--------------------------------------------------\n   up     20241030091500  Create orders\n"), 0
        if task in ("routes",):
            return ("  Prefix Verb URI Pattern        Controller#Action\n  healthz GET  /healthz(.:format)  "
                    "health#show\n"), 0
        if task in ("runner", "r") and len(words) > 1:
            out, _ = _RailsConsole(self.p).handle(words[1])
            return out.replace("=> nil\n", "").removeprefix("=> "), 0
        if task in ("about",):
            return ("About your application's environment\nRails version             7.1.3\nRuby version      "
                    "        ruby 3.2.2 (2023-03-30 revision e51014f9c0) [x86_64-linux]\nEnvironment          "
                    "     production\nDatabase adapter          postgresql\n"), 0
        if task.startswith("-") or not task:
            return "Usage:\n  bin/rails COMMAND [options]\n", 0
        return (f"Unrecognized command \"{task}\" (Rails::Command::UnrecognizedCommandError)\n"
                f"Did you mean?  db:migrate\n"), 1


def _is_shell(argv: list[str]) -> bool | None:
    """True: an interactive shell; False: not a shell at all; None: a shell running a script (`sh -c …`)."""
    base = argv[0].rsplit("/", 1)[-1]
    if base not in ("bash", "sh", "zsh", "ash", "dash"):
        return False
    rest = [a for a in argv[1:] if a not in ("-l", "-i", "--login", "-il", "-li")]
    if not rest:
        return True
    return None


def _repl_name(argv: list[str]) -> str | None:
    words = [a for a in argv if a not in ("bundle", "exec")]
    if not words:
        return None
    first = words[0].rsplit("/", 1)[-1]
    if first in ("rails",) and len(words) >= 2 and words[1] in ("console", "c"):
        return "rails"
    if first == "irb":
        return "rails"
    if first == "psql":
        return "psql"
    if first == "redis-cli":
        return "redis"
    return None


def split_command(command: str) -> list[str]:
    """An exec Command header as the rack splits it: shell quoting, no shell."""
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()
