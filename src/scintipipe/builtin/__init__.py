"""Built-in plugins, registered like third-party ones (see plugins.DEFAULT_PLUGINS)."""
