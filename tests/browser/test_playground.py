"""The playground in a real browser: Debian's chromium driven by Playwright, against the real
``sentsim serve`` on the bundled model (fp32, so vectors do not depend on their batch), with an
API key set. Each view is used as a person would, and checked against the API it calls.

These tests never skip: without a chromium they fail and say how to install one (``.ci/run``
installs it). Screenshots of each view land in ``test-artifacts/playground/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pytest

from tests.integration.server import ROOT, server

pytestmark = pytest.mark.slow

KEY = "playground-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
ARTIFACTS = ROOT / "test-artifacts" / "playground"
SENTENCES = [
    "A man is playing a guitar.",
    "Someone is playing an instrument.",
    "A woman is slicing a tomato.",
    "A person is cutting vegetables.",
    "The stock market fell sharply today.",
]
DOCUMENTS = [
    ("How do I learn to play the guitar fast?", "music"),
    ("Which guitar should a beginner buy?", "music"),
    ("How can I improve my piano skills?", "music"),
    ("How do I bake sourdough bread?", "food"),
    ("How do I cook rice properly?", "food"),
    ("What should I eat before a guitar concert?", "food"),
    ("What is the capital of France?", "geography"),
]


def chromium_path() -> str:
    """Debian's chromium (or ``SENTSIM_TEST_CHROMIUM``); fails, never skips, without one."""
    found = os.environ.get("SENTSIM_TEST_CHROMIUM") or next(
        (p for name in ("chromium", "chromium-browser") if (p := shutil.which(name))), None
    )
    if found is None:
        pytest.fail("no chromium: `apt-get install chromium` (.ci/run installs it when missing)")
    return found


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"SENTSIM_API_KEY": KEY, "SENTSIM_PRECISION": "fp32"}
    with server(tmp_path_factory.mktemp("playground"), env=env) as (_, base):
        created = httpx.post(f"{base}/collections", json={"name": "faq"}, headers=AUTH)
        assert created.status_code == 201, created.text
        documents = [
            {"id": f"d{i}", "text": text, "metadata": {"topic": topic}}
            for i, (text, topic) in enumerate(DOCUMENTS)
        ]
        added = httpx.post(
            f"{base}/collections/faq/documents", json={"documents": documents}, headers=AUTH
        )
        assert added.status_code == 200, added.text
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where chromium's sandbox cannot start.
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@dataclass
class Watch:
    """What the page did: console errors, uncaught exceptions and every request's URL."""

    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def check(self, origin: str) -> None:
        """No request left ``origin``; no console error but the 401 that asked for the key."""
        assert [u for u in self.requests if not u.startswith((origin + "/", "data:"))] == []
        unexpected = [e for e in self.errors if "status of 401" not in e]
        assert unexpected == []
        assert len(self.errors) - len(unexpected) <= 1  # the key is asked for once


