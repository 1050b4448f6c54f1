"""Check a GeoParquet file against the SDS export it was made from, with
readers no one in this project wrote: pyarrow and DuckDB's spatial extension.

Usage: python check_geoparquet.py EXPORT.xml FILE.parquet [XMIN YMIN XMAX YMAX]

The export is read with xml.etree alone. With a box, it also checks that a
query on the covering column returns exactly the entities whose geometry
intersects the box, and prints how many row groups the row-group statistics
let a reader skip: "row groups: N of M may intersect".
Exits non-zero with a message on the first difference.
"""

import datetime
import json
import math
import os
import sys
import xml.etree.ElementTree as ET

import duckdb
import duckdb_extension_spatial
import pyarrow as pa
import pyarrow.parquet as pq

XS = "{http://www.w3.org/2001/XMLSchema}"


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def read_export(path):
    """Columns [(name, xs type)], key, entities [{name: text}]."""
    root = ET.parse(path).getroot()
    schema = root.find(XS + "schema")
    seq = schema.find(".//" + XS + "sequence")
    cols = [(e.get("name"), e.get("type", "xs:anyType")) for e in seq.findall(XS + "element")]
    key = None
    for k in schema.iter(XS + "unique"):
        f = k.find(XS + "field")
        if f is not None:
            key = f.get("xpath").split(":")[-1]
    names = {c for c, _ in cols}
    entities = []
    for child in root:
        if child.tag == XS + "schema":
            continue
        ent = {}
        for f in child:
            if f.tag in names:
                ent[f.tag] = f.text or ""
        entities.append(ent)
    return cols, key, entities


def xs_double(s):
    s = s.strip()
    return {"INF": math.inf, "+INF": math.inf, "-INF": -math.inf, "NaN": math.nan}.get(s) or float(s)


def xs_epoch_ns(s):
    """Nanoseconds since 1970 of an xs:dateTime (UTC when no zone)."""
    s = s.strip()
    frac = ""
    if s.endswith("Z"):
        s = s[:-1]
    if "." in s:
        s, frac = s.split(".", 1)
    t = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    sec = (t - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)) // datetime.timedelta(seconds=1)
    return sec * 10**9 + int((frac + "000000000")[:9])


def typed(xs, text):
    """The value a typed column must hold for text, or None (null)."""
    try:
        if xs == "xs:long":
            return int(text.strip())
        if xs == "xs:double":
            return xs_double(text)
        if xs == "xs:boolean":
            return {"true": True, "1": True, "false": False, "0": False}[text.strip()]
        if xs == "xs:dateTime":
            return xs_epoch_ns(text)
    except (ValueError, KeyError):
        return None
    return text


def check_metadata(path, cols, key):
    f = pq.ParquetFile(path)
    md = f.metadata
    geo = json.loads(md.metadata[b"geo"])
    if geo.get("version") != "1.1.0":
        fail("geo version %r" % geo.get("version"))
    prim = geo.get("primary_column")
    gcols = geo.get("columns") or {}
    if prim not in gcols:
        fail("primary column %r not among %r" % (prim, list(gcols)))
    for name, c in gcols.items():
        if c.get("encoding") != "WKB" or not isinstance(c.get("geometry_types"), list):
            fail("geo column %s: %r" % (name, c))
        if "crs" in c:
            fail("geo column %s sets a crs: the default (OGC:CRS84) is meant" % name)
        if "bbox" in c and len(c["bbox"]) != 4:
            fail("geo column %s bbox %r" % (name, c["bbox"]))
    cov = gcols[prim].get("covering", {}).get("bbox")
    if not cov or any(cov.get(k) is None for k in ("xmin", "ymin", "xmax", "ymax")):
        fail("no bbox covering: %r" % gcols[prim])
    bbox = cov["xmin"][0]
    # Physical and logical types, from Parquet's own schema.
    want = {"xs:long": ("INT64", "Int(bitWidth=64, isSigned=true)"), "xs:double": ("DOUBLE", None), "xs:boolean": ("BOOLEAN", None),
            "xs:string": ("BYTE_ARRAY", "String"), "xs:dateTime": ("INT64", "Timestamp")}
    schema = f.schema
    leaves = {schema.column(i).path: schema.column(i) for i in range(len(schema))}
    geo_src = set()
    first_geo = next((n for n, t in cols if t == "xs:anyType"), None)
    for name, xs in cols:
        if xs == "xs:anyType":
            col = prim if name == first_geo else name
            if col not in gcols:
                fail("geography column %s is not a geometry column (%r)" % (name, list(gcols)))
            if leaves[col].physical_type != "BYTE_ARRAY":
                fail("%s: %s" % (col, leaves[col].physical_type))
            geo_src.add(col)
            continue
        if name not in leaves:
            fail("column %s missing; key %s" % (name, key))
        c = leaves[name]
        phys, logical = want[xs]
        lt = str(c.logical_type)
        if c.physical_type != phys or (logical and not lt.startswith(logical) and not (xs == "xs:long" and lt == "None")) or (not logical and lt != "None"):
            fail("column %s (%s): %s %s" % (name, xs, c.physical_type, lt))
        if xs == "xs:dateTime" and "isAdjustedToUTC=true" not in lt.replace(" ", ""):
            fail("column %s: %s is not adjusted to UTC" % (name, lt))
    for k in ("xmin", "ymin", "xmax", "ymax"):
        if leaves[bbox + "." + k].physical_type != "DOUBLE":
            fail("covering %s.%s" % (bbox, k))
    return prim, bbox, md.num_rows, md.num_row_groups, gcols


