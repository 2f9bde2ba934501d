"""What commands do, shared by the CLI, the shell and the TUI: transfers, password input."""
