"""`python -m bookinfo_mesh`: the same as the `bookinfo-mesh` console script."""

import sys

from bookinfo_mesh.cli import main

sys.exit(main())
