"""Catalog reads shaped for the API, one module per resource (apps/catalog/sql.py spells their SQL)."""
