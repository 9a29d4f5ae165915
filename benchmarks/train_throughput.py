"""Training throughput: the machine's sgemm rate, the vae step's GFLOP (torch.utils.flop_counter)
and its fraction of that rate for each speed lever (channels_last, the decoder's Deconv4x4 path,
fused Adam, glibc's allocator keeping freed memory, optionally torch.compile); packed runs (1, 2, 4, 8, 16 seeds as one vmapped step) against one run at a time;
a step with the data pipeline vs. the same step on a pre-made batch; and the cost per step of
every registered variant relative to plain `vae`.

    python benchmarks/train_throughput.py [--dataset dsprites_procedural] [--rounds 7] [--steps 3]
        [--packs 1 2 4 8 16] [--compile] [--variants vae ...] [--json out.json]

Levers and packs are timed interleaved (one round times every configuration in turn, `--rounds`
rounds; medians, and the spread as min-max over rounds), with the sgemm rate measured in every
round, so a load spike on a shared machine hits all of them alike. This process keeps freed
memory as a CPU trainer does (vaebench/runner/allocator.py); that lever is set once per process,
so it is timed in child processes, glibc's defaults and kept alternating, `--rounds` pairs.

Prints a table and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from vaebench.models.architectures import Deconv4x4
from vaebench.registry import MODELS
from vaebench.runner.allocator import keep_freed_memory
from vaebench.runner.pack import PackedTrainer, build_members
from vaebench.runner.run import load_dataset
from vaebench.runner.train import resolve_device, seed_everything

PACK_CFG = {"lr": 1e-4, "beta1": 0.9, "beta2": 0.999}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(model, optimizers, get_batch, steps, device, warmup=3) -> float:
    """Seconds per training step (median of `steps`)."""
    times = []
    for i in range(warmup + steps):
        sync(device)
        t0 = time.perf_counter()
        x, y = get_batch()
        model.training_step(x, y, i, optimizers)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def sgemm_gflops(device, n=1024, reps=10) -> float:
    """The machine's own float32 matmul rate, GFLOP/s (median of 5 bursts of `reps` n x n mm)."""
    a, b = torch.rand(n, n, device=device), torch.rand(n, n, device=device)
    a @ b
    rates = []
    for _ in range(5):
        sync(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync(device)
        rates.append(2 * n**3 * reps / (time.perf_counter() - t0) / 1e9)
    return statistics.median(rates)


def lever_step(dataset_shape, batch, device, channels_last, fused, compiled, deconv4x4=True):
    """A vae training-step closure with the given levers (fused=False: the per-tensor Adam loop;
    deconv4x4=False: oneDNN's own transposed convolutions, nn.ConvTranspose2d.forward)."""
    seed_everything(0)
    model = MODELS.get("vae")(MODELS.get("vae").Config(), dataset_shape, 0).to(device).train()
    if not deconv4x4:
        for m in model.modules():
            if isinstance(m, Deconv4x4):
                m.forward = torch.nn.ConvTranspose2d.forward.__get__(m)
    x, y = batch
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True) if fused else \
        torch.optim.Adam(model.parameters(), lr=1e-4, foreach=False)
    loss = torch.compile(model.loss) if compiled else model.loss

    def step():
        terms = loss(x, y, 0)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
    return step


