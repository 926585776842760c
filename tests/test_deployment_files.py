"""The deployment files in configs/ (issue 10, item 5), checked without a Docker daemon:
the compose files and the Prometheus config are parsed, every AUTHLY_* variable they set
must be a real setting whose value parses, and the topology the user guide promises
(docs/deployment.md) must be there."""

from __future__ import annotations

import http.server
import ipaddress
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from authly.config import Settings
from authly.settings_table import BY_NAME

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
DEV = CONFIGS / "docker-compose.dev.yml"
PROD = CONFIGS / "docker-compose.prod.yml"
PROMETHEUS = CONFIGS / "prometheus" / "prometheus.yml"
DOC = ROOT / "docs" / "deployment.md"
COMPOSE_FILES = [DEV, PROD]

# What an operator exports before `docker compose up`: used to interpolate ${...}.
HOST_ENV = {
    "REDIS_PASSWORD": "redis-pw-0123456789abcdef",
    "POSTGRES_PASSWORD": "pg-pw-0123456789abcdef",
    "AUTHLY_ADMIN_PASSWORD": "a-long-password",
    "AUTHLY_ISSUER": "https://login.example.org",
}
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message} (compose spec).
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
HEALTH_URL = "http://127.0.0.1:8000/health/ready"


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution, for the forms these files may use."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        value = env.get(name)
        if op in (":-", ":?") and not value:
            value = None
        if value is not None:
            return value
        if op in (":-", "-"):
            return arg
        raise KeyError(f"{name} must be set ({arg or 'required'})")

    assert "$$" not in text, "escaped dollars are not handled here"
    return VARIABLE.sub(one, text)


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path.name} is not a YAML mapping"
    return document


