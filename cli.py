"""keras-pixelcnn's command line from a checkout: `python cli.py generate`.

The app lives in the package (keras_pixelcnn/cli.py); installed, it is also
`keras-pixelcnn` and `python -m keras_pixelcnn`.
"""

import sys

from keras_pixelcnn.cli import main

if __name__ == "__main__":
    sys.exit(main(prog_name="cli.py"))
