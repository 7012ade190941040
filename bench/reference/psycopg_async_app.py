"""Reference: async FastAPI on psycopg_pool's AsyncConnectionPool, plain SQL."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from common import COLUMNS, ItemCreate, ItemRead, psycopg_pool_arguments
from fastapi import FastAPI, HTTPException, status
from psycopg_pool import AsyncConnectionPool

# The pool's connection() commits when the block succeeds: one transaction per request.
pool = AsyncConnectionPool(**psycopg_pool_arguments())


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await pool.open(wait=True)
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/items/{item_id}")
async def get_item(item_id: int) -> ItemRead:
    async with pool.connection() as connection:
        cursor = await connection.execute(f"SELECT {COLUMNS} FROM items WHERE id = %s", (item_id,))
        row = await cursor.fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"item {item_id} not found")
    return ItemRead.model_validate(row)


@app.post("/items", status_code=status.HTTP_201_CREATED)
async def create_item(payload: ItemCreate) -> ItemRead:
    async with pool.connection() as connection:
        cursor = await connection.execute(
            f"INSERT INTO items (name, description) VALUES (%s, %s) RETURNING {COLUMNS}",
            (payload.name, payload.description),
        )
        row = await cursor.fetchone()
    return ItemRead.model_validate(row)
