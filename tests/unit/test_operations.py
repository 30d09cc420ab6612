"""Operations: facts in, commands out (pyinfra-testing fixtures in operation_cases/<module>.<operation>/)."""

from pathlib import Path

from pyinfra_testing.operations import make_operation_tests

CASES = Path(__file__).parent / "operation_cases"

for _folder in sorted(CASES.iterdir()):
    _test_class = make_operation_tests("operations", _folder.name, _folder)
    globals()["Test_" + _folder.name.replace(".", "_")] = _test_class
