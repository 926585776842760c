"""Each setting is declared once (DESIGN §3): the table in authly.settings_table drives
the Settings defaults, from_env, check-config, the example env file, and must agree with
README's and docs/redis.md's configuration tables."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from authly.config import RedisSettings, Settings
from authly.errors import ConfigError
from authly.settings_table import SETTINGS, Setting, example_env

ROOT = Path(__file__).resolve().parents[1]
REDIS_PREFIX = "AUTHLY_REDIS_"
REGENERATE = "python -m authly.settings_table > configs/authly.example.env"


def _table_rows(path: Path, heading: str) -> list[list[str]]:
    """The body rows of the first Markdown table after ``heading``, as stripped cells."""
    text = path.read_text(encoding="utf-8")
    section = text.split(f"\n{heading}\n", 1)[1]
    rows: list[list[str]] = []
    for line in section.splitlines():
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if cells[0] == "variable" or set(cells[0]) <= {"-", ":"}:
            continue
        rows.append(cells)
    return rows


def _documented(path: Path, heading: str) -> dict[str, str]:
    """Variable name -> default, as a documentation table shows them (no backticks)."""
    documented: dict[str, str] = {}
    for cells in _table_rows(path, heading):
        names = re.findall(r"`(AUTHLY_[A-Z0-9_*]+)`", cells[0])
        assert names, f"{path.name}: a row without a variable: {cells}"
        defaults = [d.strip().strip("`") for d in cells[1].split(" / ")]
        if len(names) > 1:
            assert len(defaults) == len(names), f"{path.name}: {cells[0]} vs {cells[1]}"
        else:
            defaults = [cells[1].replace("`", "")]
        for name, default in zip(names, defaults, strict=True):
            assert name not in documented, f"{path.name} lists {name} twice"
            documented[name] = default
    return documented


def _expected(settings: tuple[Setting, ...]) -> dict[str, str]:
    return {s.name: s.shown_default() for s in settings}


# --- the table itself -------------------------------------------------------------------------


def test_names_and_fields_are_unique():
    names = [s.name for s in SETTINGS]
    fields = [s.field for s in SETTINGS]
    assert len(set(names)) == len(names)
    assert len(set(fields)) == len(fields)
    assert all(re.fullmatch(r"AUTHLY_[A-Z0-9_]+", n) for n in names)
    assert all(s.field.startswith("redis.") == s.name.startswith(REDIS_PREFIX) for s in SETTINGS)


def test_every_dataclass_field_has_exactly_one_table_entry():
    fields = {
        f.name
        for f in dataclasses.fields(Settings)
        if f.name != "redis" and not f.metadata.get("derived")
    }
    fields |= {f"redis.{f.name}" for f in dataclasses.fields(RedisSettings)}
    assert fields == {s.field for s in SETTINGS}


def test_dataclass_defaults_come_from_the_table():
    assert Settings.from_env({}) == Settings()
    for setting in SETTINGS:
        if setting.default is not None:
            assert Settings().value(setting.field) == setting.parse(setting.default)


def test_exactly_the_secret_settings_are_kept_out_of_repr():
    hidden = {f.name for f in dataclasses.fields(Settings) if not f.repr}
    hidden |= {f"redis.{f.name}" for f in dataclasses.fields(RedisSettings) if not f.repr}
    assert hidden == {s.field for s in SETTINGS if s.secret}


def test_settings_without_a_fixed_default_say_what_it_is():
    for setting in SETTINGS:
        if setting.compute is not None:
            assert setting.default is None, setting.name
            assert setting.default_doc, setting.name


BAD = "\x00not valid\x00"
FREE_TEXT = {"AUTHLY_HOST", "AUTHLY_ADMIN_USERNAME", "AUTHLY_ADMIN_PASSWORD"}


@pytest.mark.parametrize(
    "setting", [s for s in SETTINGS if s.name not in FREE_TEXT], ids=lambda s: s.name
)
def test_a_bad_value_names_the_variable(setting: Setting):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({setting.name: BAD})
    assert caught.value.variable == setting.name
    assert str(caught.value).startswith(f"{setting.name}: ")
    assert "\n" not in str(caught.value)


def test_check_config_lists_every_setting_in_table_order():
    assert list(Settings().effective()) == [s.name for s in SETTINGS]


# --- the files that list the settings ---------------------------------------------------------


def test_example_env_is_generated_from_the_table():
    text = (ROOT / "configs" / "authly.example.env").read_text(encoding="utf-8")
    assert text == example_env(), f"configs/authly.example.env is stale; run: {REGENERATE}"


def test_example_env_values_read_back_to_the_defaults():
    environ = {}
    for line in example_env().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            environ[name] = value
    assert Settings.from_env(environ) == Settings()


def test_readme_table_lists_exactly_the_settings():
    documented = _documented(ROOT / "README.md", "## Configuration")
    assert documented.pop(f"{REDIS_PREFIX}*") == "", "README delegates Redis to docs/redis.md"
    assert documented == _expected(tuple(s for s in SETTINGS if REDIS_PREFIX not in s.name))


def test_redis_guide_table_lists_exactly_the_redis_settings():
    documented = _documented(ROOT / "docs" / "redis.md", "## Configuration")
    assert documented == _expected(tuple(s for s in SETTINGS if REDIS_PREFIX in s.name))


# --- imports at the top (no function-level imports to dodge import cycles) -------------------

TOP_LEVEL_IMPORTS_ONLY = [
    "src/authly/cli",
    "src/authly/factory.py",
    "src/authly/app.py",
    "src/authly/config.py",
    "src/authly/config_parse.py",
    "src/authly/settings_table.py",
]


@pytest.mark.parametrize("where", TOP_LEVEL_IMPORTS_ONLY)
def test_no_imports_inside_functions(where: str):
    path = ROOT / where
    for module in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                nested = [n for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)]
                assert not nested, f"{module.relative_to(ROOT)}:{nested[0].lineno} imports"
