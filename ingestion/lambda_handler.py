"""AWS Lambda entry point of the daily TMDB run: ``ingestion.lambda_handler.lambda_handler``.

Settings come from the function's environment as everywhere else (``LAKE_URI=s3://...``,
``TMDB_GENRE_ID``, ``TMDB_RATE_LIMIT``, ...). The API key is read from Secrets Manager, from
the secret named by ``TMDB_API_KEY_SECRET``; the secret holds the key itself or JSON
``{"api_key": "..."}``. The run stops on its own, uncommitted, 30 seconds before the Lambda
would be killed, so a timeout never leaves a half-written partition looking complete. An
invocation that finds another run of the same day still holding its partitions stops before
any request with ``LakeBusyError`` (nothing written; the invocation fails and is retried).

The event may override ``run_date`` (``YYYY-MM-DD``), ``max_pages``, ``max_movies`` and
``refresh_details``; the return value is the run's counts.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import Any

from ingestion.lake import open_lake
from ingestion.settings import Secret, SettingsError, load_settings
from ingestion.tmdb_client import redact
from ingestion.tmdb_landing import extract

log = logging.getLogger(__name__)

SECRET_ENV = "TMDB_API_KEY_SECRET"  # noqa: S105 - the name of a variable, not a secret
SAFETY_MARGIN_SECONDS = 30.0


def read_api_key(secret_name: str, client: Any) -> Secret:
    """The TMDB key from Secrets Manager: a plain string, or JSON with an ``api_key`` field."""
    try:
        value = client.get_secret_value(SecretId=secret_name)
    except client.exceptions.ResourceNotFoundException as exc:
        # Secrets Manager answers ResourceNotFound both for a missing secret and for one that
        # exists without a value, as the stack creates it ("can't find the specified secret
        # value for staging label: AWSCURRENT"); only the message tells them apart.
        if "secret value" in str(exc):
            raise SettingsError(
                f"the secret {secret_name!r} ({SECRET_ENV}) has no value yet: put the TMDB API "
                f"key in it, e.g. aws secretsmanager put-secret-value --secret-id {secret_name} "
                '--secret-string "$(cat tmdb-api-key.txt)" (the bare key, or JSON '
                '{"api_key": "..."}; docs/deploy-aws.md, step 3)'
            ) from None
        raise SettingsError(
            f"the secret {secret_name!r} ({SECRET_ENV}) does not exist: create it holding the "
            'TMDB API key, or JSON {"api_key": "..."}'
        ) from None
    text = (value.get("SecretString") or "").strip()
    if text.startswith("{"):
        try:
            text = str(json.loads(text).get("api_key", "")).strip()
        except (ValueError, AttributeError):
            raise SettingsError(
                f'the secret {secret_name!r} looks like JSON but is not {{"api_key": "..."}}'
            ) from None
    if not text:
        raise SettingsError(
            f"the secret {secret_name!r} holds no API key: store the key, or JSON "
            '{"api_key": "..."}'
        )
    return Secret(text)


def handle(
    event: dict[str, Any] | None,
    context: Any,
    *,
    secrets_client: Any | None = None,
    s3_client: Any | None = None,
    session: Any | None = None,
    **extract_options: Any,
) -> dict[str, Any]:
    """The handler with its clients as arguments (tests pass clients bound to moto)."""
    event = event or {}
    secret_name = os.environ.get(SECRET_ENV, "").strip()
    if not secret_name:
        raise SettingsError(
            f"{SECRET_ENV} is not set: set it to the name of the Secrets Manager secret holding "
            "the TMDB API key"
        )
    settings = load_settings(run_date=event.get("run_date"))
    if not settings.lake.is_s3:
        raise SettingsError(
            f"LAKE_URI {settings.lake_uri!r} is not an S3 URI: the Lambda writes to "
            "s3://bucket[/prefix]"
        )
    if secrets_client is None:
        import boto3

        secrets_client = boto3.client("secretsmanager", region_name=settings.aws_region)
    settings = dataclasses.replace(settings, tmdb_api_key=read_api_key(secret_name, secrets_client))
    lake = open_lake(settings, client=s3_client)

    deadline = None
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        remaining = context.get_remaining_time_in_millis() / 1000.0
        deadline = time.monotonic() + max(1.0, remaining - SAFETY_MARGIN_SECONDS)
    stats = extract(
        settings,
        lake,
        session=session,
        max_pages=event.get("max_pages"),
        max_movies=event.get("max_movies"),
        refresh_details=bool(event.get("refresh_details", False)),
        deadline=deadline,
        **extract_options,
    )
    result = stats.as_dict()
    log.info("TMDB run done: %s", json.dumps(result))
    return result


def lambda_handler(event: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    """AWS Lambda's entry point. Errors are re-raised (the invocation fails, and is retried)."""
    logging.getLogger().setLevel(logging.INFO)
    try:
        return handle(event, context)
    except Exception as exc:
        # Belt and braces: the client already redacts; never let a key reach CloudWatch.
        log.error("TMDB run failed: %s: %s", type(exc).__name__, redact(str(exc)))
        raise
