"""The command-line tool: argument parsing, output, exit statuses."""
