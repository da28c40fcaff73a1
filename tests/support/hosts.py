"""Several `consultbot run` hosts on one database behind one webhook URL, as a deployment
behind a round-robin load balancer runs them: each host is a process of its own on its own
port, and a forwarder in front passes Telegram's (the stand-in's) POSTs to them in turn."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

from standin import BotApiStandIn
from tests.support.harness import TOKEN

PATH = "/tg"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Forwarder:
    """The public webhook URL: each POST goes to the next host in turn, and Telegram hears
    what that host answered (502 when it could not be reached, as a load balancer says)."""

    def __init__(self, ports: list[int]) -> None:
        self.port = free_port()
        self.targets = [f"http://127.0.0.1:{port}{PATH}" for port in ports]
        self.answered: Counter[tuple[int, int]] = Counter()  # (host index, status)
        self._turn = itertools.cycle(range(len(ports)))
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._client is not None
        index = next(self._turn)
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        try:
            async with self._client.post(self.targets[index], data=body, headers=headers) as rsp:
                status, text = rsp.status, await rsp.text()
        except aiohttp.ClientError:
            status, text = 502, ""
        self.answered[(index, status)] += 1
        return web.Response(status=status, text=text)

    async def start(self) -> None:
        self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        app = web.Application()
        app.router.add_post(PATH, self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.close()


class Host:
    """One `consultbot run` in webhook mode on `port`, registering `public_url`; started,
    killed and started again as an admin (or a crash) would. Its output (every life's) is
    kept in `lines`."""

    def __init__(self, port: int, public_url: str, env: dict[str, str], cwd: Path) -> None:
        self.port = port
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULTBOT_")}
        self.env.update(
            env,
            CONSULTBOT_TELEGRAM__WEBHOOK_URL=public_url,
            CONSULTBOT_TELEGRAM__WEBHOOK_PORT=str(port),
        )
        self.cwd = cwd
        self.lines: list[str] = []
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def output(self) -> str:
        return "".join(self.lines)

    async def start(self) -> None:
        """Start, and return once it receives updates."""
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from bot.cli import main; main()",
            "run",
            cwd=self.cwd,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        ready = asyncio.Event()
        self._reader = asyncio.create_task(self._read(self.process, ready))
        waiting = asyncio.create_task(ready.wait())
        # Spawning takes seconds on a busy machine.
        await asyncio.wait([waiting, self._reader], timeout=120, return_when="FIRST_COMPLETED")
        waiting.cancel()
        if not ready.is_set():
            await self.kill()
            raise AssertionError(
                f"consultbot run on port {self.port} never got ready:\n" + self.output
            )

    async def _read(self, process: asyncio.subprocess.Process, ready: asyncio.Event) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace")
            self.lines.append(line)
            if "receiving updates on" in line:
                ready.set()

    async def _ended(self) -> int:
        assert self.process is not None
        code = await self.process.wait()
        if self._reader is not None:
            await self._reader
        return code

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as a crash or the OOM killer."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            await self._ended()

    async def stop(self) -> int:
        """SIGTERM, as an admin or a service manager stops it; its exit code."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self._ended(), 60)
        except TimeoutError:
            await self.kill()
            raise


def host_env(database_url: str, standin: BotApiStandIn, **more: str) -> dict[str, str]:
    """What every host of one deployment is given: the token, the database, the Bot API; no
    webhook secret (each host must arrive at the same one by itself)."""
    return {
        "CONSULTBOT_TOKEN": TOKEN,
        "CONSULTBOT_DATABASE__URL": database_url,
        "CONSULTBOT_TELEGRAM__BASE_URL": standin.bot_base_url,
        "CONSULTBOT_TELEGRAM__BASE_FILE_URL": standin.file_base_url,
        "CONSULTBOT_TELEGRAM__REQUEST_TIMEOUT": "10",
        "CONSULTBOT_ROUNDS__TICK_SECONDS": "1",
        **more,
    }


@asynccontextmanager
async def behind_a_forwarder(
    count: int, database_url: str, standin: BotApiStandIn, cwd: Path, **env: str
) -> AsyncIterator[tuple[Forwarder, list[Host]]]:
    """`count` hosts, started one after the other (each registers the webhook in turn, as a
    rolling start does), behind one Forwarder; stopped with SIGTERM at the end."""
    ports = [free_port() for _ in range(count)]
    forwarder = Forwarder(ports)
    await forwarder.start()
    settings = host_env(database_url, standin, **env)
    hosts = [Host(port, forwarder.url, settings, cwd) for port in ports]
    try:
        for host in hosts:
            await host.start()
        yield forwarder, hosts
    finally:
        for host in hosts:
            if host.process is not None and host.process.returncode is None:
                await host.stop()
        await forwarder.stop()
