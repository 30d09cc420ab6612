"""A real server for each test: the local test bed in a named state (see testbed/scenario.py).

    @pytest.mark.state("deployed")
    def test_something(server): ...

All e2e tests share one test bed (the runbook's container names are global), built under temporary folders
and removed at the end of the session; the images are kept for the next run.
"""

from __future__ import annotations

import pytest

from testbed.scenario import Testbed, exclusive_use


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
