import torch

# One intra-op thread: on a shared 2-core machine OpenMP's spinning threads make small models
# 40x slower when another process holds a core, and results stay identical across machines.
torch.set_num_threads(1)

from hypothesis import settings  # noqa: E402

# No per-example deadline: Hypothesis' default of 200 ms makes every property test a timed test, and
# on a loaded CPU a first example (imports, caches) ran 332 ms and failed a test of pure arithmetic.
settings.register_profile("lusebench", deadline=None)
settings.load_profile("lusebench")
