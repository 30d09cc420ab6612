"""Facts: command out, output in, parsed fact out (pyinfra-testing fixtures in fact_cases/<Fact>/)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from pyinfra.api.exceptions import FactProcessError
from pyinfra_testing.facts import make_fact_tests

from operations import facts
from operations.commands import Compose

CASES = Path(__file__).parent / "fact_cases"

# One TestCase per fact; pytest collects any TestCase it can reach, so no loop variable holds one.
globals().update(
    {
        f"Test{folder.name}": make_fact_tests("operations", f"facts.{folder.name}", folder)
        for folder in sorted(CASES.iterdir())
    }
)


def test_compose_config_hashes():
    # The YAML harness cannot pass a Compose object to command(), so this fact is tested directly.
    compose = Compose(
        project="docker",
        files=["/opt/hopwhistle/infra/docker/docker-compose.yml", "/var/lib/hopwhistle/compose.override.yml"],
        env_file="/var/lib/hopwhistle/compose.env",
    )
    arguments = (
        "-p docker -f /opt/hopwhistle/infra/docker/docker-compose.yml"
        " -f /var/lib/hopwhistle/compose.override.yml --env-file /var/lib/hopwhistle/compose.env config --hash api,web"
    )
    command = facts.ComposeConfigHashes().command(compose, ["api", "web"])
    assert f'exec "$p" {arguments}; done; exec docker compose {arguments} )' in command
    # Compose 2.40's output format.
    output = [
        "api a587facd2ed865f00bf858924cfd2305b81fe49987e7695ea3297df690172c1d",
        "web bf996cc0453121fe0c44e2d5e5d886816b3fa5d4ba59de809f05b7198efbe0c0",
    ]
    assert facts.ComposeConfigHashes().process(output) == {
        "api": "a587facd2ed865f00bf858924cfd2305b81fe49987e7695ea3297df690172c1d",
        "web": "bf996cc0453121fe0c44e2d5e5d886816b3fa5d4ba59de809f05b7198efbe0c0",
    }


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI (make engine installs it)")
def test_compose_config_hashes_of_the_plugin_run_alone_are_docker_compose_s(tmp_path):
    # No daemon needed: `config` only reads the files. A Compose plugin must be installed (make engine).
    (tmp_path / "compose.yml").write_text(
        "services:\n  api:\n    image: busybox\n    environment: {DATABASE_URL: '${DATABASE_URL}'}\n"
        "  web:\n    image: busybox\n    ports: ['3000:3000']\n"
    )
    (tmp_path / "compose.env").write_text("DATABASE_URL=postgresql://u@db/x\n")
    compose = Compose(project="docker", files=[str(tmp_path / "compose.yml")], env_file=str(tmp_path / "compose.env"))
    ours = subprocess.run(["sh", "-c", facts.ComposeConfigHashes().command(compose, ["api", "web"])],
                          capture_output=True, text=True, check=True)  # fmt: skip
    cli = subprocess.run(compose.command("config", "--hash", "api,web"), shell=True, capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert ours.stdout == cli.stdout
    assert set(facts.ComposeConfigHashes().process(ours.stdout.splitlines())) == {"api", "web"}


@pytest.mark.parametrize(
    ("fact", "output"),
    [
        (facts.DockerContainers, ["permission denied while trying to connect to the Docker daemon socket"]),
        (facts.DockerNetworks, ["Error response from daemon: something else"]),
        (facts.DockerImages, ["image docker-api", "Error response from daemon: i/o timeout"]),
        (facts.PortPublishers, ["WARNING: unexpected"]),
        (facts.GitCheckout, ["1111"]),
        (facts.GitTreeHashes, ["apps/api"]),
        (facts.ComposeConfigHashes, ["api"]),
        (facts.FileDigest, ["600"]),
    ],
)
def test_unexpected_output_is_an_error_not_absent(fact, output):
    # pyinfra turns FactProcessError into a failed host and a None fact, which ask() refuses.
    with pytest.raises(FactProcessError):
        fact().process(output)


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI (make engine installs it)")
@pytest.mark.parametrize(
    ("fact", "arg"),
    [(facts.DockerContainers, ["x"]), (facts.DockerNetworks, ["x"]), (facts.DockerImages, ["x"]), (facts.PortPublishers, [3001])],
)
def test_a_docker_daemon_that_cannot_answer_is_an_error_never_absent(fact, arg, tmp_path):
    # The real CLI against a socket nobody listens on: the command fails, or its output is refused.
    result = subprocess.run(
        ["sh", "-c", fact().command(arg)], capture_output=True, text=True,
        env={**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/nobody.sock"},
    )  # fmt: skip
    if result.returncode != 0:
        assert "Cannot connect to the Docker daemon" in result.stderr
    else:
        assert "Cannot connect to the Docker daemon" in result.stdout
        with pytest.raises(FactProcessError):
            fact().process(result.stdout.splitlines())


@pytest.mark.parametrize("fact", [facts.DockerContainers, facts.GitCheckout, facts.FileDigest])
def test_failed_fact_defaults_to_none(fact):
    assert fact().default() is None
