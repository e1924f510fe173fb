"""The interactive sessions a synthetic history records: scripted terminals (a shell with `ls --color` and a few
commands, a Rails console, IPython, SSH on an instance, psql, redis-cli) written as asciicast v2 bytes that depend on
the seed alone. Each scenario takes (rng, start ms, target, actor) and returns a Recording; SCENARIOS lists the
exec scenarios of each app stack.
"""

from __future__ import annotations

import random
from typing import Callable

from auditkit.model import asciicast
from auditkit.synth.world import Actor

# A recording: (command, asciicast bytes, duration ms, exit code, width, height).
Recording = tuple[str, bytes, int, int, int, int]


class _Cast:
    """A scripted terminal session written with asciicast.Recorder: output events only (the terminal echoes what is
    typed), at times this script chooses, so the bytes depend on the seed alone."""

    def __init__(self, rng: random.Random, width: int, height: int, start_ms: int, command: str, title: str):
        self.rng, self.t = rng, 0.0
        self.recorder = asciicast.Recorder(width=width, height=height, command=command, title=title,
                                           started=start_ms / 1000,
                                           env={"SHELL": "/bin/bash", "TERM": "xterm-256color"})

    def out(self, data: str, delay: float = 0.0) -> None:
        self.t += delay
        self.recorder.output(data, at=self.t)

    def type(self, prompt: str, text: str) -> None:
        """A prompt, a pause to think, then `text` typed a key at a time and Enter."""
        self.out(prompt, self.rng.uniform(0.05, 0.4))
        self.t += self.rng.uniform(0.8, 5.0)
        for ch in text:
            self.out(ch, self.rng.uniform(0.04, 0.22))
        self.out("\r\n", self.rng.uniform(0.05, 0.3))

    def result(self, text: str) -> None:
        """Program output, a few chunks, lines ending in CRLF as a terminal shows them."""
        lines = text.split("\n")
        chunk: list[str] = []
        for i, line in enumerate(lines):
            chunk.append(line)
            if len(chunk) >= 4 or i == len(lines) - 1:
                self.out("\r\n".join(chunk) + "\r\n", self.rng.uniform(0.01, 0.35))
                chunk = []

    def finish(self) -> bytes:
        return self.recorder.getvalue()

    @property
    def duration_ms(self) -> int:
        return int(self.t * 1000)


_LS_COLORS = {"dir": "\x1b[01;34m", "exe": "\x1b[01;32m", "link": "\x1b[01;36m", "file": "", "arc": "\x1b[01;31m"}


