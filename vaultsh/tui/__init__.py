"""The Textual TUI: app, screens, widgets and themes."""
