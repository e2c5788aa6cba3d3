"""The Keras model that matches a scratchnn config: same layers, init, L2, dropout, optimizer, loss.

TensorFlow is imported here only, after its thread counts are set (`import_tensorflow`).
Every Keras initialiser and Dropout gets its own seed, so no global random state is touched.
"""

import os
import time

import numpy as np

def import_tensorflow(threads):
    """Import TensorFlow with `threads` intra-op threads (and as many inter-op threads);
    returns the counts in force, which may differ if TensorFlow was initialised earlier."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # already initialised in this process; keep what is in force
        pass
    return {
        "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    }


def _initializer(name, seed):
    import keras

    init = keras.initializers.get(name)
    config = init.get_config()
    return type(init).from_config({**config, "seed": seed}) if "seed" in config else init


def optimizer(opt_cfg):
    """keras.optimizers.X with the hyperparameters of scratchnn's optimizer config (the classes
    share names: SGD, RMSprop, Adam)."""
    import keras

    kwargs = {k: v for k, v in opt_cfg.items() if k != "_target_"}
    kwargs["learning_rate"] = kwargs.pop("lr")
    name = opt_cfg["_target_"].rsplit(".", 1)[-1]
    return getattr(keras.optimizers, name)(**kwargs)


def build(cfg, input_dim, n_out, seed_sequence):
    """A compiled keras.Sequential twin of `scratchnn.mlp` for this config."""
    import keras

    m = cfg.model
    seeds = iter(seed_sequence.generate_state(2 * m.depth + 2))
    regularizer = (lambda: keras.regularizers.L2(m.l2)) if m.l2 else (lambda: None)
    layers = [keras.Input((input_dim,))]
    for _ in range(m.depth):
        layers.append(keras.layers.Dense(m.width, m.activation, kernel_initializer=_initializer(m.init, int(next(seeds))),
                                         kernel_regularizer=regularizer()))
        if m.dropout:
            layers.append(keras.layers.Dropout(m.dropout, seed=int(next(seeds))))
    layers.append(keras.layers.Dense(n_out, "softmax", kernel_initializer=_initializer(m.init, int(next(seeds))),
                                     kernel_regularizer=regularizer()))
    model = keras.Sequential(layers)
    model.compile(optimizer=optimizer(cfg.optimizer), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def warm_up(model, X, y, batch_size, steps):
    """Run `steps` training steps (tracing the train, test and predict functions), then put the
    weights and optimizer state back, so that the timed run starts from the untouched model."""
    if steps == 0:
        return
    weights = model.get_weights()
    model.optimizer.build(model.trainable_variables)
    state = [v.numpy() for v in model.optimizer.variables]
    n = min(len(X), steps * batch_size)
    model.fit(X[:n], y[:n], batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
              validation_data=(X[:batch_size], y[:batch_size]))
    model.predict(X[:batch_size], verbose=0)
    model.set_weights(weights)
    for variable, value in zip(model.optimizer.variables, state):
        variable.assign(value)


def _divergence_guard(max_loss):
    """A callback that stops training when the running mean loss (what Keras reports per batch)
    is not finite or exceeds max_loss, the same rule as scratchnn's fit; it keeps where."""
    import keras

    class DivergenceGuard(keras.callbacks.Callback):
        diverged = None

        def on_train_batch_end(self, batch, logs=None):
            loss = float(logs["loss"])
            if not np.isfinite(loss) or (max_loss is not None and loss > max_loss):
                self.diverged = (batch + 1, loss)
                self.model.stop_training = True

    return DivergenceGuard()


def fit(model, X, y, epochs, batch_size, order_rng, validation_data, on_epoch_end, max_loss=None):
    """Train one epoch per `fit` call on X, y permuted by `order_rng`, the same order scratchnn sees.
    Each epoch is timed from the permutation to the end of validation, as in scratchnn's fit.
    Raises TrainingDiverged as scratchnn's fit does; returns the per-epoch logs."""
    from scratchnn import TrainingDiverged

    history, guard = [], _divergence_guard(max_loss)
    for epoch in range(epochs):
        start = time.perf_counter()
        order = order_rng.permutation(len(X))
        result = model.fit(X[order], y[order], batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
                           validation_data=validation_data, callbacks=[guard])
        if guard.diverged:
            raise TrainingDiverged(epoch + 1, guard.diverged[0], guard.diverged[1], max_loss)
        logs = {k: float(v[-1]) for k, v in result.history.items()}
        logs["epoch_time"] = time.perf_counter() - start
        history.append(logs)
        on_epoch_end(epoch, logs)
    return history