def _ls_color(entries: list[tuple[str, str]], width: int = 120) -> str:
    """What `ls --color` prints on a terminal `width` columns wide: sorted, in columns filled top to bottom."""
    entries = sorted(entries, key=lambda e: e[0].lower())
    n = len(entries)
    for rows in range(1, n + 1):
        cols = -(-n // rows)
        widths = [max(len(name) for name, _ in entries[c * rows:(c + 1) * rows]) + 2 for c in range(cols)
                  if entries[c * rows:(c + 1) * rows]]
        if sum(widths) - 2 <= width:
            break
    lines = []
    for r in range(rows):
        cells = []
        for c, w in enumerate(widths):
            i = c * rows + r
            if i >= n:
                continue
            name, kind = entries[i]
            text = f"{_LS_COLORS[kind]}{name}\x1b[0m" if _LS_COLORS[kind] else name
            last = c == len(widths) - 1 or (c + 1) * rows + r >= n
            cells.append(text if last else text + " " * (w - len(name)))
        lines.append("".join(cells))
    return "\n".join(lines)


RAILS_LS = [("app", "dir"), ("bin", "dir"), ("config", "dir"), ("config.ru", "file"), ("db", "dir"),
             ("Gemfile", "file"), ("Gemfile.lock", "file"), ("lib", "dir"), ("log", "dir"), ("public", "dir"),
             ("Rakefile", "file"), ("entrypoint.sh", "exe"), ("current", "link"), ("tmp", "dir"),
             ("vendor", "dir"), ("assets.tar.gz", "arc")]
_NODE_LS = [("dist", "dir"), ("node_modules", "dir"), ("package.json", "file"), ("package-lock.json", "file"),
            ("scripts", "dir"), ("server.js", "exe"), ("src", "dir"), ("static", "link"), ("README.md", "file")]
_PY_LS = [("app", "dir"), ("jobs", "dir"), ("manage.py", "exe"), ("requirements.txt", "file"), ("static", "dir"),
          ("templates", "dir"), ("wsgi.py", "file"), ("media", "link"), ("backup.tar.gz", "arc")]
_GO_LS = [("bin", "dir"), ("config.yaml", "file"), ("healthcheck", "exe"), ("migrations", "dir"), ("server", "exe"),
          ("web", "link")]


def _shell_prompt(user: str, host: str, cwd: str, root: bool = True) -> str:
    return f"\x1b[01;32m{user}@{host}\x1b[00m:\x1b[01;34m{cwd}\x1b[00m{'#' if root else '$'} "


def shell_session(listing: list, extra: list[tuple[str, str]], cwd: str = "/app") -> Callable:
    def run(rng: random.Random, t: int, pid: str, actor: Actor) -> Recording:
        width, height = rng.choice(((120, 32), (160, 45), (100, 30), (212, 55)))
        cast = _Cast(rng, width, height, t, "bash", pid)
        prompt = _shell_prompt("root", pid, cwd)
        cast.type(prompt, "ls --color")
        cast.result(_ls_color(listing, width))
        for command, output in rng.sample(extra, min(len(extra), rng.randint(2, 3))):
            cast.type(prompt, command)
            cast.result(output)
        cast.type(prompt, "exit")
        cast.out("exit\r\n", 0.05)
        return "bash", cast.finish(), cast.duration_ms, 0, width, height
    return run


RAILS_EXTRA = [
    ("bin/rails runner 'puts User.count'", "48213"),
    ("tail -n 3 log/production.log",
     "I, [2026-11-19T14:02:11.411 #7]  INFO -- : [c3f1e2] Completed 200 OK in 41ms "
     "(Views: 12.0ms | ActiveRecord: 9.8ms)\n"
     "I, [2026-11-19T14:02:11.950 #7]  INFO -- : [a81d04] Started GET \"/api/v2/orders?page=3\" for 10.0.3.17\n"
     "W, [2026-11-19T14:02:12.022 #9]  WARN -- : [a81d04] \x1b[33mSlow query (612ms)\x1b[0m "
     "SELECT \"orders\".* FROM \"orders\""),
    ("bin/rake db:migrate:status | tail -n 4",
     "   up     20261102101500  Add index to orders state\n   up     20261110083000  Create refunds\n"
     "   up     20261117121500  Add currency to invoices\n"
     "  \x1b[31mdown\x1b[0m    20261118094500  Backfill refund reasons"),
    ("df -h /tmp", "Filesystem      Size  Used Avail Use% Mounted on\noverlay          80G   31G   50G  39% /"),
    ("ps aux | head -n 4",
     "USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND\n"
     "app            1  0.0  0.1   2384  1536 ?        Ss   09:12   0:00 /bin/sh -c bin/web\n"
     "app            7 12.4  9.8 1273112 401208 ?      Sl   09:12  41:07 puma 6.4.2 (tcp://0.0.0.0:3000) [app]\n"
     "root         214  0.0  0.0   4608  3840 pts/0    Ss   14:01   0:00 bash"),
]
_NODE_EXTRA = [
    ("node -e 'console.log(process.version)'", "v20.11.1"),
    ("cat package.json | head -n 5",
     "{\n  \"name\": \"admin\",\n  \"version\": \"4.18.2\",\n  \"private\": true,\n  \"scripts\": {"),
    ("du -sh node_modules", "412M\tnode_modules"),
    ("free -m", "               total        used        free      shared  buff/cache   available\n"
                "Mem:            7812        3120         811           2        3880        4402"),
]
_PY_EXTRA = [
    ("python -c 'import django; print(django.get_version())'", "5.0.9"),
    ("celery -A app inspect ping",
     "->  celery@worker-5c9d7b8f4d-q2kzl: \x1b[32mOK\x1b[0m\n        pong\n\n1 node online."),
    ("pip list 2>/dev/null | grep -i -E 'django|celery|redis'",
     "celery            5.4.0\nDjango            5.0.9\nredis             5.0.8"),
    ("df -h /tmp", "Filesystem      Size  Used Avail Use% Mounted on\noverlay          80G   27G   54G  34% /"),
]
_GO_EXTRA = [
    ("./healthcheck", "\x1b[32m✔\x1b[0m database   ok (3ms)\n\x1b[32m✔\x1b[0m cache      ok (1ms)\n"
                      "\x1b[33m!\x1b[0m search     degraded (412ms)"),
    ("cat config.yaml | head -n 3", "listen: :8080\nlog_level: info\nshutdown_grace: 25s"),
    ("uptime", " 14:03:07 up 3 days,  2:11,  0 users,  load average: 0.42, 0.51, 0.47"),
]


def rails_console_session(rng: random.Random, t: int, pid: str, actor: Actor) -> Recording:
    width, height = rng.choice(((120, 32), (160, 45), (140, 40)))
    command = "bin/rails console"
    cast = _Cast(rng, width, height, t, command, pid)
    cast.out("Loading production environment (Rails 7.1.3.4)\r\n", 2.4)
    n = 1
    exchanges = [
        ("User.where(created_at: 1.day.ago..).count", "=> \x1b[34m\x1b[1m412\x1b[0m"),
        ("Order.where(state: \"pending\").where(\"created_at < ?\", 2.hours.ago).count", "=> \x1b[34m\x1b[1m3\x1b[0m"),
        ("Order.find(88123).state", "=> \x1b[31m\"refunded\"\x1b[0m"),
        ("Invoice.last.total_cents", "=> \x1b[34m\x1b[1m129900\x1b[0m"),
        ("Feature.enabled?(:new_checkout)", "=> \x1b[36m\x1b[1mtrue\x1b[0m"),
    ]
    for code, result in rng.sample(exchanges, rng.randint(2, 4)):
        cast.type(f"irb(main):{n:03d}> ", code)
        cast.result(result)
        n += 1
    cast.type(f"irb(main):{n:03d}> ", "exit")
    return command, cast.finish(), cast.duration_ms, 0, width, height


def python_shell_session(rng: random.Random, t: int, pid: str, actor: Actor) -> Recording:
    """`python manage.py shell` with IPython installed: coloured In/Out prompts."""
    width, height = rng.choice(((120, 32), (160, 45)))
    command = "python manage.py shell"
    cast = _Cast(rng, width, height, t, command, pid)
    cast.out("Python 3.12.7 (main, Oct  1 2026, 08:10:12) [GCC 12.2.0]\r\n"
             "Type 'copyright', 'credits' or 'license' for more information\r\n"
             "IPython 8.29.0 -- An enhanced Interactive Python. Type '?' for help.\r\n\r\n", 1.8)
    n = 1
    for code, result in rng.sample([("from reports.models import Report", ""),
                                     ("Report.objects.filter(status='failed').count()", "7"),
                                     ("Report.objects.latest('created_at').id", "99412"),
                                     ("from django.conf import settings; settings.DEBUG", "False")], 3):
        cast.type(f"\x1b[32mIn [\x1b[1;32m{n}\x1b[0;32m]: \x1b[0m", code)
        if result:
            cast.result(f"\x1b[31mOut[\x1b[1;31m{n}\x1b[0;31m]: \x1b[0m{result}\n")
        n += 1
    cast.type(f"\x1b[32mIn [\x1b[1;32m{n}\x1b[0;32m]: \x1b[0m", "exit")
    return command, cast.finish(), cast.duration_ms, 0, width, height


_VAR_LOG = [("amazon", "dir"), ("audit", "dir"), ("boot.log", "file"), ("containers", "dir"), ("journal", "dir"),
            ("kubelet.log", "file"), ("pods", "dir"), ("messages", "file"), ("aws-routed-eni", "dir"),
            ("cloud-init.log", "file"), ("dmesg.old", "arc")]


def ssh_session(rng: random.Random, t: int, instance: str, actor: Actor) -> Recording:
    width, height = rng.choice(((120, 32), (160, 45), (100, 30)))
    host = f"ip-10-0-{rng.randrange(1, 60)}-{rng.randrange(2, 250)}"
    cast = _Cast(rng, width, height, t, "interactive", instance)
    cast.out("Last login: Tue Nov 18 09:12:44 2026 from 10.0.3.17\r\n\r\n"
             "   ,     #_\r\n   ~\\_  ####_        Amazon Linux 2023\r\n  ~~  \\_#####\\\r\n  ~~     \\###|\r\n"
             "  ~~       \\#/ ___   https://aws.amazon.com/linux/amazon-linux-2023\r\n\r\n", 0.9)
    prompt = f"[\x1b[01;32mec2-user\x1b[0m@{host} ~]$ "
    steps = [("uptime", f" 14:03:07 up {rng.randrange(1, 40)} days,  2:11,  1 user,  load average: 0.42, 0.51, 0.47"),
             ("free -m", "               total        used        free      shared  buff/cache   available\n"
                         "Mem:           15788        9120         811           2        5856       6402"),
             ("ls --color /var/log", _ls_color(_VAR_LOG, width)),
             ("sudo crictl ps | head -n 3",
              "CONTAINER      IMAGE          CREATED       STATE    NAME     ATTEMPT  POD ID\n"
              "3f1c2b7a9d10   9e2f7c1b3a44   2 hours ago   \x1b[32mRunning\x1b[0m  web      0        a1b2c3d4e5f6\n"
              "8d7e6f5a4b3c   1c2d3e4f5a6b   2 hours ago   \x1b[32mRunning\x1b[0m  worker   0        f6e5d4c3b2a1")]
    for command, output in steps[:2] + rng.sample(steps[2:], 2):
        cast.type(prompt, command)
        cast.result(output)
    cast.type(prompt, "exit")
    cast.out(f"logout\r\nConnection to {host} closed.\r\n", 0.1)
    return "interactive", cast.finish(), cast.duration_ms, 0, width, height


def psql_session(rng: random.Random, t: int, name: str, actor: Actor) -> Recording:
    width, height = rng.choice(((120, 32), (160, 45)))
    cast = _Cast(rng, width, height, t, "psql", name)
    cast.out("psql (16.4, server 15.8)\r\nSSL connection (protocol: TLSv1.3, cipher: TLS_AES_256_GCM_SHA384, "
             "compression: off)\r\nType \"help\" for help.\r\n\r\n", 0.7)
    prompt = "app=> "
    cast.type(prompt, "\\dt")
    cast.result("          List of relations\n Schema |     Name      | Type  | Owner\n"
                "--------+---------------+-------+-------\n public | invoices      | table | app\n"
                " public | orders        | table | app\n public | refunds       | table | app\n"
                " public | users         | table | app\n(4 rows)\n")
    cast.type(prompt, "select state, count(*) from orders group by 1 order by 2 desc;")
    cast.result("  state   | count\n----------+--------\n complete | 981244\n pending  |    312\n"
                " refunded |   4410\n(3 rows)\n")
    cast.type(prompt, "exit")
    return "psql", cast.finish(), cast.duration_ms, 0, width, height


def redis_session(rng: random.Random, t: int, name: str, actor: Actor) -> Recording:
    width, height = 120, 32
    cast = _Cast(rng, width, height, t, "redis-cli", name)
    prompt = f"{name}.acme.internal:6379> "
    cast.type(prompt, "INFO keyspace")
    cast.result(f"# Keyspace\ndb0:keys={rng.randrange(1000, 90000)},expires=1203,avg_ttl=3600213")
    cast.type(prompt, "DBSIZE")
    cast.result(f"(integer) {rng.randrange(1000, 90000)}")
    cast.type(prompt, "exit")
    return "redis-cli", cast.finish(), cast.duration_ms, 0, width, height


SCENARIOS: dict[str, tuple[Callable, ...]] = {
    "rails": (shell_session(RAILS_LS, RAILS_EXTRA), rails_console_session),
    "node": (shell_session(_NODE_LS, _NODE_EXTRA),),
    "python": (shell_session(_PY_LS, _PY_EXTRA), python_shell_session),
    "go": (shell_session(_GO_LS, _GO_EXTRA, cwd="/srv"),),
}
