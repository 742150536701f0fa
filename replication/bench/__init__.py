"""Speed on this machine, for `python -m replication bench` (the command line is replication/cli/bench.py).

  training   part 1: the engine against the plain PyTorch recipe per model family, and the
             timing machinery the other parts share (model-only setting, interleaved rounds)
  paper      part 2: the paper's AlexNet at 227 px, FLOP count and the CPU's fp32 peak
  datapath   part 3: the decode-once cache build and batch augmentation against torchvision
  protocol   part 4: what one run of each protocol recipe costs on this CPU (``make cost``; notebook 00)

The public names are re-exported here, so `from replication import bench; bench.forward_flops(...)`
reads as it did when this was one module.
"""

from replication.bench.datapath import augmentation_rate, cache_build, data_path  # noqa: F401
from replication.bench.paper import Peak, cpu_peak, forward_flops, paper_throughput  # noqa: F401
from replication.bench.training import (FAMILIES, SECTIONS, Comparison, Engine, Family, Measurement,  # noqa: F401
                                        ModelOnly, PlainRecipe, auto_threads, compare_family, engine_config,
                                        family_spec, format_table, load_average, load_cifar, load_training_split,
                                        measure)
