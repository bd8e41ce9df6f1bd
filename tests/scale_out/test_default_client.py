"""A default Dask client in the flow's process, and the address knot is asked to use.

prefect-dask's ``DaskTaskRunner`` connects to the cluster of the process's default
client whenever one exists, whatever address it was given; knot refuses such a run
instead of scoring on a cluster nobody asked for.
"""

from __future__ import annotations

import pytest

from knot_prefect.errors import ConfigurationError
from knot_prefect.flows.dask_runner import LOCAL_CLUSTER, dask_runner_for

ELSEWHERE = "tcp://127.0.0.1:1"  # nothing listens there; no test connects to it


def test_prefect_dask_would_run_on_the_default_clients_cluster(dask_scheduler: str) -> None:
    from distributed import Client
    from prefect_dask import DaskTaskRunner

    with Client(dask_scheduler):
        runner = DaskTaskRunner(address=ELSEWHERE)
        try:
            assert runner.client.scheduler.address == dask_scheduler
        finally:
            runner.client.close()


def test_an_address_other_than_the_default_clients_is_refused(dask_scheduler: str) -> None:
    from distributed import Client

    with Client(dask_scheduler):
        with pytest.raises(ConfigurationError) as elsewhere:
            dask_runner_for(ELSEWHERE)
        assert dask_scheduler in str(elsewhere.value)
        assert ELSEWHERE in str(elsewhere.value)
        assert "set_as_default=False" in str(elsewhere.value)
        with pytest.raises(ConfigurationError, match="temporary local cluster"):
            dask_runner_for(LOCAL_CLUSTER)
        # The default client's own scheduler, however it is spelled, is fine.
        assert dask_runner_for(dask_scheduler) is not None
        assert dask_runner_for(dask_scheduler.replace("127.0.0.1", "localhost")) is not None


def test_a_client_that_is_not_the_default_changes_nothing(dask_scheduler: str) -> None:
    from distributed import Client

    with Client(dask_scheduler, set_as_default=False):
        assert dask_runner_for(ELSEWHERE) is not None
