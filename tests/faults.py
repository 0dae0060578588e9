"""Real faults on the wire, for the outside world's failures: a TCP proxy in front of a
real server that holds requests (a slow server) or answers the first ones with an HTTP
error (an overloaded one). Nothing is mocked: the client and server are real."""

from __future__ import annotations

import asyncio


class FaultProxy:
    def __init__(self, target_port: int, *, delay: float = 0.0, fail_first: int = 0,
                 status: str = "503 Service Unavailable") -> None:
        self.target_port, self.delay = target_port, delay
        self.fail_first, self.status = fail_first, status
        self.failed = 0
        self.seen = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.failed < self.fail_first:
            self.failed += 1
            await reader.readuntil(b"\r\n\r\n")
            writer.write(f"HTTP/1.1 {self.status}\r\nContent-Length: 0\r\nRetry-After: 1\r\n"
                         "Connection: close\r\n\r\n".encode())
            await writer.drain()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                       upstream: bool) -> None:
            try:
                while data := await src.read(65536):
                    delay = self.delay if upstream else 0.0  # may be changed mid-test
                    if delay:
                        self.seen.set()
                        await asyncio.sleep(delay)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
