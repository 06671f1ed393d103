"""The least a Python HTTP server does per request: the references' floor for dtm's servers.

Rule: llhttp (httptools) frames each request on uvloop and the answer is one constant keep-alive
`200` with a small JSON body, with no routing, no request object and no checks; the gap between
its CPU per request and a dtm server's is what dtm's server stack (dtm.site, the guard, metrics)
costs on top. Run: ``python -m bench.floor PORT`` (loopback only).
"""

from __future__ import annotations

import asyncio
import sys

import httptools
import uvloop

BODY = b'{"status":"ok","component":"floor","name":"floor"}'
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)


class Floor(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_message_complete(self) -> None:
        if self.transport is not None:
            self.transport.write(ANSWER)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Floor, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1])))
