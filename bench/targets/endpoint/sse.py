"""Server-sent events, as OpenAI-compatible servers stream them (no third-party parser).

The WHATWG event-stream format: lines end in LF, CRLF or CR; an event ends at a blank
line; `data:` lines of one event are joined with LF; a line starting with `:` is a comment;
`event:`, `id:` and `retry:` lines are fields we keep but do not need. What real servers do
that a parser must survive (measured against `transformers serve`, transformers 5.24):
several events in one TCP write, one event split over several writes, no closing
`data: [DONE]`, and `usage` in the last chunk whether or not it was asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class MalformedStream(ValueError):
    """A stream that is not server-sent events carrying JSON chunks."""


@dataclass
class Event:
    data: str
    event: str = ""

    @property
    def done(self) -> bool:
        return self.data.strip() == "[DONE]"

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.data)
        except ValueError:
            raise MalformedStream(f"an event's data is not JSON: {self.data[:120]!r}") from None
        if not isinstance(value, dict):
            raise MalformedStream(f"an event's data is JSON but not an object: {self.data[:120]!r}")
        return value


class EventParser:
    """Feed bytes as they arrive; get back the events each feed completed."""

    def __init__(self) -> None:
        self._buffer = ""
        self._data: list[str] = []
        self._event = ""
        self._decoder = _utf8()

    def feed(self, chunk: bytes) -> list[Event]:
        self._buffer += self._decoder.decode(chunk)
        events: list[Event] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                return events
            line, self._buffer = self._buffer[:cut[0]], self._buffer[cut[1]:]
            event = self._line(line)
            if event is not None:
                events.append(event)

    def close(self) -> list[Event]:
        """The stream ended: a last event without its blank line still counts."""
        events = self.feed(b"")
        if self._buffer:
            event = self._line(self._buffer)
            self._buffer = ""
            if event is not None:
                events.append(event)
        if self._data:
            events.append(Event("\n".join(self._data), self._event))
            self._data, self._event = [], ""
        return events

    def _line(self, line: str) -> Event | None:
        if line == "":
            if not self._data:
                return None
            event = Event("\n".join(self._data), self._event)
            self._data, self._event = [], ""
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name not in ("id", "retry"):
            raise MalformedStream(f"not a server-sent event line: {line[:120]!r}")
        return None


def _line_end(text: str) -> tuple[int, int] | None:
    """(end of the first line, start of the next), or None while the line is incomplete."""
    lf, cr = text.find("\n"), text.find("\r")
    if cr < 0 or (0 <= lf < cr):
        return None if lf < 0 else (lf, lf + 1)
    if cr + 1 == len(text):
        return None  # CR at the end: a LF may follow in the next chunk
    return cr, cr + 2 if text[cr + 1] == "\n" else cr + 1


def _utf8():
    import codecs

    return codecs.getincrementaldecoder("utf-8")(errors="strict")
