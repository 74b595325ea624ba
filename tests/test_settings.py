"""Settings are validated at start-up, and every problem is one sentence naming the variable and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from triage.settings import StartupError, load_settings


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # a developer's .env in the working directory must not leak into these tests
    monkeypatch.chdir(tmp_path)


def problems(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(StartupError) as caught:
        load_settings()
    return str(caught.value)


def test_defaults_load_without_any_environment() -> None:
    settings = load_settings()

    assert settings.redis.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.webhook.max_body_bytes == 1_048_576
    assert settings.redis.dedup_window_s == 6 * 3600
    assert settings.webhook.auth_configured is False


@pytest.mark.parametrize(
    ("env", "sentence"),
    [
        ({"REDIS_URL": "http://redis:6379"}, "REDIS_URL: must be a redis:// or rediss:// URL"),
        ({"WEBHOOK_BASIC_USER": "grafana"}, "set both WEBHOOK_BASIC_USER and WEBHOOK_BASIC_PASSWORD, or neither"),
        ({"WEBHOOK_MAX_BODY_BYTES": "10"}, "WEBHOOK_MAX_BODY_BYTES: Input should be greater than or equal to 1024"),
        ({"JOB_MAX_TRIES": "0"}, "JOB_MAX_TRIES: Input should be greater than or equal to 1"),
        ({"JOB_RETRY_BACKOFF_S": "3600"}, "JOB_RETRY_BACKOFF_S: Input should be less than or equal to 600"),
        ({"DEDUP_WINDOW_S": "soon"}, "DEDUP_WINDOW_S: Input should be a valid integer"),
        ({"DATABASE_URL": "mysql://db"}, "DATABASE_URL: use sqlite:///PATH or postgresql://USER@HOST/DB"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL: use DEBUG, INFO, WARNING or ERROR"),
        ({"PROXMOX_URL": "https://pve:8006"}, "set PROXMOX_TOKEN_ID (user@realm!tokenid) and PROXMOX_TOKEN_SECRET"),
        ({"PROMETHEUS_URL": "prometheus:9090"}, "PROMETHEUS_URL: must start with http:// or https://"),
        ({"WEBHOOK_TOKN": "x"}, "WEBHOOK_TOKN: not a setting of sre-triage"),
        (
            {"WEBHOOK_BASIC_USER": "grafana:alerts", "WEBHOOK_BASIC_PASSWORD": "pw-123456"},
            "WEBHOOK_BASIC_USER must not contain ':'",
        ),
    ],
)
def test_invalid_setting_is_explained_in_one_sentence(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], sentence: str
) -> None:
    assert sentence in problems(monkeypatch, **env)


def test_every_problem_is_listed_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    message = problems(monkeypatch, REDIS_URL="nope", LOG_LEVEL="LOUD", WEBHOOK_TOKN="x")

    assert message.startswith("invalid configuration:")
    assert "REDIS_URL" in message and "LOG_LEVEL" in message and "WEBHOOK_TOKN" in message


def test_settings_are_read_from_a_dotenv_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("WEBHOOK_TOKEN=from-dotenv-file\nJOB_TIMEOUT_S=60\n")
    monkeypatch.setattr("triage.settings.ENV_FILE", ".env")

    settings = load_settings()

    assert settings.webhook.token is not None
    assert settings.webhook.token.get_secret_value() == "from-dotenv-file"
    assert settings.redis.job_timeout_s == 60


def test_secrets_do_not_appear_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_TOKEN", "very-secret-token")
    monkeypatch.setenv("WEBHOOK_HMAC_SECRET", "very-secret-hmac")

    text = repr(load_settings()) + str(load_settings().model_dump())

    assert "very-secret" not in text


def test_api_start_requires_webhook_auth_or_an_explicit_opt_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(StartupError, match="set WEBHOOK_TOKEN"):
        load_settings(require_webhook_auth=True)

    monkeypatch.setenv("WEBHOOK_HMAC_SECRET", "s3cret")
    assert load_settings(require_webhook_auth=True).webhook.hmac_secret is not None


def test_a_misspelt_name_in_the_dotenv_file_stops_start_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("WEBHOOK_TOKEN=t\nWEBHOOK_TOKN=typo\nCOMPOSE_PROJECT_NAME=homelab\n")
    monkeypatch.setattr("triage.settings.ENV_FILE", ".env")

    with pytest.raises(StartupError) as caught:
        load_settings()

    message = str(caught.value)
    assert "WEBHOOK_TOKN (in .env): not a setting of sre-triage; did you mean WEBHOOK_TOKEN?" in message
    # names of other tools sharing the file (docker compose reads it too) are left alone
    assert "COMPOSE_PROJECT_NAME" not in message


@pytest.mark.parametrize("line", ["OPENAI_API_KEYS=sk-x", "OPENAI_BASE=http://ollama:11434/v1"])
def test_an_unknown_openai_name_stops_start_up_from_the_environment_and_from_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str
) -> None:
    name, value = line.split("=", 1)
    assert f"{name}: not a setting of sre-triage" in problems(monkeypatch, **{name: value})

    monkeypatch.delenv(name)
    (tmp_path / ".env").write_text(line + "\n")
    monkeypatch.setattr("triage.settings.ENV_FILE", ".env")
    with pytest.raises(StartupError, match=f"{name} \\(in .env\\): not a setting of sre-triage"):
        load_settings()


def test_known_openai_names_in_dotenv_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("OPENAI_BASE_URL=http://ollama:11434/v1\nOPENAI_API_KEY=sk-local\n")
    monkeypatch.setattr("triage.settings.ENV_FILE", ".env")

    settings = load_settings()

    assert settings.llm.openai_base_url == "http://ollama:11434/v1"
    assert settings.llm.configured
