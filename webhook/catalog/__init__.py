"""The capability catalog: built-in default, file or ConfigMap, schema-checked, hot-reloaded."""

from webhook.catalog.catalog import (
    BUILT_IN,
    Capability,
    Catalog,
    CatalogError,
    catalog_from_document,
    content_hash,
    default_catalog,
    parse_catalog,
)
from webhook.catalog.source import CatalogStore, ConfigMapWatcher, FileWatcher, load_file

__all__ = [
    "BUILT_IN",
    "Capability",
    "Catalog",
    "CatalogError",
    "CatalogStore",
    "ConfigMapWatcher",
    "FileWatcher",
    "catalog_from_document",
    "content_hash",
    "default_catalog",
    "load_file",
    "parse_catalog",
]
