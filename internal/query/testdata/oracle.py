"""The oracle of the query tests: DuckDB with its spatial extension answers
SQL over a data source written as JSON lines, so that the expected answers
come from a query engine no one in this project wrote.

usage: oracle.py ENTITIES.jsonl COLUMNS.json QUERIES.json OUT.json

COLUMNS.json is [[name, duckdb type], ...]; QUERIES.json a list of
{"where": SQL, "order": SQL, "dist": SQL or null, "select": [SQL], "limit": n, "offset": n}
(order and select may use __d, the distance);
OUT.json gets, per query, {"count": n, "rows": [[id, [values], dist], ...]}.
Timestamps come back as epoch milliseconds.
"""
import json
import os
import sys

import duckdb
import duckdb_extension_spatial


def main():
    entities, columns, queries, out = sys.argv[1:5]
    ext = os.path.join(os.path.dirname(duckdb_extension_spatial.__file__),
                       "extensions", "v1.5.5", "spatial.duckdb_extension")
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute("LOAD '%s'" % ext.replace("'", "''"))
    cols = json.load(open(columns))
    spec = ", ".join("'%s': '%s'" % (n, t) for n, t in cols)
    con.execute("CREATE TABLE e AS SELECT * FROM read_json('%s', format='newline_delimited', columns={%s})"
                % (entities.replace("'", "''"), spec))
    # The shape intersects tests: the geography where there is a valid one, else the point.
    geo = [n for n, t in cols if n == "Geom"]
    shape = "ST_Point(Longitude, Latitude)"
    if geo:
        shape = "COALESCE(TRY(ST_GeomFromText(Geom)), ST_Point(Longitude, Latitude))"
    con.execute("CREATE TABLE s AS SELECT *, %s AS shape FROM e" % shape)
    answers = []
    for q in json.load(open(queries)):
        dist = q["dist"] or "NULL"
        sel = "".join(", %s AS v%d" % (x, i) for i, x in enumerate(q["select"]))
        base = "SELECT *, %s AS __d FROM s WHERE %s" % (dist, q["where"])
        count = con.execute("SELECT count(*) FROM (%s)" % base).fetchone()[0]
        rows = con.execute("SELECT EntityID, __d%s FROM (%s) ORDER BY %s LIMIT %d OFFSET %d"
                           % (sel, base, q["order"], q["limit"], q["offset"])).fetchall()
        answers.append({"count": count, "rows": [[r[0], list(r[2:]), r[1]] for r in rows]})
    json.dump(answers, open(out, "w"))


if __name__ == "__main__":
    main()
