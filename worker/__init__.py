"""promobulk: bulk changes to Criteo Retail Media promoted products, one SKU outcome at a time."""

__version__ = "0.1.0"
