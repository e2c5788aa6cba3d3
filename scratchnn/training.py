"""What a training loop reports: divergence as an exception, progress as an optional bar."""

import math


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite (raised before that step's update is applied),
    or its running mean over the epoch passed `max_loss` (checked after the step).

    Args:
        epoch: The epoch, counted from 1 (0 for `train_on_batch`).
        step: The step within the epoch, counted from 1, or None.
        loss: The non-finite batch loss, or the running mean that passed `max_loss`.
        max_loss: The bound that was passed, or None.
    """

    def __init__(self, epoch, step, loss, max_loss=None):
        self.epoch, self.step, self.loss = epoch, step, loss
        where = f"epoch {epoch}" + (f", step {step}" if step is not None else "")
        why = f" (running mean above max_loss={max_loss})" if math.isfinite(loss) and max_loss is not None else ""
        super().__init__(f"training diverged: loss={loss} at {where}{why}")


def progress(epochs, verbose):
    """A tqdm bar over epochs when verbose (tqdm is imported only then), else a plain range.

    Args:
        epochs: The number of epochs to iterate over.
        verbose: Whether to show the bar.
    """
    if not verbose:
        return _NoBar(epochs)
    from tqdm.auto import tqdm

    return tqdm(range(epochs), desc="scratchnn", unit="epoch", leave=False)


class _NoBar(list):
    def __init__(self, epochs):
        super().__init__(range(epochs))

    def set_postfix(self, *args, **kwargs):
        pass
