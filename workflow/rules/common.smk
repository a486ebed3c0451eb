# Helpers that resolve inputs and settings from the config. No stage logic here.
#
# The convention all our rules follow, and why:
# - params `config=EFFECTIVE_CONFIG` (the config of this run, after --config/--configfile
#   overrides and schema defaults; written by the Snakefile's onstart) and
#   `settings=settings_hash(...)` of exactly the config keys the stage reads, so a change to
#   them reruns the stage and what depends on it, and a change elsewhere does not;
# - every value in `shell:` quoted (`{params.x:q}`, `{output.y:q}`, `{log:q}`);
# - `floodkd <stage> ... --threads {threads} --log {log:q}`: the CLI writes its output to the
#   log, and a start line and an end line with the duration (or the error) to the console;
# - a folder that a stage reads (an ingest folder, a cube) is not its input: the folder's
#   manifest is, `ingested(region, modality)` or `aligned(region, "manifest")`, with the
#   folder's path in a param, so an identical rewrite reruns nothing (README, "Reruns that
#   do not waste work");
# - a `benchmark:` file under BENCHMARKS, and `resources:` mem_mb (about twice the peak RSS
#   in the demo run's benchmark files) and runtime (minutes, with room for real regions).
import glob
import hashlib
import json
import os
import tempfile

import yaml
from snakemake.exceptions import IncompleteCheckpointException

RESULTS = config["results_dir"]
EFFECTIVE_CONFIG = f"{RESULTS}/config.yaml"
BENCHMARKS = f"{RESULTS}/benchmarks"
REGIONS = list(config["regions"])
TARGETS = [name for name, region in config["regions"].items() if region["role"] == "target"]
SOURCES = [name for name, region in config["regions"].items() if region["role"] == "source"]


