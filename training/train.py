#!/usr/bin/env python
"""Fine-tune a LoRAT tracker (LoRA on a frozen DINOv2) with accelerate, on streamed / on-disk datasets.

Runs unchanged with ``python training/train.py ...``, ``accelerate launch training/train.py ...`` and
``accelerate launch --num_processes 2 --cpu training/train.py ...``; see ``training/README.md``.

Official recipe (defaults): LaSOT + GOT-10k + TrackingNet + COCO 1:1:1:1, 131072 pairs per epoch,
170 epochs, global batch 128, AdamW lr 1e-4 / weight decay 0.1, grad-norm clip 1, per-iteration cosine
to 1e-6 after 2 warm-up epochs from 1e-7, fp16.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `training.*` when run as a script

from modeling_lorat.configuration_lorat import LORAT_PRESETS  # noqa: E402

logger = logging.getLogger("lorat.train")

OFFICIAL_GLOBAL_BATCH = 128
REPORT_CHOICES = ("tensorboard", "wandb", "all", "none")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags (diffusers ``train_*_lora.py`` names where one exists)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    m = p.add_argument_group("model")
    m.add_argument("--preset", default="b-224", choices=sorted(LORAT_PRESETS), help="official variant")
    m.add_argument(
        "--pretrained_backbone",
        default=None,
        help="Hub id or local folder of the DINOv2 backbone (default: the preset's, e.g. facebook/dinov2-base)",
    )
    m.add_argument("--tiny", action="store_true", help="tiny random DINOv2 (tests); ignores --preset")
    m.add_argument(
        "--model_config",
        default=None,
        help="LoratConfig folder/json for a custom backbone (e.g. the demo's); ignores --preset",
    )
    m.add_argument("--lora_init", default="bert", choices=("bert", "peft"), help="bert = official init")
    m.add_argument("--gradient_checkpointing", action="store_true")
    m.add_argument("--torch_compile", action="store_true", help="torch.compile the model (inductor)")
    m.add_argument(
        "--no_cast_frozen_weights",
        dest="cast_frozen_weights",
        action="store_false",
        help="keep frozen weights float32 under fp16/bf16 (default: stored in the compute dtype)",
    )

    d = p.add_argument_group("data")
    d.add_argument(
        "--dataset",
        action="append",
        default=None,
        help="repeatable: synthetic[:N], synthetic_stream[:N], lasot:ROOT, got10k:ROOT, trackingnet:ROOT, "
        "coco:ROOT, parquet:PATH_OR_REPO (NAME@SPLIT:ROOT picks a split); default synthetic",
    )
    d.add_argument(
        "--dataset_weights", type=float, nargs="+", default=None, help="one per --dataset (1 each)"
    )
    d.add_argument("--samples_per_epoch", type=int, default=131072)
    d.add_argument("--max_gap", type=int, default=100, help="max template/search frame distance")
    d.add_argument("--no_augmentation", action="store_true", help="disable flip / colour jitter / DeiT-III")
    d.add_argument("--dataloader_num_workers", type=int, default=4)
    d.add_argument(
        "--stream_pool_size", type=int, default=32, help="sequences held per streamed source and lane"
    )
    d.add_argument("--stream_refresh_every", type=int, default=16, help="samples per new streamed sequence")

    t = p.add_argument_group("optimisation")
    t.add_argument("--output_dir", default="lorat-output")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--train_batch_size",
        type=int,
        default=None,
        help=f"per device (default: {OFFICIAL_GLOBAL_BATCH} // (processes x accumulation), the official global batch)",
    )
    t.add_argument("--gradient_accumulation_steps", type=int, default=1)
    t.add_argument("--max_train_steps", type=int, default=None, help="overrides --num_train_epochs")
    t.add_argument("--num_train_epochs", type=int, default=170)
    t.add_argument("--learning_rate", type=float, default=1e-4)
    t.add_argument("--weight_decay", type=float, default=0.1, help="0 for 1-d params, norms and embeddings")
    t.add_argument("--adam_beta1", type=float, default=0.9)
    t.add_argument("--adam_beta2", type=float, default=0.999)
    t.add_argument("--adam_epsilon", type=float, default=1e-8)
    t.add_argument("--max_grad_norm", type=float, default=1.0)
    t.add_argument(
        "--lr_scheduler", default="cosine", help="cosine (official) or a transformers scheduler name"
    )
    t.add_argument("--lr_warmup_steps", type=int, default=None, help="default: --lr_warmup_epochs epochs")
    t.add_argument("--lr_warmup_epochs", type=float, default=2.0)
    t.add_argument("--lr_warmup_init", type=float, default=1e-7)
    t.add_argument("--lr_min", type=float, default=1e-6)
    t.add_argument(
        "--mixed_precision", default=None, choices=("no", "fp16", "bf16"), help="default: accelerate config"
    )

    c = p.add_argument_group("checkpoints and logging")
    c.add_argument("--checkpointing_steps", type=int, default=500)
    c.add_argument("--checkpoints_total_limit", type=int, default=None)
    c.add_argument("--resume_from_checkpoint", default=None, help="'latest' or a checkpoint folder")
    c.add_argument(
        "--report_to", default=None, choices=REPORT_CHOICES, help="default: tensorboard if installed"
    )
    c.add_argument("--logging_dir", default="logs", help="relative to --output_dir")
    c.add_argument(
        "--logging_steps",
        type=int,
        default=10,
        help="read the step losses on the host every N steps (one copy; the log keeps every step)",
    )
    c.add_argument("--push_to_hub", action="store_true")
    c.add_argument("--hub_model_id", default=None)

    g = p.add_argument_group("debugging (tests)")
    g.add_argument(
        "--debug_log_samples", action="store_true", help="write the sample ids each rank trains on"
    )
    g.add_argument("--debug_crash_after_step", type=int, default=None, help="SIGKILL itself after this step")
    args = p.parse_args(argv)
    try:
        _validate(args)
    except (ValueError, FileNotFoundError) as exc:
        p.error(str(exc))
    return args


def _validate(args: argparse.Namespace) -> None:
    from training.data import parse_dataset_spec

    args.dataset = args.dataset or ["synthetic"]
    args.dataset_specs = [parse_dataset_spec(spec) for spec in args.dataset]
    if args.dataset_weights is not None and len(args.dataset_weights) != len(args.dataset):
        raise ValueError(
            f"--dataset_weights has {len(args.dataset_weights)} values for {len(args.dataset)} --dataset entries"
        )
    for name in (
        "gradient_accumulation_steps",
        "samples_per_epoch",
        "checkpointing_steps",
        "num_train_epochs",
    ):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    for name in ("train_batch_size", "max_train_steps"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.dataloader_num_workers < 0:
        raise ValueError(f"--dataloader_num_workers must be >= 0, got {args.dataloader_num_workers}")
    if args.push_to_hub and not args.hub_model_id:
        raise ValueError("--push_to_hub needs --hub_model_id USER/NAME")


def _trackers(report_to: str | None) -> list[str] | None:
    from accelerate.utils import is_tensorboard_available, is_wandb_available

    available = {"tensorboard": is_tensorboard_available(), "wandb": is_wandb_available()}
    if report_to is None:
        return ["tensorboard"] if available["tensorboard"] else None
    if report_to == "none":
        return None
    wanted = ["tensorboard", "wandb"] if report_to == "all" else [report_to]
    missing = [name for name in wanted if not available[name]]
    if missing:
        raise ValueError(
            f"--report_to {report_to}: {', '.join(missing)} is not installed (pip install {missing[0]})"
        )
    return wanted


def build_model(args: argparse.Namespace):
    """``(peft_model, lorat_config)``: ``LoratForTracking.from_backbone`` + ``apply_lora``."""
    from modeling_lorat import LoratForTracking
    from modeling_lorat.lora import apply_lora, expected_trainable_parameters

    if args.tiny:
        from modeling_lorat.tiny_models import tiny_config, tiny_dinov2

        config = tiny_config(lora_init=args.lora_init)
        model = LoratForTracking.from_backbone(tiny_dinov2(args.seed), config=config)
    elif args.model_config:
        from modeling_lorat import LoratConfig

        config = LoratConfig.from_pretrained(args.model_config)
        config.lora_init = args.lora_init
        backbone = args.pretrained_backbone or config.backbone_name_or_path
        if not backbone:
            raise ValueError(
                "--model_config needs --pretrained_backbone or a backbone_name_or_path in the config"
            )
        config.backbone_name_or_path = config.backbone_name_or_path or backbone
        model = LoratForTracking.from_backbone(backbone, config=config)
    else:
        backbone = args.pretrained_backbone or LORAT_PRESETS[args.preset]["backbone_name_or_path"]
        if Path(backbone).expanduser().exists():
            backbone = str(Path(backbone).expanduser().resolve())
        model = LoratForTracking.from_backbone(backbone, preset=args.preset, lora_init=args.lora_init)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    config = model.config
    model = apply_lora(model, lora_init=args.lora_init)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info("trainable parameters: %d (expected %d)", trainable, expected_trainable_parameters(config))
    return model, config


def build_dataloader(args: argparse.Namespace, config, layout):
    """The per-process training stream (not passed through ``accelerator.prepare``: it is already sharded)."""
    from training.data import (
        PairAugmentation,
        PairSampler,
        PairTransform,
        TrainingPairDataset,
        TransformConfig,
        build_source,
        make_dataloader,
    )

    sources = [
        build_source(spec, args.seed, args.stream_pool_size, args.stream_refresh_every)
        for spec in args.dataset_specs
    ]
    sampler = PairSampler(sources, args.dataset_weights, max_gap=args.max_gap)
    augmentation = None if args.no_augmentation else PairAugmentation()
    transform = PairTransform(TransformConfig.from_model_config(config), augmentation=augmentation)
    dataset = TrainingPairDataset(sampler, transform, layout)
    import torch

    return make_dataloader(dataset, args.dataloader_num_workers, pin_memory=torch.cuda.is_available())


def _data_state(args: argparse.Namespace, accelerator) -> dict[str, Any]:
    return {
        "seed": args.seed,
        "num_processes": accelerator.num_processes,
        "train_batch_size": args.train_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "dataloader_num_workers": args.dataloader_num_workers,
        "datasets": list(args.dataset),
    }


def _check_resume_layout(saved: dict[str, Any], current: dict[str, Any]) -> None:
    changed = {k: (saved[k], v) for k, v in current.items() if k in saved and saved[k] != v}
    if changed:
        logger.warning(
            "resuming with a different data layout %s: the sample stream will not continue exactly", changed
        )


def save_final(accelerator, model, config, args: argparse.Namespace) -> Path | None:
    """Adapter (peft ``save_pretrained``), ``config.json`` (with ``backbone_name_or_path``) and
    ``preprocessor_config.json`` into ``output_dir``: loadable with ``LoratForTracking.from_pretrained``.

    Collective (call on every process): sharded models (FSDP, ZeRO-3) are gathered first; the main
    process writes. Returns the folder on the main process, ``None`` elsewhere."""
    from accelerate.utils import DistributedType

    from modeling_lorat.image_processing_lorat import LoratImageProcessor
    from modeling_lorat.lora import save_adapter

    state_dict = None
    if accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        state_dict = accelerator.get_state_dict(model)
    if not accelerator.is_main_process:
        return None
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    peft_model = accelerator.unwrap_model(model)
    config = config.__class__.from_dict(config.to_dict())
    # Write into a temporary folder, then move the files in with the adapter weights last, so a kill
    # mid-save never leaves a loadable-looking but half-written adapter in output_dir.
    tmp = Path(tempfile.mkdtemp(dir=out, prefix=".final-"))
    if args.tiny:  # the random tiny backbone is not on the Hub: keep it (re-made from the seed) next to it
        from modeling_lorat.tiny_models import tiny_dinov2

        tiny_dinov2(args.seed).save_pretrained(tmp / "tiny_backbone")
        config.backbone_name_or_path = "tiny_backbone"  # resolved next to the adapter when loading
    # adapter + config.json + the code for trust_remote_code users (no peft placeholder card: hub_cards
    # renders a real one); adapter_config.json records the backbone as base_model_name_or_path
    save_adapter(peft_model, tmp, config, state_dict=state_dict)
    LoratImageProcessor.from_config(config).save_pretrained(tmp)
    from training.checkpointing import fsync_dir, fsync_tree

    fsync_tree(tmp)
    for path in sorted(tmp.iterdir(), key=lambda p: p.name == "adapter_model.safetensors"):
        target = out / path.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(path, target)
    tmp.rmdir()
    fsync_dir(out)
    return out


def _push(folder: Path, repo_id: str) -> str:
    try:
        from hub_cards.push import push_to_hub
    except ImportError:
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(repo_id, exist_ok=True)
        return str(
            api.upload_folder(
                folder_path=str(folder), repo_id=repo_id, ignore_patterns=["checkpoint-*", ".tmp-*"]
            )
        )
    return push_to_hub(folder, repo_id)


def _flush_logs(
    pending: list[tuple], accelerator, train_log, losses: list[float], progress, batch: int
) -> None:
    """Write the pending steps' logs (``(step, values, lr, seconds, skipped)``) with one device-to-host copy."""
    import torch

    if not pending:
        return
    values = torch.stack([torch.nn.functional.pad(v, (0, 4 - v.numel())) for _, v, *_ in pending]).tolist()
    for (step, raw, lr, elapsed, skipped), row in zip(pending, values):
        logs = {"loss": row[0], "loss_cls": row[1], "loss_box": row[2], "lr": lr}
        logs.update({"pairs_per_s": batch / max(elapsed, 1e-9), "skipped_samples": sum(skipped.values())})
        logs.update({f"skipped/{reason}": count for reason, count in skipped.items()})
        if raw.numel() == 4:
            logs["grad_norm"] = row[3]
        losses.append(logs["loss"])
        accelerator.log(logs, step=step)
        if train_log is not None:
            train_log.write(json.dumps({"step": step, **logs, "skipped": skipped}) + "\n")
    if train_log is not None:
        train_log.flush()
    progress.set_postfix(loss=f"{losses[-1]:.4f}", lr=f"{pending[-1][2]:.2e}")
    pending.clear()


