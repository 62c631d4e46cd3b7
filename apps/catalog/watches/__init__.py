"""Watches: saved catalog queries re-run after each sync, whose changes become `watch.changed` events.

The models (Watch, WatchSweep) are in apps/catalog/models.py with the catalog's others, so this
package builds on them like any other layer: services (create, change, evaluate after a sync) ->
dispatch (a catalog view run in-process as the watch's owner) and rows (an answer as rows keyed by
their ids, and the diff of two answers); views, feeds and the admin on top.
"""
