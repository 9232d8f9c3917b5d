"""Writes the Parquet files tests/parquet_layouts.rs reads: several row groups with legacy INT96
timestamps, unsigned and UUID columns, and unannotated binary; a nested column; binary that is not
text.

    python crates/tabular/tests/data/parquet_layouts.py     # pyarrow 25.0.1 wrote the committed files
"""
import datetime as dt
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).parent
N = 25
cols = {
    "n": pa.array(range(N), pa.int64()),
    # 2000-01-01T00:00:00.0009 + n days - 1 s: INT96 as Spark and Impala write it
    "spark_ts": pa.array([dt.datetime(2000, 1, 1, 0, 0, 0, 900) + dt.timedelta(days=i, seconds=-1) for i in range(N)],
                         pa.timestamp("us")),
    "u": pa.array([2**32 - 1 - i for i in range(N)], pa.uint32()),
    "id": pa.array([uuid.UUID(int=i).bytes for i in range(N)], pa.uuid()),
    "raw": pa.array([f"r{i % 3}".encode() for i in range(N)], pa.binary()),
}
pq.write_table(pa.table(cols), HERE / "row_groups.parquet", row_group_size=10,
               use_deprecated_int96_timestamps=True)
pq.write_table(pa.table({"n": [1, 2], "tags": pa.array([["a"], ["b", "c"]])}), HERE / "nested.parquet")
pq.write_table(pa.table({"n": [1, 2], "blob": pa.array([b"\xff\xfe", b"\x00"], pa.binary())}),
               HERE / "binary.parquet")
