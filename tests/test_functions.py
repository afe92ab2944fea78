"""Templates of REST functions: rendering and parameter extraction."""

import pytest

from helpers.runtime.gloo.functions import function_from_transformation
from helpers.runtime.regex import RegexError
from helpers.runtime.templating import compile_parameter, render


def test_render_defaults_and_plain_names():
    assert render('/api/pets/{{ default(id, "") }}', {"id": "7"}) == "/api/pets/7"
    assert render('/api/pets?tags={{default(tags, "")}}&limit={{default(limit, "")}}', {}) == "/api/pets?tags=&limit="
    assert render('{{ default(x, "fallback") }}-{{ y }}', {"y": "2"}) == "fallback-2"


def test_parameter_template_extracts_named_values():
    pattern = compile_parameter("/findPetWithId/{id}")
    m = pattern.fullmatch("/findPetWithId/42")
    assert m is not None and m.group("id") == "42"
    assert pattern.fullmatch("/findPetWithId/") is None
    assert pattern.fullmatch("/other/42") is None


def test_repeated_parameter_is_an_error():
    with pytest.raises(RegexError, match="twice"):
        compile_parameter("/{id}/{id}")


def test_function_from_transformation_reads_gloo_shape():
    fn = function_from_transformation(
        "findPetById",
        {
            "headers": {
                ":method": {"text": "GET"},
                ":path": {"text": '/api/pets/{{ default(id, "") }}'},
                "content-type": {},
            },
            "body": {},
        },
    )
    assert dict(fn.headers)[":method"] == "GET" and dict(fn.headers)["content-type"] == ""
    assert fn.body == ""
    passthrough = function_from_transformation("addPet", {"headers": {":method": {"text": "POST"}}})
    assert passthrough.body is None
