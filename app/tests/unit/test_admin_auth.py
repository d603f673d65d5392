"""The admin-token guard of the write endpoints and the RAG_ADMIN_TOKEN setting, without a server."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from rag_service.config import ConfigError, load_settings
from rag_service.http import auth
from rag_service.http.auth import admin_guard

TOKEN = "Unit-Admin-Token-0123456789"


def scope(*authorization: bytes) -> dict:
    return {"type": "http", "headers": [(b"host", b"t"), *((b"authorization", value) for value in authorization)]}


def refusal(response) -> tuple[int, dict, dict[str, str]]:
    assert response is not None, "the request was let through"
    return response.status_code, json.loads(response.body), dict(response.headers)


def test_the_right_token_passes() -> None:
    guard = admin_guard(SecretStr(TOKEN))
    assert guard(scope(b"Bearer " + TOKEN.encode())) is None
    # The scheme is case-insensitive and surrounding whitespace is not part of the credential.
    assert guard(scope(b"bearer   " + TOKEN.encode() + b"  ")) is None


@pytest.mark.parametrize(
    "headers",
    [(), (b"Basic dXNlcjpwYXNz",), (b"Bearer",), (b"Bearer   ",), (TOKEN.encode(),), (b"Token " + TOKEN.encode(),)],
    ids=["missing", "basic", "bearer-alone", "bearer-blank", "bare-token", "other-scheme"],
)
def test_no_bearer_credential_is_401_with_a_challenge(headers: tuple[bytes, ...]) -> None:
    status, body, response_headers = refusal(admin_guard(SecretStr(TOKEN))(scope(*headers)))
    assert status == 401
    assert list(body) == ["error"] and "Bearer" in body["error"]
    assert response_headers["www-authenticate"] == "Bearer"
    assert response_headers["content-type"] == "application/json"


def test_two_authorization_headers_are_not_a_credential() -> None:
    bearer = b"Bearer " + TOKEN.encode()
    status, _body, headers = refusal(admin_guard(SecretStr(TOKEN))(scope(bearer, bearer)))
    assert status == 401 and headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "credential",
    ["wrong", TOKEN[:-1], TOKEN + "x", TOKEN.lower(), TOKEN.upper(), "x" * len(TOKEN)],
    ids=["wrong", "prefix", "longer", "lower-case", "upper-case", "same-length"],
)
def test_a_wrong_token_is_403(credential: str) -> None:
    status, body, headers = refusal(admin_guard(SecretStr(TOKEN))(scope(f"Bearer {credential}".encode())))
    assert status == 403
    assert body == {"error": auth.WRONG}
    assert "www-authenticate" not in headers
    assert TOKEN not in body["error"] and credential not in body["error"]


@pytest.mark.parametrize("token", [None, SecretStr("")], ids=["unset", "empty"])
@pytest.mark.parametrize("headers", [(), (b"Bearer anything",), (b"Bearer ",)], ids=["none", "bearer", "blank"])
def test_without_a_configured_token_every_write_is_403(token: SecretStr | None, headers: tuple[bytes, ...]) -> None:
    status, body, _headers = refusal(admin_guard(token)(scope(*headers)))
    assert status == 403
    assert "ingestion is disabled" in body["error"] and "RAG_ADMIN_TOKEN is not set" in body["error"]


def test_the_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    guard = admin_guard(SecretStr(TOKEN))
    assert guard(scope(b"Bearer " + TOKEN.encode())) is None
    assert refusal(guard(scope(b"Bearer nope")))[0] == 403
    assert calls == [(TOKEN.encode(), TOKEN.encode()), (b"nope", TOKEN.encode())]


def test_the_guard_does_not_show_the_token() -> None:
    guard = admin_guard(SecretStr(TOKEN))
    assert TOKEN not in repr(guard) and TOKEN not in str(vars(guard))


def test_setting_empty_means_unset() -> None:
    assert load_settings().admin_token is None
    assert load_settings(admin_token="").admin_token is None
    assert load_settings(admin_token=TOKEN).admin_token.get_secret_value() == TOKEN


def test_setting_is_secret_in_repr_and_dumps() -> None:
    settings = load_settings(admin_token=TOKEN)
    for text in (repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())):
        assert TOKEN not in text


@pytest.mark.parametrize(
    "value",
    ["too-short-token", "a token with spaces", "tab\tseparated-admin-token", "accentué-admin-token-0123", "x" * 4097],
    ids=["short", "spaces", "tab", "non-ascii", "too-long"],
)
def test_bad_token_is_a_config_error_that_does_not_echo_it(value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(admin_token=value, port=0)
    message = str(raised.value)
    assert "RAG_ADMIN_TOKEN: " in message and "RAG_PORT: " in message
    assert value not in message and value[:8] not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
