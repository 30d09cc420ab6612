"""A real server for each test: the local test bed in a named state (see testbed/scenario.py).

    @pytest.mark.state("deployed")
    def test_something(server): ...

All e2e tests share one test bed (the runbook's container names are global), built under temporary folders
and removed at the end of the session; the images are kept for the next run.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from testbed.scenario import Testbed, exclusive_use
from testbed.sshd import LoopbackSshd

ROOT = Path(__file__).resolve().parents[2]


def pytest_configure(config):
    config.addinivalue_line("markers", "state(name): the test bed state a test's `server` starts in")


@pytest.fixture(scope="session")
def testbed(tmp_path_factory):
    with exclusive_use():
        yield from _testbed(tmp_path_factory)


def _testbed(tmp_path_factory):
    bed = Testbed(
        project_path=tmp_path_factory.mktemp("server") / "hopwhistle",
        work_dir=tmp_path_factory.mktemp("testbed"),
    )
    yield bed
    bed.destroy()


@pytest.fixture
def server(testbed, request):
    """The test bed, put in the state named by the test's `state` marker (default: deployed)."""
    marker = request.node.get_closest_marker("state")
    testbed.reach(marker.args[0] if marker else "deployed")
    return testbed


@dataclass
class Pyinfra:
    """Runs the project's pyinfra deploys against the test bed (`@local`), as a user would."""

    config_path: Path
    state_dir: Path

    def env(self, config_path: Path | None = None) -> dict[str, str]:
        # The runbook's demo password: only accepted for the local demo server, so runs over @ssh to
        # 127.0.0.1 pass it as an operator would, from the environment.
        return {
            **os.environ,
            "HOPWHISTLE_CONFIG": str(config_path or self.config_path),
            "HOPWHISTLE_DB_PASSWORD": "callfabric_dev",
        }

    def run(self, deploy: str = "deploys/full.py", *flags: str, config: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(ROOT / ".venv/bin/pyinfra"), "inventory.py", deploy, *flags],
            cwd=ROOT,
            env=self.env(config),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # pyinfra logs to stderr: one stream, in order
            text=True,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture(scope="session")
def stack_config(testbed, tmp_path_factory) -> Path:
    """A hopwhistle.toml that points the tool at the test bed's checkout and a temporary state dir."""
    folder = tmp_path_factory.mktemp("config")
    state_dir = folder / "state"
    config = folder / "hopwhistle.toml"
    config.write_text(f'project_path = "{testbed.project_path}"\nstate_dir = "{state_dir}"\n')
    return config


@pytest.fixture(scope="session")
def pyinfra(stack_config) -> Pyinfra:
    return Pyinfra(config_path=stack_config, state_dir=stack_config.parent / "state")


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """An sshd on 127.0.0.1 with throwaway keys (testbed/sshd.py); stopped at the end of the session."""
    daemon = LoopbackSshd(work_dir=tmp_path_factory.mktemp("sshd"), port=2298)
    daemon.start()
    yield daemon
    daemon.destroy()


def ssh_config(stack_config: Path, sshd: LoopbackSshd, **overrides) -> Path:
    """A copy of the test bed's config that reaches this machine over `@ssh` instead of `@local`."""
    settings = {
        "name": sshd.host,
        "ssh_port": sshd.port,
        "ssh_key": str(sshd.client_key),
        "ssh_known_hosts_file": str(sshd.known_hosts),
        **overrides,
    }
    host = "".join(f"{key} = {value!r}\n" if isinstance(value, int) else f'{key} = "{value}"\n' for key, value in settings.items())
    path = stack_config.parent / f"ssh-{abs(hash(host))}.toml"
    path.write_text(stack_config.read_text() + "\n[host]\n" + host)
    return path


def grand_total(output: str) -> tuple[int, int]:
    """(operations, changed) from pyinfra's results table."""
    match = re.search(r"Grand total\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)", output)
    assert match, output[-3000:]
    count = lambda cell: 0 if cell == "-" else int(cell)  # noqa: E731
    return int(match[1]), count(match[2])
