import pytest


@pytest.fixture(autouse=True)
def clean_hopwhistle_env(monkeypatch, tmp_path):
    """Each test starts without HOPWHISTLE_* variables and in an empty directory (no ./hopwhistle.toml)."""
    import os

    for key in list(os.environ):
        if key.upper().startswith("HOPWHISTLE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
