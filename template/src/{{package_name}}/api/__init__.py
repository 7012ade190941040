"""HTTP routes: one module per resource, each router joining `resources`."""

from fastapi import APIRouter

from ..errors import DATABASE_ERROR_RESPONSES
from . import items

# Every resource's routes may answer the database's 503 and 504 (errors.py, for OpenAPI); the
# app runs each once more when that is safe (retry.py).
resources = APIRouter(responses=DATABASE_ERROR_RESPONSES)
resources.include_router(items.router)
