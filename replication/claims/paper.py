"""Numbers of the paper that more than one place needs: Fig. 2's layer outputs.

The claims themselves are registered by the notebook that measures them, in
``replication.experiments`` (one module per notebook); importing that package
fills the registry. The constants below are both a claim's paper value
(notebook 01) and a column of ``replication.reports``' Fig. 2 table.
"""

from __future__ import annotations

# Section 3.5 / Fig. 2, per layer: conv1 ... conv5, fc6, fc7, fc8.
FIG2_OUTPUT_SHAPES = [[55, 55, 96], [27, 27, 256], [13, 13, 384], [13, 13, 384], [13, 13, 256],
                      [4096], [4096], [1000]]
# Section 3.5's text: "the number of neurons in the network's remaining layers is
# given by 253,440-186,624-64,896-64,896-43,264-4096-4096-1000".
FIG2_NEURONS = [253_440, 186_624, 64_896, 64_896, 43_264, 4096, 4096, 1000]
