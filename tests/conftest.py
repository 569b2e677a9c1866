"""Shared fixtures: the same pandas input as an Ibis table on DuckDB or on PySpark (local mode)."""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid

import pandas as pd
import pytest

from crmlab.io.engine import localize_frame


@pytest.fixture(scope="session")
def spark_con():
    """An Ibis connection to PySpark in local mode (one JVM for the whole test session)."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime: .ci/run installs one")
    import ibis
    from pyspark.sql import SparkSession
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # stay on loopback
    warehouse = tempfile.mkdtemp(prefix="crmlab-spark-")
    spark = (SparkSession.builder.master("local[2]").appName("crmlab-tests")
             .config("spark.driver.host", "127.0.0.1")
             .config("spark.sql.warehouse.dir", warehouse)
             # Naive times in the engine are the shop's wall-clock times; UTC keeps Spark from shifting them.
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.shuffle.partitions", "4")
             .config("spark.ui.enabled", "false")
             .config("spark.sql.execution.arrow.pyspark.enabled", "true")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    yield ibis.pyspark.connect(spark)
    spark.stop()
    shutil.rmtree(warehouse, ignore_errors=True)


def to_spark(con, df: pd.DataFrame, tz: str = "Asia/Seoul"):
    """Register a pandas frame as a Spark temporary view and return it as an Ibis table.

    The frame goes to Spark as one Arrow table (``pa.Table.from_pandas``, chunks combined), so
    nulls stay nulls: handing pandas to ``createDataFrame`` fails Arrow's path for frames built
    with ``pd.concat`` (chunked columns) and pyspark's fallback then turns nulls into NaN in
    float columns and into the text 'NaN' in object columns. Naive times (the engine's local
    wall-clock times) become Spark TIMESTAMPs read in the session zone (UTC), as before."""
    import pyarrow as pa
    name = f"t_{uuid.uuid4().hex[:12]}"
    frame = localize_frame(df, tz).reset_index(drop=True)
    table = pa.Table.from_pandas(frame, preserve_index=False).combine_chunks()
    sdf = con._session.createDataFrame(table)
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampNTZType
    for field in sdf.schema.fields:
        if isinstance(field.dataType, TimestampNTZType):
            sdf = sdf.withColumn(field.name, F.col(field.name).cast("timestamp"))
    sdf.createOrReplaceTempView(name)
    return con.table(name)


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def backend(request):
    """A function turning a pandas frame into an Ibis table on the parameterised backend."""
    if request.param == "duckdb":
        import ibis
        return lambda df, tz="Asia/Seoul": ibis.memtable(localize_frame(df, tz))
    con = request.getfixturevalue("spark_con")
    return lambda df, tz="Asia/Seoul": to_spark(con, df, tz)


def assert_same_frame(a: pd.DataFrame, b: pd.DataFrame, sort_by=None, rtol=1e-9):
    """Two results are the same up to row order and integer/float width."""
    assert list(a.columns) == list(b.columns), (list(a.columns), list(b.columns))
    assert len(a) == len(b), (len(a), len(b))
    if sort_by:
        a = a.sort_values(sort_by).reset_index(drop=True)
        b = b.sort_values(sort_by).reset_index(drop=True)
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True),
                                  check_dtype=False, rtol=rtol, check_index_type=False)
