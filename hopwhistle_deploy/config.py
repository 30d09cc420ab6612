"""The typed stack config: the runbook's desired state, with the runbook's values as defaults.

Sources, lowest to highest priority: defaults, the TOML file, ``HOPWHISTLE_*`` environment variables
(nested fields with ``__``, e.g. ``HOPWHISTLE_SERVICES__API__PORT=4001``). Secrets are never read from
the TOML file: only from the environment (``HOPWHISTLE_DB_PASSWORD``) or from a secrets file of
``KEY=VALUE`` lines (path from ``secrets_file`` in the TOML or ``HOPWHISTLE_SECRETS_FILE``) using the
same names; the environment wins over the file.

    config = load_config("hopwhistle.toml")
    config.services["api"].port          # 3001
    database_url(config)                 # SecretStr, masked when printed
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "HOPWHISTLE_"
CONFIG_ENV = "HOPWHISTLE_CONFIG"
SECRETS_FILE_ENV = "HOPWHISTLE_SECRETS_FILE"
DEFAULT_CONFIG_FILE = Path("hopwhistle.toml")
LOCAL_HOST = "@local"
# The runbook's development password; accepted only when the target is the local demo server.
DEMO_DB_PASSWORD = "callfabric_dev"
SECRET_FIELDS = ("db_password",)


class ConfigError(Exception):
    """An invalid config. ``str()`` is one line naming the file, the field and the problem."""


class _Section(BaseModel):
    # A typo in the TOML must fail loudly, not be silently ignored.
    model_config = ConfigDict(extra="forbid")


class HostConfig(_Section):
    """Where to deploy and how to reach it over SSH (ignored for ``@local``)."""

    name: str = LOCAL_HOST
    ssh_user: str = "root"
    ssh_port: int = Field(default=22, ge=1, le=65535)
    ssh_key: Path | None = None
    ssh_known_hosts_file: Path | None = None
    strict_host_key_checking: Literal["yes", "accept-new", "no"] = "yes"


class EnvironmentConfig(_Section):
    """A named group of hosts (``[environments.production]``); they share ``[host]``'s SSH settings."""

    hosts: list[str] = Field(min_length=1)


class Attachment(_Section):
    """A container that must be on ``network`` with exactly these aliases."""

    container: str
    aliases: list[str] = []


class DataContainers(_Section):
    """Containers holding data: started and attached by the tool, never created or recreated."""

    postgres: str = "hopwhistle-postgres-dev"
    redis: str = "hopwhistle-redis-1"

    @property
    def names(self) -> list[str]:
        return [self.postgres, self.redis]


class ServiceConfig(_Section):
    """An app service the tool builds and runs with Compose."""

    container: str
    port: int = Field(ge=1, le=65535)
    health_path: str
    build_context: str  # relative to project_path; its git tree hash labels the image
    image: str  # what Compose tags the build as (``<project>-<service>`` unless the compose file says)


class SmokeCheck(_Section):
    """An HTTP request to a service's published port after a deploy, and what it must answer."""

    service: str
    method: Literal["GET", "HEAD"] = "GET"
    path: str
    headers: dict[str, str] = {}
    expect_status: int = 200
    expect_json: bool = False


class DatabaseConfig(_Section):
    name: str = "callfabric"
    user: str = "callfabric"
    host: str = "hopwhistle-postgres-dev"  # as the app containers resolve it on the network
    port: int = 5432


class RedisConfig(_Section):
    host: str = "redis"  # the alias on the network, as the app containers resolve it
    port: int = 6379


def _default_services() -> dict[str, ServiceConfig]:
    return {
        "api": ServiceConfig(
            container="docker-api-1", port=3001, health_path="/health", build_context="apps/api", image="docker-api"
        ),
        "web": ServiceConfig(
            container="hopwhistle-web-1", port=3000, health_path="/", build_context="apps/web", image="docker-web"
        ),
    }


def _default_attachments() -> list[Attachment]:
    return [
        Attachment(container="hopwhistle-postgres-dev"),
        Attachment(container="hopwhistle-redis-1", aliases=["redis"]),
    ]


