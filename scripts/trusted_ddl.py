"""The Athena DDL of the trusted tables, parsed, and checked against the parquet under trusted/.

`dbt run-operation register_trusted_tables` (macros/register_trusted_tables.sql) registers each
trusted table in the Glue catalog with a `CREATE EXTERNAL TABLE`: its columns and their types,
its partition keys and, for the partitioned table, partition projection. Athena reads the
parquet files through that declaration only, so a column whose declared type does not read the
parquet type (`int` over an INT64 column, `string` over a date) fails at query time with
HIVE_BAD_DATA, and a folder layout that does not match the projection reads no rows at all.

    parse_trusted_ddl(sql)            the statements -> {table: TrustedTable}
    check_trusted_ddl(tables, root)   every problem Athena would meet, as sentences ([] = none)

The check reads only parquet footers (pyarrow.parquet.read_schema), file by file, so every file
Athena could open is covered, whatever its size.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

# The trusted/ folders that hold no table: rejected rows, run reports, the run lock
# (docs/lake-contract.md).
NOT_TABLES = ("_rejected", "_runs", "_locks")


@dataclass(frozen=True)
class TrustedTable:
    """One `CREATE EXTERNAL TABLE` of the trusted database."""

    name: str
    columns: tuple[tuple[str, exp.DataType], ...]
    partition_keys: tuple[tuple[str, exp.DataType], ...]
    location: str
    properties: Mapping[str, str] = field(default_factory=dict)

    def hive_types(self) -> list[tuple[str, str]]:
        """The columns with their types as Athena's DDL spells them, normalized."""
        return [(name, hive_type(kind)) for name, kind in self.columns]


def hive_type(kind: exp.DataType) -> str:
    """A type in Hive DDL spelling, lowercase (`int`, `array<string>`): one spelling per type."""
    return kind.sql(dialect="hive").lower()


def parse_trusted_ddl(sql: str) -> dict[str, TrustedTable]:
    """The tables created by the DDL `sql` (sqlglot's athena dialect), by table name."""
    tables: dict[str, TrustedTable] = {}
    for statement in sqlglot.parse(sql, read="athena"):
        if not isinstance(statement, exp.Create) or statement.kind != "TABLE":
            continue
        schema = statement.this
        if not isinstance(schema, exp.Schema):
            raise ValueError(f"CREATE TABLE without a column list: {statement.sql('athena')}")
        table = schema.this.name
        columns = tuple((c.name, c.args["kind"]) for c in schema.expressions)
        partition_keys: tuple[tuple[str, exp.DataType], ...] = ()
        location = ""
        properties: dict[str, str] = {}
        for prop in statement.args["properties"].expressions:
            if isinstance(prop, exp.PartitionedByProperty):
                partition_keys = tuple((c.name, c.args["kind"]) for c in prop.this.expressions)
            elif isinstance(prop, exp.LocationProperty):
                location = prop.this.name
            elif isinstance(prop, exp.FileFormatProperty):
                properties["file_format"] = prop.name.lower()
            elif type(prop) is exp.Property:  # a TBLPROPERTIES entry
                properties[prop.name] = prop.args["value"].name
        tables[table] = TrustedTable(table, columns, partition_keys, location, properties)
    return tables


def athena_type_for(arrow_type: pa.DataType) -> str | None:
    """The Athena (Hive DDL) type that reads a parquet column of `arrow_type`, or None."""
    simple = {
        pa.int8(): "tinyint",
        pa.int16(): "smallint",
        pa.int32(): "int",
        pa.int64(): "bigint",
        pa.float32(): "float",
        pa.float64(): "double",
        pa.bool_(): "boolean",
        pa.string(): "string",
        pa.large_string(): "string",
        pa.binary(): "binary",
        pa.large_binary(): "binary",
        pa.date32(): "date",
    }
    if arrow_type in simple:
        return simple[arrow_type]
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"  # INT96 (Spark's default) and INT64 timestamps alike
    if pa.types.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        element = athena_type_for(arrow_type.value_type)
        return None if element is None else f"array<{element}>"
    if pa.types.is_map(arrow_type):
        key, item = athena_type_for(arrow_type.key_type), athena_type_for(arrow_type.item_type)
        return None if key is None or item is None else f"map<{key},{item}>"
    if pa.types.is_struct(arrow_type):
        fields = [(f.name, athena_type_for(f.type)) for f in arrow_type]
        if any(kind is None for _, kind in fields):
            return None
        return "struct<" + ",".join(f"{name}:{kind}" for name, kind in fields) + ">"
    return None


def _normalized(athena_type: str) -> str:
    return hive_type(exp.DataType.build(athena_type, dialect="hive"))


def _partition_pairs(table_dir: Path, file: Path) -> list[tuple[str, str]] | None:
    """The key=value folders between the table folder and the file; None if one is not k=v."""
    pairs = []
    for part in file.relative_to(table_dir).parts[:-1]:
        key, sep, value = part.partition("=")
        if not sep:
            return None
        pairs.append((key, value))
    return pairs


