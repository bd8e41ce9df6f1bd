"""``knot serve --spec SPEC`` (or ``--model NAME@ALIAS`` with ``--features STORE`` or
``--source TABLE --key K``): predictions behind an HTTP API."""

from __future__ import annotations

from typing import Any

import typer


def serve(
    model: str = typer.Option(None, "--model", help="Registered model and alias, NAME@ALIAS."),
    features: str = typer.Option(
        None, "--features", help="FeastFeatureStore block document, or a Feast repo folder."
    ),
    spec: str = typer.Option(
        None, "--spec",
        help="Model spec (document name or YAML file) giving the model, features and tracking.",
    ),
    source: str = typer.Option(
        None, "--source",
        help="Table (or query) whose latest row per key holds the inputs, without Feast.",
    ),
    warehouse: str = typer.Option(
        None, "--warehouse", help="Warehouse block document holding --source."
    ),
    key: list[str] = typer.Option(
        None, "--key", help="Entity key column of --source (repeatable)."
    ),
    timestamp: str = typer.Option(
        None, "--timestamp", help="Event-time column of --source: its latest row is read."
    ),
    contract: str = typer.Option(
        None, "--contract", help="DataContract block document, or a Pandera YAML file."
    ),
    tracking: str = typer.Option(
        None, "--tracking",
        help="MLflowTracking block document, or a tracking URI (default: embedded store).",
    ),
    feature_service: str = typer.Option(
        None, "--feature-service",
        help="Feast feature service to read (default: match the model's input names).",
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(
        8000, "--port", envvar="KNOT_SERVE_PORT", help="Port to listen on (or KNOT_SERVE_PORT)."
    ),
    max_feature_age: float = typer.Option(
        None, "--max-feature-age", help="Oldest acceptable feature value, in seconds."
    ),
    stale: str = typer.Option(
        "error", "--stale", help="Stale features: 'error' (HTTP 409) or 'flag' (answer, flagged)."
    ),
    refresh: float = typer.Option(30.0, "--refresh", help="Seconds between alias checks."),
    max_batch: int = typer.Option(1000, "--max-batch", help="Most entities per request."),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
    shadow: str = typer.Option(
        None, "--shadow",
        help="Also score with the model holding this alias (e.g. challenger), off the "
        "response path; both scores go to --shadow-table.",
    ),
    shadow_table: str = typer.Option(
        "shadow_scores", "--shadow-table",
        help="Warehouse table (of --warehouse) the shadow comparison is appended to."),
    shadow_sample: float = typer.Option(
        1.0, "--shadow-sample", help="Fraction of requests shadowed, 0 to 1."),
) -> None:
    """Serve predictions of the model holding an alias, fed with its features by key."""
    import logging.config

    import uvicorn
    from pydantic import ValidationError

    from knot_prefect.cli._output import fail
    from knot_prefect.errors import KnotError
    from knot_prefect.serving import ServeSettings, build_app
    from knot_prefect.serving.logs import log_config

    config = log_config(log_level)
    logging.config.dictConfig(config)
    try:
        options: dict[str, Any] = dict(
            contract=contract, tracking=tracking, feature_service=feature_service,
            max_feature_age=max_feature_age, stale=stale, refresh=refresh, max_batch=max_batch,
            source=source, warehouse=warehouse, key_columns=key or None,
            timestamp_column=timestamp, shadow=shadow, shadow_table=shadow_table,
            shadow_sample=shadow_sample,
        )
        if spec:
            settings = ServeSettings.from_spec(spec, model=model, features=features, **options)
        elif not model or not (features or source):
            fail("Pass --spec MODEL_SPEC, or --model NAME@ALIAS with --features STORE or "
                 "--source TABLE --key COLUMN.")
        else:
            settings = ServeSettings(model=model, features=features, **options)
        app = build_app(settings)
    except ValidationError as exc:
        fail("; ".join(f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}"
                       for e in exc.errors()))
    except KnotError as exc:
        fail(str(exc))
    uvicorn.run(app, host=host, port=port, log_config=config, access_log=False,
                log_level=log_level.lower())