def connect():
    ext = os.path.join(os.path.dirname(duckdb_extension_spatial.__file__),
                       "extensions", "v1.5.5", "spatial.duckdb_extension")
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute("LOAD '%s'" % ext.replace("'", "''"))
    return con


def main():
    xml_path, pq_path = sys.argv[1], sys.argv[2]
    box = [float(v) for v in sys.argv[3:7]] if len(sys.argv) >= 7 else None
    cols, key, entities = read_export(xml_path)
    prim, bbox, rows, groups, gcols = check_metadata(pq_path, cols, key)
    if rows != len(entities):
        fail("%d rows, %d entities" % (rows, len(entities)))
    con = connect()
    con.execute("CREATE TABLE p AS SELECT row_number() OVER () AS rn, * FROM read_parquet(?)", [pq_path])
    if con.execute("SELECT count(*) FROM p").fetchone()[0] != len(entities):
        fail("DuckDB counts another number of rows")

    # Typed values, matched by key (unique in the generated exports), read
    # with pyarrow (DuckDB reads nanosecond timestamps as microseconds).
    types = dict(cols)
    plain = [n for n, t in cols if t != "xs:anyType"]
    table = pq.read_table(pq_path, columns=plain)
    scale = {}
    columns = []
    for n in plain:
        c = table.column(n)
        if types[n] == "xs:dateTime":
            unit = c.type.unit
            scale[n] = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[unit]
            c = c.cast("int64")
        columns.append(c.to_pylist())
    got = {}
    for r in zip(*columns):
        got[r[plain.index(key)]] = r
    for e in entities:
        k = typed(types[key], e[key])
        if k not in got:
            fail("entity %r missing" % k)
        row = got[k]
        for i, n in enumerate(plain):
            want = typed(types[n], e[n]) if n in e else None
            have = row[i]
            if n in scale and have is not None:
                have *= scale[n]
                if want is not None:
                    want -= want % scale[n]  # the digits that fit
            same = want == have or (isinstance(want, float) and isinstance(have, float) and math.isnan(want) and math.isnan(have))
            if not same:
                fail("entity %r column %s: XML %r, parquet %r" % (k, n, e.get(n), have))

    # DuckDB reads the geometry columns as GEOMETRY by the geo metadata.
    # Geometries: each equals the WKT of its column (the primary one, else
    # the Latitude/Longitude point); null only where DuckDB cannot make one.
    geos = [n for n, t in cols if t == "xs:anyType"]
    lat = next((n for n, t in cols if t == "xs:double" and n.lower() == "latitude"), None)
    lon = next((n for n, t in cols if t == "xs:double" and n.lower() == "longitude"), None)
    recs = []
    for e in entities:
        k = e[key]
        for g in geos:
            col = prim if g == geos[0] else g
            w = e.get(g)
            if w is not None and not w.strip():
                w = None
            la = lo = None
            if g == geos[0] and w is None and lat and lon and lat in e and lon in e:
                la, lo = typed("xs:double", e[lat]), typed("xs:double", e[lon])
            recs.append((k, col, w, la, lo))
        if not geos:
            la = lo = None
            if lat and lon and lat in e and lon in e:
                la, lo = typed("xs:double", e[lat]), typed("xs:double", e[lon])
            recs.append((k, prim, None, la, lo))
    x = pa.table({n: [r[i] for r in recs] for i, n in enumerate(["k", "col", "wkt", "lat", "lon"])},
                 schema=pa.schema([("k", pa.string()), ("col", pa.string()), ("wkt", pa.string()), ("lat", pa.float64()), ("lon", pa.float64())]))
    con.register("x_arrow", x)
    con.execute("CREATE TABLE x AS SELECT * FROM x_arrow")
    con.execute("""CREATE TABLE want AS SELECT k, col,
        CASE WHEN wkt IS NOT NULL THEN TRY(ST_GeomFromText(wkt))
             WHEN lat IS NOT NULL AND lon IS NOT NULL AND lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180 THEN ST_Point(lon, lat) END AS g,
        wkt FROM x""")
    bad = 0
    for col in gcols:
        q = """SELECT w.k, w.wkt, ST_AsText(w.g), ST_AsText(p."{c}") FROM want w JOIN p ON p."{key}" = w.k
               WHERE w.col = ? AND (
                 (p."{c}" IS NULL AND (w.g IS NULL OR ST_XMin(w.g) < -180 OR ST_XMax(w.g) > 180 OR ST_YMin(w.g) < -90 OR ST_YMax(w.g) > 90))
                 OR (p."{c}" IS NOT NULL AND w.g IS NOT NULL AND (
                     (ST_IsEmpty(w.g) AND ST_IsEmpty(p."{c}"))
                     OR ST_Equals(w.g, p."{c}")))) IS NOT TRUE""".format(c=col, key=key)
        for r in con.execute(q, [col]).fetchmany(5):
            bad += 1
            print("geometry %s of %r: WKT %r, want %r, parquet %r" % (col, r[0], r[1], r[2], r[3]))
    if bad:
        fail("geometries differ")
    # (Each check asks "IS NOT TRUE": a comparison with a null is null,
    # which NOT would let pass.)
    # A geography value that is no geometry keeps its text: the primary
    # one's under the column's own name, a further one's in <name>_text.
    for g in geos:
        col, tc = (prim, g) if g == geos[0] else (g, g + "_text")
        q = """SELECT w.k, w.wkt, p."{t}" FROM want w JOIN p ON p."{key}" = w.k
               WHERE w.col = ? AND (
                 (p."{c}" IS NULL AND w.wkt IS NOT NULL AND p."{t}" = w.wkt)
                 OR ((p."{c}" IS NOT NULL OR w.wkt IS NULL) AND p."{t}" IS NULL)) IS NOT TRUE""".format(c=col, t=tc, key=key)
        for r in con.execute(q, [col]).fetchmany(5):
            bad += 1
            print("text of %s of %r: WKT %r, parquet %r" % (g, r[0], r[1], r[2]))
    if bad:
        fail("refused geography texts differ")
    n = con.execute('SELECT count(*) FROM p WHERE "%s" IS NOT NULL' % prim).fetchone()[0]

    # The covering column is each geometry's extent; null for null or empty ones.
    q = """SELECT count(*) FROM p, (SELECT "{g}" AS g, "{b}" AS b, rn FROM p) q WHERE p.rn = q.rn AND (
             (q.g IS NULL OR ST_IsEmpty(q.g)) AND q.b IS NULL
             OR q.b.xmin = ST_XMin(q.g) AND q.b.ymin = ST_YMin(q.g) AND q.b.xmax = ST_XMax(q.g) AND q.b.ymax = ST_YMax(q.g)) IS NOT TRUE""".format(g=prim, b=bbox)
    if con.execute(q).fetchone()[0]:
        fail("the covering column differs from ST_Extent of the geometries")

    if box:
        xmin, ymin, xmax, ymax = box
        env = "ST_MakeEnvelope(%r, %r, %r, %r)" % (xmin, ymin, xmax, ymax)
        hit = {r[0] for r in con.execute(
            """SELECT "{key}" FROM read_parquet(?) WHERE {b}.xmin <= {x2} AND {b}.xmax >= {x1} AND {b}.ymin <= {y2} AND {b}.ymax >= {y1}
               AND ST_Intersects("{g}", {env})""".format(
                key=key, b=bbox, g=prim, x1=xmin, y1=ymin, x2=xmax, y2=ymax, env=env), [pq_path]).fetchall()}
        want = {r[0] for r in con.execute(
            "SELECT k FROM want WHERE col = ? AND g IS NOT NULL AND ST_Intersects(g, %s)" % env, [prim]).fetchall()}
        if hit != want:
            fail("bbox query: %d entities, %d intersect (%r)" % (len(hit), len(want), sorted(hit ^ want)[:5]))
        st = con.execute("""SELECT row_group_id, path_in_schema, stats_min_value, stats_max_value FROM parquet_metadata(?)
                            WHERE path_in_schema IN (?, ?, ?, ?)""",
                         [pq_path] + ["%s, %s" % (bbox, k) for k in ("xmin", "ymin", "xmax", "ymax")]).fetchall()
        per = {}
        for rg, path, lo, hi in st:
            per.setdefault(rg, {})[path.split(", ")[-1]] = (float(lo) if lo is not None else None, float(hi) if hi is not None else None)
        may = 0
        for rg in range(groups):
            s = per.get(rg, {})
            if any(s.get(k, (None, None))[0] is None for k in ("xmin", "ymin", "xmax", "ymax")):
                nulls = con.execute("""SELECT stats_null_count, num_values FROM parquet_metadata(?)
                                       WHERE row_group_id = ? AND path_in_schema = ?""", [pq_path, rg, bbox + ", xmin"]).fetchone()
                if nulls is None or nulls[0] != nulls[1]:
                    fail("row group %d has bounding boxes but no statistics of them" % rg)
                continue  # no geometry in the group: a bbox filter skips it
            if s["xmin"][0] <= xmax and s["xmax"][1] >= xmin and s["ymin"][0] <= ymax and s["ymax"][1] >= ymin:
                may += 1
        print("bbox query: %d entities" % len(hit))
        print("row groups: %d of %d may intersect" % (may, groups))
        if may >= groups:
            fail("row-group statistics prune nothing")
    print("ok: %d rows, %d row groups, %d geometries" % (rows, groups, n))


main()