def _check_projection(table: TrustedTable) -> list[str]:
    """Partition projection: declared for every key, and a template matching the folders."""
    if not table.partition_keys:
        return []
    problems = []
    props = table.properties
    keys = [name for name, _ in table.partition_keys]
    if props.get("projection.enabled") != "true":
        problems.append(f"{table.name}: partitioned by {keys} without partition projection")
        return problems
    template = table.location + "".join(f"{key}=${{{key}}}/" for key in keys)
    if props.get("storage.location.template") != template:
        problems.append(
            f"{table.name}: storage.location.template is "
            f"{props.get('storage.location.template')!r}, the folders need {template!r}"
        )
    for key in keys:
        if props.get(f"projection.{key}.type") != "integer":
            problems.append(f"{table.name}: projection.{key}.type should be 'integer'")
        if not re.fullmatch(r"\d+", props.get(f"projection.{key}.digits", "")):
            problems.append(f"{table.name}: projection.{key}.digits is missing")
        if not re.fullmatch(r"\d+,\d+", props.get(f"projection.{key}.range", "")):
            problems.append(f"{table.name}: projection.{key}.range is missing")
    return problems


def _check_partition_values(table: TrustedTable, pairs: list[tuple[str, str]]) -> list[str]:
    """Each folder value is what the projection generates: zero-padded digits in range."""
    problems = []
    for key, value in pairs:
        digits = table.properties.get(f"projection.{key}.digits", "")
        low, _, high = table.properties.get(f"projection.{key}.range", "").partition(",")
        if not (digits.isdigit() and low.isdigit() and high.isdigit()):
            continue  # reported by _check_projection
        if not (value.isdigit() and len(value) == int(digits)):
            problems.append(
                f"{table.name}: folder {key}={value} is not {digits} digits, so the projection "
                f"(projection.{key}.digits={digits}) never reads it"
            )
        elif not int(low) <= int(value) <= int(high):
            problems.append(
                f"{table.name}: folder {key}={value} lies outside projection.{key}.range "
                f"{low},{high}, so Athena never reads it"
            )
    return problems


def _check_file(table: TrustedTable, table_dir: Path, file: Path) -> list[str]:
    """One parquet file against the table's declaration: folders, column names, types."""
    where = file.relative_to(table_dir.parent)
    keys = [name for name, _ in table.partition_keys]
    pairs = _partition_pairs(table_dir, file)
    if pairs is None or [key for key, _ in pairs] != keys:
        folders = "/".join(file.relative_to(table_dir).parts[:-1]) or "(none)"
        return [
            f"{table.name}: {where} lies in folders {folders}, the DDL partitions by "
            f"{keys or 'nothing'}"
        ]
    problems = _check_partition_values(table, pairs)
    schema = pq.read_schema(file)
    declared = table.hive_types()
    if [name for name, _ in declared] != schema.names:
        problems.append(
            f"{table.name}: the DDL declares the columns {[n for n, _ in declared]}, "
            f"{where} holds {schema.names}"
        )
    parquet_types = {f.name: f.type for f in schema}
    for name, ddl_type in declared:
        if name not in parquet_types:
            continue  # reported above
        needed = athena_type_for(parquet_types[name])
        if needed is None:
            problems.append(
                f"{table.name}.{name}: no Athena type reads the parquet type "
                f"{parquet_types[name]} ({where})"
            )
        elif _normalized(needed) != ddl_type:
            problems.append(
                f"{table.name}.{name}: the DDL declares {ddl_type}, the parquet holds "
                f"{parquet_types[name]} ({where}), which Athena reads as {needed}: queries "
                "would fail with HIVE_BAD_DATA"
            )
    for key in keys:
        if key in parquet_types:
            problems.append(f"{table.name}: partition key {key} is also a column of {where}")
    return problems


def check_trusted_ddl(tables: Mapping[str, TrustedTable], trusted_root: Path) -> list[str]:
    """What Athena would meet reading `trusted_root` (the lake's trusted/ folder) through the
    DDL of `tables`: one sentence per problem, each naming the table and column; [] if none."""
    problems: list[str] = []
    folders = {p.name for p in trusted_root.iterdir() if p.is_dir() and p.name not in NOT_TABLES}
    for missing in sorted(folders - set(tables)):
        problems.append(f"trusted/{missing}/ has no CREATE EXTERNAL TABLE: Athena cannot read it")
    for name, table in tables.items():
        if not table.location.rstrip("/").endswith(f"/trusted/{name}"):
            problems.append(f"{name}: LOCATION {table.location!r} is not .../trusted/{name}/")
        declared = {column for column, _ in table.columns}
        for key, kind in table.partition_keys:
            if key in declared:
                problems.append(f"{name}: partition key {key} is also a declared column")
            if hive_type(kind) != "string":
                problems.append(f"{name}: partition key {key} is {hive_type(kind)}, not string")
        if table.properties.get("file_format") != "parquet":
            problems.append(f"{name}: not STORED AS PARQUET")
        problems.extend(_check_projection(table))
        table_dir = trusted_root / name
        files = sorted(
            p
            for p in table_dir.rglob("*.parquet")
            if not any(part.startswith(("_", ".")) for part in p.relative_to(table_dir).parts)
        )
        if not files:
            problems.append(f"{name}: no parquet file under {table_dir} to check the DDL against")
            continue
        seen: set[str] = set()
        for file in files:
            for problem in _check_file(table, table_dir, file):
                # One line per problem and column, not one per file.
                key = re.sub(r"\(.*?\)|\S+\.parquet", "", problem)
                if key not in seen:
                    seen.add(key)
                    problems.append(problem)
    return problems