def convolution_layers(dataset_shape, batch, device):
    """[(name, closure, GFLOP)]: each convolution of the default step (channels_last, Deconv4x4)
    alone, forward and backward on the inputs it sees in a step, with a random upstream
    gradient (no input gradient for the first layer, as in training)."""
    seed_everything(0)
    model = MODELS.get("vae")(MODELS.get("vae").Config(), dataset_shape, 0).to(device)
    model = model.to(memory_format=torch.channels_last)
    x = batch[0].contiguous(memory_format=torch.channels_last)
    seen = {}

    def keep_input(name):
        def hook(module, inputs, output):
            seen[name] = (module, inputs[0].detach())
        return hook

    hooks = [m.register_forward_hook(keep_input(n)) for n, m in model.named_modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    model.loss(x)
    for h in hooks:
        h.remove()
    layers = []
    for name, (m, inp) in seen.items():
        needs_input = name != next(iter(seen))
        inp = inp.clone().requires_grad_(needs_input)
        grad = torch.randn_like(m(inp))
        k = m.kernel_size[0] * m.kernel_size[1]
        macs = (grad.numel() * m.in_channels if isinstance(m, torch.nn.Conv2d) else inp.numel() * m.out_channels) * k
        wrt = ([inp] if needs_input else []) + [m.weight, m.bias]

        def fwd_bwd(m=m, inp=inp, grad=grad, wrt=wrt):
            torch.autograd.grad(m(inp), wrt, grad)
        layers.append((name, fwd_bwd, 2 * macs * (3 if needs_input else 2) / 1e9))
    return layers


def spread(values) -> list[float]:
    return [min(values), max(values)]


def levers_and_packs(args, dataset, fixed, device) -> dict:
    """Interleaved rounds over the lever configurations and the packs; medians and spreads."""
    shape = dataset.image_shape
    with FlopCounterMode(display=False) as counter:
        lever_step(shape, fixed, device, False, False, False)()
    gflop = counter.get_total_flops() / 1e9
    levers = {"baseline (NCHW, Adam loop)": (False, False, False, False),
              "channels_last (oneDNN deconv)": (True, False, False, False),
              "channels_last + Deconv4x4": (True, False, False, True),
              "fused Adam": (False, True, False, False),
              "default (all three)": (True, True, False, True)}
    if args.compile:
        levers["default + torch.compile(loss)"] = (True, True, True, True)
    steps = {k: lever_step(shape, fixed, device, *v) for k, v in levers.items()}
    n_train, bs = dataset.num_examples("train"), args.batch_size
    gen = torch.Generator().manual_seed(0)
    vae = MODELS.get("vae")
    single = lever_step(shape, fixed, device, True, True, False)

    def one_run_with_data():  # a Trainer step: a fresh batch, channels_last, the default levers
        x, _ = dataset.batch("train", torch.randint(0, n_train, (bs,), generator=gen), device)
        x.contiguous(memory_format=torch.channels_last)
        single()

    packs = {}
    for k in args.packs:
        members = build_members(lambda: vae(vae.Config(), shape, 0), list(range(k)), [Path(".")] * k)
        packs[k] = PackedTrainer(members, dataset, PACK_CFG | {"batch_size": bs}, device)
    convs = convolution_layers(shape, fixed, device)
    for fn in [*steps.values(), one_run_with_data, *[p.train_step for p in packs.values()],
               *[c[1] for c in convs]]:
        fn()  # warm-up (and compilation)
    sg, lever_t, single_t, pack_t = [], {k: [] for k in steps}, [], {k: [] for k in packs}
    conv_t = {name: [] for name, _, _ in convs}
    for rnd in range(args.rounds):
        sg.append(sgemm_gflops(device))
        for k, fn in steps.items():
            lever_t[k].append(time_steps_fn(fn, args.steps, device))
        for name, fn, _ in convs:
            conv_t[name].append(time_steps_fn(fn, 3 * args.steps, device))
        single_t.append(time_steps_fn(one_run_with_data, args.steps, device))
        for k, p in packs.items():
            pack_t[k].append(time_steps_fn(p.train_step, max(1, args.steps // 2), device))
        print(f"  round {rnd + 1}/{args.rounds}: sgemm {sg[-1]:.0f} GFLOP/s", flush=True)
    rate = statistics.median(sg)
    base = statistics.median(lever_t["baseline (NCHW, Adam loop)"])
    out = {"sgemm_gflops": rate, "sgemm_gflops_spread": spread(sg), "step_gflop": gflop, "levers": {},
           "packs": {}}
    for k, ts in lever_t.items():
        med = statistics.median(ts)
        out["levers"][k] = {"step_ms": 1000 * med, "step_ms_spread": [1000 * t for t in spread(ts)],
                            "gflops": gflop / med, "fraction_of_sgemm": gflop / med / rate,
                            # best round against the best sgemm round: the least-disturbed estimate
                            "fraction_of_sgemm_best": gflop / min(ts) / max(sg),
                            "speedup_vs_baseline": base / med}
    # The convolutions alone, each at the speed it reaches by itself: what the step would take
    # if nothing else (activations, linear layers, loss, optimizer) cost anything.
    conv_s = {name: statistics.median(ts) for name, ts in conv_t.items()}
    out["convolutions"] = {
        "layers": {name: {"ms": 1000 * conv_s[name], "gflop": gf, "fraction_of_sgemm": gf / conv_s[name] / rate}
                   for name, _, gf in convs},
        "gflop": sum(gf for _, _, gf in convs), "ms": 1000 * sum(conv_s.values()),
        "step_fraction_of_sgemm_if_only_convolutions_cost": gflop / sum(conv_s.values()) / rate}
    one = statistics.median(single_t)
    for k, ts in pack_t.items():
        med = statistics.median(ts)
        out["packs"][k] = {"step_ms": 1000 * med, "images_per_s": k * bs / med,
                           "ratio_vs_one_run_at_a_time": (k * bs / med) / (bs / one),
                           "ratio_spread": [k * one / max(ts), k * one / min(ts)]}
    out["one_run_images_per_s"] = bs / one
    return out


def time_steps_fn(fn, steps, device) -> float:
    """Seconds per call of fn (median of `steps`)."""
    times = []
    for _ in range(steps):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def allocator_step_ms(args, device) -> float:
    """(In a child process) ms per step of the default levers on a pre-made batch, after
    keep_freed_memory() when args.allocator_probe is "kept", else under glibc's defaults."""
    if args.allocator_probe == "kept":
        keep_freed_memory()
    dataset = load_dataset(args.dataset, {}, Path(args.data_root))
    idx = torch.randint(0, dataset.num_examples("train"), (args.batch_size,), generator=torch.Generator().manual_seed(0))
    step = lever_step(dataset.image_shape, dataset.batch("train", idx, device), device, True, True, False)
    for _ in range(3):
        step()
    return 1000 * time_steps_fn(step, 3 * args.steps, device)


def allocator_pairs(args) -> dict:
    """Child processes timing the default step under glibc's malloc defaults and with freed
    memory kept, alternating, `--rounds` pairs."""
    import subprocess
    import sys

    times = {"glibc_default": [], "kept": []}
    for _ in range(args.rounds):
        for mode, probe in (("glibc_default", "default"), ("kept", "kept")):
            env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
            out = subprocess.run([sys.executable, __file__, "--allocator-probe", probe, "--dataset", args.dataset,
                                  "--data-root", args.data_root, "--batch-size", str(args.batch_size),
                                  "--steps", str(args.steps), "--device", args.device],
                                 capture_output=True, text=True, check=True, env=env)
            times[mode].append(float(out.stdout.split()[-1]))
    ratios = [a / b for a, b in zip(times["glibc_default"], times["kept"])]
    return {"step_ms_glibc_default": statistics.median(times["glibc_default"]),
            "step_ms_kept": statistics.median(times["kept"]),
            "speedup": statistics.median(ratios), "speedup_spread": spread(ratios)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="dsprites_procedural")
    p.add_argument("--data-root", default=os.environ.get("VAEBENCH_DATA", "data"))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=3, help="steps per configuration per round")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--packs", type=int, nargs="*", default=[1, 2, 4, 8, 16], help="pack sizes to time")
    p.add_argument("--compile", action="store_true", help="also time torch.compile of the loss (slow to compile)")
    p.add_argument("--device", default="auto")
    p.add_argument("--variants", nargs="*", help="default: every registered model")
    p.add_argument("--json", metavar="PATH", help="also write the figures to this file")
    p.add_argument("--no-allocator", action="store_true", help="skip the allocator lever's child processes")
    p.add_argument("--allocator-probe", choices=["default", "kept"], help=argparse.SUPPRESS)
    args = p.parse_args()

    device = resolve_device(args.device)
    if args.allocator_probe:
        print(allocator_step_ms(args, device))
        return
    if device.type == "cpu":
        keep_freed_memory()  # as a CPU trainer does
    t0 = time.perf_counter()
    dataset = load_dataset(args.dataset, {}, Path(args.data_root))
    load_s = time.perf_counter() - t0
    n = dataset.num_examples("train")
    gen = torch.Generator().manual_seed(0)

    def pipeline_batch():
        return dataset.batch("train", torch.randint(0, n, (args.batch_size,), generator=gen), device)

    fixed = pipeline_batch()
    data_only = []
    for _ in range(50):
        sync(device)
        t = time.perf_counter()
        pipeline_batch()
        sync(device)
        data_only.append(time.perf_counter() - t)
    data_only.sort()

    print(f"levers and packs: {args.rounds} interleaved rounds", flush=True)
    speed = levers_and_packs(args, dataset, fixed, device)
    if device.type == "cpu" and not args.no_allocator:
        print(f"allocator: {args.rounds} pairs of child processes", flush=True)
        speed["allocator"] = allocator_pairs(args)

    # Variants are timed round-robin on the same pre-made batch (`--rounds` rounds of `--steps`
    # steps after a warm-up round), so a load spike on a shared machine hits every variant alike.
    names = args.variants or [e.name for e in MODELS.entries()]
    names = names if "vae" in names else ["vae", *names]
    runs = {}
    for name in names:
        cls = MODELS.get(name)
        seed_everything(0)
        model = cls(cls.Config(), dataset.image_shape, dataset.num_classes,
                    dataset.num_examples("train")).to(device).train()
        runs[name] = (model, model.make_optimizers(1e-4), [])
    for rnd in range(args.rounds + 1):
        for name, (model, opts, times) in runs.items():
            step_s = time_steps(model, opts, lambda: fixed, args.steps, device, warmup=0)
            if rnd:
                times.append(step_s)
    results = {name: {"step_s_premade": statistics.median(times)}
               for name, (_, _, times) in runs.items()}
    model, opts, _ = runs["vae"]
    results["vae"]["step_s_pipeline"] = time_steps(model, opts, pipeline_batch,
                                                   args.rounds * args.steps, device)
    vae = results["vae"]
    report = {
        "benchmark": "train_throughput", "dataset": args.dataset, "device": str(device),
        "cpu_threads": torch.get_num_threads(), "machine": platform.machine(), "batch_size": args.batch_size,
        "dataset_load_s": load_s, "batch_fetch_ms": 1000 * data_only[len(data_only) // 2],
        "vae_images_per_s_pipeline": args.batch_size / vae["step_s_pipeline"],
        "vae_images_per_s_premade": args.batch_size / vae["step_s_premade"],
        "pipeline_share_of_step": 1 - vae["step_s_premade"] / vae["step_s_pipeline"],
        "fetch_share_of_step": data_only[len(data_only) // 2] / vae["step_s_pipeline"],
        "variants": {k: {"step_ms": 1000 * v["step_s_premade"],
                         "relative_to_vae": v["step_s_premade"] / vae["step_s_premade"]}
                     for k, v in results.items()},
        **speed,
    }
    print(f"{args.dataset} on {device}, batch {args.batch_size}, {report['cpu_threads']} threads; "
          f"dataset ready in {load_s:.1f} s")
    print(f"vae step with data pipeline : {1000 * vae['step_s_pipeline']:8.2f} ms "
          f"({report['vae_images_per_s_pipeline']:.0f} images/s)")
    print(f"vae step on a pre-made batch: {1000 * vae['step_s_premade']:8.2f} ms "
          f"({report['vae_images_per_s_premade']:.0f} images/s)")
    print(f"batch fetch alone            : {report['batch_fetch_ms']:8.2f} ms = "
          f"{100 * report['fetch_share_of_step']:.1f}% of a step (target < 10%)")
    print(f"\n{'variant':<14}{'ms/step':>10}{'x vae':>8}")
    for k, v in report["variants"].items():
        print(f"{k:<14}{v['step_ms']:>10.2f}{v['relative_to_vae']:>8.2f}")
    print(f"\nsgemm rate {speed['sgemm_gflops']:.0f} GFLOP/s (1024x1024 float32 mm; rounds "
          f"{speed['sgemm_gflops_spread'][0]:.0f}-{speed['sgemm_gflops_spread'][1]:.0f}); vae step at batch "
          f"{args.batch_size}: {speed['step_gflop']:.2f} GFLOP")
    print(f"{'lever':<34}{'ms/step':>9}{'spread':>15}{'GFLOP/s':>9}{'of sgemm':>10}{'best':>6}{'x base':>8}")
    for k, v in speed["levers"].items():
        lo, hi = v["step_ms_spread"]
        print(f"{k:<34}{v['step_ms']:>9.1f}{f'{lo:.0f}-{hi:.0f}':>15}{v['gflops']:>9.1f}"
              f"{100 * v['fraction_of_sgemm']:>9.0f}%{100 * v['fraction_of_sgemm_best']:>5.0f}%"
              f"{v['speedup_vs_baseline']:>8.2f}")
    c = speed["convolutions"]
    print(f"\nthe convolutions alone (forward + backward, each layer by itself):")
    for name, v in c["layers"].items():
        print(f"  {name:<18}{v['ms']:>7.2f} ms{v['gflop']:>7.3f} GFLOP{100 * v['fraction_of_sgemm']:>5.0f}% of sgemm")
    print(f"  together {c['ms']:.1f} ms for {c['gflop']:.2f} of the step's {speed['step_gflop']:.2f} GFLOP: a step that "
          f"cost only its convolutions would run at {100 * c['step_fraction_of_sgemm_if_only_convolutions_cost']:.0f}% of sgemm")
    if "allocator" in speed:
        a = speed["allocator"]
        print(f"allocator (child processes, default levers): glibc's malloc defaults {a['step_ms_glibc_default']:.1f} "
              f"ms/step, freed memory kept {a['step_ms_kept']:.1f} ms/step: {a['speedup']:.2f}x "
              f"({a['speedup_spread'][0]:.2f}-{a['speedup_spread'][1]:.2f})")
    print(f"\none run at a time (data + default levers): {speed['one_run_images_per_s']:.0f} images/s")
    print(f"{'pack':>5}{'ms/step':>10}{'images/s':>10}{'x one run':>11}{'spread':>13}")
    for k, v in speed["packs"].items():
        lo, hi = v["ratio_spread"]
        print(f"{k:>5}{v['step_ms']:>10.1f}{v['images_per_s']:>10.0f}{v['ratio_vs_one_run_at_a_time']:>11.2f}"
              f"{f'{lo:.2f}-{hi:.2f}':>13}")
    line = json.dumps(report)
    if args.json:
        Path(args.json).write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
