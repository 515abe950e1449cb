"""Modal screens: confirm/ask, quit, diff (commit and reload), editor, help, output."""
