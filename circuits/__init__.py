"""zkmeter circuits package."""
