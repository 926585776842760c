"""Settings.from_env and Redis URL parsing (DESIGN §3)."""

from __future__ import annotations

import ipaddress

import pytest

from authly.config import RedisSettings, Settings
from authly.errors import ConfigError
from authly.redis.url import RedisUrlError, parse_redis_url

SECRET = "s3cr3t-Passw0rd"


# --- defaults -------------------------------------------------------------------------------


def test_empty_environment_gives_the_defaults():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.issuer == "http://127.0.0.1:8000"
    assert settings.database_url == "sqlite:///./data/authly.db"
    assert settings.admin_username == "admin"
    assert settings.admin_password is None
    assert settings.login_rate_limit == 5
    assert settings.login_rate_window == 60
    assert settings.max_body_bytes == 65_536
    assert settings.log_level == "INFO"
    assert settings.trusted_proxies == ()
    redis = settings.redis
    assert redis == RedisSettings()
    assert redis.url is None
    assert (redis.rate_limit, redis.cache, redis.session) == (False, False, False)
    assert redis.pool_size == 10
    assert redis.connect_timeout == 5
    assert redis.keepalive is True


def test_unrelated_variables_are_ignored():
    assert Settings.from_env({"PATH": "/bin", "AUTHLY_UNKNOWN": "x"}) == Settings()


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_values_mean_default(blank):
    settings = Settings.from_env({"AUTHLY_PORT": blank, "AUTHLY_REDIS_POOL_SIZE": blank})
    assert settings.port == 8000
    assert settings.redis.pool_size == 10


def test_values_are_read():
    settings = Settings.from_env(
        {
            "AUTHLY_HOST": "192.0.2.1",
            "AUTHLY_PORT": "9000",
            "AUTHLY_ISSUER": "https://auth.example.com/",
            "AUTHLY_DATABASE_URL": "sqlite:////var/lib/authly/a.db",
            "AUTHLY_REDIS_URL": "redis://cache:6380/2",
            "AUTHLY_REDIS_RATE_LIMIT": "true",
            "AUTHLY_REDIS_POOL_SIZE": "25",
            "AUTHLY_REDIS_TIMEOUT": "3",
            "AUTHLY_LOG_LEVEL": "debug",
            "AUTHLY_TRUSTED_PROXIES": "10.0.0.0/8,192.168.1.1",
        }
    )
    assert settings.host == "192.0.2.1"
    assert settings.port == 9000
    assert settings.issuer == "https://auth.example.com"  # trailing slash dropped
    assert settings.sqlite_path == "/var/lib/authly/a.db"
    assert settings.redis.url is not None
    assert (settings.redis.url.host, settings.redis.url.port, settings.redis.url.db) == (
        "cache",
        6380,
        2,
    )
    assert settings.redis.rate_limit is True
    assert settings.redis.pool_size == 25
    assert settings.redis.connect_timeout == 3
    assert settings.log_level == "DEBUG"
    assert settings.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.1/32"),
    )


def test_default_issuer_follows_host_and_port():
    assert Settings.from_env({"AUTHLY_PORT": "9000"}).issuer == "http://127.0.0.1:9000"
    assert Settings.from_env({"AUTHLY_HOST": "::1"}).issuer == "http://[::1]:8000"


def test_keyword_overrides_win():
    settings = Settings.from_env({"AUTHLY_PORT": "9000", "AUTHLY_HOST": "h"}, port=9001, host="x")
    assert settings.port == 9001
    assert settings.host == "x"


