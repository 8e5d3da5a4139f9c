// Host shim for tests: generated kernels run on the CPU, one "thread" per output element (fp32 tests only).
#pragma once
