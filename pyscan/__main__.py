import sys

from pyscan.cli.main import main

sys.exit(main())
