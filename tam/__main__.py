import sys

from tam.cli import main

sys.exit(main())
