import os
import stat
import subprocess
import sys
from glob import glob

import boto3
import pytest
from moto import mock_aws

from benchmark.data.uris import (
    PARTIAL_DIR,
    atomic_output,
    make_output_root,
    read_json,
    uri_exists,
    write_json,
)
from benchmark.errors import InputError, OutputError, one_line_error


class TestAtomicOutputLocal:
    def test_publishes_only_on_success(self, tmp_path):
        target = tmp_path / "sub" / "out.tif"
        with atomic_output(str(target)) as path:
            assert os.path.dirname(path) == str(target.parent / PARTIAL_DIR)  # same file system
            open(path, "wb").write(b"data")
            assert not target.exists()
        assert target.read_bytes() == b"data"
        assert sorted(p.name for p in target.parent.rglob("*") if p.is_file()) == ["out.tif"]

    def test_no_glob_of_outputs_finds_a_partial(self, tmp_path):
        with atomic_output(str(tmp_path / "a" / "out.tif")) as path:
            open(path, "wb").write(b"half")
            assert not path.endswith(".tif")
            assert glob(f"{tmp_path}/**/*.tif", recursive=True) == []
            assert list(tmp_path.rglob("*.tif")) == []  # pathlib does enter hidden folders

    def test_a_dead_process_partial_is_removed_by_the_next_write(self, tmp_path):
        code = (
            "import os, sys\n"
            "from benchmark.data.uris import atomic_output\n"
            "with atomic_output(sys.argv[1]) as path:\n"
            "    open(path, 'w').write('half')\n"
            "    os._exit(9)\n"  # killed mid-write: no clean-up runs
        )
        subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.tif")], check=False)
        assert len(os.listdir(tmp_path / PARTIAL_DIR)) == 1  # the killed write's partial
        write_json({}, str(tmp_path / "b.json"))
        assert sorted(os.listdir(tmp_path)) == ["b.json"]

    def test_a_live_process_partial_is_kept(self, tmp_path):
        code = (
            "import sys\n"
            "from benchmark.data.uris import atomic_output\n"
            "with atomic_output(sys.argv[1]) as path:\n"
            "    open(path, 'w').write('half')\n"
            "    print(path, flush=True)\n"
            "    sys.stdin.read()\n"  # still writing until its stdin closes
        )
        cmd = [sys.executable, "-c", code, str(tmp_path / "a.tif")]
        with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as p:
            live = p.stdout.readline().strip()
            with atomic_output(str(tmp_path / "b.tif")) as path:
                open(path, "w").write("done")
            assert os.path.exists(live)
            p.stdin.close()
        assert sorted(os.listdir(tmp_path)) == ["a.tif", "b.tif"]  # the last one out tidies up

    def test_a_partial_of_this_pid_not_being_written_is_stale(self, tmp_path):
        with atomic_output(str(tmp_path / "a.tif")) as path:
            open(path, "w").write("done")
        os.makedirs(os.path.dirname(path))
        open(path, "w").write("half")  # as if left by a killed process with this pid
        write_json({}, str(tmp_path / "b.json"))
        assert sorted(os.listdir(tmp_path)) == ["a.tif", "b.json"]

    def test_leaves_nothing_when_the_body_fails(self, tmp_path):
        target = tmp_path / "out.json"
        with pytest.raises(RuntimeError), atomic_output(str(target)) as path:
            open(path, "w").write("half")
            raise RuntimeError("killed")
        assert [p for p in tmp_path.rglob("*") if p.is_file()] == []

    def test_keeps_an_existing_file_when_the_body_fails(self, tmp_path):
        target = tmp_path / "out.json"
        target.write_text("old")
        with pytest.raises(KeyboardInterrupt), atomic_output(str(target)) as path:
            open(path, "w").write("half")
            raise KeyboardInterrupt
        assert target.read_text() == "old"
        assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["out.json"]

    def test_published_file_has_normal_permissions(self, tmp_path):
        target = tmp_path / "out.txt"
        with atomic_output(str(target)) as path:
            open(path, "w").write("x")
        umask = os.umask(0)
        os.umask(umask)
        assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask

    def test_a_partial_folder_removed_while_it_is_made_is_made_again(self, tmp_path, monkeypatch):
        """Another writer's last one out removes ``.partial`` between makedirs' mkdir and its
        check: makedirs then raises FileExistsError even with exist_ok (seen with POSTPROCESS's
        two writer threads). The write goes on."""
        real_makedirs, raced = os.makedirs, []

        def makedirs_losing_a_race(path, exist_ok=False):
            if not raced:
                raced.append(path)
                raise FileExistsError(path)
            real_makedirs(path, exist_ok=exist_ok)

        monkeypatch.setattr("benchmark.data.uris.os.makedirs", makedirs_losing_a_race)
        with atomic_output(str(tmp_path / "out.txt")) as path:
            open(path, "w").write("x")
        assert raced and (tmp_path / "out.txt").read_text() == "x"


@mock_aws
def test_s3_output_is_uploaded_whole_and_only_on_success(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    boto3.client("s3").create_bucket(Bucket="bucket")
    with atomic_output("s3://bucket/a/out.json") as path:
        assert path.endswith("out.json") and not path.startswith("s3://")
        open(path, "w").write("{}")
        assert not uri_exists("s3://bucket/a/out.json")
    assert read_json("s3://bucket/a/out.json") == {}
    with pytest.raises(RuntimeError), atomic_output("s3://bucket/b.json") as path:
        open(path, "w").write("half")
        raise RuntimeError("killed")
    assert not uri_exists("s3://bucket/b.json")
    assert not os.path.exists(os.path.dirname(path))


class TestJson:
    def test_round_trip(self, tmp_path):
        uri = str(tmp_path / "a.json")
        write_json({"a": [1, 2]}, uri)
        assert uri_exists(uri) and read_json(uri) == {"a": [1, 2]}
        assert '\n  "a"' in open(uri).read()

    def test_missing_file(self, tmp_path):
        with pytest.raises(InputError, match=r"missing\.json: file not found"):
            read_json(str(tmp_path / "missing.json"))

    def test_a_directory_is_not_a_file(self, tmp_path):
        assert not uri_exists(str(tmp_path))
        with pytest.raises(InputError, match="file not found"):
            read_json(str(tmp_path))

    @pytest.mark.parametrize("content", [b"{nope", b"\xff\xfe\x00"])
    def test_not_json(self, tmp_path, content):
        (tmp_path / "bad.json").write_bytes(content)
        with pytest.raises(InputError, match=r"bad\.json: not valid JSON"):
            read_json(str(tmp_path / "bad.json"))


class TestMakeOutputRoot:
    def test_a_missing_root_is_made(self, tmp_path):
        make_output_root(str(tmp_path / "new" / "root"))
        assert (tmp_path / "new" / "root").is_dir()

    def test_a_root_under_a_file_is_one_line(self, tmp_path):
        (tmp_path / "f").write_text("")
        with pytest.raises(OutputError) as raised:
            make_output_root(str(tmp_path / "f" / "root"))
        assert one_line_error(raised.value) == f"{tmp_path}/f/root: not written: Not a directory"

    def test_an_s3_root_is_left_to_the_batch_checks(self, monkeypatch):
        monkeypatch.setattr(os, "makedirs", lambda *a, **k: pytest.fail("made a local folder"))
        make_output_root("s3://bucket/root")
