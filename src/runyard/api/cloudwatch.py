"""The CloudWatch provider: App Runner's metrics (namespace AWS/AppRunner) through botocore's `cloudwatch` model.

Only the read side is offered: GetMetricStatistics, GetMetricData (MetricStat queries) and ListMetrics. Every other
CloudWatch operation answers InvalidAction naming it. Another namespace has no data here, as in CloudWatch.
"""

from __future__ import annotations

from typing import Any

from runyard.api.context import RequestContext
from runyard.api.pagination import decode_token, encode_token, paginate
from runyard.errors import InvalidInput, NotSupported
from runyard.observe import metrics as m

Wire = dict[str, Any]
LIST_PAGE = 500  # ListMetrics answers up to 500 metrics a call, as CloudWatch
DEFAULT_MAX_DATAPOINTS = 100_800


def _dimensions_in(items: list[Wire] | None) -> m.Dimensions:
    return m.dimensions((item["Name"], item["Value"]) for item in items or [])


def _dimensions_out(dims: m.Dimensions) -> list[Wire]:
    return [{"Name": name, "Value": value} for name, value in dims]


def _metric_in(wire: Wire) -> m.MetricId:
    if "Namespace" not in wire or "MetricName" not in wire:
        raise m.InvalidParameterValue("A MetricStat's Metric needs a Namespace and a MetricName.")
    return m.MetricId(wire["Namespace"], wire["MetricName"], _dimensions_in(wire.get("Dimensions")))


class CloudWatchProvider:
    """Implements the read operations of botocore's `cloudwatch` 2010-08-01 over Runyard's stored metrics."""

    def __init__(self, metrics: m.Metrics) -> None:
        self.metrics = metrics

    def get_metric_statistics(self, ctx: RequestContext, params: Wire) -> Wire:
        statistics = params.get("Statistics") or []
        extended = params.get("ExtendedStatistics") or []
        points = self.metrics.statistics(
            ctx.scope,
            m.MetricId(params["Namespace"], params["MetricName"], _dimensions_in(params.get("Dimensions"))),
            start=params["StartTime"],
            end=params["EndTime"],
            period=params["Period"],
            statistics=statistics,
            extended=extended,
            unit=params.get("Unit"),
        )
        datapoints = [
            {
                "Timestamp": point.timestamp,
                **{name: point.aggregate.statistic(name) for name in statistics},
                "Unit": point.unit,
            }
            for point in points
        ]
        return {"Label": params["MetricName"], "Datapoints": datapoints}

    def get_metric_data(self, ctx: RequestContext, params: Wire) -> Wire:
        queries = []
        for query in params["MetricDataQueries"]:
            if "Expression" in query:
                raise m.InvalidParameterValue(
                    f"Runyard does not evaluate metric math (query {query.get('Id')!r} has an Expression); "
                    "use MetricStat queries."
                )
            stat = query.get("MetricStat")
            if stat is None:
                raise m.InvalidParameterValue(f"The query {query.get('Id')!r} needs a MetricStat.")
            queries.append(
                m.DataQuery(
                    id=query["Id"],
                    metric=_metric_in(stat["Metric"]),
                    period=stat["Period"],
                    stat=stat["Stat"],
                    unit=stat.get("Unit"),
                    label=query.get("Label"),
                    return_data=query.get("ReturnData", True),
                )
            )
        results = self.metrics.metric_data(
            ctx.scope,
            queries,
            start=params["StartTime"],
            end=params["EndTime"],
            descending=params.get("ScanBy", "TimestampDescending") == "TimestampDescending",
        )
        # One page holds up to MaxDatapoints values over all queries, in query order; the token is the offset.
        fingerprint = {k: v for k, v in params.items() if k != "NextToken"}
        offset = 0
        if params.get("NextToken"):
            try:
                (offset,) = decode_token(params["NextToken"], fingerprint)
            except (InvalidInput, ValueError):
                raise m.InvalidNextToken("The NextToken is not valid for this request.") from None
            if not isinstance(offset, int) or offset < 0:
                raise m.InvalidNextToken("The NextToken is not valid for this request.")
        room = params.get("MaxDatapoints") or DEFAULT_MAX_DATAPOINTS
        position, end = 0, offset + room
        page: list[Wire] = []
        for result in results:
            first, last = position, position + len(result.values)
            position = last
            low, high = max(first, offset) - first, min(last, end) - first
            values = result.values[low:high] if high > low else []
            timestamps = result.timestamps[low:high] if high > low else []
            page.append(
                {
                    "Id": result.id,
                    "Label": result.label,
                    "Timestamps": timestamps,
                    "Values": values,
                    "StatusCode": "PartialData" if last > end else "Complete",
                }
            )
        answer: Wire = {"MetricDataResults": page, "Messages": []}
        if position > end:
            answer["NextToken"] = encode_token((end,), fingerprint)
        return answer

    def list_metrics(self, ctx: RequestContext, params: Wire) -> Wire:
        if params.get("IncludeLinkedAccounts") or params.get("OwningAccount"):
            raise NotSupported("Runyard has no linked accounts (IncludeLinkedAccounts, OwningAccount).")
        found = self.metrics.list_metrics(
            ctx.scope,
            namespace=params.get("Namespace"),
            metric=params.get("MetricName"),
            filters=[(item["Name"], item.get("Value")) for item in params.get("Dimensions") or []],
            recently_active=params.get("RecentlyActive") == "PT3H",
        )
        query = {k: v for k, v in params.items() if k != "NextToken"}
        try:
            page, token = paginate(
                found,
                key=lambda s: (s.namespace, s.metric, m.dimensions_key(s.dimensions)),
                max_results=LIST_PAGE,
                next_token=params.get("NextToken"),
                query=query,
            )
        except InvalidInput as error:
            raise m.InvalidParameterValue(error.message) from None
        metrics = [
            {"Namespace": s.namespace, "MetricName": s.metric, "Dimensions": _dimensions_out(s.dimensions)}
            for s in page
        ]
        return {"Metrics": metrics, "NextToken": token}
