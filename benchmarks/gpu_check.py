"""GPU check for a lent GPU machine (called by benchmarks/gpu_check.sh, one part per process).

Parts (``--part``):

- ``throughput``: the paper's AlexNet (two towers, grouped on one device) at
  227 px and at 224 px (cuda-convnet's ceil rule), channels_last, fp32 and
  AMP (bf16 where the GPU supports it, else fp16 with a GradScaler):
  training and inference images/s, and the TFLOP/s this achieves (FLOPs
  counted from the layers' shapes, as in ``python -m replication bench``).
- ``split``: Section 3.2's two-device split (``models.TwoDeviceAlexNet``) on
  ``cuda:0``/``cuda:1``, or on ``("cuda:0", "cuda:0")`` with one GPU: that
  its outputs and gradients equal the grouped model's, and its images/s.
- ``profile``: a few training steps of the ``paper`` profile's recipe
  (``profiles/paper.yaml``: 256 px images, 224 crops, flips, PCA lighting,
  batch 128, the paper's SGD) through ``replication.engine.trainer.Trainer`` on
  generated images (no ImageNet needed).

Each part prints its lines and appends one JSON line per result to
``--summary``. ``--device cpu`` with ``--small`` runs every part on the CPU
at toy sizes (a check of the script itself, not a measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

# run as a script from a checkout where the package may not be installed: import it from the repository
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def emit(summary: str | None, **result) -> None:
    print("  " + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()),
          flush=True)
    if summary:
        with open(summary, "a") as handle:
            handle.write(json.dumps(result) + "\n")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def amp_dtype(device: torch.device) -> torch.dtype:
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def timed(step, steps: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        step()
    sync(device)
    began = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return time.perf_counter() - began


def part_throughput(args, device: torch.device) -> None:
    from replication import bench, models

    batch = 8 if args.small else args.batch
    steps, warmup = (1, 1) if args.small else (args.steps, 3)
    sizes = (227,) if args.small else (227, 224)
    for size in sizes:
        torch.manual_seed(0)
        model = models.build_model({"arch": "alexnet", "input_size": size})
        model = model.to(device, memory_format=torch.channels_last)
        flops = bench.forward_flops(model, torch.randn(1, 3, size, size, device=device).contiguous(
            memory_format=torch.channels_last))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last) * 60
        y = torch.randint(0, 1000, (batch,), device=device)
        for precision in ("fp32", "amp"):
            dtype = amp_dtype(device)
            enabled = precision == "amp"
            scaler = torch.amp.GradScaler(device.type, enabled=enabled and dtype == torch.float16)
            label = "fp32" if not enabled else f"amp-{str(dtype).split('.')[-1]}"

            def train_step():
                with torch.autocast(device.type, dtype=dtype, enabled=enabled):
                    loss = F.cross_entropy(model(x).float(), y)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()

            def infer_step():
                with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=enabled):
                    model(x)

            model.train()
            seconds = timed(train_step, steps, warmup, device)
            rate = batch * steps / seconds
            emit(args.summary, part="throughput", size=size, precision=label, mode="training", batch=batch,
                 images_per_s=rate, tflops=rate * 3 * flops / 1e12)
            model.eval()
            seconds = timed(infer_step, steps, warmup, device)
            rate = batch * steps / seconds
            emit(args.summary, part="throughput", size=size, precision=label, mode="inference", batch=batch,
                 images_per_s=rate, tflops=rate * flops / 1e12)
        del model, optimizer, x, y
        if device.type == "cuda":
            torch.cuda.empty_cache()


def part_split(args, device: torch.device) -> None:
    from replication import models

    if device.type == "cuda":
        devices = ("cuda:0", "cuda:1") if torch.cuda.device_count() >= 2 else ("cuda:0", "cuda:0")
    else:
        devices = ("cpu", "cpu")
    size = 227
    batch = 4 if args.small else args.batch
    torch.manual_seed(0)
    grouped = models.build_model({"arch": "alexnet", "dropout": 0.0})
    split = models.TwoDeviceAlexNet(grouped, devices)
    grouped = grouped.to(devices[0])
    x = torch.randn(min(batch, 8), 3, size, size, device=devices[0]) * 60
    y = torch.randint(0, 1000, (len(x),), device=devices[0])
    # equivalence in fp32 (TF32 off so both layouts round alike)
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        out_g, out_s = grouped(x), split(x)
        F.cross_entropy(out_g, y).backward()
        F.cross_entropy(out_s, y).backward()
        conv1_g = grouped.body.conv1.weight.grad
        conv1_s = torch.cat([t.layers()["conv1"].weight.grad.to(devices[0]) for t in split.towers], dim=0)
        out_diff = (out_g - out_s).abs().max().item()
        grad_diff = ((conv1_g - conv1_s).abs().max() / conv1_g.abs().max().clamp_min(1e-30)).item()
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    emit(args.summary, part="split", devices="+".join(devices), max_logit_diff=out_diff,
         conv1_grad_rel_diff=grad_diff, equal=bool(out_diff < 1e-3 and grad_diff < 1e-3))
    steps, warmup = (1, 1) if args.small else (args.steps, 3)
    xb = torch.randn(batch, 3, size, size, device=devices[0]) * 60
    yb = torch.randint(0, 1000, (batch,), device=devices[0])
    for name, model in (("grouped", grouped), ("two-device split", split)):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        dtype = amp_dtype(device)
        scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

        def step():
            with torch.autocast(device.type, dtype=dtype):
                loss = F.cross_entropy(model(xb).float(), yb)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

        seconds = timed(step, steps, warmup, torch.device(devices[0]))
        emit(args.summary, part="split", model=name, devices="+".join(devices), mode="training (amp)",
             batch=batch, images_per_s=batch * steps / seconds)


def part_profile(args, device: torch.device) -> None:
    from replication.engine.config import TrainConfig
    from replication.engine.trainer import Trainer
    from replication.data.splits import synthetic_split

    small = args.small
    size, crop = (64, 56) if small else (256, 224)
    classes, per_class = (10, 4) if small else (1000, 1)
    batch = 8 if small else 128
    precision = "bf16" if args.amp_profile else "fp32"
    config = TrainConfig(model={"arch": "alexnet", "width": 1.0, "towers": 2, "pooling": "overlapping"},
                         dataset="synthetic", crop=crop, flip=True, lighting_std=0.1, optimizer="paper", lr=0.01,
                         momentum=0.9, weight_decay=5e-4, batch_size=batch, schedule="constant",
                         precision=precision, channels_last=True, epochs=1)
    train = synthetic_split("train", per_class=per_class, size=size, classes=classes)
    val = synthetic_split("val", per_class=1, size=size, classes=classes)
    trainer = Trainer(config, data=(train, val), device=device)
    steps = 2 if small else args.profile_steps
    trainer.run_epoch(1, max_steps=1)  # warm-up (cuDNN autotuning, allocator)
    sync(device)
    result = trainer.run_epoch(2, max_steps=steps)
    sync(device)
    emit(args.summary, part="profile", recipe=f"paper ({size} px, {crop} crops, flip, PCA lighting, batch {batch})",
         precision=precision, steps=steps, images_per_s=result["images"] / result["seconds"],
         train_loss=result["train_loss"], finite=bool(result["train_loss"] == result["train_loss"]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("throughput", "split", "profile"), required=True)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --small: a self-check)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per setting (default: 10)")
    parser.add_argument("--profile-steps", type=int, default=5)
    parser.add_argument("--amp-profile", action="store_true", help="run the profile steps under bf16 autocast")
    parser.add_argument("--small", action="store_true", help="toy sizes (a check of the script, not a measurement)")
    parser.add_argument("--summary", default=None, help="append JSON result lines to this file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device visible (torch {torch.__version__}, "
              f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')})", file=sys.stderr)
        return 3
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        print(f"[{args.part}] {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}, torch {torch.__version__}",
              flush=True)
    else:
        print(f"[{args.part}] CPU self-check, torch {torch.__version__}", flush=True)
    {"throughput": part_throughput, "split": part_split, "profile": part_profile}[args.part](args, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
