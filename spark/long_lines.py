"""Raw CSV lines longer than the job's limit: never read whole, found by streaming the file.

The job reads each CSV with Hadoop's line reader capped at ``max_line_bytes``
(``mapreduce.input.linerecordreader.line.maxlength``): a longer line is consumed and skipped
without being held in memory, so no task holds more than the limit of one line. Such a line is
then missing from the rows the job read, and the file's line count falls short of its manifest.
Only then does the job call ``find_long_lines``, which streams the file through Hadoop's
``FileSystem`` one chunk at a time (memory bounded by the chunk, whatever the line lengths) and
returns each line over the limit: its line number, its size and its first bytes, which go to
``_rejected`` with their reason.

A line's size counts its bytes with its line ending (``\\n``; the ``\\r`` of a CRLF line is a
byte of the line), the way Hadoop's reader counts them, so both agree on which lines are over.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import DateType, StringType, StructField, StructType

CHUNK_BYTES = 4 * 1024 * 1024
PREVIEW_BYTES = 1000  # how much of an over-long line ``_rejected`` keeps


@dataclass(frozen=True)
class LongLine:
    number: int  # 1-based line number in the file (the header is line 1)
    size: int  # bytes, line ending included
    preview: str  # the line's first bytes (at most PREVIEW_BYTES), decoded


def preview_text(head: bytes) -> str:
    """The first bytes of a line as text, cut back to a whole UTF-8 character, without its
    line ending."""
    for cut in range(4):  # a UTF-8 character has at most 4 bytes: drop a partial one at the end
        try:
            text = head[: len(head) - cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    else:
        text = head.decode("utf-8", errors="replace")
    return text.removesuffix("\n").removesuffix("\r")


def find_long_lines(
    spark: SparkSession, uri: str, max_line_bytes: int, preview_bytes: int = PREVIEW_BYTES
) -> list[LongLine]:
    """Every line of the file at ``uri`` longer than ``max_line_bytes`` (line ending included),
    in file order. Reads the file once, ``CHUNK_BYTES`` at a time."""
    jvm: Any = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr]
    path = jvm.org.apache.hadoop.fs.Path(uri)
    stream = path.getFileSystem(conf).open(path)
    found: list[LongLine] = []
    number, size, head = 1, 0, b""  # the current line: its number, bytes so far, first bytes
    try:
        while True:
            chunk = bytes(stream.readNBytes(CHUNK_BYTES))
            if not chunk:
                break
            start = 0
            while start < len(chunk):
                end = chunk.find(b"\n", start)
                stop = len(chunk) if end < 0 else end + 1
                if len(head) < preview_bytes:
                    head += chunk[start : min(stop, start + preview_bytes - len(head))]
                size += stop - start
                if end < 0:
                    break
                if size > max_line_bytes:
                    found.append(LongLine(number, size, preview_text(head)))
                number, size, head = number + 1, 0, b""
                start = stop
    finally:
        stream.close()
    if size > max_line_bytes:  # a last line without a line ending
        found.append(LongLine(number, size, preview_text(head)))
    return found


def long_line_items(
    spark: SparkSession,
    found: list[tuple[str, dt.date, LongLine]],
    max_line_bytes: int,
) -> DataFrame:
    """An item frame (``raw_line``, ``reason``, ``source_key``, ``source_date``) of the lines
    over the limit, each with its reason; ``found`` holds (lake key, partition date, line)."""
    rows = [
        (
            line.preview,
            f"line {line.number} is {line.size:,} bytes long, over the {max_line_bytes:,}-byte "
            f"limit (raw_line keeps its first {len(line.preview.encode('utf-8')):,} bytes)",
            key,
            date,
        )
        for key, date, line in found
    ]
    schema = StructType(
        [
            StructField("raw_line", StringType()),
            StructField("reason", StringType()),
            StructField("source_key", StringType()),
            StructField("source_date", DateType()),
        ]
    )
    return spark.createDataFrame(rows, schema)
