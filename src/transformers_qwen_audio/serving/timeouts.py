# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Read timeouts against slow clients. uvicorn closes idle keep-alive connections (`timeout_keep_alive`) but sets no
deadline on a request that is arriving: a client that sends its headers or its body a byte at a time holds a
connection (and a worker's memory) for as long as it likes. Two guards close that gap:

- `head_deadline_protocol(seconds)`: uvicorn's h11 protocol with a deadline for each request's head (request line
  and headers), from the connection's start or the end of the previous response; past it the connection is closed.
- `BodyReadTimeout`: an ASGI middleware under which every wait for a piece of the body is bounded; past it the
  request gets a 408 (the route reading the body raises it, the app renders it as OpenAI's error body).
"""

import asyncio

from .protocol import RequestError


def head_deadline_protocol(seconds: float) -> type:
    """A uvicorn `http` protocol class (h11) that closes connections whose next request head takes over `seconds`."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadDeadlineH11Protocol(H11Protocol):
        _head_timer = None

        def connection_made(self, transport):
            super().connection_made(transport)
            self._arm_head_deadline()

        def on_response_complete(self):
            super().on_response_complete()
            self._arm_head_deadline()

        def connection_lost(self, exc):
            self._cancel_head_deadline()
            super().connection_lost(exc)

        def _arm_head_deadline(self):
            self._cancel_head_deadline()
            self._head_timer = self.loop.call_later(seconds, self._head_deadline_passed)

        def _cancel_head_deadline(self):
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_deadline_passed(self):
            self._head_timer = None
            waiting_for_head = self.cycle is None or self.cycle.response_complete
            if waiting_for_head and not self.transport.is_closing():
                self.transport.close()

    return HeadDeadlineH11Protocol


class BodyReadTimeout:
    """ASGI middleware: each wait for the next piece of an HTTP request body lasts at most `seconds` (408 past it).
    Once the body is complete, `receive` is passed through untimed (a streamed response waits on it for the client
    to leave)."""

    def __init__(self, app, seconds: float):
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        body_complete = False

        async def timed_receive():
            nonlocal body_complete
            if body_complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.seconds)
            except TimeoutError:
                raise RequestError(f"The request body stalled: no data for {self.seconds:g} s (this server's read "
                                   "timeout).", status=408, code="request_timeout") from None
            body_complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed_receive, send)
