"""One typed settings object for every stage, read once from the environment and CLI flags.

Each field maps to an environment variable (README, "Settings"); a CLI flag of the same name
(``--lake-uri`` for ``LAKE_URI``) overrides it, except the TMDB API key: it comes from
``TMDB_API_KEY``, from the file named by ``TMDB_API_KEY_FILE``, or (the Lambda) from Secrets
Manager, never from a command line that every process listing shows. Values are validated
here, so a bad ``RUN_DATE`` or an unknown lake scheme fails before any work starts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = PACKAGE_ROOT / "data" / "sample"


class SettingsError(ValueError):
    """A setting has a value the pipeline cannot use; the message says which and how to fix it."""


class Secret:
    """A string that never shows itself in a repr, a log line or a settings dump."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class LakeLocation:
    """Where the lake lives: a local folder, or an S3 bucket with an optional key prefix."""

    scheme: str  # "file" or "s3"
    root: str  # the folder path, or the bucket name
    prefix: str = ""  # S3 only: the key prefix under the bucket, without slashes at the ends

    @property
    def is_s3(self) -> bool:
        return self.scheme == "s3"

    def __str__(self) -> str:
        if self.is_s3:
            return f"s3://{self.root}/{self.prefix}".rstrip("/")
        return self.root


def parse_lake_uri(uri: str) -> LakeLocation:
    """Parse ``LAKE_URI``: a folder path (``./lake``, ``/data/lake``, ``file:///x``) or ``s3://``."""
    uri = uri.strip()
    if not uri:
        raise SettingsError(
            "LAKE_URI is empty: set it to a folder (./lake) or s3://bucket[/prefix]"
        )
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        bucket = parsed.netloc
        if not (3 <= len(bucket) <= 63):
            raise SettingsError(
                f"LAKE_URI {uri!r} has no valid bucket name: use s3://bucket[/prefix]"
            )
        return LakeLocation("s3", bucket, parsed.path.strip("/"))
    if parsed.scheme == "file":
        return LakeLocation("file", str(Path(parsed.path).resolve()))
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter is a Windows drive, not a scheme
        raise SettingsError(
            f"LAKE_URI {uri!r} has the unknown scheme {parsed.scheme!r}: "
            "use a folder path (./lake) or s3://bucket[/prefix]"
        )
    return LakeLocation("file", str(Path(uri).expanduser().resolve()))


def parse_run_date(value: str | dt.date | None) -> dt.date:
    if value is None or value == "":
        return dt.datetime.now(dt.UTC).date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise SettingsError(
            f"RUN_DATE {value!r} is not a date: use YYYY-MM-DD, for example 2024-03-01"
        ) from None


def _positive_number(name: str, value: str | float | int, kind: type) -> float | int:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{name} {value!r} is not a number") from None
    if number <= 0:
        raise SettingsError(f"{name} must be positive, got {value!r}")
    return number


@dataclass(frozen=True)
class Settings:
    lake_uri: str = "./lake"
    s3_endpoint_url: str | None = None
    aws_region: str = "us-east-1"
    run_date: dt.date = field(default_factory=lambda: parse_run_date(None))
    movies_csv: Path = SAMPLE_DIR / "movies.csv"
    series_csv: Path = SAMPLE_DIR / "series.csv"
    tmdb_base_url: str = "https://api.themoviedb.org/3"
    tmdb_api_key: Secret | None = None
    tmdb_language: str = "pt-BR"
    tmdb_genre_id: int = 27
    tmdb_rate_limit: float = 35.0
    dbt_target: str = "local"

    @property
    def lake(self) -> LakeLocation:
        return parse_lake_uri(self.lake_uri)

    def dump(self) -> dict[str, str | None]:
        """The settings as printable strings; the API key shows only whether it is set."""
        out: dict[str, str | None] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "tmdb_api_key":
                out[f.name] = "<set>" if value is not None else None
            else:
                out[f.name] = None if value is None else str(value)
        return out

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.dump().items())
        return f"Settings({inner})"


