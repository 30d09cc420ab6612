from pathlib import Path

import pytest

from hopwhistle_deploy.config import (
    ConfigError,
    StackConfig,
    compose_env,
    database_url,
    load_config,
    redis_url,
)

EXAMPLE = Path(__file__).parents[2] / "hopwhistle.example.toml"


def write(tmp_path: Path, text: str, name: str = "hopwhistle.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_are_the_runbooks_values():
    config = load_config(None)
    assert config.project_path == "/opt/hopwhistle"
    assert (config.branch, config.remote) == ("main", "origin")
    assert config.compose_files == [
        "/opt/hopwhistle/infra/docker/docker-compose.yml",
        "/var/lib/hopwhistle/compose.override.yml",
    ]
    assert config.env_file_path == "/var/lib/hopwhistle/compose.env"
    assert (config.compose_project, config.network) == ("docker", "docker_default")
    assert [(a.container, a.aliases) for a in config.attachments] == [
        ("hopwhistle-postgres-dev", []),
        ("hopwhistle-redis-1", ["redis"]),
    ]
    assert config.data_containers.names == ["hopwhistle-postgres-dev", "hopwhistle-redis-1"]
    assert config.strays == ["docker-redis-1"]
    api, web = config.services["api"], config.services["web"]
    assert (api.container, api.port, api.health_path, api.build_context, api.image) == (
        "docker-api-1", 3001, "/health", "apps/api", "docker-api")
    assert (web.container, web.port, web.health_path, web.build_context, web.image) == (
        "hopwhistle-web-1", 3000, "/", "apps/web", "docker-web")
    (check,) = config.smoke_checks
    assert (check.service, check.method, check.path, check.expect_status, check.expect_json) == (
        "api", "GET", "/api/v1/buyers", 200, True)
    assert check.headers == {"x-demo-tenant-id": "00000000-0000-0000-0000-000000000000"}
    assert (config.database.name, config.database.user, config.database.host, config.database.port) == (
        "callfabric", "callfabric", "hopwhistle-postgres-dev", 5432)
    assert config.host.name == "@local"
    assert (config.host.ssh_user, config.host.ssh_port, config.host.strict_host_key_checking) == ("root", 22, "yes")
    assert config.allow_data_loss is False


def test_local_demo_gets_the_runbooks_urls():
    config = load_config(None)
    assert database_url(config).get_secret_value() == (
        "postgresql://callfabric:callfabric_dev@hopwhistle-postgres-dev:5432/callfabric"
    )
    assert redis_url(config) == "redis://redis:6379"
    assert {k: v.get_secret_value() for k, v in compose_env(config).items()} == {
        "DATABASE_URL": "postgresql://callfabric:callfabric_dev@hopwhistle-postgres-dev:5432/callfabric",
        "REDIS_URL": "redis://redis:6379",
    }


def test_toml_overrides_one_field_of_a_section(tmp_path):
    path = write(tmp_path, '[services.api]\nport = 4001\n[host]\nname = "@local"\n')
    config = load_config(path)
    assert config.services["api"].port == 4001
    assert config.services["api"].container == "docker-api-1"
    assert "web" in config.services


def test_path_from_env_then_cwd(tmp_path, monkeypatch):
    write(tmp_path, 'branch = "from-cwd"\n')
    assert load_config(None).branch == "from-cwd"
    other = write(tmp_path, 'branch = "from-env"\n', name="other.toml")
    monkeypatch.setenv("HOPWHISTLE_CONFIG", str(other))
    assert load_config(None).branch == "from-env"


def test_env_overrides_toml(tmp_path, monkeypatch):
    path = write(tmp_path, 'branch = "release"\n[services.api]\nport = 4001\n')
    monkeypatch.setenv("HOPWHISTLE_BRANCH", "hotfix")
    monkeypatch.setenv("HOPWHISTLE_SERVICES__API__PORT", "5001")
    config = load_config(path)
    assert config.branch == "hotfix"
    assert config.services["api"].port == 5001


def test_password_from_env_is_masked_everywhere(monkeypatch):
    monkeypatch.setenv("HOPWHISTLE_DB_PASSWORD", "s3cr3t-pw")
    config = load_config(None)
    assert config.db_password.get_secret_value() == "s3cr3t-pw"
    for text in (repr(config), str(config), config.model_dump_json(), str(config.model_dump()),
                 repr(database_url(config)), str(compose_env(config))):
        assert "s3cr3t-pw" not in text
    assert "s3cr3t-pw" in database_url(config).get_secret_value()


def test_password_from_secrets_file_env_wins(tmp_path, monkeypatch):
    secrets = write(tmp_path, "# comment\nHOPWHISTLE_DB_PASSWORD=from-file\n", name="secrets.env")
    path = write(tmp_path, f'secrets_file = "{secrets}"\n[host]\nname = "staging.hopwhistle.example"\n')
    assert load_config(path).db_password.get_secret_value() == "from-file"
    monkeypatch.setenv("HOPWHISTLE_DB_PASSWORD", "from-env")
    assert load_config(path).db_password.get_secret_value() == "from-env"


def test_secrets_file_from_env(tmp_path, monkeypatch):
    secrets = write(tmp_path, "HOPWHISTLE_DB_PASSWORD=pw\n", name="secrets.env")
    monkeypatch.setenv("HOPWHISTLE_SECRETS_FILE", str(secrets))
    assert load_config(None).db_password.get_secret_value() == "pw"


def test_bad_secrets_file_line_is_not_echoed(tmp_path, monkeypatch):
    secrets = write(tmp_path, "DB_PASS=hunter2\n", name="secrets.env")
    monkeypatch.setenv("HOPWHISTLE_SECRETS_FILE", str(secrets))
    with pytest.raises(ConfigError) as error:
        load_config(None)
    assert "hunter2" not in str(error.value)
    assert f"{secrets}: line 1" in str(error.value)


def test_secret_in_toml_is_refused(tmp_path):
    path = write(tmp_path, 'db_password = "hunter2"\n')
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert message.startswith(f"{path}: db_password: secrets are not read from the config file")
    assert "hunter2" not in message


def test_remote_host_requires_a_password(tmp_path):
    path = write(tmp_path, '[host]\nname = "vps.hopwhistle.example"\n')
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == (
        f"{path}: db_password: required when deploying to a host other than @local; "
        "set HOPWHISTLE_DB_PASSWORD or put it in the secrets file"
    )


def test_remote_environment_requires_a_password(tmp_path):
    path = write(tmp_path, '[environments.production]\nhosts = ["vps.hopwhistle.example"]\n')
    with pytest.raises(ConfigError, match="db_password: required"):
        load_config(path)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("branch = \n", "{path}: invalid TOML: Invalid value (at line 1, column 10)"),
        ('[services.api]\nport = "abc"\n',
         "{path}: services.api.port: Input should be a valid integer, unable to parse string as an integer"),
        ("servcies = 1\n", "{path}: servcies: Extra inputs are not permitted"),
        ('[host]\nstrict_host_key_checking = "maybe"\n',
         "{path}: host.strict_host_key_checking: Input should be 'yes', 'accept-new' or 'no'"),
        ('[[smoke_checks]]\nservice = "worker"\npath = "/"\n',
         "{path}: smoke_checks: names unknown service 'worker'"),
    ],
)
def test_invalid_config_is_one_line_naming_file_and_field(tmp_path, toml, expected):
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == expected.format(path=path)
    assert "\n" not in str(error.value)


