"""rediss:// options (issue 11, item 3): the CA to trust, a client certificate, hostname
checking; what redis-py is given; unknown options and unreadable files refused at
start-up with one line naming AUTHLY_REDIS_URL (never the password)."""

from __future__ import annotations

import os

import pytest

from authly.config import Settings
from authly.errors import ConfigError
from authly.redis.url import RedisUrlError, parse_redis_url

SECRET = "s3cr3t-tls-9a7b"


def _files(tmp_path):
    paths = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    for path in paths.values():
        path.write_text("-----BEGIN CERTIFICATE-----\n")
    return paths


def test_every_tls_option_reaches_redis_py():
    url = parse_redis_url(
        f"rediss://authly:{SECRET}@redis.internal:6380/2?ssl_ca_certs=/etc/ca.pem"
        "&ssl_certfile=/etc/authly.pem&ssl_keyfile=/etc/authly.key"
        "&ssl_cert_reqs=required&ssl_check_hostname=false"
    )
    assert url.ssl_kwargs() == {
        "ssl": True,
        "ssl_ca_certs": "/etc/ca.pem",
        "ssl_certfile": "/etc/authly.pem",
        "ssl_keyfile": "/etc/authly.key",
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": False,
    }
    assert url.masked() == "rediss://authly:***@redis.internal:6380/2"
    assert SECRET not in repr(url)


def test_tls_defaults_verify_the_certificate_and_the_host():
    kwargs = parse_redis_url("rediss://h:6380/0").ssl_kwargs()
    assert kwargs["ssl_cert_reqs"] == "required"
    assert kwargs["ssl_check_hostname"] is True
    assert kwargs["ssl_ca_certs"] is None  # the system's trust store
    assert parse_redis_url("redis://h:6379/0").ssl_kwargs() == {}


def test_no_verification_means_no_hostname_check():
    kwargs = parse_redis_url("rediss://h:6380/0?ssl_cert_reqs=none").ssl_kwargs()
    assert kwargs["ssl_check_hostname"] is False


@pytest.mark.parametrize("text", ["true", "1", "yes", "FALSE", "0", "no"])
def test_check_hostname_booleans(text):
    url = parse_redis_url(f"rediss://h:6380/0?ssl_check_hostname={text}")
    assert url.ssl_check_hostname is (text.lower() in ("true", "1", "yes"))


@pytest.mark.parametrize(
    "text",
    [
        "rediss://h:6380/0?ssl_keyfile=/k.pem",  # a key without its certificate
        "rediss://h:6380/0?ssl_check_hostname=maybe",
        "rediss://h:6380/0?ssl_ca_certs=",
        "rediss://h:6380/0?ssl_ca_certs=/ca.pem&ssl_password=x",
        "rediss://h:6380/0?ssl_ca_certs=/ca.pem&bogus=1",
        "rediss://h:6380/0?ssl_verify=yes",
        "redis://h:6379/0?ssl_certfile=/c.pem",  # TLS option without rediss://
    ],
)
def test_bad_tls_options_are_refused(text):
    with pytest.raises(RedisUrlError):
        parse_redis_url(text)


def test_unknown_option_stops_start_up_with_one_line():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(
            {"AUTHLY_REDIS_URL": f"rediss://:{SECRET}@h:6380/0?ssl_ca_certs=/ca.pem&ssl_x=1"}
        )
    message = str(caught.value)
    assert caught.value.variable == "AUTHLY_REDIS_URL"
    assert message.startswith("AUTHLY_REDIS_URL: ")
    assert "ssl_x" in message
    assert "\n" not in message
    assert SECRET not in message


@pytest.mark.parametrize("option", ["ssl_ca_certs", "ssl_certfile", "ssl_keyfile"])
def test_a_missing_file_stops_start_up_naming_the_option(tmp_path, option):
    files = _files(tmp_path)
    given = {
        "ssl_ca_certs": files["ca"],
        "ssl_certfile": files["cert"],
        "ssl_keyfile": files["key"],
    }
    given[option] = tmp_path / "missing.pem"
    query = "&".join(f"{k}={v}" for k, v in given.items())
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"AUTHLY_REDIS_URL": f"rediss://:{SECRET}@h:6380/0?{query}"})
    message = str(caught.value)
    missing = tmp_path / "missing.pem"
    assert message == f"AUTHLY_REDIS_URL: {option} '{missing}': no such file", message
    assert SECRET not in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_stops_start_up(tmp_path):
    files = _files(tmp_path)
    files["key"].chmod(0)
    text = f"rediss://h:6380/0?ssl_certfile={files['cert']}&ssl_keyfile={files['key']}"
    with pytest.raises(ConfigError, match=r"ssl_keyfile .*not readable"):
        Settings.from_env({"AUTHLY_REDIS_URL": text})


def test_existing_files_are_accepted(tmp_path):
    files = _files(tmp_path)
    text = (
        f"rediss://h:6380/0?ssl_ca_certs={files['ca']}"
        f"&ssl_certfile={files['cert']}&ssl_keyfile={files['key']}"
    )
    url = Settings.from_env({"AUTHLY_REDIS_URL": text}).redis.url
    assert url is not None
    assert url.ssl_certfile == str(files["cert"])
