"""Fine-tuning on several GPUs at once: one process per GPU, PyTorch's DistributedDataParallel.

`fine_tune_parallel` starts `processes` ranks (spawned, so CUDA starts clean in each) that meet
through a file in a temporary folder and run finetune.fine_tune's own loop, each on its share of
every batch; DDP averages the gradients, so a step sees the same global batch as on one GPU and
the result is the one-GPU result within noise. NCCL joins GPUs; gloo joins CPU processes, which is
how CI runs this code path without a GPU. Rank 0 reports progress and hands its weights back; the
calling process then calibrates and evaluates as for a one-GPU run.

A cancel reaches every rank through a shared event, and the ranks agree on it at each step
(`Group.any`), so they stop together instead of one waiting for the others for ever. A rank that
fails ends the run with its error; the others are stopped.
"""

from __future__ import annotations

import os
import queue as queues
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from csbot.errors import TrainingCancelled, TrainingError
from csbot.nlu import finetune
from csbot.nlu.device import pick_device
from csbot.nlu.finetune import Progress
from csbot.nlu.network import load_base


def processes_for(device: torch.device, requested: int) -> int:
    """How many training processes to run: `requested`, or with 0 one per visible GPU (1 on a CPU).

    Example: processes_for(torch.device("cuda"), 0) -> 4 on a 4-GPU machine; (cpu, 0) -> 1
    """
    if requested:
        if device.type == "cuda" and requested > torch.cuda.device_count():
            raise TrainingError(f"train_processes is {requested} but this machine has {torch.cuda.device_count()} "
                                "GPUs; set it to at most that, or to 0 for one per GPU")
        return requested
    return torch.cuda.device_count() if device.type == "cuda" else 1


@dataclass(frozen=True)
class Group:
    """This rank's place in the run: what finetune.fine_tune needs to train as one of several."""

    rank: int
    world: int
    device: torch.device

    def shard(self, batch: list[int]) -> list[int]:
        """This rank's share of a global batch (never empty: every rank must take part in each step)."""
        return batch[self.rank::self.world] or batch[:1]

    def wrap(self, net: torch.nn.Module) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        # the base encoder's pooler gets no gradient (we mean-pool), hence find_unused_parameters
        return DistributedDataParallel(net, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                                       find_unused_parameters=True)

    def any(self, flag: bool) -> bool:
        """Whether any rank says so (every rank calls this at the same step)."""
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def mean(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss averaged over the ranks (what a one-GPU run would report)."""
        value = loss.detach().float().clone()
        dist.all_reduce(value)
        return value / self.world


def _rank(rank: int, world: int, folder: str, train, labels, args, messages, stop) -> None:
    """One training process: join the group, train, and (rank 0) save the weights."""
    try:
        cuda = pick_device(args.device).type == "cuda"
        device = torch.device(f"cuda:{rank}") if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(device)
        else:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
        dist.init_process_group("nccl" if cuda else "gloo", init_method=f"file://{folder}/rendezvous",
                                rank=rank, world_size=world)
        group = Group(rank, world, device)
        report = (lambda p: messages.put(("progress", p.step, p.total, p.loss))) if rank == 0 else None
        net, _, _ = finetune.fine_tune(train, labels, args, report=report, should_stop=stop.is_set, group=group)
        if rank == 0:
            torch.save({k: v.cpu() for k, v in net.state_dict().items()}, Path(folder) / "weights.pt")
            messages.put(("done",))
    except TrainingCancelled as exc:
        messages.put(("cancelled", str(exc)))
    except BaseException as exc:
        messages.put(("error", f"training process {rank} of {world} failed: {type(exc).__name__}: {exc}"))
        raise SystemExit(1)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def fine_tune_parallel(train, labels, args, *, processes: int, report=None, should_stop=None,
                       started: float | None = None):
    """finetune.fine_tune on `processes` ranks; returns (net, tokenizer, device) in this process."""
    import multiprocessing

    started = started or time.monotonic()
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="csbot-ddp-") as folder:
        messages, stop = context.Queue(), context.Event()
        ranks = [context.Process(target=_rank, args=(rank, processes, folder, train, labels, args, messages, stop),
                                 daemon=True, name=f"csbot-train-rank{rank}") for rank in range(processes)]
        for process in ranks:
            process.start()
        outcome = None
        try:
            while outcome is None:
                if should_stop and should_stop():
                    stop.set()
                try:
                    message = messages.get(timeout=0.5)
                except queues.Empty:
                    if all(p.exitcode is not None for p in ranks):  # a last word may still be in the pipe
                        try:
                            message = messages.get(timeout=2)
                        except queues.Empty:
                            message = None
                        if message is not None:
                            outcome = message if message[0] != "progress" else None
                            continue
                    failed = [p for p in ranks if p.exitcode not in (None, 0)]
                    if failed:  # died without a word (killed, out of memory)
                        outcome = ("error", f"training process {failed[0].name} exited with code {failed[0].exitcode}")
                    elif all(p.exitcode == 0 for p in ranks):
                        outcome = ("error", "the training processes ended without handing back the weights")
                    continue
                if message[0] == "progress" and report:
                    report(Progress("fine_tune", message[1], message[2], message[3], time.monotonic() - started))
                elif message[0] != "progress":
                    outcome = message
        finally:
            if outcome is None or outcome[0] != "done":
                stop.set()
            for process in ranks:  # a failed rank leaves the others waiting in a collective: end them
                process.join(timeout=60 if outcome and outcome[0] in ("done", "cancelled") else 2)
                if process.is_alive():
                    process.kill()
                    process.join()
        if outcome[0] == "cancelled":
            raise TrainingCancelled(outcome[1])
        if outcome[0] == "error":
            raise TrainingError(outcome[1])
        net, tokenizer = load_base(args.base_model, len(labels))
        net.load_state_dict(torch.load(Path(folder) / "weights.pt", map_location="cpu"))
    device = pick_device(args.device)
    net.to(device).eval()
    return net, tokenizer, device
