import pytest

from benchmark.errors import InputError
from benchmark.uris import TMP_PREFIX, atomic_output, read_json, uri_exists, write_json


def test_atomic_output_publishes_only_on_success(tmp_path):
    target = tmp_path / "sub" / "out.tif"
    with atomic_output(str(target)) as path:
        assert path.endswith(".tif") and TMP_PREFIX in path
        (tmp_path / "sub" / path.rsplit("/", 1)[-1]).write_bytes(b"data")
        assert not target.exists()
    assert target.read_bytes() == b"data"
    assert [p.name for p in target.parent.iterdir()] == ["out.tif"]


def test_atomic_output_leaves_nothing_when_the_body_fails(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_output(str(target)) as path:
        open(path, "w").write("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_json_round_trip_and_errors(tmp_path):
    uri = str(tmp_path / "a.json")
    write_json({"a": 1}, uri)
    assert uri_exists(uri) and read_json(uri) == {"a": 1}
    with pytest.raises(InputError, match=r"missing\.json: file not found"):
        read_json(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(InputError, match=r"bad\.json: not valid JSON"):
        read_json(str(tmp_path / "bad.json"))
