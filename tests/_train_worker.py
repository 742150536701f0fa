"""Subprocess helper for tests/test_train.py: train a config and SIGKILL ourselves mid-run.

usage: python _train_worker.py CONFIG_JSON CHECKPOINT THREADS KILL_EPOCH KILL_STEP

Trains with the checkpoint at CHECKPOINT and kills the process with SIGKILL
(no cleanup, no atexit, like a pre-empted job) at step KILL_STEP of epoch
KILL_EPOCH, i.e. after the checkpoint of epoch KILL_EPOCH - 1 was written.
"""

import json
import os
import signal
import sys

import torch

from replication.engine.config import TrainConfig
from replication.engine.trainer import train


def main() -> None:
    config = TrainConfig.from_dict(json.loads(sys.argv[1]))
    checkpoint, threads = sys.argv[2], int(sys.argv[3])
    kill_epoch, kill_step = int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)

    def after_step(trainer, epoch, step):
        if epoch == kill_epoch and step == kill_step:
            os.kill(os.getpid(), signal.SIGKILL)

    train(config, checkpoint=checkpoint, progress=False, after_step=after_step)
    sys.exit("the worker was supposed to be killed before finishing")


if __name__ == "__main__":
    main()
