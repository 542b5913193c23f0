"""One module per subcommand; each reads like the guide's steps, in order, and returns an exit code."""