def write_effective_config():
    """Write the validated config of this run for the floodkd CLIs; rewritten only when its
    content changes, and atomically, so a reader never sees half a file."""
    header = "# Written by the workflow at the start of each run: the config its stages read."
    text = f"{header}\n{yaml.safe_dump(config, sort_keys=False)}"
    if os.path.isfile(EFFECTIVE_CONFIG) and open(EFFECTIVE_CONFIG).read() == text:
        return
    os.makedirs(RESULTS, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config.", suffix=".yaml", dir=RESULTS)
    with os.fdopen(fd, "w") as stream:
        stream.write(text)
    os.replace(tmp, EFFECTIVE_CONFIG)


def settings_hash(values):
    """A short, order-independent hash of the config values a stage reads (a rule param).
    The model and training blocks carry their defaults in code: a key left out hashes as
    absent, so writing a default out explicitly reruns once."""
    text = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def region_place(region):
    """The keys that fix where a region is: its outline and grid CRS."""
    block = config["regions"][region]
    return {key: block.get(key) for key in ("bbox", "area_file", "crs")}


def ingest_settings(wildcards):
    inputs = config["regions"][wildcards.region]["inputs"]
    return settings_hash([region_place(wildcards.region), inputs.get(wildcards.modality)])


def align_settings(wildcards):
    # the scheduler address changes where the work runs, not the cube
    align = {k: v for k, v in config["align"].items() if k != "dask_scheduler"}
    return settings_hash([region_place(wildcards.region), config["grid"], align])


def teacher_settings(wildcards):
    """The teacher's model and training blocks, the time window that keeps held-out passes
    apart, and which regions are sources."""
    models = config["models"]
    return settings_hash([models.get("teacher"), models.get("teacher_pretrained_dir"),
                          config["training"], config["align"]["time_window_days"], SOURCES])


def holdout_settings(wildcards):
    return settings_hash([config["training"].get("holdout_fraction"),
                          config["align"]["time_window_days"]])


def distill_settings(wildcards):
    return settings_hash([config["models"], config["training"],
                          config["align"]["time_window_days"], SOURCES])


def evaluate_settings(wildcards):
    return settings_hash([config["evaluate"], config["training"].get("device"),
                          config["regions"][wildcards.region].get("truth")])


def teacher_passes_settings(wildcards):
    """What `floodkd teacher-passes` reads: evaluation's plan (truth matching, the truth), its
    batches and device, and the held-out period; not how evaluation scores."""
    evaluate = config["evaluate"]
    return settings_hash([evaluate.get("truth_match_hours"), evaluate.get("batch_size"),
                          config["training"].get("device"),
                          config["regions"][wildcards.region].get("truth"),
                          holdout_settings(wildcards)])


def reference_water_source(wildcards):
    """What a region's reference water is made from: the raster its config names, else the
    teacher (over every radar pass of the cube)."""
    raster = config["regions"][wildcards.region].get("reference_water")
    return raster or f"{RESULTS}/teacher/teacher.safetensors"


def reference_water_settings(wildcards):
    """The reference water rule and raster, and the keys the teacher's maps are made with."""
    region = config["regions"][wildcards.region]
    return settings_hash([config["reference_water"], region.get("reference_water"),
                          config["predict"]["mc_samples"], config["predict"]["overlap_px"],
                          region_place(wildcards.region), config["grid"]])


def waterline_settings(wildcards):
    """What the waterline reads the teacher's maps with, its rule's keys and the held-out
    period it stops before."""
    return settings_hash([config["reference_water"]["water_probability"],
                          config["reference_water"]["min_valid_passes"],
                          config["predict"]["mc_samples"], config["predict"]["overlap_px"],
                          holdout_settings(wildcards)])


def map_waterline(wildcards):
    """The waterline layer a region's student maps read; none where the teacher maps."""
    if region_model(wildcards.region) == "teacher":
        return []
    return [f"{RESULTS}/{wildcards.region}/waterline.tif"]


def predict_settings(wildcards):
    predict = {k: v for k, v in config["predict"].items() if k != "scenarios"}
    region = config["regions"][wildcards.region]
    spec = config["predict"]["scenarios"][wildcards.scenario] or {}
    # a climate scenario reads the draws and the baseline (the tables themselves are inputs)
    climate = ([config["risk"]["scenario_draws"], config["risk"]["extremes"]["confidence"],
                config["risk"]["climate"]["baseline"], config["align"]["chunk_px"]]
               if "return_period_years" in spec else None)
    return settings_hash([predict, spec, climate,
                          region_place(wildcards.region), config["grid"],
                          region.get("synthetic"), region.get("model", "student")])


def report_settings(wildcards):
    # the page lists the region's input globs and flags a synthetic region
    region = config["regions"][wildcards.region]
    return settings_hash([region["inputs"], region.get("synthetic")])


def region_scenarios(region):
    """The scenarios mapped for a region: only the observed pass for model: teacher (the
    rule of floodkd.risk.exposure_cli.map_scenarios, which the stages use)."""
    if region_model(region) == "teacher":
        return ["observed"]
    return list(config["predict"]["scenarios"])


def region_maps(wildcards):
    """The probability maps of a region (their quicklooks and tags go into its report)."""
    return [f"{RESULTS}/{wildcards.region}/maps/flood_probability_{scenario}.tif"
            for scenario in region_scenarios(wildcards.region)]


# results of the risk and plan stages that a region's report shows when the workflow makes them
REPORT_EXTRAS = ("risk/return_levels.csv", "risk/return_levels.png", "plan.json")


def report_extras(wildcards):
    wanted = {f"{RESULTS}/{wildcards.region}/{name}" for name in REPORT_EXTRAS}
    return sorted(wanted & set(all_outputs()))


def climate_settings(wildcards):
    """The climate block, the region's place and the scenarios' (experiment, horizon)."""
    pairs = sorted({(spec["experiment"], spec["horizon"])
                    for spec in config["predict"]["scenarios"].values()
                    if spec and "experiment" in spec})
    return settings_hash([config["risk"]["climate"], config["risk"]["extremes"]["confidence"],
                          region_place(wildcards.region), pairs])


def sea_level_table():
    """The AR6-style projection table of config, or None (the GCM is used)."""
    return config["risk"]["climate"].get("projection_table")


def sea_level_source(wildcards):
    """The projection table where one is set, else the region's ingested GCM (its manifest)."""
    return sea_level_table() or ingested(wildcards.region, "gcm")


def scenario_risk_inputs(wildcards):
    """The risk tables a climate scenario's map reads; none for observed and offsets."""
    spec = config["predict"]["scenarios"].get(wildcards.scenario) or {}
    if "return_period_years" not in spec:
        return []
    names = ["return_levels.csv", "design_storm.csv"]
    if "experiment" in spec:
        names.append("sea_level_change.csv")
    return [f"{RESULTS}/{wildcards.region}/risk/{name}" for name in names]


def risk_outputs(region):
    """Return levels of a region with gauges; sea-level change where a GCM or table gives it."""
    inputs = config["regions"][region]["inputs"]
    outputs = []
    if "tide" in inputs:
        outputs += [f"{RESULTS}/{region}/risk/return_levels.{kind}" for kind in ("csv", "png")]
    if "gcm" in inputs or sea_level_table():
        outputs.append(f"{RESULTS}/{region}/risk/sea_level_change.csv")
    return outputs


def modality_inputs(wildcards):
    """The files a modality's ingest reads: its glob, plus side files named in config."""
    region = config["regions"][wildcards.region]
    spec = region["inputs"][wildcards.modality]
    files = sorted(glob.glob(spec["glob"]))
    if "stations" in spec:
        files.append(spec["stations"])
    if "area_file" in region:
        files.append(region["area_file"])
    return files


def region_model(region):
    """What maps a region: "student" (distilled) or "teacher" (radar alone)."""
    return config["regions"][region].get("model", "student")


def map_model(wildcards):
    """The model files a region's maps come from."""
    if region_model(wildcards.region) == "teacher":
        return f"{RESULTS}/teacher/teacher.safetensors"
    return f"{RESULTS}/{wildcards.region}/student/student.json"


def _checkpoint_output(checkpoint, name, **wildcards):
    """An output of a checkpoint job; while the job has not run, Snakemake's placeholder for
    it (what Snakemake does itself, but item by item: a dry run then shows every job)."""
    try:
        return getattr(checkpoint.get(**wildcards).output, name)
    except IncompleteCheckpointException as incomplete:
        return incomplete.targetfile


def ingested(region, modality):
    """The manifest of an ingest folder, for rules that read the folder: through the
    checkpoint, so a folder rewritten identically reruns none of them."""
    return _checkpoint_output(checkpoints.ingest, "manifest", region=region, modality=modality)


def ingest_manifests(wildcards):
    return [ingested(wildcards.region, m) for m in config["regions"][wildcards.region]["inputs"]]


def aligned(region, name):
    """An output of the region's align ("manifest" of the cube, or "tiles"), for rules that
    read the cube: they take its manifest as input, not the folder, so an identical rewrite
    of the cube reruns none of them (in this run too: align is a checkpoint)."""
    return _checkpoint_output(checkpoints.align, name, region=region)


def holdout_periods(wildcards):
    """The target regions' held-out periods (``floodkd holdout``), through the checkpoint."""
    return [_checkpoint_output(checkpoints.holdout, "period", region=target)
            for target in TARGETS]


def cube_manifest(wildcards):
    """The region's cube manifest, for rules that read the cube. Rules that read only what
    was made from it (exposure, report, catalogue) name it too, unread: after an align that
    rewrote the cube identically, Snakemake re-evaluates only the jobs whose inputs name the
    checkpoint, and would rerun the others."""
    return aligned(wildcards.region, "manifest")


def truth_files(wildcards):
    """Truth rasters of a synthetic region (evaluation only); none for a real region."""
    pattern = config["regions"][wildcards.region].get("truth")
    return sorted(glob.glob(pattern)) if pattern else []


def exposure_maps(wildcards):
    """Every scenario map of a region that exposure reads."""
    return [f"{RESULTS}/{wildcards.region}/maps/flood_{kind}_{scenario}.tif"
            for scenario in region_scenarios(wildcards.region)
            for kind in ("probability", "uncertainty")]


def exposure_settings(wildcards):
    region = config["regions"][wildcards.region]
    return settings_hash([config["exposure"], config["predict"]["scenarios"],
                          region.get("assets"), region_model(wildcards.region)])


def plan_settings(wildcards):
    region = config["regions"][wildcards.region]
    return settings_hash([config["plan"], config["exposure"], config["predict"]["mc_samples"],
                          region.get("assets"), region.get("zones"),
                          region_model(wildcards.region)])


def plan_inputs(wildcards):
    """The plan's optional inputs: the teacher (for a radar pass at the latest time) where
    source regions train one, the return levels where the region has gauges to fit them,
    and the region's assets and zones files where config names them."""
    region = config["regions"][wildcards.region]
    inputs = {key: region[key] for key in ("assets", "zones") if key in region}
    if SOURCES:
        inputs["teacher"] = f"{RESULTS}/teacher/teacher.safetensors"
    levels = f"{RESULTS}/{wildcards.region}/risk/return_levels.csv"
    if levels in risk_outputs(wildcards.region):
        inputs["return_levels"] = levels
    return inputs


def impact_outputs(region):
    """Exposure (where the region has assets) and the plan of a target region."""
    outputs = [f"{RESULTS}/{region}/plan.json", f"{RESULTS}/{region}/plan_zones.geojson"]
    if "assets" in config["regions"][region]:
        outputs += [f"{RESULTS}/{region}/exposure.gpkg",
                    f"{RESULTS}/{region}/exposure_summary.csv"]
    return outputs


def all_outputs():
    outputs = []
    for region in REGIONS:
        outputs += [f"{RESULTS}/{region}/cube.zarr", f"{RESULTS}/{region}/tiles.parquet"]
    for region in TARGETS:
        outputs += impact_outputs(region)
        outputs.append(f"{RESULTS}/{region}/reference_water.tif")
        outputs += [f"{RESULTS}/{region}/{region}.qgs", f"{RESULTS}/{region}/maps/collection.json"]
        outputs += every_scenario_map(region)
        if region_model(region) == "teacher":  # radar-only: no student, evaluation or risk
            continue
        outputs.append(f"{RESULTS}/{region}/eval/metrics.json")
        outputs.append(f"{RESULTS}/{region}/report/index.html")
        outputs += risk_outputs(region)
    return outputs


def scenario_maps(region, scenario):
    """The GeoTIFFs and flood polygons the predict rule writes for one scenario."""
    maps = [f"{RESULTS}/{region}/maps/flood_{kind}_{scenario}.tif"
            for kind in ("probability", "uncertainty", "extent", "likelihood", "inputs_used")]
    return maps + [f"{RESULTS}/{region}/maps/flood_extent_{scenario}.gpkg"]


def every_scenario_map(region):
    return [path for scenario in region_scenarios(region)
            for path in scenario_maps(region, scenario)]
