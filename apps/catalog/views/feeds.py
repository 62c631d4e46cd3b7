"""`GET /changes.atom`: `/changes` as an Atom feed, so "new GPU servers at aws" is a URL a feed reader follows.

The same FilterSet, page and selector as `/changes` (views/history.py): the same query answers the same
rows, newest first. The feed is built by Django's syndication framework; a query it refuses is the JSON
400 of `/changes` (feed readers show the status; people read the body).
"""

from typing import Any
from urllib.parse import urlencode

from django.contrib.syndication.views import Feed
from django.http import HttpRequest, HttpResponse
from django.utils.feedgenerator import Atom1Feed
from drf_spectacular.utils import extend_schema
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

from apps.catalog.caching import PRICES, cached_catalog_response
from apps.catalog.selectors import history as selectors
from apps.catalog.views.history import ChangeListView
from keeper.api.renderers import ORJSONRenderer

ATOM = "application/atom+xml; charset=utf-8"


class CatalogChangesFeed(Feed):
    """The rows of one `/changes` page as Atom entries: one entry per change, its id the change's id."""

    feed_type = Atom1Feed
    title = "Keeper: catalog changes"
    subtitle = "What the catalog syncs changed: rows added and removed, statuses and columns changed."

    def get_object(self, request: HttpRequest, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        raise NotImplementedError("ChangeFeedView hands the rows to get_feed()")

    def link(self, rows: list[dict[str, Any]]) -> str:
        return "/changes?" + self.query if self.query else "/changes"

    def feed_guid(self, rows: list[dict[str, Any]]) -> str:
        # Atom's feed id: the link, absolute as the framework makes the link itself.
        return self.request.build_absolute_uri(self.link(rows))

    def items(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return rows

    def item_title(self, row: dict[str, Any]) -> str:
        field = f" {row['field']}" if row["field"] and row["kind"] == "changed" else ""
        return f"{row['table']} {row['kind']}{field}: {'/'.join(str(part) for part in row['key'].values())}"

    def item_description(self, row: dict[str, Any]) -> str:
        if row["kind"] in ("added", "removed"):
            return f"{row['table']} row {row['kind']} by sync {row['sync']}."
        currency = f" {row['currency']}" if row["currency"] else ""
        return f"{row['field']}: {row['old']} -> {row['new']}{currency} (sync {row['sync']})."

    def item_link(self, row: dict[str, Any]) -> str:
        # The sync's changes: `since` a sync id is the syncs after it, `until` that sync and those before.
        return f"/changes?{urlencode({'since': row['sync'] - 1, 'until': row['sync']})}"

    def item_guid(self, row: dict[str, Any]) -> str:
        return f"urn:keeper:change:{row['id']}"

    item_guid_is_permalink = False

    def item_updateddate(self, row: dict[str, Any]):
        return row["time"]

    def item_pubdate(self, row: dict[str, Any]):
        return row["time"]

    def item_categories(self, row: dict[str, Any]) -> tuple[str, str]:
        return (row["table"], row["kind"])

    def render(self, rows: list[dict[str, Any]], request: HttpRequest, query: str) -> bytes:
        """The Atom document of `rows`; `query` the request's filters, for the feed's link to `/changes`."""
        self.query, self.request = query, request
        return self.get_feed(rows, request).writeString("utf-8").encode()


class ChangeFeedView(ChangeListView):
    @extend_schema(exclude=True)  # not JSON: documented in README.md ("Feeds")
    @cached_catalog_response(kind=PRICES, media_type=ATOM)
    def get(self, request: Request) -> HttpResponse:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        rows = selectors.change_rows(page)
        response = HttpResponse(CatalogChangesFeed().render(rows, request._request, request.GET.urlencode()), ATOM)
        if self.paginator.total_count is not None:
            response["X-Total-Count"] = str(self.paginator.total_count)
        return response

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[BaseRenderer, str]:
        # Feed readers ask for Atom; the answer is Atom whatever they ask, and an error is JSON as everywhere.
        renderer = ORJSONRenderer()
        return renderer, renderer.media_type
