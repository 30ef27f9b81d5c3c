"""Common wrong answers of notebook 05, each a small edit of the solution cell.

Each entry: name; cell (the answer cell's grade_id); replace (pairs (old, new) applied to the solution's source);
loses (test cells that must lose points); message (a phrase the failing check must print, naming the mistake).
"""

_ZERO_AND_LOOP = ("    model.zero_grad()\n    losses = []\n"
                  "    for X_micro, y_micro in zip(np.array_split(X_batch, n_micro), np.array_split(y_batch, n_micro)):\n")

MISTAKES = [
    # Exercise A: build_mlp
    {"name": "normalization layer placed after the loss", "cell": "build_mlp",
     "replace": [("    layers.append(Linear(widths[-2], widths[-1], rng))\n",
                  "    layers.append(Linear(widths[-2], widths[-1], rng))\n"
                  "    if norm is not None:\n        layers.append(normalization(widths[-1]))\n")],
     "loses": ["build_mlp_layer_order", "build_mlp_variants"],
     "message": "placing a normalization layer at the output"},
    {"name": "normalization after the ReLU", "cell": "build_mlp",
     "replace": [("        if norm is not None:\n            layers.append(normalization(n_out))\n"
                  "        layers.append(ReLU())\n",
                  "        layers.append(ReLU())\n        if norm is not None:\n"
                  "            layers.append(normalization(n_out))\n")],
     "loses": ["build_mlp_layer_order", "build_mlp_variants"],
     "message": "placing the normalization after the ReLU"},
    {"name": "ReLU after the last Linear", "cell": "build_mlp",
     "replace": [("    return Sequential(*layers)", "    layers.append(ReLU())\n    return Sequential(*layers)")],
     "loses": ["build_mlp_layer_order", "build_mlp_variants"],
     "message": "a ReLU after the last Linear"},
    {"name": "GroupNorm arguments swapped", "cell": "build_mlp",
     "replace": [("GroupNorm(num_groups, width)", "GroupNorm(width, num_groups)")],
     "loses": ["build_mlp_variants"],
     "message": "GroupNorm takes (num_groups, num_channels)"},
    # Exercise B: training_step
    {"name": "gradients not zeroed between steps", "cell": "training_step",
     "replace": [("    model.zero_grad()\n", "")],
     "loses": ["training_step_two_steps"],
     "message": "forgetting to zero the gradients between steps"},
    {"name": "gradient sign flipped in the update", "cell": "training_step",
     "replace": [("module.params[name] -= lr * module.grads[name]", "module.params[name] += lr * module.grads[name]")],
     "loses": ["training_step_hand_case", "training_step_two_steps", "training_step_micro_batches"],
     "message": "the gradient's sign flipped"},
    {"name": "model left in eval mode for training", "cell": "training_step",
     "replace": [("    model.train()\n", "")],
     "loses": ["training_step_two_steps"],
     "message": "forgetting model.train()"},
    {"name": "gradients zeroed inside the micro-batch loop", "cell": "training_step",
     "replace": [(_ZERO_AND_LOOP, _ZERO_AND_LOOP.replace("    model.zero_grad()\n", "")
                  + "        model.zero_grad()\n")],
     "loses": ["training_step_micro_batches"],
     "message": "zeroing the gradients inside the micro-batch loop"},
    {"name": "micro-batch gradients not divided by n_micro", "cell": "training_step",
     "replace": [("backward_accumulate(model, dlogits / n_micro)", "backward_accumulate(model, dlogits)")],
     "loses": ["training_step_micro_batches"],
     "message": "without dividing by n_micro"},
    # Exercise C: evaluate_model
    {"name": "evaluating in train mode", "cell": "evaluate_model",
     "replace": [("    model.eval()\n", "")],
     "loses": ["evaluate_model_running_statistics", "evaluate_model_changes_nothing"],
     "message": "evaluating in train mode"},
    {"name": "running statistics updated during evaluation", "cell": "evaluate_model",
     "replace": [("    model.eval()\n", "    model.train()\n    model.forward(X)  # refresh the running statistics first\n"
                                      "    model.eval()\n")],
     "loses": ["evaluate_model_running_statistics", "evaluate_model_changes_nothing"],
     "message": "they were updated during evaluation"},
    {"name": "previous mode not restored", "cell": "evaluate_model",
     "replace": [("model.train(was_training)", "model.train()")],
     "loses": ["evaluate_model_changes_nothing"],
     "message": "restore the mode the model had before"},
    {"name": "accuracy as a count", "cell": "evaluate_model",
     "replace": [("return loss, accuracy(logits, y)", "return loss, float(np.sum(np.argmax(logits, axis=1) == y))")],
     "loses": ["evaluate_model_running_statistics"],
     "message": "the number of correct predictions"},
    # Exercise D: update_ratios
    {"name": "learning rate left out", "cell": "update_ratios",
     "replace": [("np.std(lr * module.grads[name])", "np.std(module.grads[name])")],
     "loses": ["update_ratios_hand_case", "update_ratios_after_backward"],
     "message": "leaving out the learning rate"},
    {"name": "ratio upside down", "cell": "update_ratios",
     "replace": [("np.std(lr * module.grads[name]) / np.std(module.params[name])",
                  "np.std(module.params[name]) / np.std(lr * module.grads[name])")],
     "loses": ["update_ratios_hand_case", "update_ratios_after_backward"],
     "message": "the ratio upside down"},
    {"name": "biases and gamma/beta included", "cell": "update_ratios",
     "replace": [(" if module.params[name].ndim == 2", "")],
     "loses": ["update_ratios_hand_case", "update_ratios_after_backward"],
     "message": "including the biases"},
]
