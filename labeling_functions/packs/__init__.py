"""Ready-made LF packs for the bundled datasets (one module per dataset)."""