# --- bad values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AUTHLY_REDIS_POOL_SIZE", "abc"),
        ("AUTHLY_REDIS_POOL_SIZE", "0"),
        ("AUTHLY_REDIS_POOL_SIZE", "1.5"),
        ("AUTHLY_PORT", "99999"),
        ("AUTHLY_PORT", "-1"),
        ("AUTHLY_PORT", "http"),
        ("AUTHLY_REDIS_RATE_LIMIT", "maybe"),
        ("AUTHLY_REDIS_CACHE", "2"),
        ("AUTHLY_REDIS_SESSION", "enabled"),
        ("AUTHLY_REDIS_KEEPALIVE", "y"),
        ("AUTHLY_REDIS_TIMEOUT", "0"),
        ("AUTHLY_REDIS_URL", "http://x"),
        ("AUTHLY_REDIS_URL", "redis://"),
        ("AUTHLY_REDIS_URL", "redis://host:notaport"),
        ("AUTHLY_REDIS_URL", "redis://host/db"),
        ("AUTHLY_REDIS_URL", "redis://host?bogus=1"),
        ("AUTHLY_ISSUER", "ftp://x"),
        ("AUTHLY_ISSUER", "https://"),
        ("AUTHLY_ISSUER", "https://auth.example.com/?x=1"),
        ("AUTHLY_DATABASE_URL", "postgres://x"),
        ("AUTHLY_DATABASE_URL", "postgresql://u:p@h"),
        ("AUTHLY_DATABASE_URL", "postgresql://u:p@h:99999/db"),
        ("AUTHLY_DATABASE_URL", "postgresql:///db"),
        ("AUTHLY_DATABASE_URL", "mysql://x"),
        ("AUTHLY_DATABASE_URL", "sqlite:///"),
        ("AUTHLY_LOG_LEVEL", "LOUD"),
        ("AUTHLY_ACCESS_TOKEN_TTL", "5"),
        ("AUTHLY_LOGIN_RATE_LIMIT", "0"),
        ("AUTHLY_MAX_BODY_BYTES", "10"),
        ("AUTHLY_TRUSTED_PROXIES", "not-an-ip"),
        ("AUTHLY_ADMIN_PASSWORD", "short"),
        ("AUTHLY_ADMIN_USERNAME", "u" * 65),
    ],
)
def test_bad_value_raises_config_error_naming_the_variable(variable, value):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    error = caught.value
    assert error.variable == variable
    assert error.problem
    message = str(error)
    assert message.startswith(f"{variable}: ")
    assert "\n" not in message  # one line, fit for start-up output


def test_several_bad_values_name_one_of_the_bad_variables():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"AUTHLY_PORT": "99999", "AUTHLY_LOG_LEVEL": "LOUD"})
    assert caught.value.variable in {"AUTHLY_PORT", "AUTHLY_LOG_LEVEL"}


def test_config_error_is_an_authly_error():
    from authly.errors import AuthlyError

    assert issubclass(ConfigError, AuthlyError)


# --- booleans -------------------------------------------------------------------------------

BOOL_VARIABLES = {
    "AUTHLY_REDIS_RATE_LIMIT": "rate_limit",
    "AUTHLY_REDIS_CACHE": "cache",
    "AUTHLY_REDIS_SESSION": "session",
    "AUTHLY_REDIS_KEEPALIVE": "keepalive",
}


@pytest.mark.parametrize("variable", sorted(BOOL_VARIABLES))
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("True", True),
        ("1", True),
        ("yes", True),
        ("YES", True),
        ("Yes", True),
        (" true ", True),
        ("false", False),
        ("FALSE", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("NO", False),
        ("No", False),
    ],
)
def test_booleans(variable, text, expected):
    settings = Settings.from_env({variable: text})
    assert getattr(settings.redis, BOOL_VARIABLES[variable]) is expected


def test_feature_uses_redis_only_with_url_and_flag():
    flag_only = Settings.from_env({"AUTHLY_REDIS_CACHE": "true"}).redis
    assert not flag_only.uses_redis("cache")
    url_only = Settings.from_env({"AUTHLY_REDIS_URL": "redis://h:6379/0"}).redis
    assert not any(url_only.uses_redis(f) for f in ("rate_limit", "cache", "session"))
    both = Settings.from_env(
        {"AUTHLY_REDIS_URL": "redis://h:6379/0", "AUTHLY_REDIS_CACHE": "yes"}
    ).redis
    assert both.uses_redis("cache")
    assert not both.uses_redis("rate_limit")
    assert not both.uses_redis("session")


# --- Redis URLs -----------------------------------------------------------------------------


def test_plain_url():
    url = parse_redis_url("redis://localhost:6379/0")
    assert url.hosts == (("localhost", 6379),)
    assert (url.host, url.port, url.db) == ("localhost", 6379, 0)
    assert url.username is None
    assert url.password is None
    assert url.tls is False
    assert url.is_cluster is False
    assert url.masked() == "redis://localhost:6379/0"


