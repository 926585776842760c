"""redis+sentinel:// URLs (issue 11, item 2): parsed into sentinels, service name and db;
the password is the data nodes', the sentinels get one only from ``sentinel_password``;
masked everywhere; malformed forms stop start-up with one line naming AUTHLY_REDIS_URL."""

from __future__ import annotations

import re

import pytest

from authly.config import Settings
from authly.errors import ConfigError
from authly.redis.url import RedisUrlError, parse_redis_url

SECRET = "s3cr3t-sentinel-4f1c"
SENTINEL_SECRET = "s3cr3t-of-the-sentinels-77"


def test_the_documented_form():
    url = parse_redis_url(f"redis+sentinel://:{SECRET}@s1:26380,s2:26381,s3:26382/mymaster/2")
    assert url.is_sentinel
    assert not url.is_cluster
    assert url.hosts == (("s1", 26380), ("s2", 26381), ("s3", 26382))
    assert url.sentinel_service == "mymaster"
    assert url.db == 2
    assert url.password == SECRET
    assert url.username is None
    assert url.masked() == "redis+sentinel://:***@s1:26380,s2:26381,s3:26382/mymaster/2"
    assert SECRET not in repr(url)


def test_defaults_port_26379_and_db_0():
    url = parse_redis_url("redis+sentinel://a,b:1234/svc")
    assert url.hosts == (("a", 26379), ("b", 1234))
    assert url.db == 0
    assert url.password is None
    assert url.masked() == "redis+sentinel://a:26379,b:1234/svc/0"
    assert parse_redis_url("REDIS+SENTINEL://a/svc?db=5").db == 5


def test_acl_user_and_encoded_service_name():
    url = parse_redis_url(f"redis+sentinel://authly:{SECRET}@[::1]:26379/my%20master/1")
    assert (url.username, url.password) == ("authly", SECRET)
    assert url.hosts == (("::1", 26379),)
    assert url.sentinel_service == "my master"
    assert url.masked() == "redis+sentinel://authly:***@[::1]:26379/my%20master/1"


def test_passwords_go_where_they_belong():
    url = parse_redis_url(
        f"redis+sentinel://:{SECRET}@s1:26379/svc/0?sentinel_password={SENTINEL_SECRET}"
    )
    data = url.client_kwargs(pool_size=7, connect_timeout=2.0, keepalive=True)
    assert data["password"] == SECRET
    assert data["db"] == 0
    assert data["max_connections"] == 7
    assert "host" not in data
    assert "port" not in data
    sentinels = url.sentinel_kwargs(connect_timeout=2.0, read_timeout=0.25)
    assert sentinels["password"] == SENTINEL_SECRET
    assert sentinels["socket_timeout"] == 0.25
    assert SENTINEL_SECRET not in url.masked()
    assert SENTINEL_SECRET not in repr(url)
    text = f"failed: {SECRET} and {SENTINEL_SECRET}"
    assert url.mask(text) == "failed: *** and ***"


def test_sentinels_get_no_password_unless_given():
    url = parse_redis_url(f"redis+sentinel://:{SECRET}@s1/svc")
    assert url.sentinel_kwargs(connect_timeout=1, read_timeout=1)["password"] is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("redis+sentinel://s1:26379", "missing the Sentinel service name"),
        ("redis+sentinel://s1:26379/", "missing the Sentinel service name"),
        ("redis+sentinel://s1:26379/svc/x", "database must be a number"),
        ("redis+sentinel://s1:notaport/svc", "bad port"),
        ("redis+sentinel:///svc/0", "missing host"),
        ("rediss+sentinel://s1/svc/0", "TLS with Sentinel is not supported"),
        ("redis+sentinel://s1/svc/0?ssl_ca_certs=/ca.pem", "TLS with Sentinel is not supported"),
        ("http://s1/svc/0", "must start with redis://, rediss:// or redis+sentinel://"),
        ("redis://h:6379/0?sentinel_password=x", "sentinel_password needs"),
    ],
)
def test_malformed_forms_are_refused(text, why):
    with pytest.raises(RedisUrlError, match=re.escape(why)):
        parse_redis_url(text)


def test_settings_accept_it():
    redis = Settings.from_env(
        {"AUTHLY_REDIS_URL": "redis+sentinel://s1:1,s2:2,s3:3/svc/0", "AUTHLY_REDIS_CACHE": "1"}
    ).redis
    assert redis.url is not None
    assert redis.url.is_sentinel


@pytest.mark.parametrize(
    "text",
    [
        f"redis+sentinel://:{SECRET}@s1:26379",
        f"redis+sentinel://:{SECRET}@s1:99999/svc/0",
        f"redis+sentinel://:{SECRET}@s1/svc/0?bogus=1",
        f"redis+sentinel://:{SECRET}@s1/svc/0?sentinel_password={SENTINEL_SECRET}&x=1",
    ],
)
def test_config_errors_name_the_variable_never_a_password(text):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"AUTHLY_REDIS_URL": text})
    assert caught.value.variable == "AUTHLY_REDIS_URL"
    assert SECRET not in str(caught.value)
    assert SENTINEL_SECRET not in str(caught.value)
    assert "\n" not in str(caught.value)
