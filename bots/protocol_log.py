"""Malformed HTTP from a client (a request line or header over aiohttp's 8 KiB, a bad method,
broken chunking) is the client's mistake: aiohttp answers it with a plain 400 before any handler
runs, but logs it as an ERROR with a full traceback. One script could fill the log (and hide real
errors) that way. This filter turns those records into one WARNING line each; a handler's own
exception (a real 500) still logs its traceback.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError


class ProtocolErrorFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg, record.args = (
                "bad HTTP request (%s): %s",
                (record.args[0] if isinstance(record.args, tuple) and record.args else "?", type(exc).__name__),
            )
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


def quiet_protocol_errors() -> None:
    """Install ``ProtocolErrorFilter`` on aiohttp's server logger, once."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, ProtocolErrorFilter) for f in logger.filters):
        logger.addFilter(ProtocolErrorFilter())
