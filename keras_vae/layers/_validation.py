"""Input checks shared by the layers: clear errors, raised before any state changes."""

from __future__ import annotations


def _shape_list(input_shape):
    if not isinstance(input_shape, (list, tuple)) or not input_shape:
        return None
    if all(isinstance(s, (list, tuple)) or s is None for s in input_shape):
        return [tuple(s) if s is not None else None for s in input_shape]
    return None


def check_mean_and_log_var(layer_name: str, input_shape, allow_prior: bool = False):
    """Checks that ``input_shape`` is ``[z_mean, z_log_var(, prior_mean)]`` of equal shapes."""
    shapes = _shape_list(input_shape)
    expected = "[z_mean, z_log_var] or [z_mean, z_log_var, prior_mean]"
    if not allow_prior:
        expected = "[z_mean, z_log_var]"
    allowed = (2, 3) if allow_prior else (2,)
    if shapes is None or len(shapes) not in allowed:
        raise ValueError(
            f"Layer '{layer_name}' expects a list {expected}; received input of shape "
            f"{input_shape}."
        )
    reference = shapes[0]
    for label, shape in zip(("z_log_var", "prior_mean"), shapes[1:]):
        if len(shape) != len(reference) or any(
            a is not None and b is not None and a != b for a, b in zip(shape, reference)
        ):
            raise ValueError(
                f"Layer '{layer_name}': {label} must have the shape of z_mean "
                f"{reference}; received {shape}."
            )
    return shapes
