"""The store keeps objects across restarts and tells created/configured/unchanged."""

from helpers.runtime.store import Store


def cm(data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data}


def test_created_configured_unchanged_and_persisted(tmp_path):
    path = tmp_path / "store.json"
    store = Store(path)
    action, obj = store.put(cm({"a": "1"}))
    assert action == "created" and obj["metadata"]["generation"] == 1
    uid = obj["metadata"]["uid"]
    assert store.put(cm({"a": "1"}))[0] == "unchanged"
    action, obj = store.put(cm({"a": "2"}))
    assert action == "configured" and obj["metadata"]["uid"] == uid and obj["metadata"]["generation"] == 2
    again = Store(path)
    assert again.get(("ConfigMap", "default", "c"))["data"] == {"a": "2"}
    assert again.put(cm({"a": "2"}))[0] == "unchanged"


def test_status_and_server_fields_do_not_count_as_changes(tmp_path):
    store = Store(tmp_path / "s.json")
    _, stored = store.put(cm({"a": "1"}))
    echoed = dict(stored, status={"whatever": True})
    assert store.put(echoed)[0] == "unchanged"


def test_delete(tmp_path):
    store = Store(tmp_path / "s.json")
    store.put(cm({}))
    assert store.delete(("ConfigMap", "default", "c")) is not None
    assert store.delete(("ConfigMap", "default", "c")) is None
    assert Store(tmp_path / "s.json").list() == []
