"""The workflow's config check, run once as the Snakefile starts, before any job.

The library's own checks are ``mdshortcut.config.check_config``; the ones here also read the
pipeline's modules. They live apart so that the training's code (the train rules' inputs) holds
no pipeline module: editing a table's or an ablation's module reruns no training.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from mdshortcut.config import ConfigError, check_config
from mdshortcut.pipeline.architecture import check_architecture
from mdshortcut.pipeline.tables import probe_models


def validate_config(config: dict, schema: str | os.PathLike, files: Sequence[str | os.PathLike]) -> None:
    """Validate ``config`` (read from ``files``) against ``schema``, filling in its defaults, then
    ``check_config`` it and check what the pipeline reads of it (the probe's models, the
    architecture variants); ConfigError: one line naming the files and the key."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    where = ", ".join(str(f) for f in files)
    try:
        validate(config, str(schema))
        check_config(config)
        probe_models(config)  # a denoising.datasets entry without a model to probe
        if "architecture" in config:
            check_architecture(config)
    except WorkflowError as exc:
        raise ConfigError(f"{where}: {describe_validation_error(exc)}") from None
    except ConfigError as exc:
        raise ConfigError(f"{where}: invalid config: {exc}") from None


def describe_validation_error(exc: BaseException) -> str:
    """One line naming the config key of a jsonschema ValidationError wrapped by Snakemake."""
    import jsonschema

    cause = exc
    while cause is not None and not isinstance(cause, jsonschema.ValidationError):
        cause = cause.__cause__ or cause.__context__
    if not isinstance(cause, jsonschema.ValidationError):
        return str(exc)
    key = ".".join(str(p) for p in cause.absolute_path) or "<top level>"
    return f"invalid config: {key}: {cause.message}"
