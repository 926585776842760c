"""Settings for the store and the issuer: PostgreSQL URLs (accepted as given, shown
masked), and whether AUTHLY_ISSUER was set (one issuer per deployment)."""

from __future__ import annotations

import pytest

from authly.config import Settings
from authly.errors import ConfigError


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://authly:s3cret@db.internal:5433/authly",
        "postgres://authly:s3cret@db/authly?sslmode=verify-full&sslrootcert=/ca.pem",
        "postgresql://db/authly",
    ],
)
def test_postgresql_urls_are_accepted_as_given_and_shown_masked(url):
    from authly.store.urls import masked_database_url

    settings = Settings.from_env({"AUTHLY_DATABASE_URL": url, "AUTHLY_DATABASE_POOL_SIZE": "4"})
    assert settings.database_url == url  # sslmode and other options pass through
    assert settings.database_pool_size == 4
    shown = masked_database_url(url)
    assert "s3cret" not in shown
    assert shown == url.replace("s3cret", "***")


def test_a_bad_postgresql_url_names_the_variable_without_the_password():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"AUTHLY_DATABASE_URL": "postgresql://u:hunter2@h:bad/db"})
    assert caught.value.variable == "AUTHLY_DATABASE_URL"
    assert "hunter2" not in str(caught.value)


def test_the_issuer_is_marked_configured_only_when_set():
    assert Settings.from_env({}).issuer_configured is False
    assert Settings.from_env({"AUTHLY_ISSUER": "  "}).issuer_configured is False
    assert Settings.from_env({"AUTHLY_ISSUER": "https://a.example"}).issuer_configured is True
    assert Settings.from_env({}, issuer="https://b.example").issuer_configured is True
    assert Settings().issuer_configured is True  # built in code: what it says is meant
