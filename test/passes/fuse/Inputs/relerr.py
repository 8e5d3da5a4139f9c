"""relerr.py A.npy B.npy TOL: the relative L2 error of B against A (in float64), printed, and exit 1 if it
exceeds TOL or if the shapes, dtypes or NaN positions differ."""
import sys

import numpy as np

a, b, tol = np.load(sys.argv[1]), np.load(sys.argv[2]), float(sys.argv[3])
if a.shape != b.shape or a.dtype != b.dtype:
    print(f"mismatch: {a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}")
    sys.exit(1)
a64, b64 = a.astype(np.float64), b.astype(np.float64)
nan = np.isnan(a64)
if (nan != np.isnan(b64)).any():
    print("NaNs differ")
    sys.exit(1)
den = np.sqrt(np.sum(a64[~nan] ** 2))
num = np.sqrt(np.sum((a64[~nan] - b64[~nan]) ** 2))
rel = num / den if den > 0 else num
print(f"{a.dtype}{list(a.shape)} relerr {'ok' if rel <= tol else 'FAIL'} ({rel:.3g})")
sys.exit(0 if rel <= tol else 1)
