"""Suite-wide test settings.

Tiny models spend their time in per-operation overhead, not arithmetic, and
torch's intra-op thread pool only adds synchronisation there: one thread makes
the tiny-model tests several times faster on a small machine.
"""

import torch

torch.set_num_threads(1)