def _default_smoke_checks() -> list[SmokeCheck]:
    return [
        SmokeCheck(
            service="api",
            path="/api/v1/buyers",
            headers={"x-demo-tenant-id": "00000000-0000-0000-0000-000000000000"},
            expect_status=200,
            expect_json=True,
        )
    ]


class StackConfig(BaseSettings):
    """The whole stack on one server. Field names match the TOML keys."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        hide_input_in_errors=True,
    )

    host: HostConfig = HostConfig()
    environments: dict[str, EnvironmentConfig] = {}

    project_path: str = "/opt/hopwhistle"
    branch: str = "main"
    remote: str = "origin"
    compose_dir: str = "infra/docker"  # relative to project_path
    compose_file: str = "docker-compose.yml"
    compose_project: str = "docker"
    network: str = "docker_default"
    state_dir: str = "/var/lib/hopwhistle"  # lock, audit log, backups, compose override and env file

    attachments: list[Attachment] = Field(default_factory=_default_attachments)
    data_containers: DataContainers = DataContainers()
    strays: list[str] = ["docker-redis-1"]
    services: dict[str, ServiceConfig] = Field(default_factory=_default_services)
    smoke_checks: list[SmokeCheck] = Field(default_factory=_default_smoke_checks)

    database: DatabaseConfig = DatabaseConfig()
    redis: RedisConfig = RedisConfig()

    health_timeout_seconds: float = Field(default=60, gt=0)
    backups_to_keep: int = Field(default=5, ge=0)
    images_to_keep: int = Field(default=3, ge=0)  # old builds per service, for rollback --to
    allow_data_loss: bool = False

    secrets_file: Path | None = None
    db_password: SecretStr | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The loader passes the TOML's values as init kwargs; the environment overrides them.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _check_references(self) -> StackConfig:
        for check in self.smoke_checks:
            if check.service not in self.services:
                raise ValueError(f"smoke_checks: names unknown service {check.service!r}")
        if self.database.host != self.data_containers.postgres:
            raise ValueError(
                f"database.host: {self.database.host!r} must be the postgres data container "
                f"{self.data_containers.postgres!r}"
            )
        return self

    @model_validator(mode="after")
    def _require_password_off_local(self) -> StackConfig:
        if self.db_password is None and not self.targets_local_only:
            raise ValueError(
                f"db_password: required when deploying to a host other than {LOCAL_HOST}; "
                f"set {ENV_PREFIX}DB_PASSWORD or put it in the secrets file"
            )
        return self

    @property
    def targets_local_only(self) -> bool:
        hosts = [self.host.name, *(h for env in self.environments.values() for h in env.hosts)]
        return all(h == LOCAL_HOST for h in hosts)

    @property
    def compose_dir_path(self) -> str:
        return f"{self.project_path.rstrip('/')}/{self.compose_dir}"

    @property
    def compose_files(self) -> list[str]:
        """Every compose call uses the user's file plus the generated override, in this order."""
        return [f"{self.compose_dir_path}/{self.compose_file}", self.override_path]

    @property
    def override_path(self) -> str:
        return f"{self.state_dir.rstrip('/')}/compose.override.yml"

    @property
    def env_file_path(self) -> str:
        return f"{self.state_dir.rstrip('/')}/compose.env"


def database_password(config: StackConfig) -> SecretStr:
    """The configured DB password; the runbook's demo password only for the local demo server."""
    if config.db_password is not None:
        return config.db_password
    # The validator guarantees we only get here when every target is @local.
    return SecretStr(DEMO_DB_PASSWORD)


def database_url(config: StackConfig) -> SecretStr:
    db = config.database
    password = quote(database_password(config).get_secret_value(), safe="")
    return SecretStr(f"postgresql://{quote(db.user, safe='')}:{password}@{db.host}:{db.port}/{db.name}")


def redis_url(config: StackConfig) -> str:
    return f"redis://{config.redis.host}:{config.redis.port}"


