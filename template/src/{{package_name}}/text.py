"""Text that PostgreSQL can store: drivers fail on NUL characters and lone surrogates."""


def storable(value: str | None) -> str | None:
    """A pydantic validator: refuse what a text column cannot hold, as a 422 not a 500."""
    if value is None:
        return None
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value
