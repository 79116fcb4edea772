"""Input checks shared by the layers: clear errors, raised before any state changes."""

from __future__ import annotations

_NAMES = ("z_mean", "z_log_var", "prior_mean", "prior_log_var")


def _shape_list(input_shape):
    if not isinstance(input_shape, (list, tuple)) or not input_shape:
        return None
    if all(isinstance(s, (list, tuple)) or s is None for s in input_shape):
        return [tuple(s) if s is not None else None for s in input_shape]
    return None


def check_mean_and_log_var(layer_name: str, input_shape, allow_prior: bool = False):
    """Checks that ``input_shape`` is ``[z_mean, z_log_var]`` of equal shapes.

    With ``allow_prior`` it may also be ``[z_mean, z_log_var, prior_mean]`` or
    ``[z_mean, z_log_var, prior_mean, prior_log_var]``, every shape equal to ``z_mean``'s
    (``None`` dimensions match any size). Returns the shapes as a list of tuples; raises a
    ``ValueError`` naming the layer, the input and the shapes expected and received.
    """
    shapes = _shape_list(input_shape)
    if allow_prior:
        expected = (
            "[z_mean, z_log_var], [z_mean, z_log_var, prior_mean] or "
            "[z_mean, z_log_var, prior_mean, prior_log_var]"
        )
        allowed = (2, 3, 4)
    else:
        expected, allowed = "[z_mean, z_log_var]", (2,)
    if shapes is None or len(shapes) not in allowed:
        count = f" ({len(shapes)} inputs)" if shapes is not None else ""
        raise ValueError(
            f"Layer '{layer_name}' expects a list {expected}; received input of shape "
            f"{input_shape}{count}."
        )
    for label, shape in zip(_NAMES, shapes):
        if shape is None:
            raise ValueError(
                f"Layer '{layer_name}': {label} must be a tensor of shape (batch, ...); "
                f"received None."
            )
    reference = shapes[0]
    for label, shape in zip(_NAMES[1:], shapes[1:]):
        if len(shape) != len(reference) or any(
            a is not None and b is not None and a != b for a, b in zip(shape, reference)
        ):
            raise ValueError(
                f"Layer '{layer_name}': {label} must have the shape of z_mean "
                f"{reference}; received {shape}."
            )
    return shapes
