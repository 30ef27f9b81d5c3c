"""Common wrong answers of notebook 06, each a small edit of the solution cell.

Each entry: name; cell (the answer cell's grade_id); replace (pairs (old, new) applied to the solution's source);
loses (test cells that must lose points); message (a phrase the failing check must print, naming the mistake).
The four exercises are independent: each test cell calls only the functions of its own exercise.
"""

NLB_ORTHOGONAL, NLB_SCALING, NLB_GRADCHECK = ("normalized_linear_backward_orthogonal", "normalized_linear_backward_scaling",
                                              "normalized_linear_backward_gradcheck")
RMS_HAND, RMS_PROPERTIES, RMS_BACKWARD = ("rms_norm_forward_hand_case", "rms_norm_forward_properties",
                                          "rms_norm_backward_gradcheck")
STREAM_BY_HAND, STREAM_PROPERTIES = "residual_stream_by_hand", "residual_stream_properties"

_RMS = "rms = np.sqrt((x * x).mean(axis=axes, keepdims=True) + eps)"

MISTAKES = [
    # Exercise A: normalized_linear_backward
    {"name": "mean not removed from the gradient", "cell": "normalized_linear_backward",
     "replace": [("(dout - dout.mean(axis=0, keepdims=True) - z_hat", "(dout - z_hat")],
     "loses": [NLB_ORTHOGONAL, NLB_GRADCHECK],
     "message": "without the gradient through the batch mean, the gradient is not orthogonal to W"},
    {"name": "gradient through the variance left out", "cell": "normalized_linear_backward",
     "replace": [(" - z_hat * (dout * z_hat).mean(axis=0, keepdims=True)", "")],
     "loses": [NLB_ORTHOGONAL, NLB_GRADCHECK],
     "message": "the gradient through the variance"},
    {"name": "no division by s", "cell": "normalized_linear_backward",
     "replace": [("keepdims=True)) / s\n", "keepdims=True))\n")],
     "loses": [NLB_SCALING, NLB_GRADCHECK],
     "message": "forgetting to divide by s"},
    {"name": "normalization backward skipped", "cell": "normalized_linear_backward",
     "replace": [("return x.T @ dz", "return x.T @ dout")],
     "loses": [NLB_ORTHOGONAL, NLB_SCALING, NLB_GRADCHECK],
     "message": "skipping the normalization's backward"},
    # Exercise B: effective_learning_rate and equilibrium_angular_update
    {"name": "eta / ||w|| instead of eta / ||w||^2", "cell": "effective_rate",
     "replace": [("eta / np.sum(np.asarray(w, dtype=float) ** 2)", "eta / np.sqrt(np.sum(np.asarray(w, dtype=float) ** 2))")],
     "loses": ["effective_learning_rate_values"],
     "message": "eta / ||w|| instead of eta / ||w||^2"},
    {"name": "mean of the squares instead of the sum", "cell": "effective_rate",
     "replace": [("np.sum(np.asarray(w, dtype=float) ** 2)", "np.mean(np.asarray(w, dtype=float) ** 2)")],
     "loses": ["effective_learning_rate_values"],
     "message": "eta / mean(w^2)"},
    {"name": "first-order approximation sqrt(2 eta lambda)", "cell": "effective_rate",
     "replace": [("np.arccos(1.0 - eta * weight_decay)", "np.sqrt(2 * eta * weight_decay)")],
     "loses": ["equilibrium_angular_update_values"],
     "message": "the first-order approximation sqrt(2 eta lambda)"},
    {"name": "equilibrium angle in degrees", "cell": "effective_rate",
     "replace": [("np.arccos(1.0 - eta * weight_decay)", "np.degrees(np.arccos(1.0 - eta * weight_decay))")],
     "loses": ["equilibrium_angular_update_values"],
     "message": "in degrees instead of radians"},
    {"name": "equilibrium angle without the factor 2", "cell": "effective_rate",
     "replace": [("np.arccos(1.0 - eta * weight_decay)", "np.sqrt(eta * weight_decay)")],
     "loses": ["equilibrium_angular_update_values"],
     "message": "without the factor 2"},
    # Exercise C: rms_norm_forward and rms_norm_backward
    {"name": "RMSNorm with the mean subtracted", "cell": "rms_norm",
     "replace": [(_RMS, "x = x - x.mean(axis=axes, keepdims=True)\n    " + _RMS)],
     "loses": [RMS_HAND, RMS_PROPERTIES, RMS_BACKWARD],
     "message": "subtracting the mean: that is LayerNorm"},
    {"name": "eps outside the square root", "cell": "rms_norm",
     "replace": [(_RMS, "rms = np.sqrt((x * x).mean(axis=axes, keepdims=True)) + eps")],
     "loses": [RMS_HAND, RMS_PROPERTIES, RMS_BACKWARD],
     "message": "adding eps outside the square root"},
    {"name": "mean square over the last axis only", "cell": "rms_norm",
     "replace": [("axes = tuple(range(1, x.ndim))", "axes = (-1,)")],
     "loses": [RMS_PROPERTIES, RMS_BACKWARD],
     "message": "over the last axis only"},
    {"name": "dgamma averaged over the batch", "cell": "rms_norm",
     "replace": [("(dout * x_hat).sum(axis=0)", "(dout * x_hat).mean(axis=0)")],
     "loses": [RMS_BACKWARD],
     "message": "averaging dgamma over the batch"},
    {"name": "gamma left out of the backward pass", "cell": "rms_norm",
     "replace": [("g = gamma * dout", "g = dout")],
     "loses": [RMS_BACKWARD],
     "message": "leaving gamma out of the backward pass"},
    {"name": "path through rms ignored", "cell": "rms_norm",
     "replace": [("dx = (g - x_hat * (g * x_hat).mean(axis=axes, keepdims=True)) / rms", "dx = g / rms")],
     "loses": [RMS_BACKWARD],
     "message": "ignoring the path through rms"},
    # Exercise D: residual_stream
    {"name": "residual added after the norm in pre-norm", "cell": "residual_stream",
     "replace": [("x = x + np.maximum(norm(x) @ W1, 0) @ W2", "x = norm(x) + np.maximum(norm(x) @ W1, 0) @ W2")],
     "loses": [STREAM_BY_HAND, STREAM_PROPERTIES],
     "message": "adding the residual after the norm in pre-norm"},
    {"name": "pre-norm and post-norm swapped", "cell": "residual_stream",
     "replace": [('if placement == "pre":', 'if placement == "post":')],
     "loses": [STREAM_BY_HAND, STREAM_PROPERTIES],
     "message": "pre and post swapped"},
    {"name": "skip connection left out of post-norm", "cell": "residual_stream",
     "replace": [("x = norm(x + np.maximum(x @ W1, 0) @ W2)", "x = norm(np.maximum(x @ W1, 0) @ W2)")],
     "loses": [STREAM_BY_HAND, STREAM_PROPERTIES],
     "message": "leaving the skip connection out of post-norm"},
    {"name": "first state x_0 left out", "cell": "residual_stream",
     "replace": [("states = [x]", "states = []")],
     "loses": [STREAM_BY_HAND, STREAM_PROPERTIES],
     "message": "leaving out the first state"},
]
