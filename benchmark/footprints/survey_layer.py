"""The merged survey layer's two files, streamed together: a GeoPackage and a GeoParquet.

:mod:`benchmark.footprints.merge` decides which buildings the layer holds; this writes them as
they come, batch by batch, to both formats with the same columns.
"""

import json
from types import TracebackType

import numpy as np
import shapely
from pyproj import CRS

from benchmark.footprints.write import append_polygons

FIELDS = ["building", "area_m2", "confidence", "image"]


class SurveyLayerWriter:
    """The merged layer, streamed to a GeoPackage and a GeoParquet file together.

    The GeoParquet is written with pyarrow (GDAL's Parquet driver is not in pyogrio's wheel),
    row group by row group, with GeoParquet 1.0's ``geo`` metadata (WKB, the CRS as PROJJSON).
    A context manager: its end finishes both files (:meth:`close`), or, after an error, closes
    the GeoParquet writer without finishing anything (the partial files are not published).
    """

    def __init__(self, gpkg_path: str, parquet_path: str, crs: CRS) -> None:
        import pyarrow as pa  # only merging needs it: ``footprints`` runs without
        import pyarrow.parquet as pq

        self.pa, self.gpkg_path, self.crs_wkt = pa, gpkg_path, crs.to_wkt()
        geo = {
            "version": "1.0.0",
            "primary_column": "geometry",
            "columns": {
                "geometry": {
                    "encoding": "WKB",
                    "geometry_types": ["Polygon"],
                    "crs": crs.to_json_dict(),
                }
            },
        }
        schema = pa.schema(
            [("building", pa.string()), ("area_m2", pa.float64()),
             ("confidence", pa.float64()), ("image", pa.string()), ("geometry", pa.binary())],
            metadata={b"geo": json.dumps(geo).encode()},
        )  # fmt: skip
        self.parquet = pq.ParquetWriter(parquet_path, schema)
        self.count = 0
        self.gpkg_created = False

    def write(
        self, geometry: np.ndarray, area_m2: np.ndarray, confidence: np.ndarray, image: list[str]
    ) -> None:
        """Append these buildings to both files (the GeoPackage is created on the first call)."""
        wkb = shapely.to_wkb(geometry)
        columns = [np.full(len(wkb), "yes", object), np.asarray(area_m2, np.float64),
                   np.asarray(confidence, np.float64), np.asarray(image, object)]  # fmt: skip
        append_polygons(self.gpkg_path, wkb, columns, FIELDS, self.crs_wkt, self.gpkg_created)
        self.gpkg_created = True
        arrays = [self.pa.array(c.tolist()) for c in columns] + [self.pa.array(list(wkb))]
        self.parquet.write_table(self.pa.Table.from_arrays(arrays, schema=self.parquet.schema))
        self.count += len(wkb)

    def close(self) -> None:
        """Finish the GeoParquet file (and create an empty GeoPackage if nothing came)."""
        try:
            if not self.gpkg_created:
                self.write(np.array([], object), np.array([]), np.array([]), [])
        finally:
            self.parquet.close()

    def __enter__(self) -> "SurveyLayerWriter":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.parquet.close()  # its file handle; the partial file is removed unpublished
