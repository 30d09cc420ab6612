import json

import pytest

from operations import commands


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("docker-api", "docker-api"),
        ("docker-api:latest", "docker-api"),
        ("registry:5000/hopwhistle/api", "registry:5000/hopwhistle/api"),
        ("registry:5000/hopwhistle/api:1.4", "registry:5000/hopwhistle/api"),
    ],
)
def test_image_repository(image, repository):
    assert commands.image_repository(image) == repository


def test_override_is_valid_json_with_one_label_per_service():
    text = commands.compose_override({"web": "b" * 40, "api": "a" * 40})
    assert json.loads(text) == {
        "services": {
            "api": {"build": {"labels": {"org.hopwhistle.source-tree": "a" * 40}}},
            "web": {"build": {"labels": {"org.hopwhistle.source-tree": "b" * 40}}},
        }
    }


def test_env_file_quotes_values_literally():
    assert commands.env_file({"A": "p$ss#w rd", "B": "x"}) == "A='p$ss#w rd'\nB='x'\n"


@pytest.mark.parametrize("value", ["it's", "two\nlines"])
def test_env_file_refuses_values_it_cannot_quote(value):
    with pytest.raises(ValueError, match="^A: value cannot contain"):
        commands.env_file({"A": value})


def test_every_word_is_quoted():
    assert commands.network_connect("net work", "c;rm -rf /", ["a b"]) == (
        "docker network connect --alias 'a b' 'net work' 'c;rm -rf /'"
    )
