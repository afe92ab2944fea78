"""Manifests from files, folders, stdin, text and dicts; bad YAML named precisely."""

import io

import pytest

from helpers.errors import ManifestError
from helpers.loading import load_manifests


def test_multi_document_file_and_folder_order(tmp_path):
    (tmp_path / "b.yaml").write_text("kind: B\n---\nkind: C\n")
    (tmp_path / "a.yml").write_text("---\nkind: A\n---\n")
    (tmp_path / "notes.txt").write_text("kind: Ignored\n")
    assert [o["kind"] for o in load_manifests([tmp_path])] == ["A", "B", "C"]


def test_stdin_text_dict_and_list():
    stdin = io.StringIO("kind: FromStdin\n")
    text = "kind: List\nitems:\n- kind: X\n- kind: Y\n"
    found = load_manifests(["-", text, {"kind": "Z"}], stdin=stdin)
    assert [o["kind"] for o in found] == ["FromStdin", "X", "Y", "Z"]


def test_malformed_yaml_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: A\nmetadata:\n  name: [unclosed\n")
    with pytest.raises(ManifestError, match=r"bad\.yaml: line \d+, column \d+.*nothing was applied"):
        load_manifests([bad])


def test_a_scalar_document_is_refused(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("just a string\n")
    with pytest.raises(ManifestError, match="document 1 is a str"):
        load_manifests([f])


def test_missing_path():
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifests(["/nonexistent/x.yaml"])
