"""GET /watches/{id}/events.atom?token=...: a watch's events as an Atom feed (Django's syndication framework).

Feed readers send no credentials, so the feed is opened by the watch's own secret token (stored hashed,
compared in constant time); a wrong or missing token is the same 404 as a watch that does not exist.
"""

from django.contrib.syndication.views import Feed
from django.http import Http404, HttpRequest
from django.utils.feedgenerator import Atom1Feed

from apps.catalog.models import Watch
from apps.catalog.watches.views import watch_events
from keeper.events.models import Event

FEED_ITEMS = 50


def _summary(event: Event) -> str:
    data = event.data or {}
    if event.type == "watch.paused":
        return f"Paused: {data.get('reason', '')}"
    counts = data.get("counts", {})
    return (
        f"After sync #{data.get('sync', {}).get('id')}: {counts.get('added', 0)} rows added, "
        f"{counts.get('removed', 0)} removed, {counts.get('changed', 0)} changed."
    )


class WatchEventsFeed(Feed):
    feed_type = Atom1Feed

    def get_object(self, request: HttpRequest, pk: str) -> Watch:
        watch = Watch.objects.filter(pk=pk).first()
        token = request.GET.get("token", "")
        if watch is None or not token or not watch.feed_token_matches(token):
            raise Http404("No such watch feed.")
        return watch

    def title(self, watch: Watch) -> str:
        return f"Keeper watch: {watch.name}"

    def link(self, watch: Watch) -> str:
        return f"/watches/{watch.pk}/events"

    def subtitle(self, watch: Watch) -> str:
        return f"Changes to {watch.query} after each catalog sync."

    def items(self, watch: Watch):
        return watch_events(watch)[:FEED_ITEMS]

    def item_title(self, event: Event) -> str:
        return f"{event.type}: {event.data.get('watch', {}).get('query', '')}"

    def item_description(self, event: Event) -> str:
        return _summary(event)

    def item_link(self, event: Event) -> str:
        return f"/watches/{event.subject.split(':', 1)[-1]}/events#{event.public_id}"

    def item_guid(self, event: Event) -> str:
        return f"urn:keeper:event:{event.public_id}"

    item_guid_is_permalink = False

    def item_pubdate(self, event: Event):
        return event.created_at

    def item_updateddate(self, event: Event):
        return event.created_at
