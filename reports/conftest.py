"""How nbval re-executes these reports (``make test``).

The smoke reports train from scratch when they are re-executed, and nbval
compares their numbers exactly, so their kernels must run on the same CPU
kernels as the ones that wrote them: the portable AVX2 set of
``replication.profiles.PORTABLE_CPU_ENV``. A notebook kernel inherits this
process's environment, and pytest loads this file before it starts any.
"""

import os

from replication.profiles import PORTABLE_CPU_ENV  # imports no torch

os.environ.update(PORTABLE_CPU_ENV)