def _cast_frozen_weights(accelerator, model, log) -> None:
    """Frozen weights in the autocast dtype (plain and DDP runs; FSDP/DeepSpeed manage dtypes themselves)."""
    from accelerate.utils import DistributedType

    from training.precision import cast_frozen_parameters_, compute_dtype

    dtype = compute_dtype(accelerator.mixed_precision)
    sharded = accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)
    if dtype is not None and not sharded:
        count = cast_frozen_parameters_(model, dtype)
        log.info("frozen weights stored in %s (%d parameters)", dtype, count, main_process_only=True)


def _use_cpu_when_no_gpu() -> None:
    # `accelerate launch --multi_gpu` / torchrun on a machine without GPUs: accelerate only picks the gloo
    # MULTI_CPU mode when ACCELERATE_USE_CPU is set (its `--cpu` launcher needs mpirun for >1 process).
    import torch

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    has_xpu = hasattr(torch, "xpu") and torch.xpu.is_available()
    if (
        distributed
        and "ACCELERATE_USE_CPU" not in os.environ
        and not torch.cuda.is_available()
        and not has_xpu
    ):
        os.environ["ACCELERATE_USE_CPU"] = "true"


def main(args: argparse.Namespace) -> dict[str, Any]:
    """Train; returns ``{"global_step", "losses" (main process), "skipped", "output_dir"}``."""
    import torch
    from accelerate import Accelerator
    from accelerate.logging import get_logger
    from accelerate.utils import ProjectConfiguration, set_seed
    from tqdm.auto import tqdm

    from training.checkpointing import (
        cut_log,
        load_checkpoint,
        register_adapter_state_hooks,
        resolve_resume_checkpoint,
        save_checkpoint,
    )
    from training.data import MODEL_INPUTS, StreamLayout
    from training.optimization import build_lr_scheduler, parameter_groups

    out = Path(args.output_dir)
    _use_cpu_when_no_gpu()
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=_trackers(args.report_to),
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / args.logging_dir)),
        step_scheduler_with_optimizer=False,
        dynamo_backend="inductor" if args.torch_compile else None,
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    log = get_logger("lorat.train")
    if accelerator.mixed_precision == "fp16" and accelerator.device.type == "cpu":
        raise ValueError(
            "fp16 mixed precision needs a GPU and this run is on the CPU: pass --mixed_precision bf16 or no, "
            "or leave out an accelerate config made for GPUs (--config_file training/configs/single_gpu.yaml)"
        )
    set_seed(args.seed)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)

    procs, accum = accelerator.num_processes, args.gradient_accumulation_steps
    if args.train_batch_size is None:
        args.train_batch_size = max(1, OFFICIAL_GLOBAL_BATCH // (procs * accum))
    global_batch = args.train_batch_size * procs * accum
    updates_per_epoch = max(1, args.samples_per_epoch // global_batch)
    max_steps = args.max_train_steps or args.num_train_epochs * updates_per_epoch
    warmup = args.lr_warmup_steps
    if warmup is None:
        warmup = int(args.lr_warmup_epochs * updates_per_epoch)

    model, config = build_model(args)
    optimizer = torch.optim.AdamW(
        parameter_groups(model, args.weight_decay),
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
    )
    scheduler = build_lr_scheduler(
        args.lr_scheduler, optimizer, args.learning_rate, warmup, max_steps, args.lr_warmup_init, args.lr_min
    )
    register_adapter_state_hooks(accelerator)
    if args.cast_frozen_weights:
        _cast_frozen_weights(accelerator, model, log)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)

    global_step = 0
    data_state = _data_state(args, accelerator)
    checkpoint = resolve_resume_checkpoint(out, args.resume_from_checkpoint)
    if args.resume_from_checkpoint and checkpoint is None:
        log.info("no checkpoint in %s: starting a new run", out, main_process_only=True)
    if checkpoint is not None:
        state = load_checkpoint(accelerator, checkpoint)  # a damaged file: one line naming it
        _check_resume_layout(state, data_state)
        global_step = int(state["global_step"])
        log.info("resumed from %s at step %d", checkpoint, global_step, main_process_only=True)
        # the steps after the checkpoint are trained again: their log lines go, so each step is logged once
        if accelerator.is_main_process:
            cut_log(out / "train_log.jsonl", lambda record: record.get("step", 0) <= global_step)
        samples = out / "debug" / f"samples_rank{accelerator.process_index}.jsonl"
        cut_log(samples, lambda record: record.get("step", 0) < global_step)  # 0-based steps

    layout = StreamLayout(
        seed=args.seed,
        batch_size=args.train_batch_size,
        process_index=accelerator.process_index,
        num_processes=procs,
        start_batch=global_step * accum,
    )
    dataloader = build_dataloader(args, config, layout)

    if accelerator.is_main_process:
        run_config = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))}
        accelerator.init_trackers("lorat", config=run_config)
    log.info(
        "%d steps (%d per epoch), global batch %d = %d per device x %d processes x %d accumulation, warm-up %d",
        max_steps,
        updates_per_epoch,
        global_batch,
        args.train_batch_size,
        procs,
        accum,
        warmup,
        main_process_only=True,
    )

    sample_log = None
    if args.debug_log_samples:
        (out / "debug").mkdir(parents=True, exist_ok=True)
        sample_log = open(out / "debug" / f"samples_rank{accelerator.process_index}.jsonl", "a")
    train_log = open(out / "train_log.jsonl", "a") if accelerator.is_main_process else None

    trainable = [p for p in model.parameters() if p.requires_grad]
    skipped_total: Counter[str] = Counter()
    losses: list[float] = []
    pending: list[tuple] = []
    progress = tqdm(
        total=max_steps, initial=global_step, desc="steps", disable=not accelerator.is_local_main_process
    )
    model.train()
    batches = iter(dataloader)
    tic = time.perf_counter()
    while global_step < max_steps:
        step_loss = torch.zeros(3, device=accelerator.device)
        grad_norm = None
        for micro in range(accum):
            batch = next(batches)
            skipped_total.update(batch["skipped"])
            if sample_log is not None:
                record = {"step": global_step, "micro": micro, "sample_index": batch["sample_index"].tolist()}
                sample_log.write(json.dumps({**record, "keys": batch["sample_keys"]}) + "\n")
            inputs = {k: batch[k].to(accelerator.device, non_blocking=True) for k in MODEL_INPUTS}
            with accelerator.accumulate(model):
                output = model(**inputs)
                accelerator.backward(output.loss)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    grad_norm = accelerator.clip_grad_norm_(trainable, args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            parts = (output.loss, output.loss_dict["loss_cls"], output.loss_dict["loss_box"])
            step_loss += torch.stack([x.detach().float() for x in parts]) / accum
        scheduler.step()
        global_step += 1
        progress.update(1)

        # device-side record; the host reads the step values only every --logging_steps (one copy)
        step_loss = accelerator.reduce(step_loss, reduction="mean")
        if grad_norm is not None:
            step_loss = torch.cat((step_loss, torch.as_tensor(grad_norm, device=step_loss.device).view(1)))
        elapsed, tic = time.perf_counter() - tic, time.perf_counter()
        pending.append((global_step, step_loss, scheduler.get_last_lr()[0], elapsed, dict(skipped_total)))
        last_step = global_step >= max_steps or global_step % args.checkpointing_steps == 0
        if global_step % args.logging_steps == 0 or last_step:
            _flush_logs(pending, accelerator, train_log, losses, progress, global_batch)
        if sample_log is not None:
            sample_log.flush()

        if global_step % args.checkpointing_steps == 0:
            path = save_checkpoint(accelerator, out, global_step, data_state, args.checkpoints_total_limit)
            log.info("saved %s", path, main_process_only=True)
        if args.debug_crash_after_step is not None and global_step == args.debug_crash_after_step:
            os.kill(os.getpid(), signal.SIGKILL)  # simulate a hard crash (tests)

    progress.close()
    del batches
    if skipped_total:
        log.info("skipped samples (this process): %s", dict(skipped_total))
    accelerator.wait_for_everyone()
    if save_final(accelerator, model, config, args) is not None:
        log.info("saved the adapter to %s", out)
        if args.push_to_hub:
            log.info("pushed to %s", _push(out, args.hub_model_id))
    accelerator.wait_for_everyone()
    for handle in (sample_log, train_log):
        if handle is not None:
            handle.close()
    accelerator.end_training()
    return {
        "global_step": global_step,
        "losses": losses,
        "skipped": dict(skipped_total),
        "output_dir": str(out),
    }


if __name__ == "__main__":
    try:
        main(parse_args())
    except (ValueError, FileNotFoundError) as exc:  # bad input: one line (LORAT_TRACEBACK=1 shows more)
        if os.environ.get("LORAT_TRACEBACK"):
            raise
        print(f"train.py: error: {exc}", file=sys.stderr)
        sys.exit(2)