def test_defaults_for_port_and_db():
    url = parse_redis_url("redis://cache")
    assert (url.host, url.port, url.db) == ("cache", 6379, 0)


def test_password_only():
    url = parse_redis_url(f"redis://:{SECRET}@redis.internal:6379/0")
    assert url.password == SECRET
    assert url.username is None
    assert url.masked() == "redis://:***@redis.internal:6379/0"


def test_acl_user_with_percent_encoding():
    url = parse_redis_url("redis://app%40team:p%40ss%3Aw%2Frd%25@redis.internal:6380/4")
    assert url.username == "app@team"
    assert url.password == "p@ss:w/rd%"
    assert (url.host, url.port, url.db) == ("redis.internal", 6380, 4)
    masked = url.masked()
    assert "p@ss" not in masked
    assert "***" in masked
    assert masked.endswith("@redis.internal:6380/4")


def test_tls_with_options():
    url = parse_redis_url(
        f"rediss://:{SECRET}@redis.example.com:6380/1"
        "?ssl_ca_certs=/etc/ssl/ca.pem&ssl_cert_reqs=required"
    )
    assert url.tls is True
    assert url.ssl_ca_certs == "/etc/ssl/ca.pem"
    assert url.ssl_cert_reqs == "required"
    assert url.db == 1
    assert url.masked() == "rediss://:***@redis.example.com:6380/1"


@pytest.mark.parametrize("reqs", ["none", "optional", "required", "NONE"])
def test_tls_cert_reqs_values(reqs):
    url = parse_redis_url(f"rediss://h:6380/0?ssl_cert_reqs={reqs}")
    assert url.ssl_cert_reqs == reqs.lower()


def test_tls_defaults_to_verifying():
    url = parse_redis_url("rediss://h:6380/0")
    assert url.tls is True
    assert url.ssl_cert_reqs == "required"
    assert url.ssl_ca_certs is None


@pytest.mark.parametrize("db", [0, 1, 15])
def test_db_number(db):
    assert parse_redis_url(f"redis://h:6379/{db}").db == db
    assert parse_redis_url(f"redis://h:6379?db={db}").db == db


def test_cluster_form():
    url = parse_redis_url("redis://n1:6379,n2:6379,n3:6380/0")
    assert url.is_cluster is True
    assert url.hosts == (("n1", 6379), ("n2", 6379), ("n3", 6380))
    assert url.masked() == "redis://n1:6379,n2:6379,n3:6380/0"


def test_cluster_form_with_password_masks_it():
    url = parse_redis_url(f"redis://:{SECRET}@n1:6379,n2:6379/0")
    assert url.is_cluster
    assert SECRET not in url.masked()


def test_ipv6_host():
    url = parse_redis_url("redis://[::1]:6390/0")
    assert (url.host, url.port) == ("::1", 6390)
    assert url.masked() == "redis://[::1]:6390/0"


@pytest.mark.parametrize(
    "text",
    [
        "http://h",
        "redis:/h",
        "redis://",
        "redis://:pw@",
        "redis://h:0",
        "redis://h:65536",
        "redis://h:abc",
        "redis://h/abc",
        "redis://h/-1",
        "redis://h?db=x",
        "redis://h?unknown=1",
        "redis://h?ssl_ca_certs=/ca.pem",  # TLS option without rediss://
        "rediss://h?ssl_cert_reqs=sometimes",
        "redis://h#frag",
        "redis://[::1:6379",
    ],
)
def test_malformed_urls_are_refused(text):
    with pytest.raises(RedisUrlError):
        parse_redis_url(text)


@pytest.mark.parametrize(
    "text",
    [
        f"redis://:{SECRET}@h:6379/0",
        f"redis://user:{SECRET}@h:6379/0",
        f"rediss://user:{SECRET}@h:6380/0?ssl_cert_reqs=none",
        f"redis://{SECRET}@h:6379/0",
        f"redis://:{SECRET}@n1:6379,n2:6379/0",
    ],
)
def test_masked_and_repr_never_contain_the_password(text):
    url = parse_redis_url(text)
    assert url.password == SECRET
    assert SECRET not in url.masked()
    assert SECRET not in repr(url)
    assert SECRET not in str(url)


