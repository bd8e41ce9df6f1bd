"""A DataFrameModel referenced by a contract as 'tests.contracts.models:Orders'."""

from __future__ import annotations

import pandera.pandas as pa
from pandera.typing import Series


class Orders(pa.DataFrameModel):
    order_id: Series[int] = pa.Field(unique=True)
    amount: Series[float] = pa.Field(ge=0)

    class Config:
        name = "orders"


NOT_A_MODEL = object()
