"""Catalog views, one module per resource; apps/catalog/urls.py routes them."""
