"""inventory.py as pyinfra's CLI loads it."""

from pathlib import Path

import pytest
from pyinfra.api import State
from pyinfra.api.exceptions import PyinfraError
from pyinfra.context import ctx_state
from pyinfra_cli.inventory import make_inventory as make_cli_inventory

from hopwhistle_deploy.config import StackConfig

INVENTORY = str(Path(__file__).parents[2] / "inventory.py")


def make_inventory(path):
    with ctx_state.use(State()):
        return make_cli_inventory(path)


def hosts_by_name(inventory):
    return {host.name: host for host in inventory}


def test_no_config_targets_the_local_demo_server():
    inventory = make_inventory(INVENTORY)
    (host,) = list(inventory)
    assert host.name == "@local"
    assert isinstance(host.data.hopwhistle_config, StackConfig)
    assert "hopwhistle" in host.groups


def test_remote_host_gets_ssh_settings(tmp_path, monkeypatch):
    (tmp_path / "hopwhistle.toml").write_text(
        '[host]\nname = "vps.hopwhistle.example"\nssh_user = "deploy"\nssh_port = 2222\n'
        'ssh_key = "/keys/id"\nssh_known_hosts_file = "/keys/known_hosts"\n'
    )
    monkeypatch.setenv("HOPWHISTLE_DB_PASSWORD", "pw")
    host = hosts_by_name(make_inventory(INVENTORY))["vps.hopwhistle.example"]
    assert host.data.ssh_user == "deploy"
    assert host.data.ssh_port == 2222
    assert host.data.ssh_key == "/keys/id"
    assert host.data.ssh_known_hosts_file == "/keys/known_hosts"
    assert host.data.ssh_strict_host_key_checking == "yes"
    assert host.data.hopwhistle_config.host.name == "vps.hopwhistle.example"


def test_selected_environment_is_a_group(tmp_path, monkeypatch):
    (tmp_path / "hopwhistle.toml").write_text(
        '[environments.production]\nhosts = ["vps.hopwhistle.example"]\n'
        '[environments.staging]\nhosts = ["staging-a.hopwhistle.example", "staging-b.hopwhistle.example"]\n'
    )
    monkeypatch.setenv("HOPWHISTLE_DB_PASSWORD", "pw")
    monkeypatch.setenv("HOPWHISTLE_ENVIRONMENT", "staging")
    inventory = make_inventory(INVENTORY)
    assert sorted(hosts_by_name(inventory)) == ["staging-a.hopwhistle.example", "staging-b.hopwhistle.example"]
    assert sorted(h.name for h in inventory.get_group("staging")) == ["staging-a.hopwhistle.example", "staging-b.hopwhistle.example"]


def test_unselected_environments_stay_out(tmp_path, monkeypatch):
    (tmp_path / "hopwhistle.toml").write_text('[environments.production]\nhosts = ["vps.hopwhistle.example"]\n')
    monkeypatch.setenv("HOPWHISTLE_DB_PASSWORD", "pw")
    assert list(hosts_by_name(make_inventory(INVENTORY))) == ["@local"]


def test_unknown_environment_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("HOPWHISTLE_ENVIRONMENT", "prod")
    with pytest.raises(PyinfraError, match=r"^HOPWHISTLE_ENVIRONMENT: unknown environment 'prod' \(none configured\)$"):
        make_inventory(INVENTORY)


def test_invalid_config_is_a_pyinfra_error(tmp_path):
    (tmp_path / "hopwhistle.toml").write_text("branch = \n")
    with pytest.raises(PyinfraError, match=r"^hopwhistle.toml: invalid TOML"):
        make_inventory(INVENTORY)
