"""Chaos: kill -9 during concurrent upserts and deletes on a flat and an hnsw collection.

Each round starts the real server, lets writer threads upsert (new versions) and delete their
own documents, and SIGKILLs the process at a random moment. After the restart every document
is read back: an acknowledged upsert must be there with its acknowledged (or a later, in-flight)
version, an acknowledged delete must stay deleted, counts must match, and searches must return
only live documents. A request that was in flight at the kill may have gone either way.
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.integration.server import server

pytestmark = pytest.mark.slow

COLLECTIONS = {"flat": "flat", "graph": "hnsw"}
WRITERS_PER_COLLECTION = 3
IDS_PER_WRITER = 30
ROUNDS = int(os.environ.get("SENTSIM_CHAOS_ROUNDS", "8"))
ABSENT = -1  # version of a deleted (or never written) document

WORDS = "a man dog cat plays eats rides runs on the beach park guitar food horse song".split()


def _text(doc_id: str, version: int) -> str:
    rng = random.Random(f"{doc_id}/{version}")
    return f"{doc_id} version {version} " + " ".join(rng.choices(WORDS, k=6))


def _version(text: str) -> int:
    return int(text.split(" version ")[1].split()[0])


@dataclass
class Tally:
    """What the writers had acknowledged, and what was in flight at the kill."""

    state: dict[tuple[str, str], int] = field(default_factory=dict)
    possible: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    upserts: int = 0
    deletes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _writer(url: str, name: str, writer: int, tally: Tally, stop: threading.Event) -> None:
    rng = random.Random()
    ids = [f"w{writer}-{j}" for j in range(IDS_PER_WRITER)]
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            chosen = rng.sample(ids, rng.randint(1, 3))
            live = [i for i in chosen if tally.state.get((name, i), ABSENT) != ABSENT]
            if live and rng.random() < 0.35:
                doc_id, before = live[0], {live[0]: tally.state[(name, live[0])]}
                after = {doc_id: ABSENT}
                request = ("DELETE", f"/collections/{name}/documents/{doc_id}", None)
            else:
                before = {i: tally.state.get((name, i), ABSENT) for i in chosen}
                after = {i: max(before[i], 0) + 1 for i in chosen}
                docs = [
                    {"id": i, "text": _text(i, v), "metadata": {"w": writer}}
                    for i, v in after.items()
                ]
                request = ("POST", f"/collections/{name}/documents", {"documents": docs})
            method, path, body = request
            try:
                response = client.request(method, path, json=body)
            except httpx.TransportError:  # the server was killed: the outcome is unknown
                with tally.lock:
                    for i in after:
                        tally.possible[(name, i)] = {before[i], after[i]}
                return
            assert response.status_code in (200, 204), response.text
            with tally.lock:
                for i, v in after.items():
                    tally.state[(name, i)] = v
                tally.upserts += method == "POST"
                tally.deletes += method == "DELETE"


def _verify(client: httpx.Client, tally: Tally) -> None:
    for name in COLLECTIONS:
        live: set[str] = set()
        for writer in range(WRITERS_PER_COLLECTION):
            for j in range(IDS_PER_WRITER):
                doc_id = f"w{writer}-{j}"
                response = client.get(f"/collections/{name}/documents/{doc_id}")
                assert response.status_code in (200, 404), response.text
                found = _version(response.json()["text"]) if response.status_code == 200 else ABSENT
                key = (name, doc_id)
                allowed = tally.possible.pop(key, {tally.state.get(key, ABSENT)})
                assert found in allowed, f"{name}/{doc_id}: found {found}, acknowledged {allowed}"
                tally.state[key] = found
                if found != ABSENT:
                    live.add(doc_id)
        assert client.get(f"/collections/{name}").json()["count"] == len(live)
        hits = client.post(
            f"/collections/{name}/search", json={"query": "a man plays", "top_k": 500}
        ).json()["hits"]
        assert {h["id"] for h in hits} <= live  # no deleted document comes back
        if name == "flat":
            assert len(hits) == len(live)
        for doc_id in random.sample(sorted(live), min(10, len(live))):
            text = _text(doc_id, tally.state[(name, doc_id)])
            top = client.post(f"/collections/{name}/search", json={"query": text, "top_k": 1})
            assert top.json()["hits"][0]["id"] == doc_id


def test_kill_9_during_concurrent_writes_loses_nothing_acknowledged(
    tmp_path: Path, tiny_bert_dir: Path
) -> None:
    args = ("--model", str(tiny_bert_dir))
    env = {"SENTSIM_MAX_TOP_K": "500"}
    tally = Tally()
    with server(tmp_path, *args, env=env) as (_, url):
        for name, index in COLLECTIONS.items():
            assert httpx.post(f"{url}/collections", json={"name": name, "index": index}).is_success
    for _ in range(ROUNDS):
        with server(tmp_path, *args, env=env) as (process, url):
            with httpx.Client(base_url=url, timeout=60) as client:
                _verify(client, tally)
            stop = threading.Event()
            threads = [
                threading.Thread(target=_writer, args=(url, name, w, tally, stop))
                for name in COLLECTIONS
                for w in range(WRITERS_PER_COLLECTION)
            ]
            for thread in threads:
                thread.start()
            time.sleep(random.uniform(1.5, 3.5))
            process.kill()  # SIGKILL: no shutdown, no index checkpoint
            process.wait(30)
            stop.set()
            for thread in threads:
                thread.join(60)
    with server(tmp_path, *args, env=env) as (_, url), httpx.Client(base_url=url) as client:
        _verify(client, tally)
    print(  # noqa: T201 - the figures, shown with pytest -s
        f"\nchaos: {ROUNDS} kill -9 rounds, {tally.upserts} upserts and {tally.deletes} deletes "
        "acknowledged, 0 lost, 0 deletes resurrected"
    )
    assert tally.upserts > 100 and tally.deletes > 20
