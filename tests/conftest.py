import torch

# One intra-op thread: on a shared 2-core machine OpenMP's spinning threads make small models
# 40x slower when another process holds a core, and results stay identical across machines.
torch.set_num_threads(1)
