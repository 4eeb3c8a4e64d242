"""Dagster types for the DataFrames that flow between steps, enforced with pandera schemas."""

import dagster as dg
import pandas as pd
import pandera.pandas as pa

from cleanup_pipeline.core.approval import NOT_APPROVED
from cleanup_pipeline.core.decisions import DECISION_DTYPE, TIMESTAMP_COLUMNS
from cleanup_pipeline.core.user_attributes import ID
from cleanup_pipeline.core.vocabulary import Decision

_timestamps = {name: pa.Column("Int64", nullable=True) for name in TIMESTAMP_COLUMNS}

DECISIONS_SCHEMA = pa.DataFrameSchema(
    {
        ID: pa.Column("string", nullable=True),
        "email_masked": pa.Column("string", nullable=True),
        "decision": pa.Column(DECISION_DTYPE),
        "reason": pa.Column("category"),
        **_timestamps,
        "days_inactive": pa.Column("Int64", nullable=True),
        "hold_reason": pa.Column("string", nullable=True),
        NOT_APPROVED: pa.Column(bool),
    },
    strict=True,
)


def _candidates_schema(decision: Decision) -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            ID: pa.Column("string", nullable=False, unique=True),
            "email_masked": pa.Column("string", nullable=False),
            "decision": pa.Column(DECISION_DTYPE, pa.Check.isin([str(decision)])),
            "reason": pa.Column("category"),
            **_timestamps,
            "days_inactive": pa.Column("Int64", nullable=False),
        },
        strict=True,
    )


def _dagster_type(name: str, schema: pa.DataFrameSchema, description: str) -> dg.DagsterType:
    def check(_context: dg.TypeCheckContext, value: object) -> dg.TypeCheck:
        if not isinstance(value, pd.DataFrame):
            return dg.TypeCheck(False, description=f"expected a DataFrame, got {type(value)}")
        try:
            schema.validate(value, lazy=True)
        except pa.errors.SchemaErrors as error:
            return dg.TypeCheck(False, description=str(error.failure_cases.head(20)))
        return dg.TypeCheck(True, metadata={"rows": dg.MetadataValue.int(len(value))})

    return dg.DagsterType(type_check_fn=check, name=name, description=description)


DecisionsFrame = _dagster_type(
    "DecisionsFrame", DECISIONS_SCHEMA, "One row per scanned user with its decision and reason."
)
NotifyCandidates = _dagster_type(
    "NotifyCandidates", _candidates_schema(Decision.NOTIFY), "Users to warn; no email addresses."
)
DeletionCandidates = _dagster_type(
    "DeletionCandidates",
    _candidates_schema(Decision.DELETE),
    "Users to delete; no email addresses.",
)
