"""One list of secrets for both redaction paths: a value set in any ``*_TOKEN``, ``*_PASSWORD``, ``*_KEY`` or
``*_SECRET`` setting, or as the password inside any ``*_URL`` setting, is masked in logs and in /ask output."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from pydantic import SecretStr

from tools.credentials import secret_values
from triage.agent.stream_redaction import Redactor
from triage.json_logs import configure_logging
from triage.settings import GROUPS

SECRET_ENDINGS = ("_TOKEN", "_PASSWORD", "_KEY", "_SECRET")
# URL settings whose scheme the settings check: the credential goes into a URL of that kind
URL_TEMPLATES = {
    "database_url": "postgresql://triage:{}@db.lan:5432/triage",
    "redis_url": "redis://:{}@127.0.0.1:6379/0",
}
# settings that are only valid together with others
COMPANIONS: dict[tuple[str, str], dict[str, str]] = {
    ("webhook", "basic_password"): {"basic_user": "alerts"},
    ("proxmox", "url"): {"token_id": "triage@pve!ro", "token_secret": "proxmox-token-secret"},
    ("pbs", "url"): {"token_id": "triage@pbs!ro", "token_secret": "pbs-token-secret"},
}


def _secret_fields() -> list[tuple[str, str, str]]:
    """``(group, field, env name)`` of every secret and URL setting."""
    found = []
    for group, model in GROUPS.items():
        prefix = str(model.model_config.get("env_prefix", ""))
        for name, info in model.model_fields.items():
            env = (prefix + name).upper()
            secret = SecretStr in getattr(info.annotation, "__args__", (info.annotation,))
            if (secret and env.endswith(SECRET_ENDINGS)) or env.endswith("_URL"):
                found.append((group, name, env))
    return found


FIELDS = _secret_fields()


def test_the_secret_settings_are_found() -> None:
    names = {env for _, _, env in FIELDS}
    assert {"WEBHOOK_TOKEN", "API_TOKEN", "OPENAI_API_KEY", "PROMETHEUS_PASSWORD", "GRAFANA_URL"} <= names


@pytest.mark.parametrize(("group", "field", "env"), FIELDS, ids=[env for _, _, env in FIELDS])
def test_a_secret_setting_is_masked_in_logs_and_in_ask_output(
    make_settings: Any, group: str, field: str, env: str
) -> None:
    secret = f"s3cret-{env.lower().replace('_', '-')}-value"
    if env.endswith("_URL"):
        value = URL_TEMPLATES.get(field, "https://someone:{}@example.lan/path").format(secret)
    else:
        value = secret
    settings = make_settings(**{group: {field: value, **COMPANIONS.get((group, field), {})}})
    text = f"upstream answered with {secret} in it"

    assert secret not in Redactor(secret_values(settings)).redact(text)

    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    try:
        logging.getLogger("test.secrets").warning(text)
    finally:
        logging.getLogger().handlers.clear()
    line = stream.getvalue()
    assert "upstream answered" in line and "[redacted]" in line and secret not in line, line


def _masked_everywhere(settings: Any, secret: str) -> None:
    text = f"upstream answered with {secret} in it"
    assert secret not in Redactor(secret_values(settings)).redact(text)


def test_each_grafana_organisation_token_is_masked_on_its_own(make_settings: Any) -> None:
    settings = make_settings(
        grafana={"url": "http://grafana.lan:3000", "token": "glsa_main", "org_tokens": "2=glsa_second_org,3=glsa_third"}
    )
    for token in ("glsa_second_org", "glsa_third", "2=glsa_second_org"):
        _masked_everywhere(settings, token)


def test_each_notification_url_and_its_tokens_are_masked_on_their_own(make_settings: Any) -> None:
    discord = "discord://1234567890123456789/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
    ntfy = "ntfys://alerts:ntfy-pass-word@ntfy.lan/homelab"
    settings = make_settings(notify={"urls": f"{discord},{ntfy}"})
    for secret in (discord, ntfy, "1234567890123456789", "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "ntfy-pass-word"):
        _masked_everywhere(settings, secret)
    # a short topic is not a token: it stays readable where it appears for other reasons
    assert "homelab" in Redactor(secret_values(settings)).redact("the homelab topic")


def test_a_plain_secret_is_not_split() -> None:
    from tools.credentials import list_item_forms

    assert list_item_forms("a-single-token") == []
