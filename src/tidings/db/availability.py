"""Whether an exception means the database cannot be reached right now (refused, reset,
restarting, shutting down, locked past the busy timeout), as opposed to a bug or bad
data. The API answers such a failure 503 with Retry-After, never 500."""

from __future__ import annotations

from asyncpg import exceptions as pg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

RETRY_AFTER_SECONDS = 5
"""What a 503 asks the client to wait: a PostgreSQL restart takes about a second."""

_UNREACHABLE = (
    ConnectionError,  # refused, reset, aborted
    TimeoutError,  # no connection, or no SQLite write turn, in time
    pg.PostgresConnectionError,  # the connection was lost
    pg.CannotConnectNowError,  # starting up, shutting down
    pg.AdminShutdownError,
    pg.InterfaceError,  # "connection is closed"
)


RAISED: tuple[type[Exception], ...] = (*_UNREACHABLE, DBAPIError)
"""The exception types such a failure is raised as (not all of these are one)."""


def unavailable(exc: BaseException) -> bool:
    """True when `exc`, or an exception it was raised from, says the database cannot be
    reached now."""
    seen: BaseException | None = exc
    for _ in range(5):  # SQLAlchemy wraps the driver's error once or twice
        if seen is None:
            return False
        if isinstance(seen, _UNREACHABLE):
            return True
        if isinstance(seen, DBAPIError) and (
            seen.connection_invalidated or isinstance(seen, (OperationalError, InterfaceError))
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
