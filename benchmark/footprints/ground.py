"""Metres on the ground, whatever the image's CRS.

Orthomosaics come in UTM, in EPSG:3857 (as OpenAerialMap serves them) or in EPSG:4326, and the
model, ``--min-area`` and ``--simplify`` all speak metres. The ground size of a pixel is
measured geodesically at the image's centre, so a degree-based or Web Mercator grid is scaled
correctly (3857's "metres" are 1 / cos(latitude) too long: 2x at 60 degrees). Outlines are
simplified, squared and measured in a CRS whose metres are true near the image: the image's own
when its scale error there is under :data:`MAX_SCALE_ERROR`, else the local UTM zone. Nothing
is refused for lacking metres. A CRS asked for by EPSG code (``--crs``, ``-a crs``) is checked
by :func:`known_epsg` when the command line is read, not once the images are outlined.
"""

import math

from affine import Affine
from pyproj import CRS, Geod, Proj, Transformer
from pyproj.exceptions import CRSError

WGS84 = CRS.from_epsg(4326)
# Areal scale error up to which the image's CRS measures areas itself (1%: 3857 within ~5.7
# degrees of the equator, UTM within its zone).
MAX_SCALE_ERROR = 0.01
# Pixels between the points whose geodesic distance gives the pixel size (1 px would lose
# digits to floating point in degree-based CRSs).
_PROBE = 100.0


def known_epsg(value: str | int) -> int:
    """The EPSG code ``value`` names (``32636`` or ``EPSG:32636``), if pyproj knows it.

    Raises:
        ValueError: ``value`` is not an EPSG code pyproj knows (one line, naming it).
    """
    text = str(value).strip().upper().removeprefix("EPSG:")
    try:
        code = int(text)
        CRS.from_epsg(code)
    except (ValueError, CRSError):
        raise ValueError(f"{value} is not a known EPSG code") from None
    return code


def centre_lonlat(crs: CRS, transform: Affine, width: int, height: int) -> tuple[float, float]:
    """Longitude and latitude of a raster's centre."""
    x, y = transform * (width / 2, height / 2)
    lon, lat = Transformer.from_crs(crs, WGS84, always_xy=True).transform(x, y)
    return float(lon), float(lat)


def ground_resolution(crs: CRS, transform: Affine, width: int, height: int) -> tuple[float, float]:
    """Metres on the ground per pixel along a row (x) and a column (y), at the centre."""
    to_lonlat = Transformer.from_crs(crs, WGS84, always_xy=True)
    cx, cy = width / 2, height / 2
    points = [transform * (cx, cy), transform * (cx + _PROBE, cy), transform * (cx, cy + _PROBE)]
    lons, lats = to_lonlat.transform(*zip(*points, strict=True))
    geod = Geod(ellps="WGS84")
    _, _, dx = geod.inv(lons[0], lats[0], lons[1], lats[1])
    _, _, dy = geod.inv(lons[0], lats[0], lons[2], lats[2])
    return dx / _PROBE, dy / _PROBE


def utm_crs(lon: float, lat: float) -> CRS:
    """The WGS 84 UTM zone of a point."""
    zone = min(60, math.floor((lon + 180) / 6) + 1)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def measuring_crs(crs: CRS, lon: float, lat: float) -> CRS:
    """A CRS whose units are metres true to within 1% at ``lon, lat``: ``crs`` if it is one."""
    if crs.is_projected and crs.axis_info[0].unit_name in ("metre", "meter"):
        factors = Proj(crs).get_factors(lon, lat)
        if abs(factors.areal_scale - 1) < MAX_SCALE_ERROR:
            return crs
    return utm_crs(lon, lat)
