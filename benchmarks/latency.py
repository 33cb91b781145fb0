"""A TCP relay on 127.0.0.1 that holds every byte for half a round trip each way: an emulator
behind it answers as a distant region would. Not part of the test suite.

On an emulator on the same machine a request costs mostly the emulator's CPU, so a figure there
counts requests. Against AWS a request costs mostly its round trip, so what counts is how many
round trips a call waits for one after another; B4 is also measured behind this relay to show
that figure (an informational row beside the goal's).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

CHUNK = 65536


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Forward what ``reader`` gets to ``writer``, each chunk ``delay`` seconds after it arrived,
    in order; EOF is forwarded the same way."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                with suppress(OSError):
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.ensure_future(send())
    try:
        while True:
            data = await reader.read(CHUNK)
            queue.put_nowait((time.monotonic() + delay, data))
            if not data:
                break
        await sender
    except (OSError, asyncio.IncompleteReadError):
        sender.cancel()
    finally:
        with suppress(OSError):
            writer.close()


@contextmanager
def relay(upstream: str, rtt_ms: float) -> Iterator[str]:
    """An ``http://127.0.0.1:PORT`` endpoint that reaches ``upstream`` (``http://127.0.0.1:PORT``)
    ``rtt_ms`` further away; it stops when the block ends."""
    host, port = upstream.removeprefix("http://").rstrip("/").rsplit(":", 1)
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError(f"the relay reaches only loopback emulators, not {upstream}")
    half = rtt_ms / 2000
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    bound: list[int] = []

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", int(port))
        except OSError:
            client_w.close()
            return
        with suppress(asyncio.CancelledError):  # the relay is stopping
            await asyncio.gather(_pump(client_r, up_w, half), _pump(up_r, client_w, half))

    async def serve() -> asyncio.Server:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        bound.append(server.sockets[0].getsockname()[1])
        ready.set()
        return server

    async def shutdown() -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def run() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(serve())
        try:
            loop.run_forever()
        finally:
            server.close()
            loop.run_until_complete(shutdown())
            loop.close()

    thread = threading.Thread(target=run, name="latency-relay", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the latency relay did not start")
    try:
        yield f"http://127.0.0.1:{bound[0]}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
