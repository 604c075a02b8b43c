"""Stream what a blocking writer (a CSV export on a database cursor) writes, as it writes it.

The writer runs in a thread and writes to a file-like pipe; the handler sends each 64 KiB piece
as it comes, with a bounded queue in between, so memory stays flat for a million-row export and
a client that goes away stops the export at its next write.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from aiohttp import web

log = logging.getLogger("promobulk.api")
FLUSH_AT = 64 * 1024


class _ReaderGone(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _End:
    error: BaseException | None


class _Pipe(io.TextIOBase):
    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | _End]) -> None:
        self._loop = loop
        self._queue = queue
        self._buffer: list[str] = []
        self._size = 0
        self.aborted = False

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.aborted:
            raise _ReaderGone
        self._buffer.append(text)
        self._size += len(text)
        if self._size >= FLUSH_AT:
            self._send()
        return len(text)

    def _send(self) -> None:
        if self._buffer:
            data = "".join(self._buffer).encode()
            self._buffer, self._size = [], 0
            self._put(data)

    def _put(self, item: bytes | _End) -> None:
        asyncio.run_coroutine_threadsafe(self._queue.put(item), self._loop).result()

    def run(self, produce: Callable[[TextIO], object]) -> None:
        try:
            produce(self)  # type: ignore[arg-type]
            self._send()
        except BaseException as exc:  # handed to the event loop's side, which decides
            self._put(_End(exc))
        else:
            self._put(_End(None))


async def stream_text(
    request: web.Request,
    produce: Callable[[TextIO], object],
    *,
    content_type: str,
    headers: dict[str, str],
) -> web.StreamResponse:
    """Errors raised before the first byte propagate (and become problem documents); after it,
    the response is cut short, which a client sees as a truncated body."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | _End] = asyncio.Queue(maxsize=16)
    pipe = _Pipe(loop, queue)
    producer = loop.run_in_executor(None, pipe.run, produce)
    item: bytes | _End | None = None
    try:
        item = await queue.get()
        if isinstance(item, _End) and item.error is not None:
            raise item.error
        response = web.StreamResponse(headers={"Content-Type": content_type, **headers})
        await response.prepare(request)
        while isinstance(item, bytes):
            await response.write(item)
            item = await queue.get()
    finally:
        if not isinstance(item, _End):
            pipe.aborted = True
            while not isinstance(item, _End):
                item = await queue.get()
        await producer
    if item.error is not None:
        log.error("export cut short: %s", type(item.error).__name__, exc_info=item.error)
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response
