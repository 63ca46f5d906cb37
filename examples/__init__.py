"""Handler modules to copy from; each one is served with WX_HANDLERS=examples.<name>."""
