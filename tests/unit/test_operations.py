"""Operations: facts in, commands out (pyinfra-testing fixtures in operation_cases/<module>.<operation>/)."""

from pathlib import Path

from pyinfra_testing.operations import make_operation_tests

CASES = Path(__file__).parent / "operation_cases"

# One TestCase per operation; pytest collects any TestCase it can reach, so no loop variable holds one.
globals().update(
    {
        "Test_" + folder.name.replace(".", "_"): make_operation_tests("operations", folder.name, folder)
        for folder in sorted(CASES.iterdir())
    }
)
