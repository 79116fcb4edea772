"""``python -m keras_vae``: the `keras-vae` command line."""

import sys

from keras_vae.cli import main

if __name__ == "__main__":
    sys.exit(main())