def environment(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    assert isinstance(env, dict)
    return env


def command_text(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


@pytest.fixture(params=COMPOSE_FILES, ids=lambda p: p.name)
def compose(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


@pytest.fixture
def dev() -> dict[str, Any]:
    return load(DEV)


@pytest.fixture
def prod() -> dict[str, Any]:
    return load(PROD)


# --- every file ---------------------------------------------------------------------------------


def test_every_authly_variable_is_a_setting(compose: dict[str, Any]):
    names = [n for s in compose["services"].values() for n in environment(s)]
    authly = [n for n in names if n.startswith("AUTHLY_")]
    assert authly, "no AUTHLY_* variable set"
    unknown = sorted(set(authly) - set(BY_NAME))
    assert not unknown, f"not in authly.settings_table.SETTINGS: {unknown}"


def test_every_authly_value_parses(compose: dict[str, Any]):
    """Literal values as they are; ${...} after substitution with an operator's values."""
    for service in compose["services"].values():
        for name, raw in environment(service).items():
            if not name.startswith("AUTHLY_"):
                continue
            assert isinstance(raw, str), f"{name}: quote it, compose wants text ({raw!r})"
            value = interpolate(raw, HOST_ENV)
            try:
                BY_NAME[name].parse(value)
            except ValueError as exc:
                pytest.fail(f"{name}={raw!r}: {exc}")


def test_the_authly_service_environment_builds_settings(compose: dict[str, Any]):
    env = {
        k: interpolate(v, HOST_ENV) for k, v in environment(compose["services"]["authly"]).items()
    }
    settings = Settings.from_env(env)
    assert ipaddress.ip_address(settings.host).is_unspecified, "listen on every interface"
    assert settings.port == 8000
    assert settings.issuer == HOST_ENV["AUTHLY_ISSUER"], "AUTHLY_ISSUER comes from the host"
    assert settings.admin_password == HOST_ENV["AUTHLY_ADMIN_PASSWORD"]
    assert settings.database_url.startswith("postgresql://authly:")
    assert settings.database_pool_size == 10
    assert settings.redis.url is not None
    assert settings.redis.url.masked() in ("redis://redis:6379/0", "redis://:***@redis:6379/0")


def test_unset_optional_variables_fall_back_to_usable_values(compose: dict[str, Any]):
    """Without AUTHLY_ISSUER / AUTHLY_ADMIN_PASSWORD exported the files still start."""
    env = {k: v for k, v in HOST_ENV.items() if not k.startswith("AUTHLY_")}
    authly = environment(compose["services"]["authly"])
    issuer = interpolate(authly["AUTHLY_ISSUER"], env)
    assert BY_NAME["AUTHLY_ISSUER"].parse(issuer) == issuer
    assert interpolate(authly["AUTHLY_ADMIN_PASSWORD"], env) == ""  # blank: no admin


def test_redis_is_redis_7_with_append_only_persistence(compose: dict[str, Any]):
    redis = compose["services"]["redis"]
    assert re.fullmatch(r"redis:7(\.\d+)*(-alpine)?", redis["image"]), redis["image"]
    assert re.search(r"(^|\s)redis-server\s.*--appendonly yes(\s|$)", command_text(redis))
    assert any(v.split(":")[1] == "/data" for v in redis["volumes"]), "the AOF lives in /data"
    assert "redis-cli" in redis["healthcheck"]["test"]


def test_postgres_16_with_a_volume_and_pg_isready(compose: dict[str, Any]):
    postgres = compose["services"]["postgres"]
    assert re.fullmatch(r"postgres:16(\.\d+)*(-alpine)?", postgres["image"]), postgres["image"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in postgres["volumes"]}
    assert mounts["/var/lib/postgresql/data"] in compose["volumes"], "a named volume"
    assert "pg_isready" in postgres["healthcheck"]["test"]


def test_authly_uses_the_postgres_service(compose: dict[str, Any]):
    pg_env = environment(compose["services"]["postgres"])
    url = urlsplit(
        interpolate(environment(compose["services"]["authly"])["AUTHLY_DATABASE_URL"], HOST_ENV)
    )
    assert url.scheme == "postgresql"
    assert (url.hostname, url.port) == ("postgres", 5432)
    assert url.username == pg_env["POSTGRES_USER"]
    assert url.password == interpolate(pg_env["POSTGRES_PASSWORD"], HOST_ENV)
    assert url.path == "/" + pg_env["POSTGRES_DB"]


def test_authly_waits_for_healthy_redis_and_postgres(compose: dict[str, Any]):
    depends = compose["services"]["authly"]["depends_on"]
    for name in ("redis", "postgres"):
        assert depends[name]["condition"] == "service_healthy", name
        assert compose["services"][name]["healthcheck"]["test"], name


def test_authly_is_built_from_the_project_dockerfile(compose: dict[str, Any]):
    build = compose["services"]["authly"]["build"]
    context = (CONFIGS / build["context"]).resolve()
    assert context == ROOT
    assert (context / build.get("dockerfile", "Dockerfile")).is_file()


def test_authly_health_check_hits_health_with_python(compose: dict[str, Any]):
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "EXPOSE 8000" in dockerfile
    test = compose["services"]["authly"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert test[1] == "python", "the image has Python; no curl is installed"
    assert "curl" not in dockerfile
    assert HEALTH_URL in test[-1]


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health/ready" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[type[_Health], int]]:
    handler = type("Handler", (_Health,), {})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler, server.server_address[1]
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_the_health_check_command_fails_on_503(
    compose: dict[str, Any], health_server: tuple[type[_Health], int], status: int, healthy: bool
):
    handler, port = health_server
    handler.status = status
    test = compose["services"]["authly"]["healthcheck"]["test"]
    code = test[-1].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    done = subprocess.run([sys.executable, *test[2:-1], code], capture_output=True, timeout=30)
    assert (done.returncode == 0) is healthy, done.stderr


def test_named_volumes_are_declared_and_bind_mounts_exist(compose: dict[str, Any]):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (CONFIGS / source).exists(), f"{name}: {source}"
            else:
                assert source in compose.get("volumes", {}), f"{name}: {source}"


def test_every_host_variable_is_explained_in_the_doc(compose: dict[str, Any]):
    text = DOC.read_text(encoding="utf-8")
    used = {m["name"] for m in VARIABLE.finditer(yaml.safe_dump(compose))}
    assert used
    missing = sorted(name for name in used if f"`{name}`" not in text)
    assert not missing, f"docs/deployment.md does not mention {missing}"


# --- development ----------------------------------------------------------------------------


def test_dev_runs_one_authly_and_publishes_on_loopback_only(dev: dict[str, Any]):
    services = dev["services"]
    assert set(services) == {"authly", "redis", "postgres"}
    assert services["authly"].get("deploy", {}).get("replicas", 1) == 1
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert "127.0.0.1:8000:8000" in services["authly"]["ports"]


def test_dev_uses_the_guides_redis_settings(dev: dict[str, Any]):
    env = environment(dev["services"]["authly"])
    assert env["AUTHLY_REDIS_URL"] == "redis://redis:6379/0"
    assert env["AUTHLY_REDIS_RATE_LIMIT"] == "true"
    assert env["AUTHLY_REDIS_CACHE"] == "true"


# --- production -----------------------------------------------------------------------------


def test_prod_redis_requires_the_password_authly_uses(prod: dict[str, Any]):
    redis = prod["services"]["redis"]
    command = command_text(redis)
    assert re.search(r"--requirepass \$\{REDIS_PASSWORD(:\?[^}]*)?\}", command), command
    env = environment(prod["services"]["authly"])
    assert env["AUTHLY_REDIS_URL"] == "redis://:${REDIS_PASSWORD}@redis:6379/0"
    with pytest.raises(KeyError, match="REDIS_PASSWORD"):
        interpolate(command, {})  # compose refuses to start without it
    url = BY_NAME["AUTHLY_REDIS_URL"].parse(interpolate(env["AUTHLY_REDIS_URL"], HOST_ENV))
    assert url.masked() == "redis://:***@redis:6379/0"
    assert (
        interpolate(redis["environment"]["REDISCLI_AUTH"], HOST_ENV) == HOST_ENV["REDIS_PASSWORD"]
    ), "the health check's redis-cli authenticates"


def test_prod_authly_settings_from_the_guide(prod: dict[str, Any]):
    env = environment(prod["services"]["authly"])
    assert env["AUTHLY_REDIS_POOL_SIZE"] == "20"
    assert env["AUTHLY_REDIS_RATE_LIMIT"] == "true"
    assert env["AUTHLY_REDIS_CACHE"] == "true"
    # Sessions and pending sign-ins shared by every replica: no sticky sessions needed.
    assert env["AUTHLY_REDIS_SESSION"] == "true"


def test_prod_runs_three_replicas_with_one_issuer(prod: dict[str, Any]):
    authly = prod["services"]["authly"]
    assert authly["deploy"]["replicas"] == 3
    # One service definition for all replicas: no per-replica override of the issuer
    # (no other service runs the Authly image, and no service sets AUTHLY_ISSUER but authly).
    images = [s.get("image") for s in prod["services"].values()]
    assert images.count(authly["image"]) == 1
    setters = [n for n, s in prod["services"].items() if "AUTHLY_ISSUER" in environment(s)]
    assert setters == ["authly"]
    issuer = interpolate(environment(authly)["AUTHLY_ISSUER"], {})
    assert issuer.startswith("https://"), "the default issuer is a public https URL"
    assert "container_name" not in authly, "a fixed container name forbids replicas"
    assert "ports" not in authly, "replicas cannot share a host port; the LB reaches them"


def test_prod_services_restart_and_have_limits(prod: dict[str, Any]):
    for name, service in prod["services"].items():
        assert service["restart"] == "unless-stopped", name
        limits = service["deploy"]["resources"]["limits"]
        assert re.fullmatch(r"\d+[MG]", limits["memory"]), (name, limits)
        assert float(limits["cpus"]) > 0, name
    redis_limits = prod["services"]["redis"]["deploy"]["resources"]["limits"]
    assert redis_limits == {"memory": "512M", "cpus": "0.5"}


def test_prod_trusts_forwarded_for_only_from_the_edge_network(prod: dict[str, Any]):
    trusted = BY_NAME["AUTHLY_TRUSTED_PROXIES"].parse(
        environment(prod["services"]["authly"])["AUTHLY_TRUSTED_PROXIES"]
    )
    subnets = [c["subnet"] for c in prod["networks"]["edge"]["ipam"]["config"]]
    assert trusted == tuple(ipaddress.ip_network(s) for s in subnets)
    on_edge = [n for n, s in prod["services"].items() if "edge" in s.get("networks", [])]
    assert on_edge == ["authly"], "only Authly (and the operator's load balancer) on edge"


def test_prod_publishes_nothing_beyond_loopback(prod: dict[str, Any]):
    for name, service in prod["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port}"


# --- Prometheus -------------------------------------------------------------------------------


def test_prometheus_scrapes_every_authly_replica_on_metrics():
    config = load(PROMETHEUS)
    jobs = [j for j in config["scrape_configs"] if j["job_name"] == "authly"]
    assert len(jobs) == 1
    job = jobs[0]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert "static_configs" not in job, "a static target would reach one replica only"
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["authly"]
    assert sd["type"] == "A", "one A record per replica"
    assert sd["port"] == 8000


def test_prometheus_service_loads_that_config_and_reaches_authly(prod: dict[str, Any]):
    services = prod["services"]
    prometheus = services["prometheus"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in prometheus["volumes"]}
    assert (CONFIGS / mounts["/etc/prometheus/prometheus.yml"]).resolve() == PROMETHEUS
    shared = set(prometheus["networks"]) & set(services["authly"]["networks"])
    assert shared, "Prometheus must resolve `authly` on a network it shares with it"
