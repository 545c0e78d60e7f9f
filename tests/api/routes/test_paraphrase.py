"""POST /paraphrase: 503 without a generator, validation, a happy path on the tiny SimBERT."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app

pytestmark = pytest.mark.slow  # trains the tiny SimBERT once per session


def test_without_a_generator_it_is_503_with_a_way_out(client: TestClient) -> None:
    response = client.post("/paraphrase", json={"text": "how do i learn python"})
    assert response.status_code == 503
    assert "SENTSIM_GENERATOR" in response.json()["error"]


def test_happy_path_and_validation(settings: Settings, tiny_simbert) -> None:  # type: ignore[no-untyped-def]
    folder, _, pairs = tiny_simbert
    with TestClient(create_app(settings.model_copy(update={"generator": str(folder)}))) as client:
        body = {"text": pairs[0][0], "num_return_sequences": 8, "top_k": 2, "seed": 1}
        response = client.post("/paraphrase", json=body)
        assert response.status_code == 200, response.json()
        results = response.json()
        assert 1 <= len(results) <= 2 and {"text", "score"} == set(results[0])
        assert client.post("/paraphrase", json=body).json() == results  # seeded
        # Hugging Face's names: the same request as the earlier body above.
        new = {"text": pairs[0][0], "num_candidates": 8, "num_return_sequences": 2, "seed": 1}
        assert client.post("/paraphrase", json=new).json() == results
        assert client.get("/info").json()["generator"] == folder.name  # no server path
        for bad, status in (
            ({"text": ""}, 400),
            ({"text": "x", "top_p": 0}, 422),
            ({"text": "x", "num_return_sequences": 65}, 413),
            ({"text": "x", "num_candidates": 65}, 413),
            ({"text": "x", "num_candidates": 4, "top_k": -1}, 422),
            ({"text": "x", "max_new_tokens": 65}, 413),
            ({"text": "x", "temperature": -1}, 422),
            ({"text": "x", "temperature": 5e-324}, 422),  # found by schemathesis: NaN sampling
            ({"txt": "x"}, 422),
        ):
            assert client.post("/paraphrase", json=bad).status_code == status, bad


def test_the_generator_refuses_temperatures_that_overflow(tiny_simbert) -> None:  # type: ignore[no-untyped-def]
    from app.core.errors import InputValidationError
    from app.generation.model import MIN_TEMPERATURE
    from app.generation.sampling import SimBertGenerator

    generator = SimBertGenerator.load(str(tiny_simbert[0]), device="cpu")
    with pytest.raises(InputValidationError, match="temperature"):
        generator.generate("how do i learn python", temperature=MIN_TEMPERATURE / 2)
    assert generator.generate("how do i learn python", temperature=MIN_TEMPERATURE, seed=0)


def test_a_text_over_the_generators_limit_is_refused_unless_truncate(
    settings: Settings, tiny_simbert
) -> None:  # type: ignore[no-untyped-def]
    """The one truncation policy (issue 10 item 7) on /paraphrase too: never cut silently."""
    folder, _, _ = tiny_simbert
    long = ".," * 40  # 80 punctuation tokens: over the generator's 64
    with TestClient(create_app(settings.model_copy(update={"generator": str(folder)}))) as client:
        body = {"text": long, "num_return_sequences": 4, "top_k": 1, "seed": 0}
        refused = client.post("/paraphrase", json=body)
        assert refused.status_code == 413 and "truncate=true" in refused.json()["error"]
        cut = client.post("/paraphrase", json={**body, "truncate": True})
        assert cut.status_code == 200 and cut.headers["X-Truncated-Inputs"] == "text"
        whole = client.post("/paraphrase", json={**body, "text": "how do i learn python"})
        assert whole.status_code == 200 and "X-Truncated-Inputs" not in whole.headers
