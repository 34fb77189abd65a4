"""Which kind of place a URI names: the one test every layer asks."""

import pytest

from benchmark.data.uri_schemes import is_local, is_remote, is_s3


@pytest.mark.parametrize(
    ("uri", "s3", "s3_or_vsis3", "local", "remote"),
    [
        ("s3://b/k.tif", True, True, False, True),
        ("/vsis3/b/k.tif", False, True, False, False),
        ("/vsicurl/https://h/k.tif", False, False, False, False),
        ("https://h/k.tif", False, False, False, True),
        ("http://h/k.tif", False, False, False, True),
        ("/data/k.tif", False, False, True, False),
        ("k.tif", False, False, True, False),
        ("file:///data/k.tif", False, False, False, False),
        # S3 URIs are lower case, as boto3 and RV read them
        ("S3://b/k.tif", False, False, False, False),
    ],
)
def test_uri_kinds(uri: str, s3: bool, s3_or_vsis3: bool, local: bool, remote: bool) -> None:
    assert is_s3(uri) is s3
    assert is_s3(uri, vsis3=True) is s3_or_vsis3
    assert is_local(uri) is local
    assert is_remote(uri) is remote
