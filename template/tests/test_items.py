"""The items resource, end to end over HTTP against PostgreSQL."""

import json

import httpx
import pytest


async def create(client: httpx.AsyncClient, name: str, **fields: object) -> dict[str, object]:
    response = await client.post("/items", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_create_returns_201_with_the_stored_item(client: httpx.AsyncClient) -> None:
    item = await create(client, "lamp", description="desk lamp")

    assert isinstance(item["id"], int)
    assert item["name"] == "lamp"
    assert item["description"] == "desk lamp"
    assert item["created_at"]
    assert (await client.get(f"/items/{item['id']}")).json() == item


async def test_duplicate_name_is_409_and_keeps_the_first(client: httpx.AsyncClient) -> None:
    first = await create(client, "chair")

    response = await client.post("/items", json={"name": "chair", "description": "another"})

    assert response.status_code == 409
    assert response.json() == {"detail": "Another record has the same name.", "fields": ["name"]}
    assert (await client.get(f"/items/{first['id']}")).json() == first


async def test_list_pages_with_limit_and_offset_in_id_order(client: httpx.AsyncClient) -> None:
    ids = [(await create(client, f"item-{n}"))["id"] for n in range(5)]

    page = (await client.get("/items", params={"limit": 2, "offset": 1})).json()

    assert [item["id"] for item in page] == ids[1:3]


async def test_list_limits_are_validated(client: httpx.AsyncClient) -> None:
    assert (await client.get("/items", params={"limit": 0})).status_code == 422
    assert (await client.get("/items", params={"limit": 101})).status_code == 422
    assert (await client.get("/items", params={"offset": -1})).status_code == 422
    huge_offset = {"offset": 99999999999999999999}
    assert (await client.get("/items", params=huge_offset)).status_code == 422


async def test_missing_item_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/items/999999")

    assert response.status_code == 404
    assert response.json() == {"detail": "item 999999 not found"}


async def test_patch_changes_only_the_fields_sent(client: httpx.AsyncClient) -> None:
    item = await create(client, "table", description="oak")

    response = await client.patch(f"/items/{item['id']}", json={"description": "pine"})

    assert response.status_code == 200
    assert response.json() == {**item, "description": "pine"}


async def test_patch_with_null_clears_a_field(client: httpx.AsyncClient) -> None:
    item = await create(client, "shelf", description="tall")

    response = await client.patch(f"/items/{item['id']}", json={"description": None})

    assert response.json()["description"] is None


async def test_patch_to_a_taken_name_is_409(client: httpx.AsyncClient) -> None:
    await create(client, "sofa")
    item = await create(client, "bench")

    response = await client.patch(f"/items/{item['id']}", json={"name": "sofa"})

    assert response.status_code == 409
    assert (await client.get(f"/items/{item['id']}")).json()["name"] == "bench"


async def test_patch_missing_item_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.patch("/items/999999", json={"name": "x"})).status_code == 404


async def test_delete_returns_204_and_the_item_is_gone(client: httpx.AsyncClient) -> None:
    item = await create(client, "stool")

    response = await client.delete(f"/items/{item['id']}")

    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(f"/items/{item['id']}")).status_code == 404


async def test_delete_missing_item_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.delete("/items/999999")).status_code == 404


async def test_invalid_payloads_are_422(client: httpx.AsyncClient) -> None:
    assert (await client.post("/items", json={"name": ""})).status_code == 422
    assert (await client.post("/items", json={"name": "x" * 101})).status_code == 422
    assert (await client.post("/items", json={"description": "no name"})).status_code == 422


@pytest.mark.parametrize("item_id", ["0", "-1", "2147483648", "3000000000", "99999999999999999999"])
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_an_id_past_the_integer_column_is_422_for_every_driver(
    client: httpx.AsyncClient, method: str, item_id: str
) -> None:
    response = await client.request(method, f"/items/{item_id}", json={})

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["path", "item_id"]


async def test_the_largest_integer_id_is_a_plain_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/items/2147483647")).status_code == 404


async def test_patch_with_null_for_a_required_field_is_422_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    item = await create(client, "crate", description="pine")

    response = await client.patch(f"/items/{item['id']}", json={"name": None})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "name"]
    assert (await client.get(f"/items/{item['id']}")).json() == item


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_an_unknown_field_is_422_not_silently_dropped(
    client: httpx.AsyncClient, method: str
) -> None:
    item = await create(client, "basket")
    path = "/items" if method == "POST" else f"/items/{item['id']}"

    response = await client.request(method, path, json={"name": "bag", "colour": "red"})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "colour"]


@pytest.mark.parametrize(
    "name",
    [pytest.param("a\x00b", id="NUL character"), pytest.param("a\ud800b", id="lone surrogate")],
)
async def test_text_postgresql_cannot_store_is_422_not_500(
    client: httpx.AsyncClient, name: str
) -> None:
    # json.dumps escapes both as \u0000 and \ud800, which JSON allows and decodes back.
    body = json.dumps({"name": name})
    headers = {"content-type": "application/json"}

    created = await client.post("/items", content=body, headers=headers)
    item = await create(client, "lantern")
    patched = await client.patch(f"/items/{item['id']}", content=body, headers=headers)

    assert (created.status_code, patched.status_code) == (422, 422)