def test_invalid_env_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("HOPWHISTLE_SERVICES__API__PORT", "x")
    with pytest.raises(ConfigError) as error:
        load_config(None)
    assert str(error.value).startswith(
        "(no config file) (environment HOPWHISTLE_SERVICES__API__PORT): services.api.port:"
    )


def test_several_problems_are_counted_on_one_line(tmp_path):
    path = write(tmp_path, 'branch = 1\nremote = 2\n')
    message = str(pytest.raises(ConfigError, load_config, path).value)
    assert message == f"{path}: branch: Input should be a valid string (and 1 more problem)"


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.toml: file not found$"):
        load_config(tmp_path / "nope.toml")


def test_example_config_is_valid_and_targets_production(monkeypatch):
    monkeypatch.setenv("HOPWHISTLE_DB_PASSWORD", "pw")
    config = load_config(EXAMPLE)
    # The runbook's production host, as written in the example (never connected to by any test).
    production = EXAMPLE.read_text().split('[host]\nname = "', 1)[1].split('"', 1)[0]
    assert production != "@local" and config.targets_local_only is False
    assert (config.host.name, config.host.ssh_user) == (production, "root")
    assert config.environments["production"].hosts == [production]
    # The example spells out the defaults; it must not drift from them.
    assert config.model_dump(exclude={"host", "environments"}) == StackConfig(db_password="pw").model_dump(
        exclude={"host", "environments"}
    )
