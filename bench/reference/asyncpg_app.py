"""Reference: FastAPI on asyncpg's own pool, plain SQL, one transaction per request."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from common import BEHIND_POOLER, COLUMNS, DATABASE_URL, POOL_SIZE, ItemCreate, ItemRead
from fastapi import FastAPI, HTTPException, status

pools: dict[str, asyncpg.Pool] = {}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    cache_size = 0 if BEHIND_POOLER else 100
    pools["db"] = await asyncpg.create_pool(
        DATABASE_URL, min_size=1, max_size=POOL_SIZE, statement_cache_size=cache_size
    )
    yield
    await pools["db"].close()


app = FastAPI(lifespan=lifespan)


@app.get("/items/{item_id}")
async def get_item(item_id: int) -> ItemRead:
    async with pools["db"].acquire() as connection, connection.transaction():
        row = await connection.fetchrow(f"SELECT {COLUMNS} FROM items WHERE id = $1", item_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"item {item_id} not found")
    return ItemRead.model_validate(dict(row))


@app.post("/items", status_code=status.HTTP_201_CREATED)
async def create_item(payload: ItemCreate) -> ItemRead:
    async with pools["db"].acquire() as connection, connection.transaction():
        row = await connection.fetchrow(
            f"INSERT INTO items (name, description) VALUES ($1, $2) RETURNING {COLUMNS}",
            payload.name,
            payload.description,
        )
    return ItemRead.model_validate(dict(row))
