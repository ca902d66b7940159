import sys

from meetscale.cli import main

sys.exit(main())
