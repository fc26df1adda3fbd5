"""Write MNIST as an .npz file (x_train, y_train, x_test, y_test), as Keras ships it.

    python examples/custom/make_mnist_npz.py [--train N] [--data-dir DIR] [--out FILE]

Uses sparsedp's own MNIST loader (the clone's data/, $SPARSEDP_DATA_DIR, the cache, or a
verified download). ``--train N`` keeps the first N training examples (10% of them become
the validation split), for quick runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sparsedp.data import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, help="keep the first N training examples")
    parser.add_argument("--data-dir", help="folder holding MNIST's IDX files")
    parser.add_argument("--out", default=str(Path(__file__).with_name("mnist.npz")))
    args = parser.parse_args()
    mnist = load_dataset("mnist", args.data_dir)
    n = args.train or len(mnist.train_labels)
    np.savez(args.out, x_train=np.asarray(mnist.train_images[:n, 0]),
             y_train=np.asarray(mnist.train_labels[:n]),
             x_test=np.asarray(mnist.test_images[:, 0]), y_test=np.asarray(mnist.test_labels))
    print(f"wrote {args.out}: {n} training and {len(mnist.test_labels)} test images")


if __name__ == "__main__":
    main()
