"""Fixtures of the data tests: generated catalogs, read only through our STAC I/O."""

import pystac
import pytest

from tests.fixtures.opencities import make_opencities_catalog


class _NoDefaultStacIO(pystac.StacIO):
    """Fails any read pystac makes without our StacIO (it could not read s3:// offline)."""

    def read_text(self, source, *args, **kwargs):
        raise AssertionError(f"pystac's default StacIO read {source}")

    def write_text(self, dest, txt, *args, **kwargs):
        raise AssertionError(f"pystac's default StacIO wrote {dest}")


@pytest.fixture(autouse=True)
def _only_our_stac_io(monkeypatch):
    monkeypatch.setattr(pystac.StacIO, "_default_io", _NoDefaultStacIO)


@pytest.fixture
def catalog(tmp_path):
    return make_opencities_catalog(tmp_path, test_chip_size=8)
