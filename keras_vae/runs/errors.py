"""The error and the warning of a run: bad settings raise, skipped outputs warn."""


class SettingsError(ValueError):
    """Settings that cannot work together, or a run folder that does not fit them."""


class RunWarning(UserWarning):
    """Something a run skipped (pictures without matplotlib, an export the backend refused)."""
