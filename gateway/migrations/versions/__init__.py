"""Control store schema revisions."""