# environment variable -> (field name, parser)
ENV_VARS: dict[str, str] = {
    "LAKE_URI": "lake_uri",
    "S3_ENDPOINT_URL": "s3_endpoint_url",
    "AWS_REGION": "aws_region",
    "RUN_DATE": "run_date",
    "MOVIES_CSV": "movies_csv",
    "SERIES_CSV": "series_csv",
    "TMDB_BASE_URL": "tmdb_base_url",
    "TMDB_API_KEY": "tmdb_api_key",
    "TMDB_API_KEY_FILE": "tmdb_api_key_file",
    "TMDB_LANGUAGE": "tmdb_language",
    "TMDB_GENRE_ID": "tmdb_genre_id",
    "TMDB_RATE_LIMIT": "tmdb_rate_limit",
    "DBT_TARGET": "dbt_target",
}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build the settings: defaults, then the environment, then ``overrides`` (CLI flags).

    ``overrides`` use field names (``lake_uri=...``); ``None`` means "not given".
    """
    environ = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    for var, name in ENV_VARS.items():
        if environ.get(var, "") != "":
            raw[name] = environ[var]
    raw.update({k: v for k, v in overrides.items() if v is not None})

    unknown = set(raw) - {f.name for f in dataclasses.fields(Settings)} - {"tmdb_api_key_file"}
    if unknown:
        raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")

    values: dict[str, object] = {}
    if "lake_uri" in raw:
        parse_lake_uri(str(raw["lake_uri"]))  # validate early
        values["lake_uri"] = str(raw["lake_uri"])
    if "s3_endpoint_url" in raw:
        endpoint = str(raw["s3_endpoint_url"])
        if urlparse(endpoint).scheme not in ("http", "https"):
            raise SettingsError(
                f"S3_ENDPOINT_URL {endpoint!r} must be an http(s) URL, e.g. http://127.0.0.1:5000"
            )
        values["s3_endpoint_url"] = endpoint
    for name in ("aws_region", "tmdb_language", "dbt_target"):
        if name in raw:
            values[name] = str(raw[name])
    if "run_date" in raw:
        values["run_date"] = parse_run_date(raw["run_date"])  # type: ignore[arg-type]
    for name in ("movies_csv", "series_csv"):
        if name in raw:
            values[name] = Path(str(raw[name])).expanduser()
    if "tmdb_base_url" in raw:
        base = str(raw["tmdb_base_url"]).rstrip("/")
        if urlparse(base).scheme not in ("http", "https"):
            raise SettingsError(f"TMDB_BASE_URL {base!r} must be an http(s) URL")
        values["tmdb_base_url"] = base
    if "tmdb_genre_id" in raw:
        values["tmdb_genre_id"] = int(_positive_number("TMDB_GENRE_ID", raw["tmdb_genre_id"], int))
    if "tmdb_rate_limit" in raw:
        values["tmdb_rate_limit"] = float(
            _positive_number("TMDB_RATE_LIMIT", raw["tmdb_rate_limit"], float)
        )
    if values.get("dbt_target", "local") not in ("local", "athena"):
        raise SettingsError(f"DBT_TARGET {values['dbt_target']!r} is not one of: local, athena")

    key = raw.get("tmdb_api_key")
    if isinstance(key, Secret):
        values["tmdb_api_key"] = key
    elif key:
        values["tmdb_api_key"] = Secret(str(key).strip())
    elif raw.get("tmdb_api_key_file"):
        path = Path(str(raw["tmdb_api_key_file"])).expanduser()
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(
                f"TMDB_API_KEY_FILE {str(path)!r} cannot be read ({exc.strerror}): "
                "point it at a file holding only the key"
            ) from None
        if not text:
            raise SettingsError(f"TMDB_API_KEY_FILE {str(path)!r} is empty")
        values["tmdb_api_key"] = Secret(text)
    return Settings(**values)  # type: ignore[arg-type]