@pytest.mark.parametrize(
    "text",
    [
        f"redis://:{SECRET}@h:99999/0",
        f"redis://user:{SECRET}@h:6379/x",
        f"redis://:{SECRET}@h:6379/0?bogus=1",
        f"redis://:{SECRET}@:6379/0",
        f"http://:{SECRET}@h:6379/0",
    ],
)
def test_errors_never_echo_the_password(text):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"AUTHLY_REDIS_URL": text})
    assert caught.value.variable == "AUTHLY_REDIS_URL"
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("separator", ["/", "?", "@"])
def test_unencoded_separator_in_password_is_kept_and_masked(separator):
    text = f"redis://default:{SECRET}{separator}tail@h:6379/0"
    url = Settings.from_env({"AUTHLY_REDIS_URL": text}).redis.url
    assert url.password == f"{SECRET}{separator}tail"
    assert url.hosts == (("h", 6379),)
    assert SECRET not in url.masked()


@pytest.mark.parametrize("separator", ["/", "?"])
def test_errors_never_echo_an_unencoded_password(separator):
    text = f"redis://default:{SECRET}{separator}tail@h:notaport/0"
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"AUTHLY_REDIS_URL": text})
    assert SECRET not in str(caught.value)


def test_cluster_url_in_settings_is_accepted_and_masked():
    settings = Settings.from_env({"AUTHLY_REDIS_URL": f"redis://:{SECRET}@n1:6379,n2:6379/0"})
    assert settings.redis.url is not None
    assert settings.redis.url.is_cluster
    assert settings.redis.url.masked() == "redis://:***@n1:6379,n2:6379/0"


def test_cluster_url_with_another_database_is_refused_without_the_password():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"AUTHLY_REDIS_URL": f"redis://:{SECRET}@n1:6379,n2:6379/3"})
    assert caught.value.variable == "AUTHLY_REDIS_URL"
    assert "database 0 only" in str(caught.value)
    assert SECRET not in str(caught.value)


# --- effective (check-config) ---------------------------------------------------------------


def test_effective_masks_secrets():
    settings = Settings.from_env(
        {
            "AUTHLY_ADMIN_PASSWORD": SECRET,
            "AUTHLY_REDIS_URL": f"redis://app:{SECRET}@h:6379/2",
            "AUTHLY_REDIS_CACHE": "true",
        }
    )
    effective = settings.effective()
    assert effective["AUTHLY_ADMIN_PASSWORD"] == "***"
    assert effective["AUTHLY_REDIS_URL"] == "redis://app:***@h:6379/2"
    assert effective["AUTHLY_REDIS_CACHE"] == "true"
    assert all(SECRET not in value for value in effective.values())
    assert all(isinstance(value, str) for value in effective.values())


def test_effective_shows_unset_secrets_as_unset():
    effective = Settings.from_env({}).effective()
    assert effective["AUTHLY_ADMIN_PASSWORD"] == "(unset)"
    assert effective["AUTHLY_REDIS_URL"] == "(unset)"


def test_effective_values_read_back_to_the_same_settings():
    environ = {
        "AUTHLY_PORT": "9100",
        "AUTHLY_REDIS_URL": "redis://h:6379/2",
        "AUTHLY_REDIS_SESSION": "yes",
        "AUTHLY_LOGIN_RATE_LIMIT": "7",
        "AUTHLY_TRUSTED_PROXIES": "10.0.0.0/8",
    }
    settings = Settings.from_env(environ)
    shown = {k: v for k, v in settings.effective().items() if v != "(unset)"}
    assert Settings.from_env(shown) == settings


def test_settings_repr_hides_the_admin_password():
    settings = Settings.from_env({"AUTHLY_ADMIN_PASSWORD": SECRET})
    assert settings.admin_password == SECRET
    assert SECRET not in repr(settings)


def test_trusted_proxies_tolerate_blank_parts():
    settings = Settings.from_env({"AUTHLY_TRUSTED_PROXIES": "10.0.0.0/8, "})
    assert settings.trusted_proxies == (ipaddress.ip_network("10.0.0.0/8"),)
