"""The Athena SQL of the project executed, offline (scripts/athena_on_duckdb.py): every model
compiled for Athena (the session's moto compile) runs on DuckDB, transpiled from the athena
dialect by sqlglot, over the fixture lake's trusted parquet, and each one is compared with the
DuckDB target's own build of the same lake (the session's `dbt build`); the compiled Athena
data tests run the same way and return no rows. A `default__` macro made wrong fails it.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest
from dbt_fixture_lake import REPO_ROOT, DbtRun

from scripts.athena_on_duckdb import (
    AthenaCheck,
    AthenaCompile,
    AthenaSqlError,
    check_athena_sql,
    compile_for_athena,
    open_scratch_database,
    transpile,
)
from scripts.trusted_ddl import check_trusted_ddl

MACROS = REPO_ROOT / "dbt_project" / "macros"


@pytest.fixture(scope="module")
def athena_check(
    athena_compile: AthenaCompile, dbt_run: DbtRun, tmp_path_factory: pytest.TempPathFactory
) -> AthenaCheck:
    scratch = tmp_path_factory.mktemp("athena_on_duckdb") / "athena.duckdb"
    return check_athena_sql(athena_compile, dbt_run.lake / "trusted", dbt_run.duckdb_path, scratch)


@pytest.mark.slow
def test_every_model_built_from_the_athena_sql_matches_the_duckdb_build(
    athena_check: AthenaCheck, athena_compile: AthenaCompile
) -> None:
    assert athena_check.mismatches == [], athena_check.render()
    manifest = athena_compile.manifest()
    models = {uid for uid, n in manifest["nodes"].items() if n["resource_type"] == "model"}
    assert {relation.unique_id for relation in athena_check.run.models} == models
    marts = [r for r in athena_check.run.models if r.schema == "refined"]
    assert len(marts) == 10
    # Every mart a table but the fact, incremental by snapshot date (its first build is a table).
    not_tables = {r.name: r.materialized for r in marts if r.materialized != "table"}
    assert not_tables == {"fct_movie_popularity": "incremental"}
    # Built in dependency order: every model after the models it selects from.
    position = {r.unique_id: i for i, r in enumerate(athena_check.run.models)}
    for uid in models:
        for parent in manifest["nodes"][uid]["depends_on"]["nodes"]:
            if parent.startswith("model."):
                assert position[parent] < position[uid], (parent, uid)


@pytest.mark.slow
def test_the_athena_sql_ran_on_rows_not_on_empty_tables(athena_check: AthenaCheck) -> None:
    con = duckdb.connect(str(athena_check.run.database), read_only=True)
    try:
        for relation in athena_check.run.models:
            count = con.execute(f"select count(*) from {relation.quoted}").fetchone()
            assert count is not None and count[0] > 0, relation.label
        # The Trino semantics carried over: date_trunc of a date stays a date.
        month_start = con.execute(
            "select month_start_date from refined.dim_date where date_day = date '2010-02-17'"
        ).fetchone()
    finally:
        con.close()
    assert month_start == (dt.date(2010, 2, 1),)


@pytest.mark.slow
def test_every_compiled_athena_data_test_runs_and_returns_no_rows(
    athena_check: AthenaCheck, athena_compile: AthenaCompile
) -> None:
    manifest = athena_compile.manifest()
    tests = [uid for uid, n in manifest["nodes"].items() if n["resource_type"] == "test"]
    assert len(tests) > 100
    assert athena_check.run.tests_run == len(tests)
    assert athena_check.run.test_failures == {}


@pytest.mark.slow
def test_the_fixture_lake_reads_through_the_trusted_ddl(
    athena_compile: AthenaCompile, dbt_run: DbtRun
) -> None:
    # The Athena run reads the fixture parquet through the DDL's types: they must agree.
    assert check_trusted_ddl(athena_compile.trusted_tables(), dbt_run.lake / "trusted") == []


def _alter(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not in {path} exactly once"
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.mark.slow
def test_wrong_athena_macros_fail_the_check_naming_the_mart_column_and_test(
    moto_server_url: str, dbt_run: DbtRun, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # A copy of the project whose Athena SQL is wrong in three ways the DuckDB build never sees:
    # divide() without its cast (integer division on Athena: 1/2 is 0), month names abbreviated
    # by default__month_name, and default__is_imdb_title_id looking for person ids.
    root = tmp_path_factory.mktemp("wrong_macros")
    project = root / "project"
    shutil.copytree(
        REPO_ROOT / "dbt_project", project / "dbt_project", ignore=shutil.ignore_patterns("__*")
    )
    for name in ("dbt_project.yml", "profiles.example.yml"):
        shutil.copyfile(REPO_ROOT / name, project / name)
    macros = project / "dbt_project" / "macros"
    _alter(
        macros / "keys.sql",
        "(cast({{ numerator }} as double) / nullif({{ denominator }}, 0))",
        "({{ numerator }} / nullif({{ denominator }}, 0))",
    )
    _alter(macros / "cross_db_functions.sql", "{{ date }}, '%M')", "{{ date }}, '%b')")
    _alter(macros / "cross_db_functions.sql", "'^tt[0-9]+$'", "'^nm[0-9]+$'")
    wrong = compile_for_athena(root / "target", moto_server_url, project_dir=project)

    trusted = dbt_run.lake / "trusted"
    check = check_athena_sql(wrong, trusted, dbt_run.duckdb_path, root / "athena.duckdb")

    assert not check.ok
    problems = {m.relation: "\n".join(m.problems) for m in check.mismatches}
    # Integer division: on this lake every share is 0 or 1, so the type tells it.
    assert (
        "column share_on_tmdb: integer from the Athena SQL, floating in the DuckDB build"
        in (problems["refined.agg_movies__by_release_year"])
    )
    assert "the rows differ, in the columns ['month_name']" in problems["refined.dim_date"]
    assert "['release_month_name']" in problems["refined.rpt_movies_wide"]
    assert set(problems) == {
        "refined.agg_movies__by_release_year",
        "refined.dim_date",
        "refined.rpt_movies_wide",
    }
    # The data tests run on the Athena SQL too: the id test, and the month names' accepted values.
    failing_tests = set(check.run.test_failures)
    id_tests = {uid for uid in failing_tests if ".is_imdb_title_id_" in uid}
    month_tests = {uid for uid in failing_tests if ".accepted_values_dim_date_month_name_" in uid}
    assert id_tests and month_tests and failing_tests == id_tests | month_tests
    report = check.render()
    built = len(check.run.models)  # every model, three of them wrong
    assert f"compared with the DuckDB build: {built - 3} of {built} models identical" in report
    assert f"data tests on the Athena SQL: {len(failing_tests)} of " in report
    # The DuckDB build itself was not touched: its macros are the project's.
    assert "'^tt[0-9]+$'" in (MACROS / "cross_db_functions.sql").read_text(encoding="utf-8")


# -- the transpile step, on its own ------------------------------------------------------------


def _run(sql: str) -> list[tuple]:
    con = open_scratch_database(Path(":memory:"))
    try:
        return con.execute(transpile(sql, "model.movie_lake.example")).fetchall()
    finally:
        con.close()


def test_transpiled_sql_keeps_trino_semantics_where_duckdb_differs() -> None:
    # Integer division truncates; a double operand divides as a double.
    assert _run("select 7 / 2, -7 / 2, cast(7 as double) / 2, 7 / nullif(0, 0)") == [
        (3, -3, 3.5, None)
    ]
    # date_trunc keeps the type of its argument.
    assert _run(
        "select date_trunc('month', date '2024-03-17'), "
        "date_trunc('year', timestamp '2024-03-17 10:30:00')"
    ) == [(dt.date(2024, 3, 1), dt.datetime(2024, 1, 1))]
    # format() is Java's String.format: printf reads the same conversions.
    assert _run("select date(format('%04d-%02d-%02d', 987, 3, 1)), format('%s!', 'a')") == [
        (dt.date(987, 3, 1), "a!")
    ]
    assert _run("select array_join(array_sort(array_distinct(array['b', 'a', 'b'])), ', ')") == [
        ("a, b",)
    ]


def test_glue_names_map_onto_schemas_of_the_scratch_database() -> None:
    sql = transpile(
        'select * from "awsdatacatalog"."refined"."dim_movie" as m '
        'join "awsdatacatalog"."trusted"."imdb_movies" as t on m.imdb_id = t.title_id',
        "model.movie_lake.example",
    )
    assert '"refined"."dim_movie"' in sql and '"trusted"."imdb_movies"' in sql
    assert "awsdatacatalog" not in sql
    with pytest.raises(AthenaSqlError, match='"other"."refined"."x" is not in awsdatacatalog'):
        transpile('select * from "other"."refined"."x"', "model.movie_lake.example")


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("select url_extract_host(url) from t", "does not know the function url_extract_host()"),
        ("select array_sort(a, (x, y) -> 1) from t", "LIST_SORT does not support a comparator"),
        ("select sha512(to_utf8(x)) from t", "only supports SHA256"),
        ("select x from t qualify row_number() over () = 1", "cannot parse it as Athena SQL"),
        ("select format('%x', 255)", "format('%x', ...) uses a conversion printf"),
        ("select date_trunc(t.unit, d) from t", "truncates to a unit that is not a literal"),
    ],
)
def test_a_construct_sqlglot_cannot_carry_over_is_named_never_skipped(sql: str, named: str) -> None:
    with pytest.raises(AthenaSqlError) as error:
        transpile(sql, "model.movie_lake.some_model")
    assert str(error.value).startswith("model.movie_lake.some_model: ")
    assert named in str(error.value)


def test_athena_check_without_a_local_trusted_layer_says_what_to_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from scripts.athena_check import main

    assert main(["--lake", str(tmp_path / "lake")]) == 2
    assert f"no trusted parquet under {tmp_path / 'lake' / 'trusted'}" in caplog.text
    assert "`make demo`" in caplog.text
    assert main(["--lake", "s3://some-bucket"]) == 2
    assert "reads a local lake folder, not s3://some-bucket" in caplog.text


def test_athena_check_builds_on_duckdb_with_the_committed_profile_elsewhere(
    tmp_path: Path,
) -> None:
    import yaml

    from scripts.athena_check import _local_profiles

    duckdb_file = _local_profiles(tmp_path)
    assert duckdb_file == tmp_path / "duckdb_build" / "movie_lake.duckdb"
    written = yaml.safe_load((tmp_path / "duckdb_profiles" / "profiles.yml").read_text("utf-8"))
    committed = yaml.safe_load((REPO_ROOT / "profiles.yml").read_text("utf-8"))
    committed["movie_lake"]["outputs"]["local"]["path"] = str(duckdb_file)
    assert written == committed  # the lake's own refined/ DuckDB file is left alone
