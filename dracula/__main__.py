import sys

from dracula.cli import main

sys.exit(main())
