"""python -m keras_pixelcnn: the command line (see keras_pixelcnn/cli.py)."""

import sys

from keras_pixelcnn.cli import main

sys.exit(main())
