from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ingestion.cli import main
from ingestion.exit_codes import ExitCode
from ingestion.settings import SettingsError, load_settings, parse_lake_uri


def test_defaults_match_the_architecture_table() -> None:
    s = load_settings({})
    assert s.lake_uri == "./lake" and s.aws_region == "us-east-1"
    assert s.tmdb_language == "pt-BR" and s.tmdb_genre_id == 27 and s.tmdb_rate_limit == 35.0
    assert s.dbt_target == "local" and s.tmdb_api_key is None
    assert s.run_date == dt.datetime.now(dt.UTC).date()
    assert s.movies_csv.name == "movies.csv" and s.movies_csv.is_file()


def test_flags_override_the_environment() -> None:
    s = load_settings({"RUN_DATE": "2024-01-01", "TMDB_GENRE_ID": "35"}, run_date="2024-02-02")
    assert s.run_date == dt.date(2024, 2, 2) and s.tmdb_genre_id == 35


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RUN_DATE": "2024-13-01"}, "RUN_DATE '2024-13-01' is not a date: use YYYY-MM-DD"),
        ({"LAKE_URI": "gs://bucket/x"}, "unknown scheme 'gs'"),
        ({"LAKE_URI": "s3://"}, "no valid bucket name"),
        ({"TMDB_RATE_LIMIT": "-1"}, "TMDB_RATE_LIMIT must be positive"),
        ({"TMDB_GENRE_ID": "horror"}, "TMDB_GENRE_ID 'horror' is not a number"),
        ({"DBT_TARGET": "snowflake"}, "DBT_TARGET 'snowflake' is not one of"),
        ({"S3_ENDPOINT_URL": "127.0.0.1:5000"}, "must be an http"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(env: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        load_settings(env)


def test_lake_uri_forms() -> None:
    assert parse_lake_uri("s3://my-lake/env/dev/").prefix == "env/dev"
    assert parse_lake_uri("s3://my-lake").is_s3
    assert not parse_lake_uri("./lake").is_s3
    assert parse_lake_uri("file:///tmp/lake").root == "/tmp/lake"


def test_the_key_never_shows_in_repr_dump_or_cli(
    tmp_path: Path,
    capsys,
    monkeypatch,  # noqa: ANN001
) -> None:
    key = "k3y-that-must-not-leak-0123456789"
    s = load_settings({"TMDB_API_KEY": key})
    assert s.tmdb_api_key is not None and s.tmdb_api_key.reveal() == key
    assert key not in repr(s) and key not in str(s.dump()) and key not in str(s.tmdb_api_key)
    key_file = tmp_path / "key"
    key_file.write_text(key + "\n")
    assert load_settings({"TMDB_API_KEY_FILE": str(key_file)}).tmdb_api_key.reveal() == key
    monkeypatch.setenv("TMDB_API_KEY", key)
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert key not in out and '"tmdb_api_key": "<set>"' in out


@pytest.mark.parametrize("form", ["separate", "equals"])
def test_the_key_flag_is_refused_with_how_to_pass_the_key(capsys, form: str) -> None:  # noqa: ANN001
    key = "k3y-on-the-command-line-0123456789"
    args = ["--tmdb-api-key", key] if form == "separate" else [f"--tmdb-api-key={key}"]
    with pytest.raises(SystemExit) as stopped:
        main(["settings", *args])
    assert stopped.value.code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "--tmdb-api-key is not accepted" in err
    assert "Set TMDB_API_KEY in the environment, or TMDB_API_KEY_FILE" in err
    assert key not in err
    assert "--tmdb-api-key " not in main_help(capsys)  # no longer offered


def main_help(capsys) -> str:  # noqa: ANN001
    with pytest.raises(SystemExit):
        main(["settings", "--help"])
    return capsys.readouterr().out


def test_unreadable_key_file_names_the_file_not_the_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="TMDB_API_KEY_FILE .*missing.*cannot be read"):
        load_settings({"TMDB_API_KEY_FILE": str(tmp_path / "missing")})


def test_cli_reports_a_bad_setting_and_exits_non_zero(caplog) -> None:  # noqa: ANN001
    assert main(["settings", "--run-date", "yesterday"]) == ExitCode.SETTINGS
    assert "RUN_DATE 'yesterday' is not a date" in caplog.text


def test_require_tmdb_key_stops_with_instructions(caplog, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("TMDB_API_KEY", raising=False)
    monkeypatch.delenv("TMDB_API_KEY_FILE", raising=False)
    assert main(["settings", "--require-tmdb-key"]) == ExitCode.SETTINGS
    assert "set TMDB_API_KEY, or TMDB_API_KEY_FILE" in caplog.text
    monkeypatch.setenv("TMDB_API_KEY", "x")
    assert main(["settings", "--require-tmdb-key"]) == 0
