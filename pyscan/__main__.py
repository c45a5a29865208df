from pyscan.cli.main import entry

entry()
