"""Pages of the API's lists, in DRF's envelope `{count, next, previous, results}`: keyset pages for the
conversation list, numbered pages for the others; `?page_size=` on both (helpdesk.params.page_size_param).

Keyset pages for the conversation list:

The inbox changes while an agent scrolls it. With page numbers, a conversation that leaves the list above the
page boundary (resolved under `?status=open`, answered under `?ordering=window`) pulls the first row of the next
page onto the page the agent already has, so "load more" never shows that row; one that jumps to the top pushes a
row already shown onto the next page again. Here `next` carries the sort key of the last row of the page
(`previous`: of the first), so a page starts right after the rows the client has, whatever moved elsewhere.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.paginator import Page
from django.db.models import F, IntegerField, Model, Q, QuerySet, Subquery
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from helpdesk.params import DEFAULT_PAGE_SIZE, MAX_ID, MAX_PAGE_SIZE, PAGE_SIZE_SCHEMA, is_id, page_size_param


@dataclass(frozen=True)
class SortKey:
    """How a list is sorted: by `field` (a datetime; NULL sorts as the largest value, PostgreSQL's default), then
    by id in the same direction."""

    field: str
    descending: bool


@dataclass(frozen=True)
class Cursor:
    forward: bool  # the rows after (next page) or before (previous page) this row
    value: datetime | None
    pk: int

    def encode(self) -> str:
        raw = json.dumps([int(self.forward), self.value.isoformat() if self.value else None, self.pk])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """The cursor in `token`, or a 400: only what `encode` writes (an id in bigint range, a moment with its
        offset that exists in UTC) gets through to a query."""
        try:
            forward, value, pk = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            if forward not in (0, 1) or not is_id(pk) or not (value is None or isinstance(value, str)):
                raise ValueError("not a cursor")
            moment = datetime.fromisoformat(value) if value else None
            if moment is not None:
                if moment.utcoffset() is None:
                    raise ValueError("a moment without its offset")
                moment = moment.astimezone(UTC)  # OverflowError beyond year 1..9999 in UTC
            return cls(bool(forward), moment, pk)
        except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error):
            raise ValidationError(
                {"cursor": "Not a cursor of this list: follow `next` / `previous`."}
            ) from None


TOTAL = "list_total_"


class _Count(Subquery):
    """The number of rows of a queryset, as a scalar subquery: PostgreSQL computes it once per statement."""

    template = "(SELECT count(*) FROM (%(subquery)s) counted)"
    output_field = IntegerField()


def with_total(queryset: QuerySet[Any]) -> QuerySet[Any]:
    """`queryset` with the number of its rows on every row (TOTAL): the count of a list comes with its page,
    in the same statement (filters added afterwards, a cursor's, narrow the page, not the count)."""
    return queryset.annotate(**{TOTAL: _Count(queryset.order_by().values("pk"))})


def total_of(row: Any) -> int:
    return int(row[TOTAL] if isinstance(row, Mapping) else getattr(row, TOTAL))


def _greater(key: SortKey, cursor: Cursor) -> Q:
    """Rows above the cursor's row in natural order (value, then id; NULL the largest value)."""
    if cursor.value is None:
        return Q(**{f"{key.field}__isnull": True, "pk__gt": cursor.pk})
    return (
        Q(**{f"{key.field}__gt": cursor.value})
        | Q(**{key.field: cursor.value, "pk__gt": cursor.pk})
        | Q(**{f"{key.field}__isnull": True})
    )


def _smaller(key: SortKey, cursor: Cursor) -> Q:
    if cursor.value is None:
        return Q(**{f"{key.field}__isnull": False}) | Q(**{f"{key.field}__isnull": True, "pk__lt": cursor.pk})
    return Q(**{f"{key.field}__lt": cursor.value}) | Q(**{key.field: cursor.value, "pk__lt": cursor.pk})


class KeysetPagination(BasePagination):
    """The view says how its list is sorted in `sort_key` (a SortKey), and may ask for rows of values (dicts)
    instead of model instances in `row_values`."""

    cursor_query_param = "cursor"

    def paginate_queryset(
        self, queryset: QuerySet[Any] | Sequence[Any], request: Request, view: Any = None
    ) -> list[Any]:
        assert isinstance(queryset, QuerySet), "keyset pages need a queryset"
        key: SortKey = view.sort_key
        self.page_size = page_size_param(request.query_params)
        token = request.query_params.get(self.cursor_query_param)
        cursor = Cursor.decode(token) if token else None
        self.request, self.key = request, key
        forward = cursor is None or cursor.forward
        # Reading backwards is reading the reversed list forwards, then turning the page around.
        list_descending = key.descending == forward
        page = with_total(queryset)
        if getattr(
            view, "row_values", None
        ):  # rows of values (counted before: no joins for them in the count)
            page = page.values(*view.row_values, TOTAL)
        if cursor is not None:
            page = page.filter(_smaller(key, cursor) if list_descending else _greater(key, cursor))
        order = F(key.field).desc() if list_descending else F(key.field).asc()
        rows = list(page.order_by(order, "-pk" if list_descending else "pk")[: self.page_size + 1])
        # The count came with the rows; an empty page past a cursor asks for it (no cursor, no rows: none).
        self.count = total_of(rows[0]) if rows else (queryset.count() if cursor is not None else 0)
        more = len(rows) > self.page_size
        rows = rows[: self.page_size]
        if not forward:
            rows.reverse()
        self.rows = rows
        self.has_next = bool(rows) and (more if forward else True)
        self.has_previous = bool(rows) and (cursor is not None if forward else more)
        return rows

    def _link(self, row: Model | Mapping[str, Any], forward: bool) -> str:
        url = remove_query_param(self.request.build_absolute_uri(), "page")
        if isinstance(row, Mapping):  # a row of values(), with the sort key and the id
            cursor = Cursor(forward, row[self.key.field], int(row["id"]))
        else:
            cursor = Cursor(forward, getattr(row, self.key.field), int(row.pk))  # type: ignore[arg-type]
        return replace_query_param(url, self.cursor_query_param, cursor.encode())

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {
                "count": self.count,
                "next": self._link(self.rows[-1], True) if self.has_next else None,
                "previous": self._link(self.rows[0], False) if self.has_previous else None,
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["count", "results"],
            "properties": {
                "count": {"type": "integer"},
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Where the page starts: taken from `next` or `previous`.",
                "schema": {"type": "string"},
            },
            dict(PAGE_SIZE_SCHEMA),
        ]


class NumberedPagination(PageNumberPagination):
    """DRF's page numbers (`?page=2`, `?page=last`) with `?page_size=` (REST_FRAMEWORK's default pagination):
    an invalid page size is a 400 instead of DRF's silent default.

    The same pages, links and 404s as DRF's (through Django's Paginator and Page), but in one statement: the
    count comes with the page's rows (`with_total`) instead of before them. The last page is read newest first
    (as many rows as a page holds, then the ones beyond the last full page dropped); a page past the end, or a
    page that is not a number of at least 1, is DRF's 404 "Invalid page."."""

    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request: Request) -> int:
        return page_size_param(request.query_params, self.page_size_query_param)

    def paginate_queryset(
        self, queryset: QuerySet[Any] | Sequence[Any], request: Request, view: Any = None
    ) -> list[Any]:
        assert isinstance(queryset, QuerySet), "numbered pages here need a queryset"
        self.request = request
        size = self.get_page_size(request)
        wanted = request.query_params.get(self.page_query_param) or "1"
        page = with_total(queryset)
        if wanted in self.last_page_strings:
            newest = list(page.reverse()[:size])
            total = total_of(newest[0]) if newest else 0
            number = max(1, -(-total // size))
            rows = newest[: total - (number - 1) * size]
            rows.reverse()
        else:
            try:
                number = int(wanted)  # as Django's Paginator.validate_number reads it
            except ValueError:
                raise NotFound(self.invalid_page_message) from None
            if number < 1 or (number - 1) * size > MAX_ID:
                raise NotFound(self.invalid_page_message)
            rows = list(page[(number - 1) * size : number * size])
            if not rows and number > 1:  # past the last page
                raise NotFound(self.invalid_page_message)
            total = total_of(rows[0]) if rows else 0
        paginator = self.django_paginator_class(queryset, size)
        paginator.__dict__["count"] = total  # Paginator.count is a cached property: known already
        self.page = Page(rows, number, paginator)
        if paginator.num_pages > 1 and self.template is not None:
            self.display_page_controls = True
        return rows

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            dict(PAGE_SIZE_SCHEMA) if parameter["name"] == self.page_size_query_param else parameter
            for parameter in super().get_schema_operation_parameters(view)
        ]