def compose_env(config: StackConfig) -> dict[str, SecretStr]:
    """What the compose file interpolates; written to ``env_file_path`` (mode 0600), never into argv."""
    return {"DATABASE_URL": database_url(config), "REDIS_URL": SecretStr(redis_url(config))}


def load_config(path: str | Path | None = None) -> StackConfig:
    """Load the config: ``path``, else ``$HOPWHISTLE_CONFIG``, else ``./hopwhistle.toml`` if present,
    else the defaults. Raises ``ConfigError`` (one line) when anything is invalid."""
    config_path = _resolve_path(path)
    source = str(config_path) if config_path else "(no config file)"
    data = _read_toml(config_path) if config_path else {}

    for name in SECRET_FIELDS:
        if name in data:
            raise ConfigError(
                f"{source}: {name}: secrets are not read from the config file; "
                f"set {ENV_PREFIX}{name.upper()} or put it in the secrets file"
            )

    secrets_path = os.environ.get(SECRETS_FILE_ENV) or data.get("secrets_file")
    if secrets_path is not None and not isinstance(secrets_path, str):
        raise ConfigError(f"{source}: secrets_file: expected a path (a string), got {type(secrets_path).__name__}")
    if secrets_path:
        secrets_source = str(secrets_path)
        data.update(_read_secrets_file(Path(secrets_path), source))
    else:
        secrets_source = None

    try:
        return StackConfig(**_deep_merge(_defaults(), data))
    except ValidationError as error:
        raise ConfigError(_one_line(source, error, secrets_source)) from None


@cache
def current_config() -> StackConfig:
    """The config for this process (``$HOPWHISTLE_CONFIG`` or ``./hopwhistle.toml``), loaded once.

    Deploy files use this or the host data ``hopwhistle_config`` that ``inventory.py`` sets."""
    return load_config(None)


def _resolve_path(path: str | Path | None) -> Path | None:
    if path is not None:
        return Path(path)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    if DEFAULT_CONFIG_FILE.is_file():
        return DEFAULT_CONFIG_FILE
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None


def _read_secrets_file(path: Path, config_source: str) -> dict[str, str]:
    """``KEY=VALUE`` lines using the environment variable names (``HOPWHISTLE_DB_PASSWORD=...``).
    The environment still wins: pydantic-settings ranks it above these values."""
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise ConfigError(f"{config_source}: secrets_file: cannot read {path}: {error.strerror}") from None

    known = {f"{ENV_PREFIX}{name.upper()}": name for name in SECRET_FIELDS}
    values: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or key not in known:
            # Never echo the line: it may hold a secret.
            raise ConfigError(
                f"{path}: line {number}: expected KEY=VALUE with KEY one of {', '.join(sorted(known))}"
            )
        values[known[key]] = value.strip()
    return values


def _one_line(source: str, error: ValidationError, secrets_source: str | None) -> str:
    first = error.errors()[0]
    message = first["msg"].removeprefix("Value error, ")
    field = ".".join(str(part) for part in first["loc"])
    if not field:
        # Cross-field validators name their field at the start of the message.
        field, _, message = message.partition(": ")
    origin = _origin_of(field, source, secrets_source)
    more = error.error_count() - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return " ".join(f"{origin}: {field}: {message}{suffix}".split())


def _origin_of(field: str, source: str, secrets_source: str | None) -> str:
    """Name the environment variable when the bad value came from one; else the file."""
    env_name = ENV_PREFIX + field.replace(".", "__").upper()
    if any(key.upper() == env_name for key in os.environ):
        return f"{source} (environment {env_name})"
    if secrets_source and field in SECRET_FIELDS:
        return secrets_source
    return source


def _defaults() -> dict[str, Any]:
    """The defaults as plain data, so a TOML or env value overrides one field of a section
    (``[services.api] port = 4001``) instead of replacing the whole section."""
    return StackConfig.model_construct().model_dump(exclude={"secrets_file", *SECRET_FIELDS})


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
