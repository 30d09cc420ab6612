"""pyinfra inventory built from the stack config (``hopwhistle_deploy.config``).

    pyinfra inventory.py deploys/full.py                  # the config's [host] (default: @local)
    HOPWHISTLE_ENVIRONMENT=production pyinfra inventory.py deploys/full.py

The config comes from ``$HOPWHISTLE_CONFIG`` or ``./hopwhistle.toml``; with neither, the defaults
target the local demo server (``@local``). The hosts are those of the environment named by
``$HOPWHISTLE_ENVIRONMENT`` (also a group of that name), else the config's ``[host]``; they are always
in the group ``hopwhistle``. Only the selected hosts are in the inventory, so a bare run never reaches
production by accident.

Each host's data carries its SSH settings and ``hopwhistle_config``, the loaded ``StackConfig``; deploy
files read it as ``host.data.hopwhistle_config``.
"""

import os as _os

from pyinfra.api.exceptions import PyinfraError as _PyinfraError

from hopwhistle_deploy.config import LOCAL_HOST as _LOCAL_HOST
from hopwhistle_deploy.config import ConfigError as _ConfigError
from hopwhistle_deploy.config import StackConfig as _StackConfig
from hopwhistle_deploy.config import load_config as _load_config

_ENVIRONMENT_ENV = "HOPWHISTLE_ENVIRONMENT"


def _host_data(config: _StackConfig, name: str) -> dict:
    data: dict = {"hopwhistle_config": config}
    if name == _LOCAL_HOST:
        return data
    ssh = config.host
    data.update(
        ssh_user=ssh.ssh_user,
        ssh_port=ssh.ssh_port,
        ssh_strict_host_key_checking=ssh.strict_host_key_checking,
    )
    if ssh.ssh_key:
        data["ssh_key"] = str(ssh.ssh_key.expanduser())
    if ssh.ssh_known_hosts_file:
        data["ssh_known_hosts_file"] = str(ssh.ssh_known_hosts_file.expanduser())
    return data


def _groups(config: _StackConfig, environment: str | None) -> dict[str, list]:
    """Group name -> hosts as ``(name, data)`` tuples, for the selected environment or ``[host]``."""
    if environment:
        if environment not in config.environments:
            known = ", ".join(sorted(config.environments)) or "none configured"
            raise _ConfigError(f"{_ENVIRONMENT_ENV}: unknown environment {environment!r} ({known})")
        names = config.environments[environment].hosts
    else:
        names = [config.host.name]
    hosts = [(name, _host_data(config, name)) for name in names]
    groups = {"hopwhistle": hosts}
    if environment:
        groups[environment] = hosts
    return groups


try:
    _selected = _groups(_load_config(None), _os.environ.get(_ENVIRONMENT_ENV))
except _ConfigError as _error:
    # pyinfra prints a PyinfraError as one "pyinfra error:" line and exits 1.
    raise _PyinfraError(str(_error)) from None

# pyinfra turns each module-level list into a group named after the variable.
globals().update(_selected)
