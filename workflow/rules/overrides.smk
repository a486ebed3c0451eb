# Values given with --config are typed by Snakemake only at the top level: nested values
# (`--config "training={teacher_epochs: 5}"`) arrive as strings and would fail the schema.
# Type them as YAML would, before the config is validated.
import yaml
from snakemake.utils import update_config


def typed_as_yaml(value):
    if isinstance(value, dict):
        return {key: typed_as_yaml(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed_as_yaml(item) for item in value]
    if isinstance(value, str):
        try:
            loaded = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return value if isinstance(loaded, (dict, list)) else loaded
    return value


update_config(config, typed_as_yaml(dict(workflow.config_settings.config)))
