"""Times DuckDB (with its spatial extension) on the benchmark queries, for
the side-by-side figures of BenchmarkVersusDuckDB.

usage: duckdb_bench.py ENTITIES.jsonl QUERIES.json OUT.json

QUERIES.json is {kind: [SQL, ...]}; OUT.json gets {kind: [seconds, ...]},
one latency per query, each timed from execute to the fetched rows.
"""
import json
import os
import sys
import time

import duckdb
import duckdb_extension_spatial


def main():
    entities, queries, out = sys.argv[1:4]
    ext = os.path.join(os.path.dirname(duckdb_extension_spatial.__file__),
                       "extensions", "v1.5.5", "spatial.duckdb_extension")
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute("LOAD '%s'" % ext.replace("'", "''"))
    con.execute("CREATE TABLE e AS SELECT * FROM read_json('%s', format='newline_delimited', columns={"
                "'EntityID': 'VARCHAR', 'Latitude': 'DOUBLE', 'Longitude': 'DOUBLE', 'Open': 'BIGINT', "
                "'IsWheelchairAccessible': 'BOOLEAN'})" % entities.replace("'", "''"))
    con.execute("CREATE TABLE s AS SELECT *, ST_Point(Longitude, Latitude) AS shape FROM e")
    times = {}
    for kind, sqls in json.load(open(queries)).items():
        con.execute(sqls[0]).fetchall()  # warm up
        ts = []
        for sql in sqls:
            start = time.perf_counter()
            con.execute(sql).fetchall()
            ts.append(time.perf_counter() - start)
        times[kind] = ts
    json.dump(times, open(out, "w"))


if __name__ == "__main__":
    main()
