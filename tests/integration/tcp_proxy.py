"""A TCP proxy a test puts in front of a real server: it can cut it (while it is down, every
open connection is dropped and every new one is closed at once, as when the host is
unreachable; up again, connections pass through as before), freeze it (connections stay
open and no byte passes, as when the server hangs), and watch what the client sends for a
pattern (also inside gzip-compressed gRPC messages, which is how Temporal's Core SDK sends
its requests)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import zlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tests.helpers import find_free_port

GZIP_MAGIC = b"\x1f\x8b"


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        """A host name, or a socket directory (PostgreSQL's `host=/dir`)."""
        self._target = (target_host, target_port)
        self.port = find_free_port()
        self.up = True
        self.refused = 0  # connections closed while down
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()  # cleared by freeze(): bytes held, nothing closed
        self._flowing.set()
        self.watch: re.Pattern[bytes] | None = None
        self.seen: set[bytes] = set()  # what matched `watch` in the client's bytes

    @classmethod
    def for_url(cls, url: str) -> TcpProxy:
        parts = urlsplit(url)
        host = dict(parse_qsl(parts.query)).get("host") or parts.hostname
        assert host, url
        return cls(host, parts.port or 5432)

    def url_through(self, url: str) -> str:
        """The same DSN, pointed at the proxy over TCP."""
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)
        credentials = f"{netloc[0]}@" if len(netloc) > 1 else ""
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "host"])
        return urlunsplit(parts._replace(netloc=f"{credentials}127.0.0.1:{self.port}", query=query))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        self.up = False
        for writer in list(self._open):
            writer.close()
        self._open.clear()

    def restore(self) -> None:
        self.up = True

    def freeze(self) -> None:
        """A hung server: connections stay open and accepted, but no byte passes either way."""
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            self.refused += 1
            writer.close()
            return
        host, port = self._target
        try:
            if host.startswith("/"):
                upstream = await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
            else:
                upstream = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        upstream_reader, upstream_writer = upstream
        self._open |= {writer, upstream_writer}
        await asyncio.gather(
            self._pipe(reader, upstream_writer, watched=True), self._pipe(upstream_reader, writer)
        )

    def _look(self, data: bytes) -> None:
        assert self.watch is not None
        texts = [data]
        start = data.find(GZIP_MAGIC)
        while start >= 0:  # a small message fits one HTTP/2 frame: its gzip stream is whole
            with contextlib.suppress(zlib.error):
                texts.append(zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[start:]))
            start = data.find(GZIP_MAGIC, start + 1)
        self.seen |= {match.group(0) for text in texts for match in self.watch.finditer(text)}

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, watched: bool = False
    ) -> None:
        tail = b""
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                await self._flowing.wait()
                if watched and self.watch is not None:
                    window = tail + data
                    self._look(window)
                    tail = window[-256:]
                writer.write(data)
                await writer.drain()
        writer.close()
        self._open.discard(writer)
