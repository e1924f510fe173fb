"""Gateway benchmark: what auditing costs a write.

The simulated rack and the gateway run as separate processes on loopback (as they would in production); the gateway
journals at full durability (synchronous=FULL, fsync per group commit). In one run:

1. latency: the same audited write (`convox scale`: PUT /apps/web/services/web) sent N times one at a time straight
   to the rack, then through the gateway; p50 and p95 of each and the difference;
2. throughput: audited writes per second through the gateway with 16 concurrent clients, beside the same load
   straight to the rack; then `verify` of the journal and a count of its events.

    .venv/bin/python bench/gateway.py [--requests 400] [--load 4000] [--concurrency 16]

Targets (issue 3): <= +3 ms p50 over direct; >= 1,000 audited writes/s.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from convox_sim.servers import free_port  # noqa: E402

from auditkit import store  # noqa: E402
from auditkit.capture import keys  # noqa: E402
from auditkit.capture.journal import journal_source  # noqa: E402
from auditkit.capture.wire import USER_AGENT  # noqa: E402

RACK_PASSWORD = "bench-rack-password"



def wait_up(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "auditkit.cli", *args], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=out)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def latency(base: str, auth: tuple[str, str], n: int) -> list[float]:
    out = []
    with httpx.Client(base_url=base, auth=auth, headers={"User-Agent": USER_AGENT}) as client:
        for i in range(n + 20):
            started = time.perf_counter()
            r = client.put("/apps/web/services/web", data={"count": str(2 + i % 5)})
            elapsed = (time.perf_counter() - started) * 1000
            r.raise_for_status()
            if i >= 20:  # warm-up excluded
                out.append(elapsed)
    return out


WRK_SCRIPT = f"""wrk.method = "PUT"
wrk.body   = "count=3"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["User-Agent"] = "{USER_AGENT}"
"""


def load_wrk(base: str, auth: tuple[str, str], seconds: int, concurrency: int, work: Path) -> tuple[float, int]:
    """(writes/s, non-2xx answers) from wrk, a C load generator: a Python client saturates before the gateway."""
    script = work / "put.lua"
    script.write_text(WRK_SCRIPT)
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    out = subprocess.run(["wrk", "-t2", f"-c{concurrency}", f"-d{seconds}s", "-s", str(script), "-H",
                          f"Authorization: Basic {token}", base + "/apps/web/services/web"],
                         capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rate, int(errors.group(1)) if errors else 0


async def load(base: str, auth: tuple[str, str], total: int, concurrency: int) -> float:
    remaining = iter(range(total))
    async with httpx.AsyncClient(base_url=base, auth=auth, limits=httpx.Limits(max_connections=concurrency),
                                 headers={"User-Agent": USER_AGENT}, timeout=30) as client:
        async def worker() -> None:
            for i in remaining:
                r = await client.put("/apps/web/services/web", data={"count": str(2 + i % 5)})
                r.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--load", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10, help="Duration of each wrk run.")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="auditkit-gwbench-"))
    journal = work / "journal.db"
    conn = store.open_db(journal)
    source = journal_source(conn, "bench")
    _, key = keys.add(conn, "bench@example.com", kind="user", role="member", source=source)
    conn.close()
    rack_port, gateway_port = free_port(), free_port()
    rack = start(["demo", "rack", "--listen", f"127.0.0.1:{rack_port}", "--password", RACK_PASSWORD],
                 work / "rack.log")
    gateway = start(["gateway", "serve", "--http", "--listen", f"127.0.0.1:{gateway_port}", "--journal",
                     str(journal), "--name", "bench", "--rack",
                     f"acme/production=http://convox:{RACK_PASSWORD}@127.0.0.1:{rack_port}"], work / "gateway.log")
    direct_url, gateway_url = f"http://127.0.0.1:{rack_port}", f"http://127.0.0.1:{gateway_port}"
    try:
        wait_up(direct_url + "/auth")
        wait_up(gateway_url + "/audit/v1/events")
        direct_auth = ("convox", RACK_PASSWORD)
        gateway_auth = ("acme/production", key)
        direct = latency(direct_url, direct_auth, args.requests)
        through = latency(gateway_url, gateway_auth, args.requests)
        d50, g50 = statistics.median(direct), statistics.median(through)
        print(f"latency of one audited write ({args.requests} sequential, after 20 warm-up):")
        print(f"  direct to rack   p50 {d50:6.2f} ms  p95 {pct(direct, 0.95):6.2f} ms")
        print(f"  through gateway  p50 {g50:6.2f} ms  p95 {pct(through, 0.95):6.2f} ms")
        print(f"  added by gateway p50 {g50 - d50:+6.2f} ms  (target <= +3 ms)  ratio {g50 / d50:.2f}x")
        if shutil.which("wrk"):
            direct_rate, direct_errors = load_wrk(direct_url, direct_auth, args.seconds, args.concurrency, work)
            gateway_rate, gateway_errors = load_wrk(gateway_url, gateway_auth, args.seconds, args.concurrency, work)
            how = f"wrk, {args.seconds}s each"
        else:
            print("  (wrk not found — `apt-get install wrk`; the Python client below saturates first)")
            direct_rate = asyncio.run(load(direct_url, direct_auth, args.load, args.concurrency))
            gateway_rate = asyncio.run(load(gateway_url, gateway_auth, args.load, args.concurrency))
            direct_errors = gateway_errors = 0
            how = f"{args.load} writes each, Python client"
        print(f"throughput with {args.concurrency} concurrent clients ({how}):")
        print(f"  direct to rack   {direct_rate:8.0f} writes/s   (errors {direct_errors})")
        print(f"  through gateway  {gateway_rate:8.0f} audited writes/s  (target >= 1000; errors {gateway_errors})  "
              f"ratio {gateway_rate / direct_rate:.2f}x of direct")
    finally:
        for proc in (gateway, rack):
            proc.terminate()
            proc.wait(timeout=20)
    conn = store.open_db(journal)
    report = store.verify(conn)
    audited = conn.execute("SELECT count(*) FROM events WHERE category = 'Processes'").fetchone()[0]
    print(f"journal: {report.events} events of which {audited} audited writes; verify "
          f"{'OK' if report.ok else 'FAILED'}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
