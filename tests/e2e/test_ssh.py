"""The reconciler over `@ssh` to an sshd on 127.0.0.1: same result as `@local`; the host key is verified;
an unreachable host is one clear error."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import grand_total, ssh_config
from tests.e2e.test_converge import assert_converged


@pytest.mark.state("redis-no-alias")
def test_converges_over_ssh_and_second_run_changes_nothing(server, pyinfra, stack_config, sshd):
    config = ssh_config(stack_config, sshd)
    first = pyinfra.run("deploys/full.py", "-y", config=config)
    assert first.returncode == 0, first.stdout[-3000:]
    assert "[127.0.0.1]" in first.stdout
    assert_converged(server)
    second = pyinfra.run("deploys/full.py", "-y", config=config)
    assert second.returncode == 0 and grand_total(second.stdout)[1] == 0, second.stdout[-3000:]


@pytest.mark.state("postgres-detached")
def test_a_changed_host_key_is_refused_and_nothing_changes(server, pyinfra, stack_config, sshd, tmp_path):
    # Pin another key for 127.0.0.1:port, as if the server's key had changed.
    impostor = tmp_path / "known_hosts"
    other_key = (sshd.work_dir / "client_ed25519.pub").read_text().split()[:2]
    impostor.write_text(f"[{sshd.host}]:{sshd.port} {' '.join(other_key)}\n")
    config = ssh_config(stack_config, sshd, ssh_known_hosts_file=impostor)

    result = pyinfra.run("deploys/full.py", "-y", config=config)

    assert result.returncode == 1
    assert "host key" in result.stdout.lower(), result.stdout[-3000:]
    networks = server.inspect(server.server.postgres)["NetworkSettings"]["Networks"]
    assert server.server.network not in networks


def test_an_unreachable_ssh_host_is_one_clear_error(pyinfra, stack_config, sshd):
    config = ssh_config(stack_config, sshd, ssh_port=1)  # nothing listens on 127.0.0.1:1
    result = pyinfra.run("deploys/full.py", "--dry", config=config)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout
    assert "127.0.0.1" in result.stdout and "connect" in result.stdout.lower(), result.stdout[-3000:]
