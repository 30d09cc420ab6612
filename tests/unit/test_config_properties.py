"""Property-based: whatever a config file holds, loading it gives a config or one clear line — never a
traceback, and never an echo of a secret."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hopwhistle_deploy.config import ConfigError, StackConfig, load_config

FIELDS = [
    "project_path", "branch", "remote", "compose_dir", "compose_file", "compose_project", "network",
    "state_dir", "strays", "health_timeout_seconds", "backups_to_keep", "allow_data_loss", "secrets_file",
    "host", "services", "attachments", "data_containers", "smoke_checks", "database", "environments",
    "no_such_field",
]  # fmt: skip

toml_scalars = st.one_of(
    st.integers(-(2**40), 2**40),
    st.booleans(),
    st.text(max_size=20).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.just("[]"),
    st.just('["a", "b"]'),
    st.just("{ port = 0 }"),
    st.just('{ api = { port = "x" } }'),
)


def check(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "hopwhistle.toml")
        path.write_text(text)
        try:
            config = load_config(path)
        except ConfigError as error:
            message = str(error)
            assert "\n" not in message
            assert message.startswith(str(path)), message
        else:
            assert isinstance(config, StackConfig)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(FIELDS), toml_scalars), max_size=4, unique_by=lambda kv: kv[0]))
def test_any_field_values_give_a_config_or_one_line(pairs):
    check("".join(f"{key} = {value}\n" for key, value in pairs))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_gives_a_config_or_one_line(text):
    check(text)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=30, alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x00")))
def test_a_password_in_the_config_file_is_refused_without_echoing_it(suffix):
    password = "pw-" + suffix  # a prefix no message contains by chance
    escaped = password.replace("\\", "\\\\").replace('"', '\\"')
    with pytest.raises(ConfigError) as error, tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "hopwhistle.toml")
        path.write_text(f'db_password = "{escaped}"\n')
        load_config(path)
    assert password not in str(error.value)
