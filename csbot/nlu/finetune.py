"""The fine-tuning loop: the whole encoder and a linear head, trained with cross-entropy.

`fine_tune` runs in one process, or as one rank of several (distributed.py passes its `group`,
and every rank runs this same loop on its share of each batch). It reports `Progress` per step
and stops at a step boundary when asked. Choosing one process or several, and everything before
and after the loop (split, export, calibration, evaluation), is training.py's.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from csbot.errors import TrainingCancelled, TrainingError
from csbot.nlu.device import pick_device
from csbot.nlu.intents import IntentClassifier
from csbot.nlu.network import IntentNet, load_base


@dataclass(frozen=True)
class Progress:
    """One report from a running training: which phase, how far, the last loss."""

    phase: str
    step: int = 0
    total: int = 0
    loss: float | None = None
    elapsed: float = 0.0



Report = Callable[[Progress], None]
ShouldStop = Callable[[], bool]


def _batches(texts: list[str], batch_size: int, rng: random.Random) -> list[list[int]]:
    # Shuffle, then sort within windows of 50 batches by length: little padding, still random.
    order = list(range(len(texts)))
    rng.shuffle(order)
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: len(texts[i]))
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def fine_tune(train: list[tuple[str, str]], labels: list[str], args, *,
              report: Report | None = None, should_stop: ShouldStop | None = None,
              started: float | None = None, group=None) -> tuple[IntentNet, object, torch.device]:
    """Fine-tune the whole encoder and a linear head with cross-entropy.

    The head starts at the class centroids of the base model's embeddings (scaled), so the first
    steps already classify sensibly and few epochs suffice on a CPU. A rank of a distributed run
    (distributed.py) passes its `group`: the same batches in the same order, each rank its share.
    """
    started = started or time.monotonic()
    device = group.device if group else pick_device(args.device)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    net, tokenizer = load_base(args.base_model, len(labels))
    texts = [t for t, _ in train]
    targets = torch.tensor([labels.index(i) for _, i in train])
    with torch.no_grad():
        base = IntentClassifier(net, tokenizer, labels, max_length=args.max_length, device=device,
                                prefix=args.input_prefix)
        embedded = torch.from_numpy(base.features(texts)[1])
        centroids = torch.stack([embedded[targets == c].mean(0) for c in range(len(labels))])
        net.head.weight.copy_(torch.nn.functional.normalize(centroids, dim=-1) * 20.0)
        net.head.bias.zero_()
    steps_per_epoch = math.ceil(len(texts) / args.batch_size)
    total = max(1, int(round(steps_per_epoch * args.epochs)))
    optimizer = torch.optim.AdamW([
        {"params": net.encoder.parameters(), "lr": args.learning_rate},
        {"params": net.head.parameters(), "lr": args.learning_rate * args.head_lr_factor}],
        weight_decay=0.01)
    warmup = max(1, int(total * args.warmup_fraction))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total - s) / total))
    use_amp = device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    step = 0
    model = group.wrap(net) if group else net
    net.train()
    while step < total:
        for batch_ids in _batches(texts, args.batch_size, rng):
            if step >= total:
                break
            stop = bool(should_stop and should_stop())
            if group is not None:
                stop = group.any(stop)  # every rank stops at the same step
                batch_ids = group.shard(batch_ids)
            if stop:
                raise TrainingCancelled(f"training cancelled at step {step} of {total}; "
                                        "the serving model is unchanged")
            batch = tokenizer([args.input_prefix + texts[i] for i in batch_ids], padding=True, truncation=True,
                              max_length=args.max_length, return_tensors="pt").to(device)
            with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
                logits = model(batch["input_ids"], batch["attention_mask"])
            loss = torch.nn.functional.cross_entropy(logits.float(), targets[batch_ids].to(device),
                                                     label_smoothing=args.label_smoothing)
            seen = group.mean(loss) if group is not None else loss  # every rank sees the same value
            if not torch.isfinite(seen):
                raise TrainingError(f"loss became {seen.item()} at step {step}; "
                                    "lower learning_rate and train again")
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if report:
                report(Progress("fine_tune", step, total, float(seen.item()), time.monotonic() - started))
        net.train()
    net.eval()
    return net, tokenizer, device
