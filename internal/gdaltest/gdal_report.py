"""Read a vector file with GDAL (the one inside the pinned pyogrio wheel) and say what it found.

Usage: python gdal_report.py report PATH
       python gdal_report.py gpkg SRC DST   (convert SRC to a GeoPackage DST, then report DST)

Prints one JSON object: driver, feature count, extent, the geometry type of each feature
counted by OGR's name, each field with its OGR type, and every feature's field values as
strings (date-times in ISO 8601). Any error or warning GDAL raises is a failure (exit 1).
Exit 3 when pyogrio cannot be imported.
"""

import json
import struct
import sys
import warnings

try:
    import pyogrio
    import pyogrio.raw
except ImportError as e:
    print("pyogrio is not installed in %s (%s)" % (sys.executable, e), file=sys.stderr)
    sys.exit(3)

# WKB geometry type codes (ISO adds 1000/2000/3000 for Z/M/ZM) by OGR's name.
WKB_TYPES = {
    1: "POINT",
    2: "LINESTRING",
    3: "POLYGON",
    4: "MULTIPOINT",
    5: "MULTILINESTRING",
    6: "MULTIPOLYGON",
    7: "GEOMETRYCOLLECTION",
}


def geometry_type(wkb):
    order = "<" if wkb[0] == 1 else ">"
    (code,) = struct.unpack(order + "I", wkb[1:5])
    code &= 0x0FFFFFFF  # EWKB flags
    return WKB_TYPES.get(code % 1000, "UNKNOWN(%d)" % code)


def value(v):
    if v is None:
        return None
    if hasattr(v, "item"):  # numpy scalar
        v = v.item()
    return v if isinstance(v, str) else str(v)


def report(path):
    info = pyogrio.read_info(path, force_feature_count=True, force_total_bounds=True)
    meta, _, geometry, columns = pyogrio.raw.read(path, datetime_as_string=True)
    types = {}
    for wkb in geometry:
        if wkb is not None:
            name = geometry_type(wkb)
            types[name] = types.get(name, 0) + 1
    fields = [{"name": n, "type": t[len("OFT"):]} for n, t in zip(meta["fields"], meta["ogr_types"])]
    rows = [
        {f["name"]: value(col[i]) for f, col in zip(fields, columns)}
        for i in range(len(geometry))
    ]
    bounds = [float(b) for b in info["total_bounds"] or ()]  # None, or inverted, without geometries
    return {
        "driver": info["driver"],
        "features": int(info["features"]),
        "featuresRead": len(geometry),
        "extent": bounds if bounds and bounds[0] <= bounds[2] else None,
        "geometryTypes": types,
        "fields": fields,
        "rows": rows,
    }


def to_gpkg(src, dst):
    meta, _, geometry, columns = pyogrio.raw.read(src)
    pyogrio.raw.write(
        dst,
        geometry,
        columns,
        meta["fields"],
        driver="GPKG",
        geometry_type=meta["geometry_type"],
        crs=meta["crs"],
        encoding="UTF-8",
    )


def main(argv):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if len(argv) == 2 and argv[0] == "report":
            out = report(argv[1])
        elif len(argv) == 3 and argv[0] == "gpkg":
            to_gpkg(argv[1], argv[2])
            out = report(argv[2])
        else:
            print(__doc__.strip().splitlines()[2], file=sys.stderr)
            return 2
    if caught:
        for w in caught:
            print("GDAL: %s" % w.message, file=sys.stderr)
        return 1
    out["gdal"] = pyogrio.__gdal_version_string__
    json.dump(out, sys.stdout, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
