"""Reference: sync FastAPI (def endpoints on the thread pool) on psycopg_pool, plain SQL."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from common import COLUMNS, ItemCreate, ItemRead, psycopg_pool_arguments
from fastapi import FastAPI, HTTPException, status
from psycopg_pool import ConnectionPool

# The pool's connection() commits when the block succeeds: one transaction per request.
pool = ConnectionPool(**psycopg_pool_arguments())


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool.open(wait=True)
    yield
    pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/items/{item_id}")
def get_item(item_id: int) -> ItemRead:
    with pool.connection() as connection:
        row = connection.execute(
            f"SELECT {COLUMNS} FROM items WHERE id = %s", (item_id,)
        ).fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"item {item_id} not found")
    return ItemRead.model_validate(row)


@app.post("/items", status_code=status.HTTP_201_CREATED)
def create_item(payload: ItemCreate) -> ItemRead:
    with pool.connection() as connection:
        row = connection.execute(
            f"INSERT INTO items (name, description) VALUES (%s, %s) RETURNING {COLUMNS}",
            (payload.name, payload.description),
        ).fetchone()
    return ItemRead.model_validate(row)
