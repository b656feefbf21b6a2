"""A QMP session, driven synchronously, over a UNIX socket QEMU connects to.

The host listens first and QEMU connects as a client, so no event of the run can
be missed.  The `qemu.qmp` library is asyncio-based; this class owns a private
event loop and runs it only inside its own calls, so events wait in the socket
until the next call reads them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from qemu.qmp import QMPClient, Runstate

T = TypeVar("T")


class Monitor:
    def __init__(self, path: str, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = QMPClient(name)
        # The library logs a QEMU that exits mid-handshake as its own bug; the caller
        # reports that case with QEMU's message instead, so keep this log quiet.
        self._client.logger.setLevel(logging.CRITICAL + 1)
        self._run(self._client.start_server(path), None)

    @property
    def connected(self) -> bool:
        return self._client.runstate == Runstate.RUNNING

    def accept(self, exited_fd: int, timeout: float) -> str:
        """Wait for QEMU to connect and complete the QMP handshake.  Returns "ready",
        "exited" (`exited_fd` became readable first, or the handshake broke) or "timeout"."""
        exited = self._loop.create_future()
        self._loop.add_reader(exited_fd, lambda: exited.done() or exited.set_result(None))
        accept = self._loop.create_task(self._client.accept())
        try:
            done, _ = self._loop.run_until_complete(
                asyncio.wait({accept, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            )
        finally:
            self._loop.remove_reader(exited_fd)
        if accept in done:
            return "exited" if accept.exception() is not None else "ready"
        accept.cancel()
        self._loop.run_until_complete(asyncio.wait({accept}))
        return "exited" if exited in done else "timeout"

    def execute(self, command: str, arguments: dict[str, Any] | None, timeout: float) -> Any:
        return self._run(self._client.execute(command, arguments), timeout)

    def take_events(self, peer_gone: bool, timeout: float) -> list[dict[str, Any]]:
        """Events received since the last call.  With `peer_gone`, read up to QEMU's EOF
        first, so the events QEMU sent just before exiting are included."""
        try:
            self._run(self._settle(peer_gone), timeout)
        except TimeoutError:
            pass  # QEMU is gone but its socket lingers: return what has arrived
        return [dict(event) for event in self._client.events.clear()]

    async def _settle(self, until_eof: bool) -> None:
        await asyncio.sleep(0)  # let the reader task route what has arrived
        while until_eof and self._client.runstate == Runstate.RUNNING:
            await asyncio.sleep(0.001)

    def close(self, timeout: float) -> None:
        try:
            self._run(self._client.disconnect(), timeout)
        except Exception:  # EOF from a QEMU that is gone is the normal ending
            pass
        self._loop.close()

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None) -> T:
        return self._loop.run_until_complete(asyncio.wait_for(coroutine, timeout))
