"""Reference: sync FastAPI on psycopg2's ThreadedConnectionPool, plain SQL."""

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from common import COLUMNS, DATABASE_URL, POOL_SIZE, ItemCreate, ItemRead
from fastapi import FastAPI, HTTPException, status
from psycopg2.extensions import cursor as Cursor
from psycopg2.extras import RealDictCursor
from psycopg2.pool import ThreadedConnectionPool

pools: dict[str, ThreadedConnectionPool] = {}
# ThreadedConnectionPool raises instead of waiting when it is empty: wait for a slot here.
slots = threading.BoundedSemaphore(POOL_SIZE)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # minconn = maxconn: psycopg2's pool closes every connection returned beyond minconn.
    pools["db"] = ThreadedConnectionPool(POOL_SIZE, POOL_SIZE, DATABASE_URL)
    yield
    pools["db"].closeall()


app = FastAPI(lifespan=lifespan)


@contextmanager
def transaction() -> Iterator[Cursor]:
    """One transaction on a pooled connection: commit on success, roll back on error."""
    with slots:
        connection = pools["db"].getconn()
        try:
            with connection, connection.cursor(cursor_factory=RealDictCursor) as cursor:
                yield cursor
        finally:
            pools["db"].putconn(connection)


@app.get("/items/{item_id}")
def get_item(item_id: int) -> ItemRead:
    with transaction() as cursor:
        cursor.execute(f"SELECT {COLUMNS} FROM items WHERE id = %s", (item_id,))
        row: Any = cursor.fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"item {item_id} not found")
    return ItemRead.model_validate(row)


@app.post("/items", status_code=status.HTTP_201_CREATED)
def create_item(payload: ItemCreate) -> ItemRead:
    with transaction() as cursor:
        cursor.execute(
            f"INSERT INTO items (name, description) VALUES (%s, %s) RETURNING {COLUMNS}",
            (payload.name, payload.description),
        )
        row: Any = cursor.fetchone()
    return ItemRead.model_validate(row)
