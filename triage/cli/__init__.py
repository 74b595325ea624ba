"""The command line: one module per subcommand, and the checks made before serving."""
