"""Writes arrow_types.parquet: one column per Arrow type a Parquet file from pandas, polars or
pyarrow commonly holds, with a null in each, for tests/parquet_types.rs.

    python crates/tabular/tests/data/arrow_types.py     # pyarrow 25.0.1 wrote the committed file
"""
import datetime as dt
import decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

N = 24  # above the 20 rows below which numbers are never called id-like
ints = [i % 5 if i != 3 else None for i in range(N)]
cols = {
    "i8": pa.array(ints, pa.int8()),
    "i16": pa.array([None if v is None else -v for v in ints], pa.int16()),
    "i32": pa.array(ints, pa.int32()),
    "i64": pa.array([None if v is None else v * 10_000_000_000 for v in ints], pa.int64()),
    "u8": pa.array(ints, pa.uint8()),
    "u16": pa.array(ints, pa.uint16()),
    "u32": pa.array(ints, pa.uint32()),
    "u64": pa.array([None if v is None else 2**63 + v for v in ints], pa.uint64()),
    "f16": pa.array([None if v is None else np.float16(v + 0.5) for v in ints], pa.float16()),
    "f32": pa.array([None if v is None else v + 0.25 for v in ints], pa.float32()),
    "f64": pa.array([None if v is None else v / 8 for v in ints], pa.float64()),
    "dec": pa.array([None if v is None else decimal.Decimal(v) / 100 - decimal.Decimal("1.5") for v in ints],
                    pa.decimal128(9, 3)),
    "flag": pa.array([None if v is None else v % 2 == 0 for v in ints], pa.bool_()),
    "day": pa.array([None if v is None else dt.date(2024, 2, 28) + dt.timedelta(days=v) for v in ints],
                    pa.date32()),
    "ts_s": pa.array([None if v is None else dt.datetime(1969, 12, 31, 23, 59, 58) + dt.timedelta(seconds=v)
                      for v in ints], pa.timestamp("s")),
    "ts_us_tz": pa.array([None if v is None else dt.datetime(2024, 5, 1, 12, 0, 0, 1500, tzinfo=dt.timezone.utc)
                          + dt.timedelta(hours=v) for v in ints], pa.timestamp("us", tz="Europe/Paris")),
    "ts_ns": pa.array([None if v is None else np.datetime64("1969-12-31T23:59:59.999999999") + np.timedelta64(v, "s")
                       for v in ints], pa.timestamp("ns")),
    "s": pa.array([None if v is None else f"cat{v}" for v in ints], pa.string()),
    "ls": pa.array([None if v is None else f"cat{v}" for v in ints], pa.large_string()),
    "sv": pa.array([None if v is None else f"cat{v}" for v in ints], pa.string_view()),
    "dict": pa.array([None if v is None else f"cat{v}" for v in ints]).dictionary_encode(),
    "nums_as_text": pa.array([None if v is None else str(v * 2) for v in ints], pa.string()),
}
pq.write_table(pa.table(cols), Path(__file__).with_name("arrow_types.parquet"))
