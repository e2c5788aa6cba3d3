"""The Keras twin of a scratchnn config: same layers, init, L2, dropout, optimizer, loss and batches.

TensorFlow is imported with this module (quietly), which only Keras runs load; `configure` sets its
thread counts before it initialises. Its execution
settings come from the config's `keras` group: `jit_compile` (XLA) and `steps_per_execution`
(training steps per call into the compiled function). With k steps per execution the
divergence guard sees the running loss once every k steps (logged as `divergence_check_every`).
Every initialiser and Dropout gets its own seed, so no global random state is touched.

Data path: the training and validation sets become TF tensors once per model (in the untimed
warm-up, else at the start of fit), sharing the arrays' memory where TensorFlow can take it
(`_tensor`); each epoch gathers its permutation of the training tensor (one copy, timed, as
scratchnn gathers its batches in its epoch) into a tensor of batches, which `model.fit` takes as
a tf.data pipeline (`_batches`), so the batches are those the runner's order gives; no data set
is converted per epoch. Keras's fit, evaluate and predict are given tf.data pipelines rather than
arrays: for arrays each call builds and traces its own slicing pipeline
(docs/measurements/keras_settings.md). Validation,
evaluation and prediction run EVAL_BATCH examples per forward pass, as the other frameworks'.
"""

import os

import numpy as np

from .. import names
from .base import EVAL_BATCH, Framework, epoch_loop, guard
from .quiet import quiet_native_stderr

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
with quiet_native_stderr():  # absl's and the CUDA probe's lines at import; this module loads only for Keras runs
    import keras
    import tensorflow as tf

def _tensor(array):
    """`array` as a TF tensor: the same memory if it is C-contiguous, writeable and 64-byte aligned
    (TensorFlow aborts the process on a misaligned buffer, so nothing else is handed over), else a copy."""
    if array.flags.c_contiguous and array.flags.writeable and array.ctypes.data % 64 == 0:
        return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
    return tf.constant(array)


def _batches(X, y, batch, order=None):
    """The rows of tensors X (and y, unless None) in `order` (int64; default: as they are), in
    batches of `batch`, the last one partial. The rows are gathered once, the full batches as one
    (S, batch, ...) tensor the pipeline slices a batch at a time. (`.batch` on the examples, which
    slices them one by one and stacks them, keeps tf.data's threads busy beside the step, so the
    twin used more than its threads' cores: docs/measurements/benchmark.md, "Cores used".)"""
    order = np.arange(X.shape[0]) if order is None else order
    S, r = divmod(len(order), batch)

    def rows(index):
        return tf.gather(X, index) if y is None else (tf.gather(X, index), tf.gather(y, index))

    full = tf.data.Dataset.from_tensor_slices(rows(order[:S * batch].reshape(S, batch)))
    return full.concatenate(tf.data.Dataset.from_tensors(rows(order[S * batch:]))) if r else full


def _every_shape(n, batch, full_batches=1):
    """The first examples of n that make `full_batches` batches of `batch` and n's last, partial
    batch: every batch shape a pass over the n examples has."""
    return min(n, full_batches * batch + n % batch)


def _initializer(name, seed):
    init = keras.initializers.get(name)
    config = init.get_config()
    return type(init).from_config({**config, "seed": seed}) if "seed" in config else init

def optimizer(opt_cfg):
    """keras.optimizers.X with the hyperparameters of scratchnn's optimizer config (the classes
    share names: SGD, RMSprop, Adam)."""
    kwargs = {k: v for k, v in opt_cfg.items() if k != "_target_"}
    kwargs["learning_rate"] = kwargs.pop("lr")
    return getattr(keras.optimizers, opt_cfg["_target_"].rsplit(".", 1)[-1])(**kwargs)

