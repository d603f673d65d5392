import numpy as np
import pytest
from fake_openai import Reply
from pydantic import SecretStr

from rag_service.generation.openai_chat import OpenAIChatGenerator
from rag_service.resilience.errors import ProviderError
from rag_service.retrieval.openai_embedder import OpenAIEmbedder
from rag_service.retrieval.vector_index import Hit

HITS = [
    Hit("vat:0", "vat", "VAT", "French VAT is 20 percent.", 0.8),
    Hit("hours:0", "hours", "Hours", "Support is open 9:00 to 18:00.", 0.4),
]


@pytest.fixture
def embedder(fake_openai):
    embedder = OpenAIEmbedder(fake_openai.url, SecretStr("sk-test"), "embed-model", dim=384, timeout_seconds=1)
    yield embedder
    embedder.close()


@pytest.fixture
def generator(fake_openai):
    generator = OpenAIChatGenerator(fake_openai.url, SecretStr("sk-test"), "chat-model", timeout_seconds=1)
    yield generator
    generator.close()


def test_embeddings_request_shape_and_auth(embedder, fake_openai):
    vectors = embedder.embed(["alpha", "beta gamma"])
    [request] = fake_openai.requests
    assert request.path == "/v1/embeddings"
    assert request.headers["Authorization"] == "Bearer sk-test"
    assert request.json == {"model": "embed-model", "input": ["alpha", "beta gamma"]}
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    # The fake answers in reverse order; rows follow the "index" field.
    assert vectors[0][0] > 0 and vectors[1][1] > 0


def test_no_api_key_sends_no_authorization(fake_openai):
    embedder = OpenAIEmbedder(fake_openai.url, None, "m", dim=384, timeout_seconds=1)
    embedder.embed(["x"])
    embedder.close()
    assert "Authorization" not in fake_openai.requests[0].headers


@pytest.mark.parametrize(
    "body",
    [
        {"data": [{"index": 0, "embedding": [1.0, 2.0]}]},  # wrong dimension
        {"data": []},  # missing vector
        {"unexpected": True},
        {"data": [{"index": 0}]},
    ],
)
def test_malformed_embeddings_raise_provider_error(embedder, fake_openai, body):
    fake_openai.default = Reply(body=body)
    with pytest.raises(ProviderError):
        embedder.embed(["x"])


def test_chat_request_shape_and_answer(generator, fake_openai):
    generated = generator.generate("What is the VAT rate?", HITS)
    [request] = fake_openai.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-test"
    assert request.json["model"] == "chat-model"
    system, user = request.json["messages"]
    assert system["role"] == "system" and user["role"] == "user"
    assert "[1] VAT\nFrench VAT is 20 percent." in user["content"]
    assert "[2] Hours" in user["content"]
    assert user["content"].endswith("Question: What is the VAT rate?")
    assert generated.text == fake_openai.chat_answer
    assert generated.confidence == 0.8
    assert generated.used is None


@pytest.mark.parametrize(
    "body",
    [{"choices": []}, {"choices": [{"message": {"content": "  "}}]}, {"choices": [{"message": {}}]}, {"x": 1}],
)
def test_malformed_chat_answers_raise_provider_error(generator, fake_openai, body):
    fake_openai.default = Reply(body=body)
    with pytest.raises(ProviderError):
        generator.generate("q", HITS)


def test_service_with_both_providers(make_service, fake_openai):
    service = make_service(embeddings_base_url=fake_openai.url, llm_base_url=fake_openai.url)
    answer = service.answer("anything")
    assert (answer.source, answer.answer) == ("rag", fake_openai.chat_answer)
    check = service.check_ai()
    assert check.ok
    assert check.details["embedder"]["provider"] == "openai:text-embedding-3-small"
    assert check.details["generator"]["provider"] == "openai:gpt-4o-mini"
    paths = fake_openai.paths()
    assert "/v1/embeddings" in paths and "/v1/chat/completions" in paths


def test_check_ai_reports_each_component(make_service, fake_openai):
    service = make_service(llm_base_url=fake_openai.url)
    fake_openai.default = Reply(500)
    check = service.check_ai()
    assert not check.ok
    assert check.details["embedder"]["ok"] and check.details["embedder"]["provider"] == "hashing-384"
    assert not check.details["generator"]["ok"]
    assert check.error.startswith("generator: HTTPStatusError")


def test_local_providers_pass_check_ai(make_service):
    check = make_service().check_ai()
    assert check.ok and check.error is None
    assert check.details["generator"]["provider"] == "extractive"
