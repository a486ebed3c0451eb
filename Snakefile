# floodkd: coastal flood-risk maps. A table of contents; every rule calls the floodkd CLI.
# `snakemake --lint` asks for a conda environment or container per rule: we leave that lint
# on purpose. Every rule runs the one floodkd package (pyproject.toml) from the environment
# Snakemake itself runs in; per-rule environments would install torch once per rule.
from snakemake.utils import validate


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/overrides.smk"


validate(config, "config/schema.yaml")


wildcard_constraints:
    region="[a-z0-9][a-z0-9-]*",
    modality="sar|optical|gcm|tide|terrain|labels|defences",
    scenario="[a-z0-9][a-z0-9_-]*",


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/align.smk"
include: "workflow/rules/teacher.smk"
include: "workflow/rules/reference.smk"
include: "workflow/rules/distill.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/risk.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/impact.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/catalogue.smk"


onstart:
    write_effective_config()


rule all:
    input:
        all_outputs(),