@pytest.fixture
def page(browser: Any, url: str) -> Iterator[tuple[Any, Watch]]:
    """The playground, loaded, with the API key given once in its dialog."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    opened = context.new_page()
    watch = Watch()
    opened.on("console", lambda m: m.type == "error" and watch.errors.append(m.text))
    opened.on("pageerror", lambda e: watch.errors.append(f"uncaught: {e}"))
    opened.on("request", lambda r: watch.requests.append(r.url))
    opened.goto(f"{url}/playground")
    opened.wait_for_selector("#key-dialog[open]")
    opened.fill("#key-input", KEY)
    opened.click("#key-ok")
    opened.wait_for_selector("#server-info:has-text('all-MiniLM-L6-v2')")
    yield opened, watch
    context.close()


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def similarity(url: str, source: str, sentences: list[str], **parameters: Any) -> Any:
    body: dict[str, Any] = {"inputs": {"source_sentence": source, "sentences": sentences}}
    if parameters:
        body["parameters"] = parameters
    response = httpx.post(f"{url}/similarity", json=body, headers=AUTH, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_heatmap_and_projection_show_the_apis_scores(page: tuple[Any, Watch], url: str) -> None:
    tab, watch = page
    tab.fill("#heatmap-sentences", "\n".join(SENTENCES))
    tab.click("#heatmap-form button[type=submit]")
    tab.wait_for_selector("#view-heatmap .status:has-text('higher is more similar')")
    n = len(SENTENCES)
    cells = tab.eval_on_selector_all(
        "#heatmap-svg rect.cell",
        "cells => cells.map(c => [+c.dataset.row, +c.dataset.col, +c.dataset.value])",
    )
    assert len(cells) == n * n
    shown = np.zeros((n, n))
    for row, col, value in cells:
        shown[row, col] = value
    expected = np.array([similarity(url, s, SENTENCES) for s in SENTENCES])
    np.testing.assert_allclose(shown, expected, atol=1e-5)

    # Hovering a cell reads its value and the two sentences.
    tab.hover("#heatmap-svg rect[data-row='0'][data-col='1']")
    readout = tab.inner_text("#heatmap-readout")
    assert f"{expected[0, 1]:.3f}" in readout and SENTENCES[1] in readout

    # The projection is PCA of the unit vectors (numpy SVD of the /embed vectors), up to sign.
    points = tab.eval_on_selector_all(
        "#projection-svg g.projected", "gs => gs.map(g => [+g.dataset.x, +g.dataset.y])"
    )
    vectors = np.array(httpx.post(f"{url}/embed", json={"inputs": SENTENCES}, headers=AUTH).json())
    centred = vectors - vectors.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    reference = u[:, :2] * s[:2]
    got = np.array(points)
    for axis in range(2):
        sign = np.sign(got[:, axis] @ reference[:, axis])
        np.testing.assert_allclose(got[:, axis], sign * reference[:, axis], atol=2e-3)
    assert tab.locator("#heatmap-legend li").all_inner_texts() == SENTENCES
    screenshot(tab, "1-heatmap")

    # One sentence is not a heatmap: said before any request.
    tab.fill("#heatmap-sentences", SENTENCES[0])
    tab.click("#heatmap-form button[type=submit]")
    assert "Write 2 to 40 sentences" in tab.inner_text("#view-heatmap .status.error")

    # A transform that does not exist: the API's 404 message, shown.
    tab.fill("#heatmap-sentences", "\n".join(SENTENCES))
    tab.fill("#heatmap-transform", "no-such-transform")
    tab.click("#heatmap-form button[type=submit]")
    tab.wait_for_selector("#view-heatmap .status.error:has-text('HTTP 404')")
    assert "no-such-transform" in tab.inner_text("#view-heatmap .status")
    watch.errors[:] = [e for e in watch.errors if "status of 404" not in e]
    watch.check(url)


def _draw_pair(tab: Any) -> None:
    tab.click("#tabs button[data-view=pair]")
    tab.fill("#pair-a", "A man is playing a guitar.")
    tab.fill("#pair-b", "Someone plays an instrument on stage.")
    tab.click("#pair-form button[type=submit]")
    tab.wait_for_selector("#explain-note:not(:empty)", timeout=120_000)


def test_pair_view_draws_the_alignment_and_attributions(page: tuple[Any, Watch], url: str) -> None:
    tab, watch = page
    _draw_pair(tab)
    a, b = "A man is playing a guitar.", "Someone plays an instrument on stage."
    scores = {
        row.get_attribute("data-method"): float(row.locator("td.num").inner_text())
        for row in tab.locator("#pair-scores tbody tr").all()
    }
    wrd = similarity(url, a, [b], method="wrd", alignment=True)
    assert scores["cosine"] == pytest.approx(similarity(url, a, [b])[0], abs=6e-4)
    assert scores["wmd"] == pytest.approx(similarity(url, a, [b], method="wmd")[0], abs=6e-4)
    assert scores["wrd"] == pytest.approx(wrd["scores"][0], abs=6e-4)

    # Tokens as the API lists them; one line per aligned pair, from the right token to the
    # right token, the heaviest drawn thickest.
    source, target = (
        tab.eval_on_selector_all(
            f"#alignment-svg g.token.{side} text", "ts => ts.map(t => t.textContent)"
        )
        for side in ("source", "target")
    )
    assert [source, target] == wrd["tokens"]
    lines = tab.eval_on_selector_all(
        "#alignment-svg line.link",
        "ls => ls.map(l => [+l.dataset.sourceIndex, +l.dataset.targetIndex, +l.dataset.mass,"
        " +l.getAttribute('stroke-width')])",
    )
    pairs = wrd["alignments"][0]
    assert len(lines) == len(pairs) > 0
    for (i, j, mass, _), pair in zip(lines, pairs, strict=True):
        assert (source[i], target[j]) == (pair["source"], pair["target"])
        assert mass == pytest.approx(pair["mass"])
    widths = [w for *_, w in lines]
    assert widths[0] == max(widths)
    # Each line starts under its source token and ends over its target token.
    ends = tab.eval_on_selector_all(
        "#alignment-svg line.link",
        "ls => ls.map(l => [+l.getAttribute('x1'), +l.getAttribute('x2')])",
    )
    boxes = tab.eval_on_selector_all(
        "#alignment-svg g.token rect",
        "rs => rs.map(r => [r.parentNode.classList.contains('source'), +r.getAttribute('x'),"
        " +r.getAttribute('width')])",
    )
    top = [(x, w) for is_source, x, w in boxes if is_source]
    bottom = [(x, w) for is_source, x, w in boxes if not is_source]
    for (i, j, *_), (x1, x2) in zip(lines, ends, strict=True):
        assert top[i][0] < x1 < top[i][0] + top[i][1]
        assert bottom[j][0] < x2 < bottom[j][0] + bottom[j][1]

    # Token colours carry the explain route's attributions.
    explained = httpx.post(
        f"{url}/similarity/explain",
        json={"source_sentence": a, "sentence": b},
        headers=AUTH,
        timeout=120,
    ).json()
    shown = tab.eval_on_selector_all(
        "#alignment-svg g.token", "gs => gs.map(g => +g.dataset.attribution)"
    )
    expected = [t["attribution"] for t in explained["source"] + explained["target"]]
    np.testing.assert_allclose(shown, expected, atol=1e-4)
    assert "integrated gradients" in tab.inner_text("#explain-note")
    screenshot(tab, "2-pair")
    tab.hover("#alignment-svg g.token.source >> nth=1")  # its lines stand out
    assert tab.locator("#alignment-svg line.link.focus").count() >= 1
    watch.check(url)


def test_pair_view_says_when_the_server_cannot_explain(page: tuple[Any, Watch], url: str) -> None:
    tab, watch = page
    # An older server, without the explain route: its 404, as such a server sends it.
    body = json.dumps({"error": "Not Found", "error_type": "not_found"})
    tab.route("**/similarity/explain", lambda r: r.fulfill(status=404, body=body))
    _draw_pair(tab)
    note = tab.inner_text("#explain-note")
    assert "no POST /similarity/explain" in note
    assert tab.locator("#alignment-svg line.link").count() > 0  # the rest still drawn
    assert (
        tab.eval_on_selector_all("#alignment-svg g.token[data-attribution]", "gs => gs.length") == 0
    )
    watch.errors[:] = [e for e in watch.errors if "status of 404" not in e]
    watch.check(url)


def test_search_view_with_filter_and_rerank(page: tuple[Any, Watch], url: str) -> None:
    tab, watch = page
    tab.click("#tabs button[data-view=search]")
    tab.wait_for_selector("#search-collection option[value=faq]", state="attached")
    tab.fill("#search-query", "guitar lessons")
    tab.fill("#search-top-k", "3")
    tab.fill("#search-filter", '{"topic": "music"}')
    tab.check("#search-rerank")
    tab.click("#search-form button[type=submit]")
    tab.wait_for_selector("#search-hits tr.hit")
    rows = tab.locator("#search-hits tr.hit").all()
    body = {
        "query": "guitar lessons",
        "top_k": 3,
        "filter": {"topic": "music"},
        "rerank": {"method": "wrd"},
    }
    hits = httpx.post(f"{url}/collections/faq/search", json=body, headers=AUTH).json()["hits"]
    assert [r.get_attribute("data-id") for r in rows] == [h["id"] for h in hits]
    assert len(hits) == 3 and all(h["metadata"] == {"topic": "music"} for h in hits)
    for row, hit in zip(rows, hits, strict=True):
        assert float(row.locator("td.score").inner_text()) == pytest.approx(hit["score"], abs=6e-4)
        vector_score = float(row.locator("td.vector-score").inner_text())
        assert vector_score == pytest.approx(hit["vector_score"], abs=6e-4)
    screenshot(tab, "3-search")

    # "Copy as curl" gives a command that, run in a shell, answers the same hits.
    tab.click("#view-search .copy-curl")
    command = tab.inner_text("#view-search pre.curl")
    assert "$SENTSIM_API_KEY" in command and KEY not in command
    ran = subprocess.run(
        ["bash", "-c", command],
        env={**os.environ, "SENTSIM_API_KEY": KEY},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert [h["id"] for h in json.loads(ran.stdout)["hits"]] == [h["id"] for h in hits]

    # A filter that is not a JSON object is caught before any request.
    tab.fill("#search-filter", "topic=music")
    tab.click("#search-form button[type=submit]")
    assert "JSON object" in tab.inner_text("#view-search .status.error")
    watch.check(url)


def test_paraphrase_view_lists_scored_candidates(page: tuple[Any, Watch], url: str) -> None:
    tab, watch = page
    tab.click("#tabs button[data-view=paraphrase]")
    tab.fill("#paraphrase-text", "how can i learn to play the guitar quickly")
    tab.fill("#paraphrase-n", "8")
    tab.fill("#paraphrase-k", "3")
    tab.fill("#paraphrase-seed", "7")
    tab.click("#paraphrase-form button[type=submit]")
    tab.wait_for_selector("#paraphrases li.paraphrase", timeout=120_000)
    body = {
        "text": "how can i learn to play the guitar quickly",
        "num_return_sequences": 8,
        "top_k": 3,
        "seed": 7,
    }
    expected = httpx.post(f"{url}/paraphrase", json=body, headers=AUTH, timeout=120).json()
    items = tab.locator("#paraphrases li.paraphrase").all()
    assert len(items) == len(expected) == 3
    for item, candidate in zip(items, expected, strict=True):
        assert item.inner_text().startswith(candidate["text"])
        assert float(item.locator(".score").inner_text()) == pytest.approx(
            candidate["score"], abs=6e-4
        )
    assert "/paraphrase" in tab.inner_text("#view-paraphrase pre.curl")
    screenshot(tab, "4-paraphrase")
    watch.check(url)


def test_a_refused_key_is_asked_for_again(browser: Any, url: str) -> None:
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(f"{url}/playground")
    tab.wait_for_selector("#key-dialog[open]")
    tab.fill("#key-input", "wrong")
    tab.click("#key-ok")
    tab.wait_for_selector("#key-note:has-text('refused')")
    tab.fill("#key-input", KEY)
    tab.click("#key-ok")
    tab.wait_for_selector("#server-info:has-text('all-MiniLM-L6-v2')")
    # Six requests at once after the key is known: no dialog again.
    tab.click("#heatmap-form button[type=submit]")
    tab.wait_for_selector("#heatmap-svg rect.cell")
    assert tab.locator("#key-dialog[open]").count() == 0
    context.close()
