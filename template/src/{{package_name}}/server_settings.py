"""The server-side limits the app asks for, at connect time or per transaction behind a pooler."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from .settings import Settings


def startup_settings(settings: Settings) -> dict[str, str]:
    """Startup settings for a direct connection: the timeouts and the server's TCP probes."""
    return {
        **server_timeouts(settings),
        "tcp_keepalives_idle": str(settings.db_keepalives_idle),
        "tcp_keepalives_interval": str(settings.db_keepalives_interval),
        "tcp_keepalives_count": str(settings.db_keepalives_count),
        "tcp_user_timeout": str(milliseconds(settings.db_tcp_user_timeout)),
    }


def server_timeouts(settings: Settings) -> dict[str, str]:
    """The server-side limits that are on (a setting of 0 leaves the server's default)."""
    timeouts = {
        "statement_timeout": settings.db_statement_timeout,
        "idle_in_transaction_session_timeout": settings.db_idle_in_transaction_timeout,
    }
    return {name: str(milliseconds(value)) for name, value in timeouts.items() if value}


def limit_each_transaction(engine: Engine, settings: Settings) -> None:
    """Behind a transaction pooler, set the server-side timeouts per transaction.

    Poolers refuse startup options (`unsupported startup parameter: options`); SET LOCAL ends
    with the transaction, so it never leaks to another client of the same server connection.
    """
    if not (timeouts := server_timeouts(settings)):
        return
    statement = "SELECT " + ", ".join(
        f"set_config('{name}', '{value}', true)" for name, value in timeouts.items()
    )

    @event.listens_for(engine, "begin")
    def _set_local_timeouts(connection: Connection) -> None:
        connection.exec_driver_sql(statement)


def parse_options(options: str) -> tuple[dict[str, str], list[str]]:
    """Split libpq's `options` into its settings (`-c name=value`, `--name=value`) and the rest.

    The server splits the string at unescaped whitespace, a backslash escaping the next
    character (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-OPTIONS).
    The rest (e.g. Neon's `endpoint=...`) is returned as written.
    """
    words = _split(options)
    settings: dict[str, str] = {}
    rest: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word == "-c" and index + 1 < len(words):
            index += 1
            setting = words[index]
        elif word.startswith("--") or (word.startswith("-c") and word != "-c"):
            setting = word[2:]
        else:
            rest.append(_escape(word))
            index += 1
            continue
        name, equals, value = setting.partition("=")
        if not (name and equals):
            raise ValueError(f"options={options!r}: {setting!r} is not name=value")
        # The server reads names case-insensitively and `-` as `_`.
        settings[name.lower().replace("-", "_")] = value
        index += 1
    return settings, rest


def render_options(settings: dict[str, str], rest: list[str]) -> str:
    """The `options` string for these settings and other words, escaped as the server expects."""
    return " ".join([*(f"-c {name}={_escape(value)}" for name, value in settings.items()), *rest])


def milliseconds(seconds: float) -> int:
    return round(seconds * 1000)


def _split(options: str) -> list[str]:
    words: list[str] = []
    word: list[str] = []
    escaped = False
    for character in options:
        if escaped:
            word.append(character)
            escaped = False
        elif character == "\\":
            escaped = True
        elif character.isspace():
            if word:
                words.append("".join(word))
            word = []
        else:
            word.append(character)
    if word:
        words.append("".join(word))
    return words


def _escape(word: str) -> str:
    return "".join(f"\\{c}" if c.isspace() or c == "\\" else c for c in word)