def _guard_callback(max_loss, epoch):
    """Checks the running mean loss Keras reports after each execution (every k steps)."""
    class DivergenceGuard(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            guard((epoch + 1, batch + 1), float(logs["loss"]), max_loss)

    return DivergenceGuard()

class Keras(Framework):
    name = "keras"
    model_file = "model.keras"

    @staticmethod
    def configure(cfg):
        """Import TensorFlow with train.threads intra-op (and inter-op) threads; returns the counts in
        force, which differ if TensorFlow was initialised earlier in this process."""
        with quiet_native_stderr():  # the device probe that runs on first use
            try:
                tf.config.threading.set_intra_op_parallelism_threads(cfg.train.threads)
                tf.config.threading.set_inter_op_parallelism_threads(cfg.train.threads)
            except RuntimeError:  # already initialised in this process; keep what is in force
                pass
            tf.config.list_physical_devices()
        return {"tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}

    def __init__(self, cfg, seed_sequence, n_in, n_out):
        super().__init__(cfg, seed_sequence, n_in, n_out)
        m = cfg.model
        seeds = iter(seed_sequence.generate_state(2 * m.depth + 2))
        regularizer = (lambda: keras.regularizers.L2(m.l2)) if m.l2 else (lambda: None)
        layers = [keras.Input((n_in,))]
        for _ in range(m.depth):
            layers.append(keras.layers.Dense(m.width, m.activation, kernel_regularizer=regularizer(),
                                             kernel_initializer=_initializer(m.init, int(next(seeds)))))
            if m.dropout:
                layers.append(keras.layers.Dropout(m.dropout, seed=int(next(seeds))))
        layers.append(keras.layers.Dense(n_out, "softmax", kernel_regularizer=regularizer(),
                                         kernel_initializer=_initializer(m.init, int(next(seeds)))))
        self.model = keras.Sequential(layers)
        self.model.compile(optimizer=optimizer(cfg.optimizer), loss="sparse_categorical_crossentropy",
                           metrics=["accuracy"], jit_compile=cfg.keras.jit_compile,
                           steps_per_execution=cfg.keras.steps_per_execution)
        self._resident = None  # (the arrays, their tensors, the validation batches): see _tensors

    def _tensors(self, data):
        """((X, y, X_val, y_val) of `data` as TF tensors, validation None if there is none; the
        validation set's batches), converted on the first call and reused while `data` holds the
        same arrays."""
        arrays = (*data["train"], *(data["val"] or (None, None)))
        if self._resident is None or any(a is not b for a, b in zip(arrays, self._resident[0])):
            tensors = tuple(None if a is None else _tensor(a) for a in arrays)
            val = None if tensors[2] is None else _batches(*tensors[2:], EVAL_BATCH)
            self._resident = arrays, tensors, val
        return self._resident[1:]

    def params(self):
        return {names.GUARD_EVERY: self.cfg.keras.steps_per_execution}

    def warm_up(self, data):
        """Converts the data to resident tensors (`_tensors`), then warmup_steps steps on batches of
        every shape the timed fit sees (the last partial batch of the training and validation sets
        included: XLA compiles per shape), a predict on batches of the shapes the test set's has,
        and one full-size gather of the training set (the first allocation of an epoch's copy);
        then every variable is put back (weights, optimizer state, the Dropout seed generators'),
        so the timed run starts from the model as built and does not depend on train.warmup_steps."""
        M, steps = self.cfg.train.batch_size, self.cfg.train.warmup_steps
        if steps == 0:
            return
        (X_t, y_t, Xv_t, yv_t), _ = self._tensors(data)
        model = self.model
        model.optimizer.build(model.trainable_variables)
        # every variable: the weights, the optimizer's state and each Dropout's seed-generator state
        variables = [*model.variables, *model.optimizer.variables]
        state = [v.numpy() for v in variables]
        n = _every_shape(len(X_t), M, steps)
        val = None
        if Xv_t is not None:
            k = _every_shape(len(Xv_t), EVAL_BATCH)
            val = _batches(Xv_t[:k], yv_t[:k], EVAL_BATCH)
        model.fit(_batches(X_t[:n], y_t[:n], M), epochs=1, shuffle=False, verbose=0, validation_data=val)
        X_test = data["test"][0]
        self.predict(X_test[:_every_shape(len(X_test), EVAL_BATCH)])
        # an epoch's copy once, untimed, so that the first timed epoch does not pay for the first copy
        _batches(X_t, y_t, M, np.arange(len(X_t))[::-1])  # int64, as fit's orders are
        for variable, value in zip(variables, state):
            variable.assign(value)

    def fit(self, data, order_rng, on_epoch_end):
        """One `model.fit` call per epoch on the batches, in order, of the resident training tensor
        gathered in the order `order_rng` permutes it; validation on the resident validation batches."""
        t = self.cfg.train
        (X_t, y_t, _, _), val = self._tensors(data)

        def run_epoch(epoch, order):
            batches = _batches(X_t, y_t, t.batch_size, order)
            result = self.model.fit(batches, epochs=1, shuffle=False, verbose=0, validation_data=val,
                                    callbacks=[_guard_callback(t.max_loss, epoch)])
            return {k: float(v[-1]) for k, v in result.history.items()}

        return epoch_loop(run_epoch, on_epoch_end, epochs=t.epochs, n=len(X_t), order_rng=order_rng)

    def evaluate(self, X, y):
        loss, acc = self.model.evaluate(_batches(_tensor(X), _tensor(y), EVAL_BATCH), verbose=0)
        return float(loss), float(acc)

    def predict(self, X):
        return self.model.predict(_batches(_tensor(X), None, EVAL_BATCH), verbose=0)

    def train_on_batch(self, X, y):
        return float(self.model.train_on_batch(X, y, return_dict=True)["loss"])

FRAMEWORK = Keras
