"""Which kind of place a URI names: the one test every layer asks."""

import pytest

from benchmark.data.uri_schemes import is_local, is_s3


@pytest.mark.parametrize(
    ("uri", "s3", "s3_or_vsis3", "local"),
    [
        ("s3://b/k.tif", True, True, False),
        ("/vsis3/b/k.tif", False, True, False),
        ("/vsicurl/https://h/k.tif", False, False, False),
        ("https://h/k.tif", False, False, False),
        ("/data/k.tif", False, False, True),
        ("k.tif", False, False, True),
        ("S3://b/k.tif", False, False, False),  # S3 URIs are lower case, as boto3 and RV read them
    ],
)
def test_uri_kinds(uri: str, s3: bool, s3_or_vsis3: bool, local: bool) -> None:
    assert is_s3(uri) is s3
    assert is_s3(uri, vsis3=True) is s3_or_vsis3
    assert is_local(uri) is local
