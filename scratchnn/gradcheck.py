"""Gradients by central finite differences, to check backpropagation against."""

import numpy as np


def cost(net, X, Y):
    """C for a batch, with the L2 penalty.

    Args:
        net: A `Network`.
        X: Inputs, shape (M, features).
        Y: The target matrix, shape (n^L, M).

    Returns:
        The cost C, a float.
    """
    return net.cost(net.forward(X.T), Y).mean() + net.penalty()


def finite_difference_gradient(net, X, y, h=1e-6):
    """dC/dtheta for every array of net.params, each entry by (C(theta + h) - C(theta - h)) / 2h.

    Args:
        net: A `Network` (float64 for meaningful results); its parameters are restored.
        X: Inputs, shape (M, features).
        y: Integer labels, shape (M,).
        h: The step of the central difference.

    Returns:
        A list of float64 arrays shaped like `net.params`.
    """
    _, Y, _ = net._prepare(X, y)
    grads = []
    for p in net.params:
        flat, g = p.reshape(-1), np.empty(p.size)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + h
            plus = cost(net, X, Y)
            flat[i] = old - h
            minus = cost(net, X, Y)
            flat[i] = old
            g[i] = (plus - minus) / (2 * h)
        grads.append(g.reshape(p.shape))
    return grads


def backprop_gradient(net, X, y):
    """dC/dtheta by one forward and one backward pass, in the order of net.params.

    Args:
        net: A `Network`.
        X: Inputs, shape (M, features).
        y: Integer labels, shape (M,).

    Returns:
        A list of arrays shaped like `net.params` (copies).
    """
    _, Y, _ = net._prepare(X, y)
    net.backward(net.forward(X.T), Y)
    return [g.copy() for g in net.grads]


def relative_error(net, X, y, h=1e-6):
    """||g_backprop - g_fd|| / (||g_backprop|| + ||g_fd||) over all parameters (0 when both are 0).

    Args:
        net: A `Network`, float64 for meaningful results.
        X: Inputs, shape (M, features).
        y: Integer labels, shape (M,).
        h: The step of the central difference.

    Returns:
        The relative error, a float.
    """
    a = np.concatenate([g.ravel() for g in backprop_gradient(net, X, y)])
    b = np.concatenate([g.ravel() for g in finite_difference_gradient(net, X, y, h)])
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))
