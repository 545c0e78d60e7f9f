"""Churn: 32 concurrent clients for 30 s against the real server, mixing searches, upserts and
deletes on one collection with the creation and deletion of a second one (issue 9).

No response may be a 5xx; afterwards the main collection's count and filtered searches must
agree with what the clients were told.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import re
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.server import server

HTTPX_KEEPALIVE_EXPIRY_S = httpx.Limits().keepalive_expiry or 5.0

pytestmark = pytest.mark.slow

MAIN_CLIENTS = 24
SIDE_CLIENTS = 8
IDS_PER_CLIENT = 12
SECONDS = float(os.environ.get("SENTSIM_CHURN_SECONDS", "30"))
WORDS = "a man dog cat plays eats rides runs on the beach park guitar food horse song".split()


def _text(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(3, 10)))


async def _main_client(
    client: httpx.AsyncClient,
    owner: int,
    live: dict[str, bool],
    statuses: collections.Counter[tuple[str, int]],
) -> None:
    rng = random.Random(owner)
    ids = [f"c{owner}-{j}" for j in range(IDS_PER_CLIENT)]
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        roll = rng.random()
        if roll < 0.45:
            body = {
                "query": _text(rng),
                "top_k": 5,
                "filter": {"owner": rng.randrange(MAIN_CLIENTS)},
            }
            op, response = "search", await client.post("/collections/main/search", json=body)
        elif roll < 0.75:
            chosen = rng.sample(ids, rng.randint(1, 3))
            docs = [{"id": i, "text": _text(rng), "metadata": {"owner": owner}} for i in chosen]
            response = await client.post("/collections/main/documents", json={"documents": docs})
            op = "upsert"
            if response.status_code == 200:
                live.update(dict.fromkeys(chosen, True))
        elif roll < 0.95:
            doc_id = rng.choice(ids)
            op, response = "delete", await client.delete(f"/collections/main/documents/{doc_id}")
            if response.status_code == 204:
                live[doc_id] = False
            else:
                assert response.status_code != 404 or not live.get(doc_id), doc_id
        else:
            op, response = "list", await client.get("/collections")
        statuses[(op, response.status_code)] += 1


async def _side_client(
    client: httpx.AsyncClient, seed: int, statuses: collections.Counter[tuple[str, int]]
) -> None:
    rng = random.Random(1000 + seed)
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        roll = rng.random()
        if roll < 0.2:
            index = rng.choice(["flat", "hnsw", "IVF2,Flat"])
            op = "side-create"
            response = await client.post("/collections", json={"name": "side", "index": index})
        elif roll < 0.4:
            op, response = "side-delete", await client.delete("/collections/side")
        elif roll < 0.6:
            docs = [{"text": _text(rng)} for _ in range(rng.randint(1, 8))]
            op = "side-upsert"
            response = await client.post("/collections/side/documents", json={"documents": docs})
        elif roll < 0.8:
            op = "side-search"
            response = await client.post("/collections/side/search", json={"query": _text(rng)})
        elif roll < 0.9:
            op = "side-whitening"  # 400 while it has no documents
            response = await client.post("/collections/side/whitening", json={"k": 4})
        else:
            op, response = "side-info", await client.get("/collections/side")
        statuses[(op, response.status_code)] += 1


async def _churn(url: str) -> tuple[collections.Counter[tuple[str, int]], dict[str, bool]]:
    statuses: collections.Counter[tuple[str, int]] = collections.Counter()
    live: dict[str, bool] = {}
    limits = httpx.Limits(max_connections=MAIN_CLIENTS + SIDE_CLIENTS)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await asyncio.gather(
            *(_main_client(client, c, live, statuses) for c in range(MAIN_CLIENTS)),
            *(_side_client(client, c, statuses) for c in range(SIDE_CLIENTS)),
        )
    return statuses, live


def test_32_clients_mixing_reads_writes_and_collection_churn(
    tmp_path: Path, tiny_bert_dir: Path
) -> None:
    env = {"SENTSIM_MAX_TOP_K": "500"}
    with server(tmp_path, "--model", str(tiny_bert_dir), env=env) as (_, url):
        assert httpx.post(f"{url}/collections", json={"name": "main"}).status_code == 201
        statuses, live = asyncio.run(_churn(url))
        errors = {key: n for key, n in statuses.items() if key[1] >= 500}
        assert not errors, f"server errors: {errors} of {sum(statuses.values())} responses"
        unexpected = {
            (op, status)
            for op, status in statuses
            if status not in (200, 201, 204, 404, 409) and (op, status) != ("side-whitening", 400)
        }
        assert not unexpected, statuses
        assert not {op for op, status in statuses if status == 404} & {"search", "upsert", "list"}
        with httpx.Client(base_url=url, timeout=60) as client:
            alive = {i for i, up in live.items() if up}
            assert client.get("/collections/main").json()["count"] == len(alive)
            for owner in range(MAIN_CLIENTS):
                body = {"query": "a man", "top_k": 500, "filter": {"owner": owner}}
                hits = client.post("/collections/main/search", json=body).json()["hits"]
                assert {h["id"] for h in hits} == {i for i in alive if i.startswith(f"c{owner}-")}
    by_status = collections.Counter(status for _, status in statuses.elements())
    print(f"\nchurn: {by_status.total()} responses in {SECONDS:.0f} s: {dict(by_status)}")  # noqa: T201


def _get_on(sock: socket.socket, path: str) -> bytes:
    """Send ``GET path`` on an open keep-alive connection; return the whole response (its
    headers and ``Content-Length`` bytes of body: they may come in separate segments)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(65536)
        if not chunk:
            return response  # closed by the server
        response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_idle_connection_outlives_the_clients_keepalive_expiry(
    tmp_path: Path, tiny_bert_dir: Path
) -> None:
    """A server that closes idle connections when clients expire them (uvicorn's 5 s and
    httpx's 5 s) races them: a request sent on the connection as it closes fails with
    ReadError (seen under the churn above). The server must keep them open for longer."""
    with server(tmp_path, "--model", str(tiny_bert_dir)) as (_, url):
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            assert _get_on(sock, "/health").startswith(b"HTTP/1.1 200")
            time.sleep(HTTPX_KEEPALIVE_EXPIRY_S + 1)
            assert _get_on(sock, "/health").startswith(b"HTTP/1.1 200")
