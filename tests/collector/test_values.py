"""`/api/v1/values`: a label's values in a window, from the hourly rollup and the raw edges, are the groups a
breakdown of the raw calls finds, the most calls first."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from collector.query import reports, values
from collector.query.filters import Filters
from tests.collector.test_hourly import BASE, WINDOWS, filters_for, loaded  # noqa: F401 (the fixture)
from tests.collector_harness import RunningCollector

OPEN_ENDED = [(BASE + timedelta(minutes=37, seconds=11), None), (BASE + timedelta(hours=5), None), (None, None)]


@pytest.mark.parametrize("group_by", ["service", "team", "model", "feature", "end_user", "provider"])
@pytest.mark.parametrize("window", [*WINDOWS, *OPEN_ENDED], ids=str)
def test_the_values_are_a_breakdowns_groups_most_calls_first(
    loaded: RunningCollector,  # noqa: F811
    window: tuple[datetime | None, datetime | None],
    group_by: str,
) -> None:
    con = loaded.collector.store.reader()
    for equals in ({}, {"status": ["error"]}, {"end_user": ["user-1"]}):
        filters = Filters(start=window[0], end=window[1], equals=dict(equals))
        groups = reports.breakdown(con, filters, group_by, 1000)["groups"]
        expected = [g["group"] for g in sorted(groups, key=lambda g: (-g["requests"], g["group"] is None, g["group"]))]
        assert values.values(con, filters, group_by)["values"] == expected
    assert expected or window == WINDOWS[3]


def test_the_api_answers_and_names_a_bad_parameter(loaded: RunningCollector) -> None:  # noqa: F811
    answer = loaded.http.get("/api/v1/values", params={"group_by": "team", "from": "2025-11-24"})
    assert answer.status_code == 200
    assert set(answer.json()["values"]) == {"search", "support", None}
    for params, parameter in (({"group_by": "colour"}, "group_by"), ({"group_by": "team", "limit": "0"}, "limit")):
        bad = loaded.http.get("/api/v1/values", params=params)
        assert bad.status_code == 400
        assert bad.json()["parameter"] == parameter
