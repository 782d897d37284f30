"""The control plane: a site's declarative resources turned into router state."""
