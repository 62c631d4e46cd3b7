"""Catalog reads shaped for the API, one module per resource."""

from apps.catalog.selectors.catalog import catalog_version, table_columns

__all__ = ["catalog_version", "table_columns"]
