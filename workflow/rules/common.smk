# Helpers that resolve inputs from the config. No stage logic here.
import glob

RESULTS = config["results_dir"]
CONFIG_FILE = workflow.configfiles[0] if workflow.configfiles else "config/config.yaml"
REGIONS = list(config["regions"])
TARGETS = [name for name, region in config["regions"].items() if region["role"] == "target"]
SOURCES = [name for name, region in config["regions"].items() if region["role"] == "source"]


wildcard_constraints:
    region="[a-z0-9][a-z0-9-]*",
    modality="sar|optical|gcm|tide|terrain|labels",
    scenario="[a-z0-9][a-z0-9_-]*",


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


def ingest_outputs(region):
    return [f"{RESULTS}/{region}/ingest/{m}" for m in config["regions"][region]["inputs"]]


def truth_files(wildcards):
    """Truth rasters of a synthetic region (evaluation only); none for a real region."""
    pattern = config["regions"][wildcards.region].get("truth")
    return sorted(glob.glob(pattern)) if pattern else []


def all_outputs():
    outputs = []
    for region in REGIONS:
        outputs += [f"{RESULTS}/{region}/cube.zarr", f"{RESULTS}/{region}/tiles.parquet"]
    for region in TARGETS:
        if region_model(region) == "teacher":  # radar-only: the observed pass, no student
            outputs += [f"{RESULTS}/{region}/maps/flood_{kind}_observed.tif"
                        for kind in ("probability", "uncertainty")]
            continue
        outputs.append(f"{RESULTS}/{region}/eval/metrics.json")
        for scenario in config["predict"]["scenarios"]:
            outputs += [f"{RESULTS}/{region}/maps/flood_{kind}_{scenario}.tif"
                        for kind in ("probability", "uncertainty")]
    return outputs
