"""Webhook delivery: events/s signed, posted and recorded, against a raw urllib3 loop.

N messages are accepted (untimed), which writes N ``sms.accepted`` outbox rows
for one endpoint. Timed: ``WebhookDeliverer.run_once`` until every row is
delivered, posting to a local receiver that answers 200 (a minimal asyncio HTTP/1.1
responder in a separate process, so it does not share this interpreter's GIL).
Baseline, same run: a raw urllib3 pool posting the same number of bodies of
the same size with the same concurrency, no signing and no database.

Run: ``python benchmarks/bench_webhooks.py [--events N] [--concurrency C]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import urllib3

from _common import machine, requests, setup
from bharatsend_core import BharatSend, Settings
from bharatsend_core.adapters.http import HttpTransport
from bharatsend_core.adapters.sqlalchemy import SqlStorage

_RECEIVER = """
import asyncio
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            length = 0
            for line in head.split(b"\\r\\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\n\\r\\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    receiver = subprocess.Popen(
        [sys.executable, "-c", _RECEIVER], stdout=subprocess.PIPE, text=True
    )
    assert receiver.stdout is not None
    url = f"http://127.0.0.1:{receiver.stdout.readline().strip()}/hooks"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            storage = SqlStorage.from_url(f"sqlite:///{Path(tmp) / 'wh.db'}")
            bs, tenant_id = setup(storage, credits=10**9)
            # The receiver is on loopback: allow it (the SSRF guard is tested elsewhere).
            settings = Settings.resolve(
                {}, key_pepper="bench-pepper-0123456789abcdef", webhooks_allow_private=True
            )
            bs = BharatSend(storage=storage, settings=settings)
            bs.add_webhook_endpoint(tenant_id, url)
            for start in range(0, args.events, 1000):
                count = min(1000, args.events - start)
                bs.send_batch(tenant_id, requests(range(start, start + count), "w-"))
            transport = HttpTransport(allow_private=True)
            deliverer = bs.webhook_deliverer(
                transport=transport, owner="bench", concurrency=args.concurrency, batch=500
            )
            began = time.perf_counter()
            done = 0
            while done < args.events:
                handled = deliverer.run_once()
                if not handled:
                    break
                done += handled
            elapsed = time.perf_counter() - began
            delivered = deliverer.delivered
            deliverer.close()
            transport.close()
            rate = delivered / elapsed
            body = b'{"type":"sms.accepted","timestamp":"2026-11-23T12:00:00+00:00","data":{}}'
            body = body.ljust(260, b" ")
            port = int(url.split(":")[2].split("/")[0])
            client = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=args.concurrency)
            pool = ThreadPoolExecutor(max_workers=args.concurrency)

            def post(_: int) -> int:
                response = client.urlopen(
                    "POST", "/hooks", body=body, redirect=False, retries=False,
                    headers={"content-type": "application/json"},
                )  # fmt: skip
                return int(response.status)

            began = time.perf_counter()
            list(pool.map(post, range(delivered)))
            raw = delivered / (time.perf_counter() - began)
            pool.shutdown()
            client.close()
            storage.close()
    finally:
        receiver.terminate()
        receiver.wait()
    print(
        f"[sqlite] delivered {delivered:,} events: {rate:,.0f} events/s   raw urllib3: "
        f"{raw:,.0f} posts/s   ratio {rate / raw:.2f}x   (concurrency {args.concurrency})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
