"""``knot deploy``: deploy a flow template or flow file to a work pool with a profile."""

from __future__ import annotations

import typer

from knot_prefect.cli._output import fail


def deploy(
    flow: str = typer.Argument(
        ..., help="A knot flow template name, or path/to/file.py:function."
    ),
    pool: str = typer.Option(..., "--pool", help="Name of an existing work pool."),
    profile: str | None = typer.Option(
        None, "--profile", help="Name of a saved ComputeProfile block document."
    ),
    schedule: str | None = typer.Option(
        None, "--schedule", help="Cron expression, e.g. '0 6 * * *'."
    ),
    name: str | None = typer.Option(
        None, "--name", help="Deployment name; the pool's name when omitted."
    ),
    param: list[str] = typer.Option(
        [], "--param", help="Default parameter as KEY=VALUE (VALUE is JSON, or a string)."
    ),
    on_promotion: list[str] = typer.Option(
        [], "--on-promotion", metavar="MODEL@ALIAS",
        help="Run the deployment whenever this model alias moves (promotion or rollback); "
        "the flow's model_name, alias and model_version parameters get the event's "
        "values. Repeatable.",
    ),
    on_drift: list[str] = typer.Option(
        [], "--on-drift", metavar="MODEL@ALIAS",
        help="Run the deployment (e.g. retraining) after repeated drift of this model "
        "alias: --consecutive drifted monitoring runs within --within. Repeatable.",
    ),
    consecutive: int = typer.Option(
        3, "--consecutive", help="With --on-drift: drifted monitoring runs it takes."),
    within: str = typer.Option(
        "1d", "--within", help="With --on-drift: the window those runs fall in, e.g. '1d'."),
    severity: str = typer.Option(
        "warning", "--severity",
        help="With --on-drift: 'warning' counts every drifted run, 'error' only runs whose "
        "drift crossed the error threshold."),
    cooldown: str | None = typer.Option(
        None, "--cooldown",
        help="With --on-drift: after a run it started ends, pause the trigger this long, "
        "e.g. '12h'."),
    watch: str | None = typer.Option(
        None, "--watch", metavar="MODEL@ALIAS",
        help="For monitoring_flow: watch this alias after each promotion and roll it back "
        "when error-level drift fails a run within --window of the promotion."),
    window: str = typer.Option(
        "1d", "--window", help="With --watch: how long after a promotion, e.g. '2h'."),
) -> None:
    """Deploy FLOW to a work pool, with the job variables of a compute profile.

    With --on-promotion the deployment also runs whenever the alias moves, e.g.
    batch inference re-scores when the champion changes. With --on-drift it runs after
    repeated drift, e.g. retraining after three drifted monitoring runs in a day.
    With --watch a monitoring deployment rolls a new champion back when it fails.
    """
    import json

    from knot_prefect.deploy.deployment import DriftRetraining, deploy_flow
    from knot_prefect.errors import ConfigurationError

    parameters: dict[str, object] = {}
    for item in param:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            fail(f"--param {item!r} is not KEY=VALUE.")
        try:
            parameters[key] = json.loads(raw)
        except json.JSONDecodeError:
            parameters[key] = raw
    if watch is not None:
        from knot_prefect.deploy.triggers import PromotionTarget, watch_parameters

        try:
            parameters.update(watch_parameters(PromotionTarget.parse(watch), window))
        except ConfigurationError as exc:
            fail(str(exc))
    try:
        deployment_id = deploy_flow(
            flow, pool, profile=profile, schedule=schedule, name=name,
            parameters=parameters or None, on_promotion=on_promotion or None,
            on_drift=on_drift or None,
            drift=DriftRetraining(consecutive, within, severity, cooldown),
        )
    except (ConfigurationError, ValueError) as exc:
        fail(str(exc))
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment(deployment_id)
        flow_name = client.read_flow(deployment.flow_id).name
    typer.echo(f"deployed {flow_name}/{deployment.name} ({deployment_id}) to work pool {pool!r}")
    for target in on_promotion:
        typer.echo(f"runs when {target.strip()} moves (a promotion or a rollback)")
    for target in on_drift:
        pause = f", then pauses for {cooldown}" if cooldown else ""
        typer.echo(f"runs after {consecutive} drifted monitoring run(s) of {target.strip()} "
                   f"within {within} (severity {severity} or worse){pause}")
    if watch is not None:
        typer.echo(f"rolls {watch.strip()} back when a run fails within {window} of a "
                   "promotion")
    typer.echo(f"run it: prefect deployment run '{flow_name}/{deployment.name}'")
