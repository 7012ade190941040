"""What the reference apps share: configuration and the request and response bodies.

The reference apps are the ceiling for each stack: FastAPI and Pydantic as in the rendered
project, the same table, one transaction per request, but the driver's own pool and plain SQL
instead of SQLAlchemy. They run in the rendered project's environment, so every library they
share with it has the same version.
"""

import os
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

# A libpq URL, e.g. postgresql://user:password@127.0.0.1:5432/db?sslmode=require
DATABASE_URL = os.environ["DATABASE_URL"]
POOL_SIZE = int(os.environ["DB_POOL_SIZE"])
# Behind a transaction pooler no connection may keep prepared statements (as in the template).
BEHIND_POOLER = os.environ.get("DB_BEHIND_POOLER", "false").lower() == "true"

COLUMNS = "id, name, description, created_at"


class ItemCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)


class ItemRead(ItemCreate):
    id: int
    created_at: datetime


def psycopg_pool_arguments() -> dict[str, Any]:
    """psycopg_pool's arguments, for its async and its sync pool alike."""
    from psycopg.rows import dict_row  # only the psycopg stacks have psycopg installed

    return {
        "conninfo": DATABASE_URL,
        "min_size": 1,
        "max_size": POOL_SIZE,
        "kwargs": {"row_factory": dict_row, "prepare_threshold": None if BEHIND_POOLER else 5},
        # Opened in the lifespan, inside the worker process and its event loop.
        "open": False,
    }
