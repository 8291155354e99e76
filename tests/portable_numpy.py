"""NumPy's float64 ufuncs as a calculator, for tests/test_montecarlo.py's reference.

The tests run this as a child process with NumPy's AVX-512 kernels switched
off, so that it answers as NumPy's portable loops do (see portable_numpy in
tests/test_montecarlo.py). Each line read is a JSON list, the name of a NumPy
ufunc and its float64 operands as float.hex() strings; each line written is
the float64 result, as float.hex().
"""
import json
import sys

import numpy as np


def main() -> None:
    """Answer each line of stdin with the ufunc's result, until stdin closes."""
    np.seterr(all="ignore")
    for line in sys.stdin:
        name, *operands = json.loads(line)
        result = getattr(np, name)(*(np.float64(float.fromhex(operand)) for operand in operands))
        print(float(result).hex(), flush=True)


if __name__ == "__main__":
    main()
